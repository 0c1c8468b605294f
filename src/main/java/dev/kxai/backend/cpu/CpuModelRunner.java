package dev.kxai.backend.cpu;

import dev.kxai.InvalidInputException;
import dev.kxai.ModelException;
import dev.kxai.backend.Backend;
import dev.kxai.backend.ModelRunner;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Runs a graph on the CPU. A pass keeps every node's output (and max-pool winners) so that the
 * backward can run; everything lives in the call's own maps, which makes the runner thread-safe.
 */
final class CpuModelRunner implements ModelRunner {
    private final Graph graph;
    private final Backend backend;
    private final List<Node> nodes;
    /** Values that depend on the model input: only these get gradients. */
    private final Set<String> dependsOnInput = new HashSet<>();
    private final int[] exampleShape;
    private final int outputsPerExample;
    private final long workingFloatsPerExample;
    /** reluAfter[i]: node i is a Conv whose output only the Relu node i + 1 reads; run them as one. */
    private final boolean[] reluAfter;

    /** How many Conv+Relu pairs run fused (for tests). */
    int fusedPairs() {
        int k = 0;
        for (boolean b : reluAfter) {
            k += b ? 1 : 0;
        }
        return k;
    }

    CpuModelRunner(Graph graph, Backend backend) {
        this(graph, backend, true);
    }

    /** With {@code fuse} false every node runs on its own (tests compare the two). */
    CpuModelRunner(Graph graph, Backend backend, boolean fuse) {
        this.graph = graph;
        this.backend = backend;
        this.nodes = graph.nodes();
        int[] declared = graph.inputShape();
        exampleShape = java.util.Arrays.copyOfRange(declared, 1, declared.length);
        for (int i = 0; i < exampleShape.length; i++) {
            if (exampleShape[i] <= 0) {
                throw new ModelException(graph.source() + ": input '" + graph.inputName() + "' has a dynamic dimension "
                        + (i + 1) + " " + Shapes.str(declared) + "; kxai needs every dimension but the batch fixed");
            }
        }
        reluAfter = new boolean[nodes.size()];
        for (int i = 0; i + 1 < nodes.size(); i++) {
            Node n = nodes.get(i);
            Node next = nodes.get(i + 1);
            reluAfter[i] = fuse && n.op() instanceof dev.kxai.graph.Op.Conv && next.op() instanceof dev.kxai.graph.Op.Relu
                    && next.inputs().equals(List.of(n.output())) && readers(n.output()) == 1
                    && !n.output().equals(graph.outputName());
        }
        dependsOnInput.add(graph.inputName());
        for (Node n : nodes) {
            if (n.inputs().stream().anyMatch(dependsOnInput::contains)) {
                dependsOnInput.add(n.output());
            }
        }
        // A one-example dry run checks every node's shapes now, not at the first request, and
        // measures the activations a pass keeps.
        Pass p;
        try {
            p = run(Tensor.zeros(batchShape(1)));
        } catch (InvalidInputException e) {
            throw new ModelException(graph.source() + ": the graph cannot run on an input of shape "
                    + Shapes.str(batchShape(1)) + ": " + e.getMessage(), e);
        }
        Tensor out = p.values.get(graph.outputName());
        outputsPerExample = out.rowSize();
        long floats = Shapes.size(exampleShape);
        for (CpuOps.Result r : p.results) {
            floats += 2L * r.output().size(); // activation and its gradient
        }
        workingFloatsPerExample = floats;
    }

    /** How many node inputs read a value. */
    private long readers(String value) {
        return nodes.stream().flatMap(n -> n.inputs().stream()).filter(value::equals).count();
    }

    private int[] batchShape(int batch) {
        int[] s = new int[exampleShape.length + 1];
        s[0] = batch;
        System.arraycopy(exampleShape, 0, s, 1, exampleShape.length);
        return s;
    }

    @Override
    public String affineFirstLayerNode() {
        int i = affineFirstNode();
        return i >= 0 ? nodes.get(i).name() : null;
    }

    @Override
    public Graph graph() {
        return graph;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public int[] exampleShape() {
        return exampleShape.clone();
    }

    @Override
    public int outputsPerExample() {
        return outputsPerExample;
    }

    @Override
    public long workingFloatsPerExample() {
        return workingFloatsPerExample;
    }

    @Override
    public Tensor forward(Tensor x) {
        checkShape(x);
        return run(x).values.get(graph.outputName());
    }

    @Override
    public Gradient gradient(Tensor x, int[] targets) {
        checkShape(x);
        int rows = x.dim(0);
        if (targets.length != rows) {
            throw new IllegalArgumentException(targets.length + " targets for " + rows + " rows");
        }
        Pass p = run(x);
        Tensor out = p.values.get(graph.outputName());
        int per = out.rowSize();
        for (int r = 0; r < rows; r++) {
            if (targets[r] < 0 || targets[r] >= per) {
                throw new InvalidInputException("target " + targets[r] + " of row " + r + " is outside the model's "
                        + per + " outputs (valid: 0.." + (per - 1) + ")");
            }
        }
        return new Gradient(out, backward(p, seed(out, targets), graph.inputName()));
    }

    private static Tensor seed(Tensor out, int[] targets) {
        float[] seed = new float[out.size()];
        int per = out.rowSize();
        for (int r = 0; r < targets.length; r++) {
            seed[r * per + targets[r]] = 1f;
        }
        return new Tensor(out.shape(), seed);
    }

    /** The node the first-layer saving applies to ({@link dev.kxai.backend.FirstLayer}), or -1. */
    int affineFirstNode() {
        return dev.kxai.backend.FirstLayer.affineNode(graph);
    }

    /** Output width of a Gemm node (the bias may be [N] or [M, N]; only [N] broadcasts over a path). */
    private int g2dOut(Node n) {
        dev.kxai.graph.Op.Gemm g = (dev.kxai.graph.Op.Gemm) n.op();
        Tensor b = graph.constants().get(n.inputs().get(1));
        return g.transB() ? b.dim(0) : b.dim(1);
    }

    @Override
    public dev.kxai.backend.PathIntegral.Result integratePath(Tensor x, Tensor base, float[] alphas, float[] weights,
            int[] targets, int stepsPerChunk, dev.kxai.backend.PathIntegral.Progress progress, boolean affineFirstLayer) {
        int first = affineFirstLayer ? affineFirstNode() : -1;
        if (first < 0) {
            return dev.kxai.backend.PathIntegral.run(this, x, base, alphas, weights, targets, stepsPerChunk, progress);
        }
        checkShape(x);
        Node layer = nodes.get(first);
        // The layer at both endpoints, once per example, kept in double: each step's pre-activation
        // z_b + α (z_x − z_b) is formed in double and rounded once, the exact layer output at the
        // exact path point (the plain path rounds the path point first; see IntegratedGradients).
        double[] zx = firstLayer(layer, x);
        double[] zb = firstLayer(layer, base);
        int[] zShape = firstLayerShape(layer, x);
        int zFeatures = zx.length / x.dim(0);
        dev.kxai.backend.PathIntegral.Result inZ = dev.kxai.backend.PathIntegral.run((rows, t) -> {
            Pass p = run(layer.output(), rows, first);
            Tensor out = p.values.get(graph.outputName());
            return new Gradient(out, backward(p, seed(out, t), layer.output()));
        }, (out, k0, k1) -> {
            for (int k = k0; k < k1; k++) {
                double a = alphas[k];
                int rowBase = (k - k0) * zx.length;
                for (int e = 0; e < zx.length; e++) {
                    out[rowBase + e] = (float) (zb[e] + a * (zx[e] - zb[e]));
                }
            }
        }, new Tensor(zShape, new float[zx.length]), alphas, weights, targets, stepsPerChunk, progress);
        Tensor zxF = new Tensor(zShape, new float[zFeatures * x.dim(0)]);
        // Σ_k w_k Wᵀ g_k = Wᵀ Σ_k w_k g_k: the layer's transpose once per example
        Tensor[] in = inputs(new HashMap<>(graph.constants()) {
            {
                put(graph.inputName(), x);
            }
        }, layer);
        boolean[] need = new boolean[in.length];
        need[0] = true;
        Tensor gx = CpuOps.backward(layer, in, new CpuOps.Result(zxF, null), inZ.gradientSum(), need)[0];
        return new dev.kxai.backend.PathIntegral.Result(gx, inZ.outputAtBase(), inZ.outputAtInput());
    }

    /** The first layer's output at x, unrounded (double). */
    private double[] firstLayer(Node layer, Tensor x) {
        Map<String, Tensor> values = new HashMap<>(graph.constants());
        values.put(graph.inputName(), x);
        Tensor[] in = inputs(values, layer);
        if (layer.op() instanceof dev.kxai.graph.Op.Conv c) {
            return ConvOps.forwardDouble(layer, c, in[0], in[1], in.length > 2 ? in[2] : null);
        }
        return DenseOps.gemmDouble((dev.kxai.graph.Op.Gemm) layer.op(), in[0], in[1], in.length > 2 ? in[2] : null);
    }

    private int[] firstLayerShape(Node layer, Tensor x) {
        Map<String, Tensor> values = new HashMap<>(graph.constants());
        values.put(graph.inputName(), x);
        Tensor[] in = inputs(values, layer);
        if (layer.op() instanceof dev.kxai.graph.Op.Conv c) {
            return ConvOps.outputShape(layer, c, in[0], in[1]);
        }
        return new int[] {x.dim(0), g2dOut(layer)};
    }

    private void checkShape(Tensor x) {
        int[] s = x.shape();
        boolean fits = s.length == exampleShape.length + 1;
        for (int i = 0; fits && i < exampleShape.length; i++) {
            fits = s[i + 1] == exampleShape[i];
        }
        if (!fits) {
            throw new InvalidInputException("input of shape " + Shapes.str(s) + " does not fit model input '"
                    + graph.inputName() + "' of shape " + Shapes.str(batchShape(-1)).replace("-1", "batch")
                    + " (" + graph.source() + ")");
        }
        if (s[0] == 0) {
            throw new InvalidInputException("empty batch: input of shape " + Shapes.str(s) + " has no rows");
        }
    }

    /** The values and per-node results of one forward pass. */
    private static final class Pass {
        final Map<String, Tensor> values;
        final CpuOps.Result[] results;

        Pass(Map<String, Tensor> values, int n) {
            this.values = values;
            this.results = new CpuOps.Result[n];
        }
    }

    private Pass run(Tensor x) {
        return run(graph.inputName(), x, -1);
    }

    /**
     * A forward pass that starts from a given value: the model input, or (first-layer saving) the
     * output of node {@code skip}, which is then not run.
     */
    private Pass run(String startName, Tensor start, int skip) {
        Map<String, Tensor> values = new HashMap<>(graph.constants());
        values.put(startName, start);
        Pass p = new Pass(values, nodes.size());
        for (int i = 0; i < nodes.size(); i++) {
            if (i == skip) {
                continue;
            }
            Node n = nodes.get(i);
            Tensor[] in = inputs(values, n);
            if (reluAfter[i] && n.op() instanceof dev.kxai.graph.Op.Conv c) {
                // Conv and its Relu in one pass. The Conv's backward reads only its inputs, the Relu's
                // only its output: the Conv's own output is never needed, and both names hold the
                // ReLU'd tensor (the Relu is its only reader).
                Tensor y = ConvOps.forwardRelu(n, c, in[0], in[1], in.length > 2 ? in[2] : null);
                p.results[i] = new CpuOps.Result(y, null);
                p.results[i + 1] = new CpuOps.Result(y, null);
                values.put(n.output(), y);
                values.put(nodes.get(i + 1).output(), y);
                i++;
                continue;
            }
            CpuOps.Result r = CpuOps.forward(n, in);
            p.results[i] = r;
            values.put(n.output(), r.output());
        }
        return p;
    }

    private static Tensor[] inputs(Map<String, Tensor> values, Node n) {
        Tensor[] in = new Tensor[n.inputs().size()];
        for (int j = 0; j < in.length; j++) {
            in[j] = values.get(n.inputs().get(j));
        }
        return in;
    }

    /** Backward from a seed on the output to the value {@code wrt} (the input, or a layer's output). */
    private Tensor backward(Pass p, Tensor seed, String wrt) {
        Map<String, Tensor> grads = new HashMap<>();
        grads.put(graph.outputName(), seed);
        for (int i = nodes.size() - 1; i >= 0; i--) {
            Node n = nodes.get(i);
            if (n.output().equals(wrt)) {
                continue; // the pass started at this node's output: nothing before it ran
            }
            Tensor g = grads.remove(n.output());
            if (g == null) {
                continue;
            }
            boolean[] need = new boolean[n.inputs().size()];
            boolean any = false;
            for (int j = 0; j < need.length; j++) {
                need[j] = dependsOnInput.contains(n.inputs().get(j));
                any |= need[j];
            }
            if (!any) {
                continue;
            }
            Tensor[] gi = CpuOps.backward(n, inputs(p.values, n), p.results[i], g, need);
            for (int j = 0; j < need.length; j++) {
                if (need[j] && gi[j] != null) {
                    grads.merge(n.inputs().get(j), gi[j], CpuModelRunner::add);
                }
            }
        }
        Tensor gx = grads.get(wrt);
        Tensor x = p.values.get(wrt);
        return gx != null ? gx : Tensor.zeros(x.shape());
    }

    /** Sum of two gradients reaching one value (a value read by several nodes). */
    private static Tensor add(Tensor a, Tensor b) {
        float[] s = a.data().clone();
        float[] bd = b.data();
        for (int i = 0; i < s.length; i++) {
            s[i] += bd[i];
        }
        return new Tensor(a.shape(), s);
    }
}
