package dev.kxai.spark;

import dev.kxai.Inputs;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.image.Preprocess;
import dev.kxai.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;

/**
 * The work of one partition: its rows in batches of {@code batchSize}, each batch one attribution call
 * on the executor's shared model, on the task's GPU or the CPU ({@link DeviceChoice}). Rows come out
 * in their order, each with five more columns: the attributions (the example's shape, flattened), the
 * convergence delta (or null), the target explained (the given one, else the predicted class), the device
 * that ran it, and an error (null when the row was explained). A row that cannot be explained (wrong
 * size, NaN, an unreadable .npy, a target out of range) gets its error and null attributions, and the
 * others of its batch and partition go on: rows are checked one by one before the batch runs, and a
 * batch that fails all the same (an error only the engine finds) is rerun row by row, so only its
 * faulty rows fail. Bugs (anything but a {@link KxaiException}) still fail the task, for Spark to retry
 * and report. Pulls rows lazily: a partition's memory is one batch, whatever its size.
 */
final class PartitionExplainer implements MapPartitionsFunction<Row, Row> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = Logger.getLogger(PartitionExplainer.class.getName());

    private final Broadcast<byte[]> model;
    private final String modelSha256;
    private final String modelSource;
    private final ExplainSpec spec;
    private final int inputIndex;
    private final InputKind inputKind;
    private final int targetIndex;
    /** For tests: the task resources to use instead of the TaskContext's (a fake "gpu" address). */
    private final Map<String, ResourceInformation> resourcesOverride;

    PartitionExplainer(Broadcast<byte[]> model, String modelSha256, String modelSource, ExplainSpec spec, int inputIndex,
            InputKind inputKind, int targetIndex, Map<String, ResourceInformation> resourcesOverride) {
        this.model = model;
        this.modelSha256 = modelSha256;
        this.modelSource = modelSource;
        this.spec = spec;
        this.inputIndex = inputIndex;
        this.inputKind = inputKind;
        this.targetIndex = targetIndex;
        this.resourcesOverride = resourcesOverride;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
        TaskContext task = TaskContext.get();
        Map<String, ResourceInformation> resources = resourcesOverride != null ? resourcesOverride
                : task == null ? Map.of() : task.resourcesJMap();
        DeviceChoice device = DeviceChoice.forTask(spec.device(), resources);
        Model m = ModelCache.get(modelSha256, modelSource, model::value, device);
        String input = m.graph().inputName();
        int[] example = m.runner().plan().exampleShape(input);
        int per = Arrays.stream(example).reduce(1, Math::multiplyExact);
        Preprocess preprocess = inputKind == InputKind.IMAGE
                ? (spec.preprocess() == null ? null : spec.preprocess().trim().startsWith("{")
                        ? Preprocess.fromJson(spec.preprocess(), "the preprocess parameter") : Preprocess.parse(spec.preprocess()))
                : null;
        Methods.Method method = Methods.create(Methods.entry(spec.method()).name(), m, Methods.Params.of(spec.params()));
        // Batch-invariant dense GEMMs (a process-wide, counted switch, as BatchingExplainer holds it):
        // held while the task runs, released once at its end however it ends.
        AtomicBoolean held = new AtomicBoolean(false);
        if (spec.batchInvariant()) {
            CpuBackend.batchInvariant(true);
            held.set(true);
        }
        Runnable release = () -> {
            if (held.compareAndSet(true, false)) {
                CpuBackend.batchInvariant(false);
            }
        };
        if (task != null) {
            task.addTaskCompletionListener(new TaskCompletionListener() {
                @Override
                public void onTaskCompletion(TaskContext context) {
                    release.run();
                }
            });
        }
        Batch batch = new Batch(m, method, input, example, per, preprocess, device);
        return new Iterator<>() {
            private final Deque<Row> ready = new ArrayDeque<>();

            @Override
            public boolean hasNext() {
                while (ready.isEmpty() && rows.hasNext()) {
                    List<Row> next = new ArrayList<>(spec.batchSize());
                    while (next.size() < spec.batchSize() && rows.hasNext()) {
                        next.add(rows.next());
                    }
                    ready.addAll(batch.explain(next));
                }
                if (ready.isEmpty()) {
                    release.run();
                }
                return !ready.isEmpty();
            }

            @Override
            public Row next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return ready.poll();
            }
        };
    }

    /** One batch's rows through the model; what every row of a partition shares. */
    private final class Batch {
        private final Model m;
        private final Methods.Method method;
        private final String input;
        private final int[] example;
        private final int per;
        private final Preprocess preprocess;
        private final DeviceChoice device;

        Batch(Model m, Methods.Method method, String input, int[] example, int per, Preprocess preprocess,
                DeviceChoice device) {
            this.m = m;
            this.method = method;
            this.input = input;
            this.example = example;
            this.per = per;
            this.preprocess = preprocess;
            this.device = device;
        }

        /** The rows with their five columns appended, in order. */
        List<Row> explain(List<Row> rows) {
            int k = rows.size();
            float[][] x = new float[k][];
            Integer[] target = new Integer[k];
            String[] error = new String[k];
            List<Integer> valid = new ArrayList<>();
            for (int i = 0; i < k; i++) {
                try {
                    x[i] = inputKind.decode(rows.get(i), inputIndex, example, per, preprocess);
                    for (int j = 0; j < per; j++) {
                        if (!Float.isFinite(x[i][j])) {
                            throw new dev.kxai.InvalidInputException("the input holds a non-finite value " + x[i][j]
                                    + " at flat index " + j);
                        }
                    }
                    if (targetIndex >= 0 && !rows.get(i).isNullAt(targetIndex)) {
                        long t = ((Number) rows.get(i).get(targetIndex)).longValue();
                        if (t < 0 || t >= m.outputs()) {
                            throw new dev.kxai.InvalidInputException("target " + t + " is outside the model's "
                                    + m.outputs() + " outputs (valid: 0.." + (m.outputs() - 1) + ")");
                        }
                        target[i] = (int) t;
                    }
                    valid.add(i);
                } catch (KxaiException e) {
                    error[i] = e.getMessage();
                }
            }
            Object[][] results = new Object[k][];
            if (!valid.isEmpty()) {
                try {
                    attribute(valid, x, target, results);
                } catch (KxaiException e) {
                    if (valid.size() == 1) {
                        error[valid.get(0)] = e.getMessage();
                    } else {
                        // isolate the rows at fault: each alone (its numbers are the same, see ARCHITECTURE.md)
                        LOG.fine(() -> "batch of " + valid.size() + " rows failed (" + e.getMessage() + "); rerun row by row");
                        for (int i : valid) {
                            try {
                                attribute(List.of(i), x, target, results);
                            } catch (KxaiException e1) {
                                error[i] = e1.getMessage();
                            }
                        }
                    }
                }
            }
            List<Row> out = new ArrayList<>(k);
            for (int i = 0; i < k; i++) {
                Row r = rows.get(i);
                Object[] v = new Object[r.length() + 5];
                for (int c = 0; c < r.length(); c++) {
                    v[c] = r.get(c);
                }
                Object[] res = results[i];
                if (res != null) { // an error row keeps nulls: nothing ran for it
                    System.arraycopy(res, 0, v, r.length(), 4);
                }
                v[r.length() + 4] = error[i];
                out.add(RowFactory.create(v));
            }
            return out;
        }

        /** The rows {@code idx} in one call; each row's result: {attributions, delta, target, device}. */
        private void attribute(List<Integer> idx, float[][] x, Integer[] target, Object[][] results) {
            int n = idx.size();
            float[] data = new float[Math.multiplyExact(n, per)];
            for (int r = 0; r < n; r++) {
                System.arraycopy(x[idx.get(r)], 0, data, r * per, per);
            }
            int[] shape = new int[example.length + 1];
            shape[0] = n;
            System.arraycopy(example, 0, shape, 1, example.length);
            Inputs in = Inputs.of(input, new Tensor(shape, data));
            m.check(in);
            int[] t = new int[n];
            int[] predicted = null;
            for (int r = 0; r < n; r++) {
                if (target[idx.get(r)] == null) {
                    predicted = predicted != null ? predicted : m.predict(in);
                    t[r] = predicted[r];
                } else {
                    t[r] = target[idx.get(r)];
                }
            }
            Attribution a = method.attribute(in, m.targets(t, n));
            Tensor at = a.attributions();
            int outPer = at.rowSize();
            String ran = ModelCache.note(device, a.describeDevice());
            for (int r = 0; r < n; r++) {
                results[idx.get(r)] = new Object[] {Arrays.copyOfRange(at.data(), r * outPer, (r + 1) * outPer),
                    a.convergenceDelta() == null ? null : a.convergenceDelta().data()[r], t[r], ran};
            }
        }
    }
}
