package dev.kxai.exec;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The shape rules of every operator, in one place: the output shape of each node from its input
 * shapes (and, for Reshape, the constant target shape), with the checks that make a node unable to
 * run on those shapes, each naming the node. {@link ExecutionPlan} runs it once per graph; the
 * backends and the FLOP counter read the plan's shapes instead of deriving their own.
 */
public final class ShapeInference implements Op.Visitor<ShapeInference.In, int[]> {
    private static final ShapeInference RULES = new ShapeInference();

    private ShapeInference() {
    }

    /** A node with its input shapes and the graph's constants (for shape-valued inputs). */
    public record In(Node node, int[][] shapes, Map<String, Tensor> constants) {
        int[] x() {
            return shapes[0];
        }

        InvalidInputException bad(String why) {
            return new InvalidInputException("node '" + node.name() + "' (" + node.opType() + "): " + why);
        }
    }

    /** Every value's shape (inputs, constants, node outputs) for a batch of {@code batch} rows. */
    public static Map<String, int[]> infer(Graph g, int batch) {
        Map<String, int[]> shapes = new HashMap<>();
        Map<String, Tensor> constants = g.constantsAt(batch);
        for (Map.Entry<String, Tensor> c : constants.entrySet()) {
            shapes.put(c.getKey(), c.getValue().shape());
        }
        for (Graph.Input in : g.inputs()) {
            shapes.put(in.name(), Shapes.withBatch(in.shape(), batch));
        }
        for (Node n : g.nodes()) {
            int[][] in = new int[n.inputs().size()][];
            for (int j = 0; j < in.length; j++) {
                in[j] = shapes.get(n.inputs().get(j));
                if (in[j] == null) {
                    throw new InvalidInputException("node '" + n.name() + "' (" + n.opType() + "): input '"
                            + n.inputs().get(j) + "' is produced by no earlier node, initializer or graph input");
                }
            }
            shapes.put(n.output(), outputShape(n, in, constants));
        }
        return shapes;
    }

    /** One node's output shape. */
    public static int[] outputShape(Node n, int[][] inShapes, Map<String, Tensor> constants) {
        return n.op().accept(RULES, new In(n, inShapes, constants));
    }

    private static int axis(In c, int axis, int rank, boolean inclusiveEnd) {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a > rank || (!inclusiveEnd && a == rank)) {
            throw c.bad("axis " + axis + " is out of range for rank " + rank);
        }
        return a;
    }

    private static int[] same(In c) {
        return c.x().clone();
    }

    private static int[] broadcast(In c) {
        int[] out = Shapes.broadcast(c.shapes[0], c.shapes[1]);
        if (out == null) {
            throw c.bad("shapes " + Shapes.str(c.shapes[0]) + " and " + Shapes.str(c.shapes[1]) + " do not broadcast");
        }
        return out;
    }

    private static void need4d(In c) {
        if (c.x().length != 4) {
            throw c.bad("needs an NCHW input, got " + Shapes.str(c.x()));
        }
    }

    @Override
    public int[] visit(Op.Gemm op, In c) {
        int[] a = c.shapes[0];
        int[] b = c.shapes[1];
        if (a.length != 2 || b.length != 2) {
            throw c.bad("needs 2-D operands, got " + Shapes.str(a) + " and " + Shapes.str(b));
        }
        int m = op.transA() ? a[1] : a[0];
        int k = op.transA() ? a[0] : a[1];
        int kb = op.transB() ? b[1] : b[0];
        int n = op.transB() ? b[0] : b[1];
        if (k != kb) {
            throw c.bad("inner dimensions differ: A " + Shapes.str(a) + (op.transA() ? "ᵀ" : "") + " × B " + Shapes.str(b)
                    + (op.transB() ? "ᵀ" : ""));
        }
        int[] out = {m, n};
        if (c.shapes.length > 2 && op.beta() != 0f && !Arrays.equals(Shapes.broadcast(c.shapes[2], out), out)) {
            throw c.bad("C " + Shapes.str(c.shapes[2]) + " does not broadcast to " + Shapes.str(out));
        }
        return out;
    }

    @Override
    public int[] visit(Op.MatMul op, In c) {
        int[] as = c.shapes[0];
        int[] bs = c.shapes[1];
        if (as.length >= 2 && bs.length == 2 && as[as.length - 1] == bs[0]) {
            int[] out = as.clone();
            out[out.length - 1] = bs[1];
            return out;
        }
        if (as.length == bs.length && as.length >= 3 && as[as.length - 1] == bs[bs.length - 2]
                && Arrays.equals(Arrays.copyOf(as, as.length - 2), Arrays.copyOf(bs, bs.length - 2))) {
            int[] out = as.clone();
            out[out.length - 1] = bs[bs.length - 1];
            return out;
        }
        throw c.bad("unsupported operand shapes " + Shapes.str(as) + " × " + Shapes.str(bs)
                + " (kxai supports [..., M, K] × [K, N] and equal-batch [..., M, K] × [..., K, N])");
    }

    @Override
    public int[] visit(Op.Add op, In c) {
        return broadcast(c);
    }

    @Override
    public int[] visit(Op.Sub op, In c) {
        return broadcast(c);
    }

    @Override
    public int[] visit(Op.Mul op, In c) {
        return broadcast(c);
    }

    @Override
    public int[] visit(Op.Relu op, In c) {
        return same(c);
    }

    @Override
    public int[] visit(Op.LeakyRelu op, In c) {
        return same(c);
    }

    @Override
    public int[] visit(Op.Sigmoid op, In c) {
        return same(c);
    }

    @Override
    public int[] visit(Op.Tanh op, In c) {
        return same(c);
    }

    @Override
    public int[] visit(Op.Softmax op, In c) {
        axis(c, op.axis(), c.x().length, false);
        return same(c);
    }

    @Override
    public int[] visit(Op.Flatten op, In c) {
        int[] x = c.x();
        int a = axis(c, op.axis(), x.length, true);
        long outer = 1;
        for (int d = 0; d < a; d++) {
            outer *= x[d];
        }
        return new int[] {(int) outer, outer == 0 ? 0 : (int) (Shapes.size(x) / outer)};
    }

    @Override
    public int[] visit(Op.Reshape op, In c) {
        int[] x = c.x();
        Tensor spec = c.node().inputs().size() > 1 ? c.constants().get(c.node().inputs().get(1)) : null;
        if (spec == null) {
            throw c.bad("the target shape must be a constant (an initializer or Constant node)");
        }
        float[] sv = spec.data();
        int[] s = new int[sv.length];
        int infer = -1;
        long known = 1;
        long size = Shapes.size(x);
        for (int i = 0; i < s.length; i++) {
            int v = (int) sv[i];
            if (v == 0 && !op.allowZero()) {
                if (i >= x.length) {
                    throw cannotReshape(c, x, s);
                }
                v = x[i];
            }
            if (v == -1) {
                if (infer >= 0) {
                    throw cannotReshape(c, x, s);
                }
                infer = i;
            } else {
                known *= v;
            }
            s[i] = v;
        }
        if (infer >= 0) {
            if (known == 0 || size % known != 0) {
                throw cannotReshape(c, x, s);
            }
            s[infer] = (int) (size / known);
        }
        if (Shapes.size(s) != size) {
            throw cannotReshape(c, x, s);
        }
        return s;
    }

    private static InvalidInputException cannotReshape(In c, int[] x, int[] target) {
        return c.bad("cannot reshape " + Shapes.str(x) + " to " + Shapes.str(target));
    }

    @Override
    public int[] visit(Op.Identity op, In c) {
        return same(c);
    }

    @Override
    public int[] visit(Op.StraightThrough op, In c) {
        if (!java.util.Arrays.equals(c.shapes[0], c.shapes[1])) {
            throw new InvalidInputException("node '" + c.node.name() + "' (" + c.node.opType() + "): value "
                    + Shapes.str(c.shapes[0]) + " and gradient path " + Shapes.str(c.shapes[1]) + " differ in shape");
        }
        return same(c);
    }

    @Override
    public int[] visit(Op.Conv op, In c) {
        int[] x = c.shapes[0];
        int[] w = c.shapes[1];
        if (x.length != 4 || w.length != 4) {
            throw c.bad("needs NCHW input and 4-D weights, got " + Shapes.str(x) + " and " + Shapes.str(w));
        }
        int ch = x[1];
        if (ch % op.group() != 0 || w[0] % op.group() != 0 || w[1] != ch / op.group()) {
            throw c.bad("input " + Shapes.str(x) + " has " + ch + " channels; weights " + Shapes.str(w) + " with group="
                    + op.group() + " expect " + w[1] * op.group());
        }
        if (c.shapes.length > 2 && Shapes.size(c.shapes[2]) != w[0]) {
            throw c.bad("bias of shape " + Shapes.str(c.shapes[2]) + " does not match " + w[0] + " output channels");
        }
        Window win = window(c.node(), op, x, w);
        return new int[] {x[0], w[0], win.outH(), win.outW()};
    }

    /** A Conv's window over an input of shape x with weights w (their ranks already checked). */
    public static Window window(Node n, Op.Conv op, int[] x, int[] w) {
        int[] kernel = op.kernel() != null ? op.kernel() : new int[] {w[2], w[3]};
        return Window.of(n.name(), kernel, op.strides(), op.pads(), op.dilations(), op.autoPad(), false, x[2], x[3]);
    }

    @Override
    public int[] visit(Op.MaxPool op, In c) {
        need4d(c);
        int[] x = c.x();
        Window w = Window.of(c.node().name(), op.kernel(), op.strides(), op.pads(), op.dilations(), op.autoPad(),
                op.ceilMode(), x[2], x[3]);
        return new int[] {x[0], x[1], w.outH(), w.outW()};
    }

    @Override
    public int[] visit(Op.AveragePool op, In c) {
        need4d(c);
        int[] x = c.x();
        Window w = Window.of(c.node().name(), op.kernel(), op.strides(), op.pads(), null, op.autoPad(), op.ceilMode(),
                x[2], x[3]);
        return new int[] {x[0], x[1], w.outH(), w.outW()};
    }

    @Override
    public int[] visit(Op.GlobalAveragePool op, In c) {
        int[] x = c.x();
        if (x.length < 3) {
            throw c.bad("needs N×C×spatial input, got " + Shapes.str(x));
        }
        int[] out = new int[x.length];
        Arrays.fill(out, 1);
        out[0] = x[0];
        out[1] = x[1];
        return out;
    }

    @Override
    public int[] visit(Op.BatchNormalization op, In c) {
        int[] x = c.x();
        if (x.length < 2) {
            throw c.bad("input " + Shapes.str(x) + " has no channel axis");
        }
        for (int j = 1; j < c.shapes.length; j++) {
            if (Shapes.size(c.shapes[j]) != x[1]) {
                throw c.bad("parameter of shape " + Shapes.str(c.shapes[j]) + " does not match " + x[1] + " channels");
            }
        }
        return same(c);
    }

    @Override
    public int[] visit(Op.Concat op, In c) {
        int[] first = c.shapes[0];
        int rank = first.length;
        int a = axis(c, op.axis(), rank, false);
        int[] out = first.clone();
        out[a] = 0;
        for (int[] p : c.shapes) {
            if (p.length != rank) {
                throw c.bad("inputs of different rank " + Shapes.str(first) + " and " + Shapes.str(p));
            }
            for (int d = 0; d < rank; d++) {
                if (d != a && p[d] != first[d]) {
                    throw c.bad("shapes " + Shapes.str(first) + " and " + Shapes.str(p) + " differ outside axis " + a);
                }
            }
            out[a] += p[a];
        }
        return out;
    }

    @Override
    public int[] visit(Op.Pad op, In c) {
        int[] x = c.x();
        int[] p = op.forRank(x.length);
        if (p == null) {
            throw c.bad(op.pads().length + " pads" + (op.axes() == null ? "" : " for axes " + Arrays.toString(op.axes()))
                    + " do not fit an input of rank " + x.length + " " + Shapes.str(x)
                    + " (two per padded axis: all begins, then all ends)");
        }
        int[] out = new int[x.length];
        for (int d = 0; d < x.length; d++) {
            out[d] = x[d] + p[d] + p[x.length + d];
            if (out[d] < 0 || (x[d] == 0 && out[d] > 0 && !op.mode().equals("constant"))) {
                throw c.bad("pads " + Arrays.toString(p) + " do not fit " + Shapes.str(x) + " on axis " + d);
            }
            if (op.mode().equals("reflect") && (p[d] >= x[d] || p[x.length + d] >= x[d])
                    && (p[d] > 0 || p[x.length + d] > 0)) {
                throw c.bad("reflect pads " + p[d] + "/" + p[x.length + d] + " on axis " + d + " must be smaller than its size "
                        + x[d]);
            }
        }
        return out;
    }

    @Override
    public int[] visit(Op.Unary op, In c) {
        return same(c);
    }

    @Override
    public int[] visit(Op.Div op, In c) {
        return broadcast(c);
    }

    @Override
    public int[] visit(Op.Pow op, In c) {
        return broadcast(c);
    }

    @Override
    public int[] visit(Op.Transpose op, In c) {
        int[] x = c.x();
        int[] perm = perm(op, x.length);
        boolean[] seen = new boolean[x.length];
        if (perm.length != x.length) {
            throw c.bad("perm " + Arrays.toString(perm) + " does not fit rank " + x.length);
        }
        for (int p : perm) {
            if (p < 0 || p >= x.length || seen[p]) {
                throw c.bad("perm " + Arrays.toString(perm) + " is not a permutation of the " + x.length + " axes");
            }
            seen[p] = true;
        }
        int[] out = new int[x.length];
        for (int d = 0; d < out.length; d++) {
            out[d] = x[perm[d]];
        }
        return out;
    }

    /** A Transpose's permutation (ONNX's default: the axes reversed). */
    public static int[] perm(Op.Transpose op, int rank) {
        if (op.perm() != null) {
            return op.perm();
        }
        int[] p = new int[rank];
        for (int d = 0; d < rank; d++) {
            p[d] = rank - 1 - d;
        }
        return p;
    }

    @Override
    public int[] visit(Op.Squeeze op, In c) {
        int[] x = c.x();
        boolean[] drop = new boolean[x.length];
        if (op.axes() == null) {
            for (int d = 1; d < x.length; d++) {
                drop[d] = x[d] == 1;
            }
        } else {
            for (int a : op.axes()) {
                int d = axis(c, a, x.length, false);
                if (x[d] != 1) {
                    throw c.bad("cannot squeeze axis " + a + " of " + Shapes.str(x) + " (size " + x[d] + ", not 1)");
                }
                drop[d] = true;
            }
        }
        return java.util.stream.IntStream.range(0, x.length).filter(d -> !drop[d]).map(d -> x[d]).toArray();
    }

    @Override
    public int[] visit(Op.Unsqueeze op, In c) {
        int[] x = c.x();
        int rank = x.length + op.axes().length;
        boolean[] inserted = new boolean[rank];
        for (int a : op.axes()) {
            int d = axis(c, a, rank, false);
            if (inserted[d]) {
                throw c.bad("cannot insert axis " + a + " into " + Shapes.str(x) + " twice");
            }
            inserted[d] = true;
        }
        int[] out = new int[rank];
        for (int d = 0, j = 0; d < rank; d++) {
            out[d] = inserted[d] ? 1 : x[j++];
        }
        return out;
    }

    @Override
    public int[] visit(Op.Reduce op, In c) {
        int[] x = c.x();
        if (op.axes() != null) {
            for (int a : op.axes()) {
                axis(c, a, x.length, false);
            }
        }
        boolean[] r = op.reduced(x.length);
        java.util.List<Integer> out = new java.util.ArrayList<>();
        for (int d = 0; d < x.length; d++) {
            if (!r[d]) {
                out.add(x[d]);
            } else if (op.keepDims()) {
                out.add(1);
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    @Override
    public int[] visit(Op.Expand op, In c) {
        Tensor spec = c.node().inputs().size() > 1 ? c.constants().get(c.node().inputs().get(1)) : null;
        if (spec == null) {
            throw c.bad("the target shape must be known at load (a constant, or computed from shapes)");
        }
        int[] target = new int[spec.size()];
        for (int i = 0; i < target.length; i++) {
            target[i] = (int) spec.data()[i];
            if (target[i] < 0) {
                throw c.bad("negative dimension " + target[i] + " in the target shape " + Shapes.str(target));
            }
        }
        int[] out = Shapes.broadcast(c.x(), target);
        if (out == null) {
            throw c.bad("cannot expand " + Shapes.str(c.x()) + " to " + Shapes.str(target));
        }
        return out;
    }

    @Override
    public int[] visit(Op.Select op, In c) {
        int[] x = c.x();
        int a = axis(c, op.axis(), x.length, false);
        for (int i : op.indices()) {
            if (i < 0 || i >= x[a]) {
                throw c.bad("index " + i + " is out of range for axis " + a + " of " + Shapes.str(x));
            }
        }
        return gathered(x, a, op.indicesShape());
    }

    @Override
    public int[] visit(Op.Gather op, In c) {
        int[] x = c.x();
        int a = axis(c, op.axis(), x.length, false);
        return gathered(x, a, c.shapes[1]);
    }

    /** ONNX Gather's output shape: axis {@code a} of {@code x} replaced by the indices' shape. */
    private static int[] gathered(int[] x, int a, int[] indices) {
        int[] out = new int[x.length - 1 + indices.length];
        System.arraycopy(x, 0, out, 0, a);
        System.arraycopy(indices, 0, out, a, indices.length);
        System.arraycopy(x, a + 1, out, a + indices.length, x.length - a - 1);
        return out;
    }

    @Override
    public int[] visit(Op.ConstantOfShape op, In c) {
        Tensor spec = c.constants().get(c.node().inputs().get(0));
        if (spec == null) {
            throw c.bad("the shape must be known at load (a constant, or computed from shapes)");
        }
        int[] out = new int[spec.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (int) spec.data()[i];
            if (out[i] < 0) {
                throw c.bad("negative dimension in the shape " + Arrays.toString(spec.data()));
            }
        }
        return out;
    }

    @Override
    public int[] visit(Op.Where op, In c) {
        int[] cx = Shapes.broadcast(c.shapes[0], c.shapes[1]);
        int[] out = cx == null ? null : Shapes.broadcast(cx, c.shapes[2]);
        if (out == null) {
            throw c.bad("condition " + Shapes.str(c.shapes[0]) + ", x " + Shapes.str(c.shapes[1]) + " and y "
                    + Shapes.str(c.shapes[2]) + " do not broadcast");
        }
        return out;
    }

    @Override
    public int[] visit(Op.Compare op, In c) {
        return broadcast(c);
    }

    @Override
    public int[] visit(Op.Resize op, In c) {
        int[] x = c.x();
        if (x.length != 4) {
            throw c.bad("resizes NCHW tensors; got " + Shapes.str(x));
        }
        int[] out = new int[4];
        if (op.scales() != null) {
            for (int d = 0; d < 4; d++) {
                out[d] = (int) Math.floor(x[d] * (double) op.scales()[d]);
            }
        } else {
            Tensor sizes = c.node().inputs().size() > 1 ? c.constants().get(c.node().inputs().get(1)) : null;
            if (sizes == null || sizes.size() != 4) {
                throw c.bad("the output sizes must be 4 values known at load");
            }
            for (int d = 0; d < 4; d++) {
                out[d] = (int) sizes.data()[d];
            }
        }
        if (out[0] != x[0] || out[1] != x[1]) {
            throw c.bad("resizing the batch or channel axis (" + Shapes.str(x) + " to " + Shapes.str(out) + ") is not supported");
        }
        if (out[2] <= 0 || out[3] <= 0) {
            throw c.bad("empty output " + Shapes.str(out));
        }
        return out;
    }
}
