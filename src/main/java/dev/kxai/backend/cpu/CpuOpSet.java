package dev.kxai.backend.cpu;

import dev.kxai.backend.PathOps;
import dev.kxai.backend.PerturbOps;
import dev.kxai.exec.Arena;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.FusionGroup;
import dev.kxai.exec.OpSet;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The CPU's operators: each family's loops ({@link DenseOps}, {@link ConvOps}, {@link PoolOps},
 * {@link ElementwiseOps}, {@link ShapeOps}) behind the {@link OpSet} the executor drives, dispatched
 * through the exhaustive {@link Op.Visitor}s of {@link CpuDispatch}. Tensors are host {@link Tensor}s; the arena is
 * the heap. One fusion: a Conv whose only reader is a Relu runs with it in one pass.
 */
final class CpuOpSet implements OpSet<Tensor> {
    /** Heap kept for one chunk of path steps when no internal batch size is given. */
    static final long CHUNK_BYTES = Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 4);

    private final Graph graph;

    CpuOpSet(Graph graph) {
        this.graph = graph;
    }

    @Override
    public String device() {
        return "cpu";
    }

    @Override
    public long chunkBudgetBytes() {
        return CHUNK_BYTES;
    }

    /**
     * Conv → Relu where the Relu is the Conv's only reader and the Conv's output is not the graph's:
     * the ReLU is applied as the rounded sums are stored. The Conv's backward reads only its
     * inputs and the Relu's only its output, so the Conv's own output is never needed; both names
     * hold the ReLU'd tensor.
     */
    @Override
    public List<FusionGroup> fusions(ExecutionPlan plan) {
        List<FusionGroup> out = new ArrayList<>();
        for (int i = 0; i < plan.nodes().size(); i++) {
            Node n = plan.node(i);
            List<Integer> r = plan.readers(n.output());
            if (n.op() instanceof Op.Conv && r.size() == 1 && !n.output().equals(graph.outputName())) {
                Node next = plan.node(r.get(0));
                if (next.op() instanceof Op.Relu && next.inputs().equals(List.of(n.output()))) {
                    out.add(new FusionGroup(new int[] {i, r.get(0)}, "Conv+Relu"));
                }
            }
        }
        return out;
    }

    @Override
    public Arena arena() {
        return Arena.HEAP;
    }

    @Override
    public Tensor constant(String name) {
        return graph.constants().get(name);
    }

    /** One node's forward outside any plan (the operator tests). */
    static Forward<Tensor> run(Node node, Tensor[] in) {
        return node.op().accept(CpuDispatch.FORWARD, new CpuDispatch.Fwd(node, in));
    }

    /** One node's backward outside any plan (the operator tests). */
    static Tensor[] gradient(Node node, Tensor[] in, Forward<Tensor> fwd, Tensor gradOut, boolean[] need) {
        return node.op().accept(CpuDispatch.BACKWARD, new CpuDispatch.Bwd(node, in, fwd.output(), fwd.saved(), gradOut, need));
    }

    @Override
    public Forward<Tensor> forward(Arena a, Node node, Tensor[] in, int[] outShape) {
        Forward<Tensor> r = node.op().accept(CpuDispatch.FORWARD, new CpuDispatch.Fwd(node, in, outShape));
        if (!Arrays.equals(r.output().shape(), outShape)) {
            throw new IllegalStateException("node '" + node.name() + "' (" + node.opType() + "): computed "
                    + Shapes.str(r.output().shape()) + " where the plan inferred " + Shapes.str(outShape));
        }
        return r;
    }

    @Override
    @SuppressWarnings("unchecked")
    public Forward<Tensor>[] forwardFused(Arena a, ExecutionPlan plan, FusionGroup group, Tensor[] in, int batch) {
        Node conv = plan.node(group.head());
        Tensor y = ConvOps.forwardRelu(conv, (Op.Conv) conv.op(), in[0], in[1], in.length > 2 ? in[2] : null);
        return new Forward[] {new Forward<>(y, null), new Forward<>(y, null)};
    }

    @Override
    public Tensor[] backward(Arena a, Node node, Tensor[] in, int[][] inShapes, Tensor out, Object saved,
            Tensor gradOut, boolean[] need) {
        return node.op().accept(CpuDispatch.BACKWARD, new CpuDispatch.Bwd(node, in, out, saved, gradOut, need));
    }

    // ---------------------------------------------------------------- tensors

    @Override
    public Tensor[] array(int n) {
        return new Tensor[n];
    }

    @Override
    public Tensor upload(Arena a, Tensor host) {
        return host;
    }

    @Override
    public Tensor download(Tensor t) {
        return t;
    }

    @Override
    public int[] shape(Tensor t) {
        return t.shape();
    }

    @Override
    public Tensor reshape(Tensor t, int[] shape) {
        return t.reshape(shape);
    }

    @Override
    public Tensor zeros(Arena a, int[] shape) {
        return Tensor.zeros(shape);
    }

    @Override
    public Tensor add(Arena a, Tensor x, Tensor y) {
        float[] s = x.data().clone();
        float[] yd = y.data();
        for (int i = 0; i < s.length; i++) {
            s[i] += yd[i];
        }
        return new Tensor(x.shape(), s);
    }

    /** Targets as floats (exact: output counts are far below 2^24). */
    @Override
    public Tensor indices(Arena a, int[] values) {
        float[] f = new float[values.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = values[i];
        }
        return new Tensor(new int[] {f.length}, f);
    }

    @Override
    public Tensor seedOneHot(Arena a, int[] outShape, Tensor targets) {
        float[] seed = new float[Shapes.intSize(outShape)];
        int rows = outShape[0];
        int per = seed.length / rows;
        for (int r = 0; r < rows; r++) {
            seed[r * per + (int) targets.data()[r]] = 1f;
        }
        return new Tensor(outShape, seed);
    }

    @Override
    public double[] gatherTargets(Arena a, Tensor y, Tensor targets, int firstRow, int rows) {
        int per = y.rowSize();
        double[] o = new double[rows];
        for (int i = 0; i < rows; i++) {
            o[i] = y.data()[(firstRow + i) * per + (int) targets.data()[i]];
        }
        return o;
    }

    // ---------------------------------------------------------------- perturbed rows

    private static int[] ints(Tensor t) {
        int[] v = new int[t.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (int) t.data()[i];
        }
        return v;
    }

    private static Tensor samples(Tensor x, int n) {
        int[] s = x.shape();
        s[0] = n;
        return new Tensor(s, new float[Shapes.intSize(s)]);
    }

    @Override
    public Tensor perturbSingle(Arena a, Tensor x, Tensor base, Tensor mask, Tensor home, Tensor group) {
        Tensor out = samples(x, home.size());
        int f = x.rowSize();
        PerturbOps.single(out.data(), x.data(), base.data(), base.dim(0), ints(mask), mask.size() / f, ints(home),
                ints(group), home.size(), f);
        return out;
    }

    @Override
    public Tensor perturbCoalition(Arena a, Tensor x, Tensor base, Tensor mask, Tensor home, Tensor take, int groups) {
        Tensor out = samples(x, home.size());
        int f = x.rowSize();
        PerturbOps.coalition(out.data(), x.data(), base.data(), base.dim(0), ints(mask), mask.size() / f, ints(home),
                ints(take), groups, home.size(), f);
        return out;
    }

    @Override
    public Tensor perturbBox(Arena a, Tensor x, Tensor base, Tensor home, Tensor boxes) {
        Tensor out = samples(x, home.size());
        int[] dims = java.util.Arrays.copyOfRange(x.shape(), 1, x.rank());
        PerturbOps.box(out.data(), x.data(), base.data(), base.dim(0), ints(home), ints(boxes), dims, home.size(),
                x.rowSize());
        return out;
    }

    // ---------------------------------------------------------------- replaced backward rules

    @Override
    public Tensor deepLiftScale(Arena a, Tensor gradOut, Tensor out, boolean maxPool) {
        return new Tensor(out.shape(), dev.kxai.backend.RuleOps.scale(gradOut.data(), out.data(), maxPool));
    }

    @Override
    public Tensor deepLiftRescale(Arena a, Tensor plain, Tensor num, Tensor in, boolean sumHalves) {
        return new Tensor(in.shape(), dev.kxai.backend.RuleOps.rescale(plain.data(), num.data(), in.data(), sumHalves,
                dev.kxai.backend.RuleOps.EPS));
    }

    @Override
    public Tensor lrpStabilize(Arena a, Tensor r, Tensor z, float eps) {
        return new Tensor(z.shape(), dev.kxai.backend.RuleOps.lrpStabilize(r.data(), z.data(), eps));
    }

    // ---------------------------------------------------------------- the path

    @Override
    public Tensor interpolate(Arena a, Tensor x, Tensor base, Tensor alphas, int k0, int k1) {
        int batch = x.dim(0);
        int[] s = x.shape();
        s[0] = (k1 - k0) * batch;
        float[] out = new float[Shapes.intSize(s)];
        PathOps.interpolate(out, x.data(), base.data(), alphas.data(), k0, k1, batch, x.rowSize());
        return new Tensor(s, out);
    }

    @Override
    public void accumulate(Tensor acc, Tensor grads, Tensor weights, int k0, int k1) {
        PathOps.accumulate(acc.data(), grads.data(), weights.data(), k0, k1, acc.dim(0), acc.rowSize());
    }

    /**
     * The layer at both endpoints, once per example, kept in double: each step's pre-activation
     * z_b + α (z_x − z_b) is formed in double and rounded once, the exact layer output at the exact
     * path point (the plain path rounds the path point first; see IntegratedGradients).
     */
    @Override
    public AffineEndpoints<Tensor> affineEndpoints(Arena a, Node layer, Tensor x, Tensor base, int[] outShape) {
        double[] zx = firstLayer(layer, x);
        double[] zb = firstLayer(layer, base);
        return (arena, alphas, k0, k1) -> {
            int[] s = outShape.clone();
            s[0] = (k1 - k0) * outShape[0];
            float[] out = new float[zx.length * (k1 - k0)];
            float[] al = alphas.data();
            for (int k = k0; k < k1; k++) {
                double alpha = al[k];
                int rowBase = (k - k0) * zx.length;
                for (int e = 0; e < zx.length; e++) {
                    out[rowBase + e] = (float) (zb[e] + alpha * (zx[e] - zb[e]));
                }
            }
            return new Tensor(s, out);
        };
    }

    /** The first layer's output at x, unrounded (double). */
    private double[] firstLayer(Node layer, Tensor x) {
        Tensor w = constant(layer.inputs().get(1));
        Tensor c = layer.inputs().size() > 2 ? constant(layer.inputs().get(2)) : null;
        if (layer.op() instanceof Op.Conv conv) {
            return ConvOps.forwardDouble(layer, conv, x, w, c);
        }
        return DenseOps.gemmDouble((Op.Gemm) layer.op(), x, w, c);
    }
}
