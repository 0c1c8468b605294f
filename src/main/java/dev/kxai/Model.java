package dev.kxai;

import dev.kxai.backend.Backend;
import dev.kxai.backend.Backends;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.ModelRunner;
import dev.kxai.graph.Graph;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;

/**
 * A loaded model on a chosen backend: what the attribution methods explain, and the only thing
 * they use (they run their work through {@link #run}, which applies the {@link DevicePolicy}).
 * Immutable and thread-safe; share one instance between request threads.
 */
public final class Model implements AutoCloseable {
    private final Graph graph;
    private final DevicePolicy policy;
    private final ModelRunner runner;

    private Model(Graph graph, DevicePolicy policy) {
        this.graph = graph;
        this.policy = policy;
        this.runner = policy.primary();
    }

    /** Loads an ONNX file on the backend chosen by {@code KXAI_DEVICE} (default auto). */
    public static Model load(Path onnx) {
        return load(onnx, null);
    }

    /** Loads an ONNX file on a device: {@code auto}, {@code cpu}, {@code cuda}; null = environment. */
    public static Model load(Path onnx, String device) {
        Graph g = OnnxImporter.load(onnx);
        return of(g, Backends.select(device));
    }

    public static Model of(Graph graph, Backend backend) {
        return new Model(graph, DevicePolicy.prepare(graph, backend));
    }

    public Graph graph() {
        return graph;
    }

    /** The runner of the chosen backend (benchmarks and tests; methods go through {@link #run}). */
    public ModelRunner runner() {
        return runner;
    }

    /** The backend chosen at load. */
    public Backend backend() {
        return runner.backend();
    }

    /** Where the next call will run: the backend's device, or "cpu (why)" where it falls back. */
    public String device() {
        return policy.device();
    }

    /**
     * Runs work on the model's backend, or on the CPU where the {@link DevicePolicy} falls back
     * (a node the backend lacks, a device failure); the result says where it ran.
     */
    public <R> DevicePolicy.Ran<R> run(String what, java.util.function.Function<ModelRunner, R> work) {
        return policy.run(what, work);
    }

    /** Number of outputs per example: targets range over 0..outputs()−1. */
    public int outputs() {
        return runner.outputsPerExample();
    }

    /** The model's output for a batch. */
    public Tensor forward(Tensor x) {
        checkBatch(x, "input");
        return run("forward", r -> r.forward(x)).value();
    }

    /** Per-row argmax of the output: the predicted class. */
    public int[] predict(Tensor x) {
        Tensor y = forward(x);
        int per = y.rowSize();
        int[] out = new int[y.dim(0)];
        for (int r = 0; r < out.length; r++) {
            int best = 0;
            for (int c = 1; c < per; c++) {
                if (y.data()[r * per + c] > y.data()[r * per + best]) {
                    best = c;
                }
            }
            out[r] = best;
        }
        return out;
    }

    /**
     * Checks that a batch fits the model and holds only finite values; {@code what} names it in
     * the message ("input", "baseline").
     */
    public void checkBatch(Tensor x, String what) {
        int[] ex = runner.exampleShape();
        int[] s = x.shape();
        boolean fits = s.length == ex.length + 1;
        for (int i = 0; fits && i < ex.length; i++) {
            fits = s[i + 1] == ex[i];
        }
        if (!fits) {
            throw new InvalidInputException(what + " of shape " + Shapes.str(s) + " does not fit model input '"
                    + graph.inputName() + "' of shape " + Shapes.str(Shapes.withBatch(prepend(ex), -1)).replace("-1", "batch")
                    + " (" + graph.source() + ")");
        }
        if (s[0] == 0) {
            throw new InvalidInputException("empty batch: " + what + " of shape " + Shapes.str(s) + " has no rows");
        }
        int bad = x.firstNonFinite();
        if (bad >= 0) {
            int row = bad / Math.max(1, x.rowSize());
            throw new InvalidInputException(what + " holds a non-finite value " + x.data()[bad] + " at row " + row
                    + ", flat index " + bad);
        }
    }

    private static int[] prepend(int[] example) {
        int[] s = new int[example.length + 1];
        System.arraycopy(example, 0, s, 1, example.length);
        return s;
    }

    /**
     * Targets per row: one value for every row, or one per row; each checked against the output range.
     */
    public int[] targets(int[] targets, int batch) {
        int[] t;
        if (targets.length == 1) {
            t = new int[batch];
            java.util.Arrays.fill(t, targets[0]);
        } else if (targets.length == batch) {
            t = targets.clone();
        } else {
            throw new InvalidInputException(targets.length + " targets given for a batch of " + batch
                    + " rows; give one target, or one per row");
        }
        int per = outputs();
        for (int r = 0; r < t.length; r++) {
            if (t[r] < 0 || t[r] >= per) {
                throw new InvalidInputException("target " + t[r] + (targets.length > 1 ? " of row " + r : "")
                        + " is outside the model's " + per + " outputs (valid: 0.." + (per - 1) + ")");
            }
        }
        return t;
    }

    @Override
    public void close() {
        policy.close();
    }
}
