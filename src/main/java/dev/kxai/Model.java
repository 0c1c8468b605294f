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
        dev.kxai.Args.notNull(onnx, "onnx");
        return load(onnx, null);
    }

    /** Loads an ONNX file on a device: {@code auto}, {@code cpu}, {@code cuda}; null = environment. */
    public static Model load(Path onnx, String device) {
        dev.kxai.Args.notNull(onnx, "onnx");
        Graph g = OnnxImporter.load(onnx);
        return of(g, Backends.select(device));
    }

    /**
     * Loads an ONNX file on a device, explaining the value {@code output} instead of the first graph
     * output: another graph output (logits and probabilities; a detector's heads) or any node's
     * output. null = the first graph output.
     */
    public static Model load(Path onnx, String device, String output) {
        return load(onnx, device, output, dev.kxai.onnx.FreeDims.NONE);
    }

    /**
     * {@link #load(Path, String, String)} for a model whose inputs have free dimensions beyond the
     * batch (token ids as {@code [batch, sequence_length]}): {@code dims} fixes their sizes, by name or
     * {@code INPUT:AXIS} ({@link dev.kxai.onnx.FreeDims}); inputs of other sizes need another load.
     */
    public static Model load(Path onnx, String device, String output, dev.kxai.onnx.FreeDims dims) {
        dev.kxai.Args.notNull(onnx, "onnx");
        dev.kxai.Args.notNull(dims, "dims");
        Graph g = OnnxImporter.load(onnx, dims, output);
        return of(g, Backends.select(device));
    }

    public static Model of(Graph graph, Backend backend) {
        dev.kxai.Args.notNull(graph, "graph");
        dev.kxai.Args.notNull(backend, "backend");
        return new Model(graph, DevicePolicy.prepare(graph, backend));
    }

    public Graph graph() {
        return graph;
    }

    /** The runner of the chosen backend (benchmarks and tests; methods go through {@link #run}). */
    public ModelRunner runner() {
        return runner;
    }

    /**
     * The backend the next call runs on: the one chosen at load, or the CPU's where the model falls
     * back (a node the device lacks, a device that failed); never a device the work does not reach.
     */
    public Backend backend() {
        return policy.backend();
    }

    /** Whether {@link #close()} was called: every computing call then throws {@link ModelClosedException}. */
    public boolean isClosed() {
        return policy.isClosed();
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
        dev.kxai.Args.notNull(what, "what");
        dev.kxai.Args.notNull(work, "work");
        return policy.run(what, work);
    }

    /** Number of outputs per example: targets range over 0..outputs()−1. */
    public int outputs() {
        return runner.outputsPerExample();
    }

    /** The shape of one example's output (without the batch axis): [classes] for a classifier, [C, H, W] for a segmenter. */
    public int[] outputShape() {
        return runner.plan().outputExampleShape();
    }

    /**
     * Captum's tuple target ({@code target=(c, h, w)} for an output with several axes per example) as
     * the flat index kxai's targets are: row-major over {@link #outputShape()}.
     *
     * @throws InvalidInputException when the index has the wrong length or a coordinate is out of range
     */
    public int target(int... index) {
        dev.kxai.Args.notNull(index, "index");
        int[] shape = outputShape();
        if (index.length != shape.length) {
            throw new InvalidInputException("target " + java.util.Arrays.toString(index) + " has " + index.length
                    + " coordinate(s); the model's output per example has shape " + java.util.Arrays.toString(shape)
                    + " (" + shape.length + " axes)");
        }
        int flat = 0;
        for (int i = 0; i < shape.length; i++) {
            if (index[i] < 0 || index[i] >= shape[i]) {
                throw new InvalidInputException("target " + java.util.Arrays.toString(index) + ": coordinate " + index[i]
                        + " at axis " + i + " is outside 0.." + (shape[i] - 1) + " (output per example "
                        + java.util.Arrays.toString(shape) + ")");
            }
            flat = flat * shape[i] + index[i];
        }
        return flat;
    }

    /** The model's output for a batch. */
    public Tensor forward(Tensor x) {
        dev.kxai.Args.notNull(x, "x");
        checkBatch(x, "input");
        return run("forward", r -> r.forward(x)).value();
    }

    /** The model's output for a batch of several inputs (checked as {@link #check} does). */
    public Tensor forward(Inputs in) {
        dev.kxai.Args.notNull(in, "in");
        check(in);
        return run("forward", r -> r.evaluate(in.values(), java.util.Set.of()).get(graph.outputName())).value();
    }

    /** Per-row argmax of the output: the predicted class. */
    public int[] predict(Tensor x) {
        dev.kxai.Args.notNull(x, "x");
        return argmax(forward(x));
    }

    /** Per-row argmax of the output for a batch of several inputs. */
    public int[] predict(Inputs in) {
        dev.kxai.Args.notNull(in, "in");
        return argmax(forward(in));
    }

    private static int[] argmax(Tensor y) {
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
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(what, "what");
        policy.checkOpen();
        checkTensor(x, what, graph.inputName());
    }

    /** The model's inputs, in its order. */
    public java.util.List<Graph.Input> inputs() {
        return graph.inputs();
    }

    /** A single-input model's batch as {@link Inputs}; a model with several inputs needs each by name. */
    public Inputs inputs(Tensor x) {
        dev.kxai.Args.notNull(x, "x");
        if (graph.inputs().size() != 1) {
            throw new InvalidInputException(graph.source() + " has " + graph.inputs().size() + " inputs (" + describeInputs()
                    + "): give each by name");
        }
        return Inputs.of(graph.inputName(), x);
    }

    /** "input_0 [batch, 12] int, add_0 [batch, 12]". */
    public String describeInputs() {
        StringBuilder sb = new StringBuilder();
        for (Graph.Input in : graph.inputs()) {
            sb.append(sb.length() == 0 ? "" : ", ").append(in.name()).append(' ')
                    .append(Shapes.str(in.shape()).replace("-1", "batch")).append(in.integer() ? " (integer ids)" : "");
        }
        return sb.toString();
    }

    /**
     * Checks a batch of several inputs: every model input given once and no other, each of its
     * input's shape, all with the same rows, finite; integer inputs hold integer ids within the
     * tables they index. Errors name the input and the value at fault.
     */
    public void check(Inputs in) {
        dev.kxai.Args.notNull(in, "in");
        policy.checkOpen();
        for (String name : in.values().keySet()) {
            if (graph.inputs().stream().noneMatch(i -> i.name().equals(name))) {
                throw new InvalidInputException("the model has no input '" + name + "'; its inputs: " + describeInputs());
            }
        }
        int batch = -1;
        String first = null;
        for (Graph.Input gi : graph.inputs()) {
            Tensor t = in.get(gi.name());
            if (t == null) {
                throw new InvalidInputException("input '" + gi.name() + "' is missing; the model's inputs: " + describeInputs());
            }
            checkTensor(t, "input '" + gi.name() + "'", gi.name());
            if (batch >= 0 && t.dim(0) != batch) {
                throw new InvalidInputException("input '" + gi.name() + "' has " + t.dim(0) + " rows, input '" + first
                        + "' has " + batch + ": every input needs the same rows");
            }
            batch = t.dim(0);
            first = first == null ? gi.name() : first;
            if (gi.integer()) {
                checkIds(gi.name(), t);
            }
        }
    }

    /** Integer ids: whole numbers, and within [-n, n) of every constant table a Gather indexes with them. */
    private void checkIds(String name, Tensor ids) {
        float[] v = ids.data();
        for (int i = 0; i < v.length; i++) {
            if (v[i] != Math.rint(v[i])) {
                throw new InvalidInputException("input '" + name + "' holds " + v[i] + " at flat index " + i
                        + "; it takes integer ids");
            }
        }
        for (dev.kxai.graph.Node n : graph.nodes()) {
            if (n.op() instanceof dev.kxai.graph.Op.Gather g && n.inputs().get(1).equals(name)
                    && graph.constants().containsKey(n.inputs().get(0))) {
                Tensor table = graph.constants().get(n.inputs().get(0));
                int dim = table.dim(g.axis() < 0 ? g.axis() + table.rank() : g.axis());
                for (int i = 0; i < v.length; i++) {
                    if (v[i] < -dim || v[i] >= dim) {
                        int per = Math.max(1, ids.rowSize());
                        throw new InvalidInputException("input '" + name + "' holds id " + (long) v[i] + " at row " + i / per
                                + ", position " + i % per + ", outside the " + dim + " entries of '" + n.inputs().get(0)
                                + "' (node '" + n.name() + "'; valid ids 0.." + (dim - 1) + ")");
                    }
                }
            }
        }
    }

    /** The inputs a gradient method attributes: float inputs that are not additional, in the model's order. */
    public java.util.List<String> attributed(Inputs in) {
        dev.kxai.Args.notNull(in, "in");
        java.util.List<String> out = new java.util.ArrayList<>();
        for (Graph.Input gi : graph.inputs()) {
            if (!gi.integer() && !in.isAdditional(gi.name())) {
                out.add(gi.name());
            }
        }
        if (out.isEmpty()) {
            throw new InvalidInputException("no input to attribute: " + describeInputs() + " are integer ids or additional"
                    + " arguments; explain integer ids at a layer that reads them (--layer)");
        }
        return out;
    }

    /**
     * Checks one tensor given for a named model input (shape, rows, finite), {@code what} naming it
     * in the message (the file it came from).
     */
    public void checkInput(String input, Tensor x, String what) {
        dev.kxai.Args.notNull(input, "input");
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(what, "what");
        if (graph.inputs().stream().noneMatch(i -> i.name().equals(input))) {
            throw new InvalidInputException("the model has no input '" + input + "'; its inputs: " + describeInputs());
        }
        checkTensor(x, what, input);
    }

    private void checkTensor(Tensor x, String what, String input) {
        int[] ex = runner.plan().exampleShape(input);
        int[] s = x.shape();
        boolean fits = s.length == ex.length + 1;
        for (int i = 0; fits && i < ex.length; i++) {
            fits = s[i + 1] == ex[i];
        }
        if (!fits) {
            throw new InvalidInputException(what + " of shape " + Shapes.str(s) + " does not fit model input '"
                    + input + "' of shape " + Shapes.str(Shapes.withBatch(prepend(ex), -1)).replace("-1", "batch")
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
        dev.kxai.Args.notNull(targets, "targets");
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

    /**
     * Frees the model's weights (on CUDA, its device memory); idempotent. Later calls throw
     * {@link ModelClosedException}; other models and later loads are not affected.
     */
    @Override
    public void close() {
        policy.close();
    }
}
