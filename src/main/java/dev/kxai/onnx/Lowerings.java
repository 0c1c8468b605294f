package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * ONNX operators from other exporters and architectures that kxai runs as compositions of its own
 * operators, rewritten at load: their forward is the composition's to float rounding and their
 * gradient the composition's, so they run on every backend with kernels that are already checked
 * against finite differences. Intermediate values are named after the node's output
 * ("OUT/softplus", ...). Each rewrite's doc comment gives the formula.
 */
final class Lowerings {
    /** The operator types rewritten here, in the README's order. */
    static final List<String> OPS = List.of("PRelu", "LogSoftmax", "GlobalMaxPool", "InstanceNormalization",
            "GroupNormalization", "Sum", "Mean", "Mish", "Softsign", "Celu", "ThresholdedRelu", "ReduceL1", "ReduceL2",
            "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor",
            "Einsum", "CumSum", "LpNormalization", "RMSNormalization", "Shrink",
            "GlobalLpPool");

    private static final Set<String> OP_SET = Set.copyOf(OPS);

    private Lowerings() {
    }

    static boolean handles(String opType) {
        return OP_SET.contains(opType) || opType.equals("Mod");
    }

    /** Writes the node's rewrite into {@code out}. */
    static void lower(OnnxMl.NodeProto n, String name, String source, long opset, LoadTime lt, Decompositions.Sink out) {
        Emit e = new Emit(n, name, source, lt, out);
        Attrs a = new Attrs(n, name, source);
        String t = n.getOpType();
        switch (t) {
            case "PRelu" -> {
                e.inputs(2, 2);
                // x > 0 ? x : slope·x; the gradient at 0 is the slope's, as PyTorch's prelu
                String pos = e.node("positive", "Greater", new Op.Compare(Op.Compare.Kind.GREATER), e.in(0),
                        e.constant("zero", 0f));
                String neg = e.node("scaled", "Mul", new Op.Mul(), e.in(0), e.in(1));
                e.last("Where", new Op.Where(), pos, e.in(0), neg);
            }
            case "LogSoftmax" -> {
                e.inputs(1, 1);
                int rank = out.shape(e.in(0), name).length;
                // before opset 13 the input is flattened to 2-D at axis (default 1); from 13 one axis (default -1)
                int axis = axis(a, t, opset < 13 ? 1 : -1, rank);
                int[] axes = opset < 13 ? range(axis, rank) : new int[] {axis};
                logSumExp(e, e.in(0), axes, true, true);
            }
            case "GlobalMaxPool" -> {
                e.inputs(1, 1);
                int rank = out.shape(e.in(0), name).length;
                if (rank < 3) {
                    throw new ModelException(source + ": node '" + name + "' (GlobalMaxPool): input of rank " + rank
                            + "; it pools the spatial axes of [N, C, ...]");
                }
                e.last("ReduceMax", new Op.Reduce(Op.Reduce.Kind.MAX, range(2, rank), true), e.in(0));
            }
            case "InstanceNormalization" -> {
                e.inputs(3, 3);
                int[] x = out.shape(e.in(0), name);
                if (x.length < 3) {
                    throw new ModelException(source + ": node '" + name + "' (InstanceNormalization): input of rank "
                            + x.length + "; it normalises the spatial axes of [N, C, ...]");
                }
                String normalized = Decompositions.standardize(e.in(0), range(2, x.length), epsilon(a, t), name,
                        e.prefix, out);
                affine(e, lt, normalized, x, x[1], 1);
            }
            case "GroupNormalization" -> groupNormalization(e, a, lt, opset);
            case "Einsum" -> Einsum.lower(n, name, source, lt, out);
            case "CumSum" -> cumSum(e, a, lt);
            case "Shrink" -> {
                e.inputs(1, 1);
                // x < −λ ? x + bias : x > λ ? x − bias : 0 (Hardshrink: bias 0; Softshrink: bias λ)
                float lambd = a.f("lambd", 0.5f);
                float bias = a.f("bias", 0f);
                String x = e.in(0);
                String up = e.node("above", "Greater", new Op.Compare(Op.Compare.Kind.GREATER), x, e.constant("lambd", lambd));
                String down = e.node("below", "Less", new Op.Compare(Op.Compare.Kind.LESS), x, e.constant("neg_lambd", -lambd));
                String lowered = e.node("lowered", "Sub", new Op.Sub(), x, e.constant("bias", bias));
                String raised = e.node("raised", "Add", new Op.Add(), x, e.constant("bias", bias));
                String inner = e.node("inner", "Where", new Op.Where(), down, raised, e.constant("zero", 0f));
                e.last("Where", new Op.Where(), up, lowered, inner);
            }
            case "GlobalLpPool" -> {
                e.inputs(1, 1);
                int rank = out.shape(e.in(0), name).length;
                long p = a.i("p", 2);
                if (rank < 3 || p < 1) {
                    throw a.bad(t, "p", p, "p >= 1 over the spatial axes of [N, C, ...] (input of rank " + rank + ")");
                }
                // (Σ |x|^p)^(1/p) over the spatial axes
                Op.Reduce sum = new Op.Reduce(Op.Reduce.Kind.SUM, range(2, rank), true);
                String abs = e.node("abs", "Abs", new Op.Unary(Op.Unary.Kind.ABS), e.in(0));
                if (p == 1) {
                    e.last("ReduceSum", sum, abs);
                } else if (p == 2) {
                    // an all-zero channel (dead ReLUs before the pool) has gradient 0, as torch's norm, not NaN
                    maskedSqrt(e, e.node("sum", "ReduceSum", sum, e.node("squared", "Mul", new Op.Mul(), e.in(0), e.in(0))));
                } else {
                    String pw = e.node("powered", "Pow", new Op.Pow(), abs, e.constant("p", p));
                    e.last("Pow", new Op.Pow(), e.node("sum", "ReduceSum", sum, pw), e.constant("inverse_p", 1f / p));
                }
            }
            case "RMSNormalization" -> {
                e.inputs(2, 2);
                int rank = out.shape(e.in(0), name).length;
                int first = axis(a, t, -1, rank);
                if (first < 1) {
                    throw a.bad(t, "axis", a.i("axis", -1), "an axis after the batch axis (it normalises axis..last)");
                }
                if (a.i("stash_type", 1) != 1) {
                    throw a.bad(t, "stash_type", a.i("stash_type", 1), "1 (float32)");
                }
                // x / sqrt(mean(x²) + ε) · scale over the axes from axis to the last (opset 23)
                String sq = e.node("squared", "Mul", new Op.Mul(), e.in(0), e.in(0));
                String ms = e.node("mean_square", "ReduceMean", new Op.Reduce(Op.Reduce.Kind.MEAN, range(first, rank),
                        true), sq);
                String eps = e.node("mean_square_eps", "Add", new Op.Add(), ms, e.constant("epsilon", epsilon(a, t)));
                String rms = e.node("rms", "Sqrt", new Op.Unary(Op.Unary.Kind.SQRT), eps);
                String normalized = e.node("normalized", "Div", new Op.Div(), e.in(0), rms);
                e.last("Mul", new Op.Mul(), normalized, e.in(1));
            }
            case "LpNormalization" -> {
                e.inputs(1, 1);
                int axis = axis(a, t, -1, out.shape(e.in(0), name).length);
                long p = a.i("p", 2);
                if (p != 1 && p != 2) {
                    throw a.bad(t, "p", p, "1 or 2");
                }
                // x / ‖x‖_p along the axis (no epsilon, as ONNX); a zero slice gives 0 (onnxruntime's
                // LpNorm) with gradient 0: zero(s) ? 0 : x / (zero(s) ? 1 : ‖x‖), so no inf or NaN
                // reaches the backward (see maskedNorm)
                Op.Reduce sum = new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {axis}, true);
                String s = p == 1
                        ? e.node("norm", "ReduceSum", sum, e.node("abs", "Abs", new Op.Unary(Op.Unary.Kind.ABS), e.in(0)))
                        : e.node("sum", "ReduceSum", sum, e.node("squared", "Mul", new Op.Mul(), e.in(0), e.in(0)));
                String zero = e.node("zero_norm", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), s,
                        e.constant("zero", 0f));
                String safe = e.node("safe_" + (p == 1 ? "norm" : "sum"), "Where", new Op.Where(), zero,
                        e.constant("one", 1f), s);
                String norm = p == 1 ? safe : e.node("safe_norm", "Sqrt", new Op.Unary(Op.Unary.Kind.SQRT), safe);
                String q = e.node("normalized", "Div", new Op.Div(), e.in(0), norm);
                e.last("Where", new Op.Where(), zero, e.constant("zero", 0f), q);
            }
            case "Sum", "Mean" -> {
                List<String> ins = e.present();
                if (ins.isEmpty()) {
                    throw new ModelException(source + ": node '" + name + "' (" + t + ") has no inputs");
                }
                String r = ins.get(0);
                boolean mean = t.equals("Mean") && ins.size() > 1;
                for (int i = 1; i < ins.size(); i++) {
                    r = i == ins.size() - 1 && !mean ? e.last("Add", new Op.Add(), r, ins.get(i))
                            : e.node("sum" + i, "Add", new Op.Add(), r, ins.get(i));
                }
                if (mean) {
                    e.last("Div", new Op.Div(), r, e.constant("count", ins.size()));
                } else if (ins.size() == 1) {
                    e.last("Identity", new Op.Identity(), r);
                }
            }
            case "Mish" -> {
                e.inputs(1, 1);
                // x · tanh(softplus(x))
                String sp = e.node("softplus", "Softplus", new Op.Unary(Op.Unary.Kind.SOFTPLUS), e.in(0));
                String th = e.node("tanh", "Tanh", new Op.Tanh(), sp);
                e.last("Mul", new Op.Mul(), e.in(0), th);
            }
            case "Softsign" -> {
                e.inputs(1, 1);
                // x / (1 + |x|)
                String abs = e.node("abs", "Abs", new Op.Unary(Op.Unary.Kind.ABS), e.in(0));
                String den = e.node("denominator", "Add", new Op.Add(), abs, e.constant("one", 1f));
                e.last("Div", new Op.Div(), e.in(0), den);
            }
            case "Celu" -> {
                e.inputs(1, 1);
                float alpha = a.f("alpha", 1f);
                if (!(alpha != 0f) || !Float.isFinite(alpha)) {
                    throw a.bad(t, "alpha", alpha, "a finite alpha != 0 (Celu divides by it)");
                }
                // α · elu(x / α) with elu's α = 1: max(0, x) + min(0, α(exp(x/α) − 1))
                String alphaName = e.constant("alpha", alpha);
                String s = e.node("scaled", "Div", new Op.Div(), e.in(0), alphaName);
                String elu = e.node("elu", "Elu", new Op.Unary(Op.Unary.Kind.ELU, 1f, 0f), s);
                e.last("Mul", new Op.Mul(), elu, alphaName);
            }
            case "ThresholdedRelu" -> {
                e.inputs(1, 1);
                // x > α ? x : 0
                String above = e.node("above", "Greater", new Op.Compare(Op.Compare.Kind.GREATER), e.in(0),
                        e.constant("alpha", a.f("alpha", 1f)));
                e.last("Where", new Op.Where(), above, e.in(0), e.constant("zero", 0f));
            }
            case "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp" -> reduction(e, a, opset);
            case "Mod" -> {
                // of values computed per request (Mod of constants is folded at load by MoreFolding):
                // fmod 1: x − trunc(x / y)·y (C's fmod, the dividend's sign); fmod 0: x − floor(x / y)·y
                // (Python's %, the divisor's sign; ONNX allows it on integers only). Gradients as PyTorch's
                // fmod/remainder: 1 to x, −trunc(x / y) (−floor) to y. Exact for integer operands below 2^23;
                // on floats the product rounds once (within half an ulp of x), and a quotient within float
                // rounding of an integer may take the neighbouring branch
                e.inputs(2, 2);
                boolean fmod = a.i("fmod", 0) != 0;
                String q = e.node("quotient", "Div", new Op.Div(), e.in(0), e.in(1));
                String whole = e.node(fmod ? "truncated" : "floored", fmod ? "Cast" : "Floor",
                        new Op.Unary(fmod ? Op.Unary.Kind.TRUNC : Op.Unary.Kind.FLOOR), q);
                String back = e.node("multiple", "Mul", new Op.Mul(), whole, e.in(1));
                e.last("Sub", new Op.Sub(), e.in(0), back);
                if (lt.isInteger(e.in(0)) && lt.isInteger(e.in(1))) {
                    lt.markInteger(n.getOutput(0));
                }
            }
            case "GreaterOrEqual", "LessOrEqual" -> {
                e.inputs(2, 2);
                // not (a < b), not (a > b): 1 or 0, no gradient
                boolean ge = t.equals("GreaterOrEqual");
                String strict = e.node(ge ? "less" : "greater", ge ? "Less" : "Greater",
                        new Op.Compare(ge ? Op.Compare.Kind.LESS : Op.Compare.Kind.GREATER), e.in(0), e.in(1));
                e.last(t, new Op.Compare(Op.Compare.Kind.EQUAL), strict, e.constant("zero", 0f));
            }
            case "And" -> {
                e.inputs(2, 2);
                // of 0/1 masks: a · b, then != 0 (a mask holding any non-zero as true)
                String p = e.node("product", "Mul", new Op.Mul(), e.in(0), e.in(1));
                e.last("And", new Op.Compare(Op.Compare.Kind.NOT_EQUAL), p, e.constant("zero", 0f));
            }
            case "Or", "Xor" -> {
                e.inputs(2, 2);
                // each operand as 0/1 (!= 0); Or: their sum != 0, Xor: they differ
                String p = e.node("a_set", "NotEqual", new Op.Compare(Op.Compare.Kind.NOT_EQUAL), e.in(0),
                        e.constant("zero", 0f));
                String q = e.node("b_set", "NotEqual", new Op.Compare(Op.Compare.Kind.NOT_EQUAL), e.in(1),
                        e.constant("zero", 0f));
                if (t.equals("Or")) {
                    e.last("Or", new Op.Compare(Op.Compare.Kind.NOT_EQUAL), e.node("count", "Add", new Op.Add(), p, q),
                            e.constant("zero", 0f));
                } else {
                    e.last("Xor", new Op.Compare(Op.Compare.Kind.NOT_EQUAL), p, q);
                }
            }
            default -> throw new IllegalArgumentException(t);
        }
    }

    /**
     * log Σ exp(x) over {@code axes} as m + log Σ exp(x − m), m the maximum (kept dims); with
     * {@code softmax} the node is LogSoftmax instead: (x − m) − log Σ exp(x − m). The gradient through
     * m cancels (to rounding): m only shifts.
     */
    private static void logSumExp(Emit e, String x, int[] axes, boolean keepDims, boolean softmax) {
        String m = e.node("max", "ReduceMax", new Op.Reduce(Op.Reduce.Kind.MAX, axes, true), x);
        String shifted = e.node("shifted", "Sub", new Op.Sub(), x, m);
        String exp = e.node("exp", "Exp", new Op.Unary(Op.Unary.Kind.EXP), shifted);
        String sum = e.node("sum", "ReduceSum", new Op.Reduce(Op.Reduce.Kind.SUM, axes, softmax || keepDims), exp);
        String log = e.node("log", "Log", new Op.Unary(Op.Unary.Kind.LOG), sum);
        if (softmax) {
            e.last("Sub", new Op.Sub(), shifted, log);
            return;
        }
        String mOut = keepDims ? m : e.node("max_squeezed", "Squeeze", new Op.Squeeze(axes), m);
        e.last("Add", new Op.Add(), log, mOut);
    }

    /**
     * CumSum of a value computed per request along a constant axis (not the batch) of fixed size n: a
     * MatMul with the 0/1 triangular [n, n] matrix that exclusive and reverse select (the axis moved
     * last by a Transpose and back), so its gradient is MatMul's.
     */
    private static void cumSum(Emit e, Attrs a, LoadTime lt) {
        e.inputs(2, 2);
        float[] axisV = e.constantInput(1, "axis").data();
        int[] x = e.out.shape(e.in(0), e.name);
        if (axisV.length != 1) {
            throw new ModelException(e.source + ": node '" + e.name + "' (CumSum): axis must be one value, got "
                    + axisV.length);
        }
        int rank = x.length;
        int ax = (int) axisV[0] < 0 ? (int) axisV[0] + rank : (int) axisV[0];
        if (ax < 0 || ax >= rank) {
            throw new ModelException(e.source + ": node '" + e.name + "' (CumSum): axis " + (int) axisV[0]
                    + " is out of range for " + Shapes.str(x));
        }
        if (ax == 0 || lt.shapeAt(e.in(0), 1, e.name)[ax] != x[ax]) {
            throw new ModelException(e.source + ": node '" + e.name + "' (CumSum): sums along axis " + ax + " of "
                    + Shapes.str(x) + ", whose size depends on the batch; that would mix examples");
        }
        boolean exclusive = a.i("exclusive", 0) != 0;
        boolean reverse = a.i("reverse", 0) != 0;
        int n = x[ax];
        float[] u = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                // y_j = Σ_i x_i · u[i, j]
                boolean in = reverse ? (exclusive ? i > j : i >= j) : (exclusive ? i < j : i <= j);
                u[i * n + j] = in ? 1f : 0f;
            }
        }
        String tri = e.constant("triangle", new Tensor(new int[] {n, n}, u));
        if (ax == rank - 1) {
            e.last("MatMul", new Op.MatMul(), e.in(0), tri);
            return;
        }
        int[] perm = range(0, rank);
        perm[ax] = rank - 1;
        perm[rank - 1] = ax;
        String moved = e.node("moved", "Transpose", new Op.Transpose(perm), e.in(0));
        String sums = e.node("sums", "MatMul", new Op.MatMul(), moved, tri);
        e.last("Transpose", new Op.Transpose(perm), sums);
    }

    /**
     * ReduceL1 (Σ|x|), ReduceL2 (√Σx²), ReduceSumSquare (Σx²), ReduceLogSum (log Σx) and
     * ReduceLogSumExp: axes an attribute before opset 18, a constant input from 18; keepdims;
     * noop_with_empty_axes (18) makes an empty axes list the identity.
     */
    private static void reduction(Emit e, Attrs a, long opset) {
        String t = e.n.getOpType();
        e.inputs(1, 2);
        int rank = e.out.shape(e.in(0), e.name).length;
        int[] axes;
        if (opset < 18) {
            axes = a.ints("axes", null);
        } else if (e.n.getInputCount() > 1 && !e.n.getInput(1).isEmpty()) {
            Tensor v = e.constantInput(1, "axes");
            axes = new int[v.size()];
            for (int i = 0; i < axes.length; i++) {
                axes[i] = (int) v.data()[i];
            }
        } else {
            axes = null;
        }
        if (axes == null || axes.length == 0) {
            if (a.i("noop_with_empty_axes", 0) != 0) {
                e.last("Identity", new Op.Identity(), e.in(0));
                return;
            }
            axes = range(0, rank);
        }
        for (int i = 0; i < axes.length; i++) {
            if (axes[i] < -rank || axes[i] >= rank) {
                throw a.bad(t, "axes", axes, "axes in [-" + rank + ", " + (rank - 1) + "] for an input of rank " + rank);
            }
            axes[i] = axes[i] < 0 ? axes[i] + rank : axes[i];
        }
        boolean keep = a.i("keepdims", 1) != 0;
        Op.Reduce sum = new Op.Reduce(Op.Reduce.Kind.SUM, axes, keep);
        switch (t) {
            case "ReduceL1" -> e.last("ReduceSum", sum,
                    e.node("abs", "Abs", new Op.Unary(Op.Unary.Kind.ABS), e.in(0)));
            case "ReduceSumSquare" -> e.last("ReduceSum", sum,
                    e.node("squared", "Mul", new Op.Mul(), e.in(0), e.in(0)));
            case "ReduceL2" -> {
                String sq = e.node("squared", "Mul", new Op.Mul(), e.in(0), e.in(0));
                maskedSqrt(e, e.node("sum", "ReduceSum", sum, sq));
            }
            case "ReduceLogSum" -> e.last("Log", new Op.Unary(Op.Unary.Kind.LOG), e.node("sum", "ReduceSum", sum, e.in(0)));
            default -> logSumExp(e, e.in(0), axes, keep, false);
        }
    }

    /**
     * √s of a sum of squares with PyTorch's norm gradient: s = 0 ? 0 : √(s = 0 ? 1 : s). The forward is
     * √s (√0 = 0; NaN passes); at s = 0 the gradient is 0 (torch.norm's backward masks zero norms), where
     * √s alone gives ∞ · 0 = NaN through the squares.
     */
    private static void maskedSqrt(Emit e, String s) {
        String zero = e.node("zero_sum", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), s, e.constant("zero", 0f));
        String safe = e.node("safe_sum", "Where", new Op.Where(), zero, e.constant("one", 1f), s);
        String root = e.node("root", "Sqrt", new Op.Unary(Op.Unary.Kind.SQRT), safe);
        e.last("Where", new Op.Where(), zero, e.constant("zero", 0f), root);
    }

    /**
     * GroupNormalization (opset 18, 21): x [N, C, ...] viewed as [N, G, C/G·spatial], each group
     * standardised, viewed back, then scale and bias per channel. Opset 18's scale and bias have one
     * value per group (spread over the group's channels at load), 21's one per channel.
     */
    private static void groupNormalization(Emit e, Attrs a, LoadTime lt, long opset) {
        e.inputs(3, 3);
        String t = "GroupNormalization";
        int[] x = e.out.shape(e.in(0), e.name);
        if (x.length < 2) {
            throw new ModelException(e.source + ": node '" + e.name + "' (GroupNormalization): input of rank " + x.length
                    + "; it normalises [N, C, ...]");
        }
        int groups = a.required("num_groups", t);
        if (groups < 1 || x[1] % groups != 0) {
            throw a.bad(t, "num_groups", groups, "num_groups >= 1 dividing the " + x[1] + " channels of "
                    + Shapes.str(x));
        }
        long stash = a.i("stash_type", 1);
        if (stash != 1) {
            throw a.bad(t, "stash_type", stash, "1 (float32): kxai computes the statistics in float32");
        }
        String grouped = e.node("grouped", "Reshape", new Op.Reshape(false), e.in(0),
                e.constant("grouped_shape", new Tensor(new int[] {3}, new float[] {0, groups, -1})));
        String normalized = Decompositions.standardize(grouped, new int[] {2}, epsilon(a, t), e.name, e.prefix, e.out);
        float[] back = new float[x.length];
        for (int d = 1; d < x.length; d++) {
            back[d] = x[d];
        }
        String restored = e.node("restored", "Reshape", new Op.Reshape(false), normalized,
                e.constant("restored_shape", new Tensor(new int[] {x.length}, back)));
        int perValue = opset < 21 ? x[1] / groups : 1;
        affine(e, lt, restored, x, opset < 21 ? groups : x[1], perValue);
    }

    /**
     * y · scale + bias with scale and bias (the node's inputs 1 and 2) of {@code count} values, each for
     * {@code perValue} consecutive channels of x [N, C, ...]: constants are laid out as [C, 1, ...] at
     * load; values computed per request (only with perValue 1) get Unsqueeze nodes.
     */
    private static void affine(Emit e, LoadTime lt, String y, int[] x, int count, int perValue) {
        String[] names = {"scale", "bias"};
        String[] laid = new String[2];
        int[] shape = new int[x.length - 1];
        java.util.Arrays.fill(shape, 1);
        shape[0] = x[1];
        for (int k = 0; k < 2; k++) {
            String v = e.in(k + 1);
            int[] s = e.out.shape(v, e.name);
            if (Shapes.size(s) != count || s.length != 1) {
                throw new ModelException(e.source + ": node '" + e.name + "' (" + e.n.getOpType() + "): " + names[k]
                        + " '" + v + "' has shape " + Shapes.str(s) + "; expected [" + count + "]"
                        + (perValue > 1 ? " (one value per group, opset < 21)" : ""));
            }
            if (lt.isConstant(v)) {
                float[] src = lt.valueAt(v, 0).data();
                float[] d = new float[x[1]];
                for (int c = 0; c < d.length; c++) {
                    d[c] = src[c / perValue];
                }
                laid[k] = e.constant(names[k] + "_per_channel", new Tensor(shape, d));
            } else if (perValue == 1) {
                laid[k] = e.node(names[k] + "_per_channel", "Unsqueeze", new Op.Unsqueeze(range(1, x.length - 1)), v);
            } else {
                throw new ModelException(e.source + ": node '" + e.name + "' (" + e.n.getOpType() + "): " + names[k]
                        + " '" + v + "' is computed per request; kxai needs a per-group " + names[k] + " constant");
            }
        }
        String scaled = e.node("scaled", "Mul", new Op.Mul(), y, laid[0]);
        e.last("Add", new Op.Add(), scaled, laid[1]);
    }

    private static float epsilon(Attrs a, String t) {
        float eps = a.f("epsilon", 1e-5f);
        if (!(eps >= 0f) || Float.isInfinite(eps)) {
            throw a.bad(t, "epsilon", eps, "a finite epsilon >= 0 (it is added to the variance under a square root)");
        }
        return eps;
    }

    private static int axis(Attrs a, String t, int dflt, int rank) {
        int axis = a.i32("axis", dflt);
        if (axis < -rank || axis >= rank) {
            throw a.bad(t, "axis", axis, "axis in [-" + rank + ", " + (rank - 1) + "] for an input of rank " + rank);
        }
        return axis < 0 ? axis + rank : axis;
    }

    /** from, from + 1, ..., to − 1. */
    static int[] range(int from, int to) {
        int[] r = new int[Math.max(0, to - from)];
        for (int i = 0; i < r.length; i++) {
            r[i] = from + i;
        }
        return r;
    }

    /** Writes one rewrite's nodes and constants, named after the ONNX node and its output. */
    static final class Emit {
        final OnnxMl.NodeProto n;
        final String name;
        final String source;
        final Decompositions.Sink out;
        final LoadTime lt;
        /** The prefix of intermediate values: the node's first output and "/". */
        final String prefix;

        Emit(OnnxMl.NodeProto n, String name, String source, LoadTime lt, Decompositions.Sink out) {
            this.n = n;
            this.lt = lt;
            this.name = name;
            this.source = source;
            this.out = out;
            this.prefix = n.getOutput(0) + "/";
        }

        String in(int j) {
            return n.getInput(j);
        }

        /** The inputs given (omitted optional ones left out). */
        List<String> present() {
            List<String> r = new ArrayList<>();
            for (String s : n.getInputList()) {
                if (!s.isEmpty()) {
                    r.add(s);
                }
            }
            return r;
        }

        /** Refuses a node with fewer than min or more than max inputs, or an omitted required one. */
        void inputs(int min, int max) {
            int count = n.getInputCount();
            while (count > min && n.getInput(count - 1).isEmpty()) {
                count--;
            }
            boolean missing = false;
            for (int j = 0; j < Math.min(min, count); j++) {
                missing |= n.getInput(j).isEmpty();
            }
            if (count < min || count > max || missing) {
                throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") has " + count
                        + " inputs" + (missing ? " with a required one empty" : "") + "; expected "
                        + (min == max ? "" + min : min + ".." + max));
            }
        }

        /** A node writing PREFIX + suffix; returns that value's name. */
        String node(String suffix, String opType, Op op, String... inputs) {
            out.node(new Node(name + "/" + suffix, opType, op, List.of(inputs), prefix + suffix));
            return prefix + suffix;
        }

        /** The node writing the ONNX node's output, under the ONNX node's name. */
        String last(String opType, Op op, String... inputs) {
            out.node(new Node(name, opType, op, List.of(inputs), n.getOutput(0)));
            return n.getOutput(0);
        }

        String constant(String suffix, float v) {
            return constant(suffix, Tensor.scalar(v));
        }

        String constant(String suffix, Tensor t) {
            out.constant(prefix + suffix, t);
            return prefix + suffix;
        }

        /** Input j as a load-time constant, or a refusal naming it. */
        Tensor constantInput(int j, String what) {
            String v = n.getInput(j);
            if (!lt.isConstant(v)) {
                throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): " + what + " '" + v
                        + "' is computed at run time; kxai needs it constant (an initializer or Constant node)");
            }
            return lt.valueAt(v, 0);
        }
    }
}
