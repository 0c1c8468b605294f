package dev.kxai.backend.cpu;

import dev.kxai.backend.PathOps;
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
 * through the exhaustive {@link Op.Visitor}s below. Tensors are host {@link Tensor}s; the arena is
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
        return node.op().accept(FORWARD, new Fwd(node, in));
    }

    /** One node's backward outside any plan (the operator tests). */
    static Tensor[] gradient(Node node, Tensor[] in, Forward<Tensor> fwd, Tensor gradOut, boolean[] need) {
        return node.op().accept(BACKWARD, new Bwd(node, in, fwd.output(), fwd.saved(), gradOut, need));
    }

    @Override
    public Forward<Tensor> forward(Arena a, Node node, Tensor[] in, int[] outShape) {
        Forward<Tensor> r = run(node, in);
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
        return node.op().accept(BACKWARD, new Bwd(node, in, out, saved, gradOut, need));
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
        float[] seed = new float[Math.toIntExact(Shapes.size(outShape))];
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

    // ---------------------------------------------------------------- the path

    @Override
    public Tensor interpolate(Arena a, Tensor x, Tensor base, Tensor alphas, int k0, int k1) {
        int batch = x.dim(0);
        int[] s = x.shape();
        s[0] = (k1 - k0) * batch;
        float[] out = new float[Math.toIntExact(Shapes.size(s))];
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

    // ---------------------------------------------------------------- dispatch

    private record Fwd(Node node, Tensor[] in) {
        Tensor opt(int j) {
            return in.length > j ? in[j] : null;
        }
    }

    private record Bwd(Node node, Tensor[] in, Tensor y, Object saved, Tensor g, boolean[] need) {
        Tensor opt(int j) {
            return in.length > j ? in[j] : null;
        }

        boolean need(int j) {
            return need.length > j && need[j];
        }
    }

    private static Forward<Tensor> plain(Tensor t) {
        return new Forward<>(t, null);
    }

    private static Tensor[] one(Tensor t) {
        return new Tensor[] {t};
    }

    /** [prod(shape[:axis]), prod(shape[axis:])]: the 2-D view of opset-12 Softmax. */
    private static int[] flat2d(int[] shape, int axis) {
        int outer = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        return new int[] {outer, (int) (Shapes.size(shape) / Math.max(1, outer))};
    }

    private static Tensor binary(ElementwiseOps.Binary kind, Fwd c) {
        return ElementwiseOps.binary(kind, c.in[0], c.in[1], Shapes.broadcast(c.in[0].shape(), c.in[1].shape()));
    }

    private static Tensor activation(ElementwiseOps.Activation kind, float alpha, Fwd c) {
        return ElementwiseOps.activation(kind, alpha, c.in[0]);
    }

    private static Tensor[] activationBackward(ElementwiseOps.Activation kind, float alpha, Bwd c) {
        return one(ElementwiseOps.activationBackward(kind, alpha, c.in[0], c.y, c.g));
    }

    private static Tensor[] binaryBackward(ElementwiseOps.Binary kind, Bwd c) {
        return ElementwiseOps.binaryBackward(kind, c.in[0], c.in[1], c.g.shape(), c.g, c.need(0), c.need(1));
    }

    private static dev.kxai.InvalidInputException fromInput(Node n, String what) {
        return new dev.kxai.InvalidInputException("node '" + n.name() + "' (" + n.opType() + "): " + what
                + " computed from the input are not supported");
    }

    private static final Op.Visitor<Fwd, Forward<Tensor>> FORWARD = new Op.Visitor<>() {
        @Override
        public Forward<Tensor> visit(Op.Gemm op, Fwd c) {
            return plain(DenseOps.gemm(c.node, op, c.in[0], c.in[1], c.opt(2)));
        }

        @Override
        public Forward<Tensor> visit(Op.MatMul op, Fwd c) {
            return plain(DenseOps.matmul(c.node, c.in[0], c.in[1]));
        }

        @Override
        public Forward<Tensor> visit(Op.Add op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.ADD, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Sub op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.SUB, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Mul op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.MUL, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Relu op, Fwd c) {
            return plain(activation(ElementwiseOps.Activation.RELU, 0f, c));
        }

        @Override
        public Forward<Tensor> visit(Op.LeakyRelu op, Fwd c) {
            return plain(activation(ElementwiseOps.Activation.LEAKY_RELU, op.alpha(), c));
        }

        @Override
        public Forward<Tensor> visit(Op.Sigmoid op, Fwd c) {
            return plain(activation(ElementwiseOps.Activation.SIGMOID, 0f, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Tanh op, Fwd c) {
            return plain(activation(ElementwiseOps.Activation.TANH, 0f, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Softmax op, Fwd c) {
            Tensor x = c.in[0];
            int axis = ShapeOps.axis(c.node, op.axis(), x.rank(), false);
            if (op.flatten()) { // opsets 1-12: one distribution per trailing block
                return plain(ElementwiseOps.softmax(x.reshape(flat2d(x.shape(), axis)), 1).reshape(x.shape()));
            }
            return plain(ElementwiseOps.softmax(x, axis));
        }

        @Override
        public Forward<Tensor> visit(Op.Flatten op, Fwd c) {
            return plain(ShapeOps.flatten(c.node, c.in[0], op.axis()));
        }

        @Override
        public Forward<Tensor> visit(Op.Reshape op, Fwd c) {
            return plain(ShapeOps.reshape(c.node, c.in[0], c.in[1], op.allowZero()));
        }

        @Override
        public Forward<Tensor> visit(Op.Identity op, Fwd c) {
            return plain(c.in[0]);
        }

        @Override
        public Forward<Tensor> visit(Op.Conv op, Fwd c) {
            return plain(ConvOps.forward(c.node, op, c.in[0], c.in[1], c.opt(2)));
        }

        @Override
        public Forward<Tensor> visit(Op.MaxPool op, Fwd c) {
            PoolOps.MaxResult r = PoolOps.maxForward(c.node, op, c.in[0]);
            return new Forward<>(r.output(), r.argmax());
        }

        @Override
        public Forward<Tensor> visit(Op.AveragePool op, Fwd c) {
            return plain(PoolOps.averageForward(c.node, op, c.in[0]));
        }

        @Override
        public Forward<Tensor> visit(Op.GlobalAveragePool op, Fwd c) {
            return plain(PoolOps.globalAverageForward(c.node, c.in[0]));
        }

        @Override
        public Forward<Tensor> visit(Op.BatchNormalization op, Fwd c) {
            return plain(ShapeOps.batchNorm(c.node, c.in[0], c.in[1], c.in[2], c.in[3], c.in[4], op.epsilon()));
        }

        @Override
        public Forward<Tensor> visit(Op.Concat op, Fwd c) {
            return plain(ShapeOps.concat(c.node, c.in, op.axis()));
        }

        @Override
        public Forward<Tensor> visit(Op.Pad op, Fwd c) {
            Tensor x = c.in[0];
            int[] pads = op.forRank(x.rank());
            int[] out = new int[x.rank()];
            for (int d = 0; d < out.length; d++) {
                out[d] = x.dim(d) + pads[d] + pads[x.rank() + d];
            }
            return plain(ShapeOps.pad(x, pads, ShapeOps.padMode(op.mode()), op.value(), out));
        }

        @Override
        public Forward<Tensor> visit(Op.Div op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.DIV, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Pow op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.POW, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Unary op, Fwd c) {
            return plain(ElementwiseOps.unary(op, c.in[0]));
        }
    };

    private static final Op.Visitor<Bwd, Tensor[]> BACKWARD = new Op.Visitor<>() {
        @Override
        public Tensor[] visit(Op.Gemm op, Bwd c) {
            return DenseOps.gemmBackward(op, c.in[0], c.in[1], c.opt(2), c.g, c.need);
        }

        @Override
        public Tensor[] visit(Op.MatMul op, Bwd c) {
            return DenseOps.matmulBackward(c.node, c.in[0], c.in[1], c.g, c.need);
        }

        @Override
        public Tensor[] visit(Op.Add op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.ADD, c);
        }

        @Override
        public Tensor[] visit(Op.Sub op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.SUB, c);
        }

        @Override
        public Tensor[] visit(Op.Mul op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.MUL, c);
        }

        @Override
        public Tensor[] visit(Op.Relu op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.RELU, 0f, c);
        }

        @Override
        public Tensor[] visit(Op.LeakyRelu op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.LEAKY_RELU, op.alpha(), c);
        }

        @Override
        public Tensor[] visit(Op.Sigmoid op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.SIGMOID, 0f, c);
        }

        @Override
        public Tensor[] visit(Op.Tanh op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.TANH, 0f, c);
        }

        @Override
        public Tensor[] visit(Op.Softmax op, Bwd c) {
            Tensor y = c.y;
            int axis = ShapeOps.axis(c.node, op.axis(), y.rank(), false);
            if (op.flatten()) {
                int[] two = flat2d(y.shape(), axis);
                return one(ElementwiseOps.softmaxBackward(y.reshape(two), c.g.reshape(two), 1).reshape(y.shape()));
            }
            return one(ElementwiseOps.softmaxBackward(y, c.g, axis));
        }

        @Override
        public Tensor[] visit(Op.Flatten op, Bwd c) {
            return one(c.g.reshape(c.in[0].shape()));
        }

        @Override
        public Tensor[] visit(Op.Reshape op, Bwd c) {
            return new Tensor[] {c.g.reshape(c.in[0].shape()), null};
        }

        @Override
        public Tensor[] visit(Op.Identity op, Bwd c) {
            return one(c.g);
        }

        @Override
        public Tensor[] visit(Op.Conv op, Bwd c) {
            if (c.need(1)) {
                throw fromInput(c.node, "weights");
            }
            Tensor gx = c.need(0) ? ConvOps.inputGradient(c.node, op, c.in[0], c.in[1], c.g) : null;
            Tensor gb = c.need(2) ? ConvOps.biasGradient(c.g) : null;
            return new Tensor[] {gx, null, gb};
        }

        @Override
        public Tensor[] visit(Op.MaxPool op, Bwd c) {
            return one(PoolOps.maxBackward(c.in[0], (int[]) c.saved, c.g));
        }

        @Override
        public Tensor[] visit(Op.AveragePool op, Bwd c) {
            return one(PoolOps.averageBackward(c.node, op, c.in[0], c.g));
        }

        @Override
        public Tensor[] visit(Op.GlobalAveragePool op, Bwd c) {
            return one(PoolOps.globalAverageBackward(c.in[0], c.g));
        }

        @Override
        public Tensor[] visit(Op.BatchNormalization op, Bwd c) {
            if (c.need(1) || c.need(2) || c.need(3) || c.need(4)) {
                throw fromInput(c.node, "parameters");
            }
            return new Tensor[] {ShapeOps.batchNormBackward(c.node, c.in[0], c.in[1], c.in[2], c.in[3], c.in[4],
                    op.epsilon(), c.g), null, null, null, null};
        }

        @Override
        public Tensor[] visit(Op.Concat op, Bwd c) {
            return ShapeOps.concatBackward(c.node, c.in, op.axis(), c.g, c.need);
        }

        @Override
        public Tensor[] visit(Op.Pad op, Bwd c) {
            int[] in = c.in[0].shape();
            return one(ShapeOps.padBackward(in, op.forRank(in.length), ShapeOps.padMode(op.mode()), c.g));
        }

        @Override
        public Tensor[] visit(Op.Div op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.DIV, c);
        }

        @Override
        public Tensor[] visit(Op.Pow op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.POW, c);
        }

        @Override
        public Tensor[] visit(Op.Unary op, Bwd c) {
            return one(ElementwiseOps.unaryBackward(op, c.in[0], c.g));
        }
    };
}
