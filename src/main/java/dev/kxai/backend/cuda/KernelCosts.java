package dev.kxai.backend.cuda;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToDoubleFunction;

/**
 * The cost model of a launch: FLOPs and bytes of each kernel of kernels/*.cu and of each cuBLAS
 * call, computed from the launch's own arguments (sizes, geometry, flags, in the kernel's order as
 * {@link Kernels} passes them), and a per-process counter that sums them per kernel family (one
 * family per kernel function or cuBLAS routine). {@code kxai bench --device cuda} prints the sums
 * with the time {@code dev.kxai.bench.Roofline} predicts for a named GPU. It is a model of what a
 * launch must do, not a measurement of what it did.
 * <p>
 * Counting rules:
 * <ul>
 *   <li>FLOPs: the arithmetic the kernel's expression asks for per element; a multiply-add is 2,
 *       a compare or a select 1, a transcendental 1 in FP32 (its FP64 library cost is in the unary
 *       family's count). Convolutions and GEMMs count every tap, padding included
 *       (N·M·OH·OW·(C/group)·kH·kW multiply-adds, as {@code dev.kxai.bench.FlopCounter}).</li>
 *   <li>Bytes: compulsory DRAM traffic: each tensor a kernel reads is read once, each it writes
 *       written once (an operand broadcast by stride 0 counted at its own size; an in-place update
 *       read and written); reuse inside a launch (convolution windows, GEMM tiles, gather tables)
 *       is assumed to hit in the caches. Floats and ints 4 bytes, doubles 8.</li>
 * </ul>
 * Exposed for {@code kxai bench}, not part of kxai's API.
 */
public final class KernelCosts {
    private KernelCosts() {
    }

    /**
     * How a kernel's structure limits it (dev.kxai.bench.Roofline turns this into a fraction of a
     * GPU's peak). The compute term uses the precision's peak; every family also has the memory
     * term.
     */
    public enum Structure {
        /** FP64 multiply and add per tap, one thread per output, no tiling, -fmad=false, two cvt.f64.f32 per MAC. */
        FP64_DIRECT("fp64 direct, 1 thread/output"),
        /** cuBLAS SGEMM (FP32, no TF32). */
        GEMM_FP32("cuBLAS sgemm"),
        /** Our FP32 implicit GEMM (conv2d_forward_f32[_narrow]): 64×64 or 16×256 shared-memory tiles, 4×4 FFMA per thread. */
        FP32_TILED("fp32 implicit GEMM, tiled"),
        /** cuBLAS DGEMM. */
        GEMM_FP64("cuBLAS dgemm"),
        /** Element-wise / gather / reduction work in FP32: bandwidth-bound. */
        STREAM("fp32 streaming"),
        /** Element-wise work evaluated in double (the unary family, Div/Pow, double sums). */
        STREAM_FP64("fp64 streaming"),
        /** A kernel without a cost model (a new kernel): counted as launches only. */
        UNKNOWN("no cost model");

        private final String label;

        Structure(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    /** The FLOPs and bytes of one launch. */
    public record Cost(double flops, double bytes) {
    }

    /** A family's sums over the launches counted since the last {@link #reset()}. */
    public record Totals(String family, Structure structure, long launches, double flops, double bytes) {
    }

    private record Model(Structure structure, ToDoubleFunction<Object[]> flops, ToDoubleFunction<Object[]> bytes) {
    }

    private static final class Sum {
        final Structure structure;
        long launches;
        double flops;
        double bytes;

        Sum(Structure structure) {
            this.structure = structure;
        }
    }

    private static final Map<String, Sum> SUMS = new ConcurrentHashMap<>();
    private static final Map<String, Model> MODELS = new java.util.HashMap<>();

    /** The families the cuBLAS calls count under. */
    public static final String SGEMM = "cublasSgemm";
    public static final String DGEMM = "cublasDgemm";

    // ---- argument access (the launchers box int as Integer, long long as Long)
    private static double l(Object[] a, int i) {
        return ((Number) a[i]).doubleValue();
    }

    private static int i(Object[] a, int i) {
        return ((Number) a[i]).intValue();
    }

    private static boolean present(Object[] a, int i) {
        return a[i] != null;
    }

    /** Product of the 4 (or 6) dims starting at index i. */
    private static double dims(Object[] a, int i, int rank) {
        double p = 1;
        for (int d = 0; d < rank; d++) {
            p *= l(a, i + d);
        }
        return p;
    }

    /** Elements of an operand broadcast over 4 output dims at {@code d}, by its strides at {@code s} (0 = broadcast). */
    private static double operand(Object[] a, int d, int s) {
        double p = 1;
        for (int k = 0; k < 4; k++) {
            p *= l(a, s + k) != 0 ? l(a, d + k) : 1;
        }
        return p;
    }

    /** Elements of a reduction's output: the input dims at {@code d} with the reduced flags at {@code f} set to 1. */
    private static double kept(Object[] a, int d, int f) {
        double p = 1;
        for (int k = 0; k < 4; k++) {
            p *= i(a, f + k) != 0 ? 1 : l(a, d + k);
        }
        return p;
    }

    /** FLOPs per element of the activation codes of dense.cu: forward, and the backward's multiply on top. */
    private static double act(int code) {
        return switch (code) {
            case 0 -> 0;
            case 1 -> 1;
            case 2 -> 2;
            default -> 4; // sigmoid, tanh: exp + add + divide (+ scale)
        };
    }

    /** FLOPs per element of an activation's backward: gy · act'(saved). */
    private static double actGrad(int code) {
        return switch (code) {
            case 0 -> 0; // a copy
            case 1, 2 -> 1; // a select (ReLU), a multiply by the slope (LeakyReLU)
            default -> 3; // gy · y(1 − y), gy · (1 − y²)
        };
    }

    /** FP64 operations per element of the unary family (dense.cu kx_unary), a transcendental ~20 (libm in double). */
    private static double unary(int kind) {
        return switch (kind) {
            case 0, 12, 13 -> 2; // Clip, Neg, Abs
            case 1, 2 -> 5; // HardSigmoid, HardSwish
            case 3 -> 10; // Sqrt (double sqrt: Newton iterations)
            default -> 25; // Exp, Log, Erf, Softplus, Elu, Selu, Gelu: a double libm call and a few ops
        };
    }

    private static void model(String kernel, Structure s, ToDoubleFunction<Object[]> flops,
            ToDoubleFunction<Object[]> bytes) {
        MODELS.put(kernel, new Model(s, flops, bytes));
    }

    private static final double F = 4; // bytes of a float or an int
    private static final double D = 8; // bytes of a double

    static {
        Structure st = Structure.STREAM;
        // ---- rules.cu
        model("deeplift_scale", st, a -> 2 * l(a, 3) * 2, a -> F * (2 * l(a, 3) * 2 + 2 * l(a, 3)));
        model("deeplift_rescale", st, a -> 2 * l(a, 4) * 3, a -> F * 2 * l(a, 4) * 4);
        model("lrp_stabilize", st, a -> l(a, 3) * 2, a -> F * l(a, 3) * 3);
        // ---- perturb.cu: pure selection; per output element one source value read, one written,
        // plus the mask rows (features each); the per-sample integers are negligible
        model("perturb_single", st, a -> 0, a -> F * (2 * l(a, 8) * l(a, 9) + l(a, 5) * l(a, 9)));
        model("perturb_coalition", st, a -> 0, a -> F * (2 * l(a, 9) * l(a, 10) + l(a, 5) * l(a, 10)));
        model("perturb_box", st, a -> 0, a -> F * 2 * l(a, 8) * l(a, 9));
        // ---- path.cu (plane = batch · features)
        model("path_interpolate", st, a -> l(a, 5) * l(a, 6) * (1 + 2 * l(a, 4)),
                a -> F * l(a, 5) * l(a, 6) * (2 + l(a, 4)));
        model("path_interpolate_f64", Structure.STREAM_FP64, a -> l(a, 5) * l(a, 6) * (1 + 2 * l(a, 4)),
                a -> l(a, 5) * l(a, 6) * (2 * D + F * l(a, 4)));
        model("path_accumulate", st, a -> 2 * l(a, 3) * l(a, 4) * l(a, 5),
                a -> F * l(a, 4) * l(a, 5) * (2 + l(a, 3)));
        model("attribution_finish", st, a -> i(a, 6) != 0 ? 2 * l(a, 4) * l(a, 5) : 0,
                a -> F * l(a, 4) * l(a, 5) * (i(a, 6) != 0 ? 4 : 2));
        model("row_sum", st, a -> l(a, 2) * l(a, 3), a -> F * (l(a, 2) * l(a, 3) + l(a, 2)));
        // ---- dense.cu
        model("bias_act_forward", st, a -> l(a, 2) * l(a, 3) * ((present(a, 1) ? 1 : 0) + act(i(a, 4))),
                a -> F * (2 * l(a, 2) * l(a, 3) + (present(a, 1) ? l(a, 3) : 0)));
        model("bias_act_forward_keep", st, a -> l(a, 3) * l(a, 4) * ((present(a, 2) ? 1 : 0) + act(i(a, 5))),
                a -> F * (3 * l(a, 3) * l(a, 4) + (present(a, 2) ? l(a, 4) : 0)));
        // gemm_f64(y, a, b, c, m, n, k, transB, alpha, beta): double y, float operands
        model("gemm_f64", Structure.FP64_DIRECT,
                a -> 2 * l(a, 4) * l(a, 5) * l(a, 6) + l(a, 4) * l(a, 5) * (present(a, 3) ? 3 : 1),
                a -> F * (l(a, 4) * l(a, 6) + l(a, 6) * l(a, 5) + (present(a, 3) ? l(a, 5) : 0))
                        + D * l(a, 4) * l(a, 5));
        model("act_forward", st, a -> l(a, 2) * act(i(a, 3)), a -> F * 2 * l(a, 2));
        model("act_backward", st, a -> l(a, 3) * actGrad(i(a, 4)), a -> F * 3 * l(a, 3));
        // binary_forward(out, a, b, op, d0..3, as0..3, bs0..3); Div and Pow in double
        model("binary_forward", st, a -> dims(a, 4, 4),
                a -> F * (dims(a, 4, 4) + operand(a, 4, 8) + operand(a, 4, 12)));
        model("where_forward", st, a -> dims(a, 4, 4),
                a -> F * (dims(a, 4, 4) + operand(a, 4, 8) + operand(a, 4, 12) + operand(a, 4, 16)));
        // where_backward(g, gy, c, which, d0..3, gs0..3, cs0..3): reads gy, c; adds into g
        model("where_backward", st, a -> dims(a, 4, 4),
                a -> F * (dims(a, 4, 4) + operand(a, 4, 12) + 2 * operand(a, 4, 8)));
        // binary_backward(g, gy, other, scale, d0..3, gs0..3, os0..3)
        model("binary_backward", st, a -> dims(a, 4, 4) * (present(a, 2) ? 2 : 1),
                a -> F * (dims(a, 4, 4) + 2 * operand(a, 4, 8) + (present(a, 2) ? operand(a, 4, 12) : 0)));
        // binary_grad(g, gy, a, b, op, operand, d0..3, gs0..3, as0..3, bs0..3): Div/Pow gradients in double
        model("binary_grad", Structure.STREAM_FP64, a -> dims(a, 6, 4) * (i(a, 4) == 4 ? 25 : 4),
                a -> F * (dims(a, 6, 4) + 2 * operand(a, 6, 10) + operand(a, 6, 14) + operand(a, 6, 18)));
        model("scale_copy", st, a -> l(a, 2), a -> F * 2 * l(a, 2));
        model("add_inplace", st, a -> l(a, 2), a -> F * 3 * l(a, 2));
        model("unary_forward", Structure.STREAM_FP64, a -> l(a, 2) * unary(i(a, 3)), a -> F * 2 * l(a, 2));
        model("unary_backward", Structure.STREAM_FP64, a -> l(a, 3) * (unary(i(a, 4)) + 1), a -> F * 3 * l(a, 3));
        // reductions: in0..3 at 2, flags at 6
        model("reduce_forward", Structure.STREAM_FP64, a -> dims(a, 2, 4), a -> F * (dims(a, 2, 4) + kept(a, 2, 6)));
        model("reduce_extreme_forward", st, a -> dims(a, 2, 4), a -> F * (dims(a, 2, 4) + kept(a, 2, 6)));
        model("reduce_extreme_backward", st, a -> dims(a, 4, 4),
                a -> F * (2 * dims(a, 4, 4) + 2 * kept(a, 4, 8)));
        model("reduce_backward", st, a -> i(a, 10) != 0 ? dims(a, 2, 4) : 0,
                a -> F * (dims(a, 2, 4) + kept(a, 2, 6)));
        // pad_forward(y, x, mode, value, in0..3, out0..3, begin0..3); pad_backward(dx, dy, mode, in, out, begin)
        model("pad_forward", st, a -> 0, a -> F * (dims(a, 4, 4) + dims(a, 8, 4)));
        model("pad_backward", st, a -> dims(a, 7, 4), a -> F * (dims(a, 3, 4) + dims(a, 7, 4)));
        // ---- shape.cu
        // strided_copy6(y, x, out0..5, strides0..5): a broadcast axis (stride 0) reads its source once
        model("strided_copy6", st, a -> 0, a -> {
            double read = 1;
            for (int d = 0; d < 6; d++) {
                read *= l(a, 8 + d) != 0 ? l(a, 2 + d) : 1;
            }
            return F * (dims(a, 2, 6) + read);
        });
        // resize_forward(y, x, ih, wh, iw, ww, planes, h, w, oh, ow): two taps per axis
        model("resize_forward", st, a -> 6 * l(a, 6) * l(a, 9) * l(a, 10),
                a -> F * (l(a, 6) * l(a, 9) * l(a, 10) + l(a, 6) * l(a, 7) * l(a, 8)));
        // resize_backward(dx, dy, ih, wh, iw, ww, loH, hiH, loW, hiW, planes, h, w, oh, ow)
        model("resize_backward", st, a -> 8 * l(a, 10) * l(a, 13) * l(a, 14),
                a -> F * (l(a, 10) * l(a, 11) * l(a, 12) + l(a, 10) * l(a, 13) * l(a, 14)));
        // gather_forward(y, x, ids, outer, count, dim, inner); gather_backward the same arguments
        model("gather_forward", st, a -> 0, a -> F * (2 * l(a, 3) * l(a, 4) * l(a, 6) + l(a, 4)));
        model("gather_backward", st, a -> l(a, 3) * l(a, 4) * l(a, 6),
                a -> F * (l(a, 3) * l(a, 4) * l(a, 6) + l(a, 3) * l(a, 5) * l(a, 6) + l(a, 4)));
        // ---- conv.cu: conv(y, x, w, bias, n, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        model("conv2d_forward", Structure.FP64_DIRECT, a -> convFlops(a, 4), a -> convBytes(a, 4, F));
        model("conv2d_forward_f64", Structure.FP64_DIRECT, a -> convFlops(a, 4), a -> convBytes(a, 4, D));
        // conv2d_forward_f32(y, x, w, bias, bound, count, relu, tf32, n, c, h, wd, m, groups, kh, kw, ..., oh, ow):
        // the same FLOPs (+ the ReLU), x, w, bias read and y written once (the tiles' reuse hits in shared memory).
        // With tf32 the operands are rounded in integer arithmetic as the tiles load and the products stay FFMA
        // (no tensor cores at sm_75): the same model
        for (String f32 : new String[] {"conv2d_forward_f32", "conv2d_forward_f32_narrow"}) {
            model(f32, Structure.FP32_TILED, a -> convFlops(a, 8) + (i(a, 6) != 0 ? outputs(a, 8) : 0),
                    a -> convBytes(a, 8, F) + (present(a, 4) ? F * l(a, 8) * l(a, 12) : 0));
        }
        // the repair: max |x| per plane, the bound per (image, output channel), the kink check per output;
        // the outputs a repair recomputes in double depend on the data and are not in the model
        model("plane_max_abs", st, a -> l(a, 2) * l(a, 3), a -> F * l(a, 2) * (l(a, 3) + 1));
        model("conv_plane_bound", st, a -> 2 * l(a, 4) * l(a, 6) * (l(a, 5) / l(a, 7)),
                a -> F * (l(a, 4) * l(a, 6) + l(a, 4) * l(a, 5) + l(a, 6) * l(a, 5) / l(a, 7) + l(a, 6)));
        model("conv_repair_kinks", st, a -> 4 * outputs(a, 10), a -> F * outputs(a, 10));
        // maxpool_repair_mark(mark, x, bound, relu, planes, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        model("maxpool_repair_mark", st, a -> l(a, 4) * l(a, 15) * l(a, 16) * l(a, 7) * l(a, 8),
                a -> F * l(a, 4) * (l(a, 5) * l(a, 6) + 1));
        model("conv_repair_marked", st, a -> outputs(a, 7), a -> F * outputs(a, 7));
        // sum_mark_kinks(mark, y, a, boundA, hwA, reluA, b, boundB, hwB, reluB, n, k0, k1, nk): y, a, b read
        model("sum_mark_kinks", st, a -> 12 * l(a, 10), a -> F * 3 * l(a, 10));
        // add_marked(y, mark, a, b, n): the mark read; the flagged few written
        model("add_marked", st, a -> l(a, 4), a -> F * l(a, 4));
        // im2col_input_grad(dx, dcols, n, c, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow): one add per column element
        model("im2col_input_grad", st, a -> l(a, 2) * l(a, 3) * l(a, 6) * l(a, 7) * l(a, 14) * l(a, 15),
                a -> F * (l(a, 2) * l(a, 3) * l(a, 4) * l(a, 5)
                        + l(a, 2) * l(a, 3) * l(a, 6) * l(a, 7) * l(a, 14) * l(a, 15)));
        // maxpool_forward(y, argmax, x, planes, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow): compares per tap
        model("maxpool_forward", st, a -> l(a, 3) * l(a, 14) * l(a, 15) * l(a, 6) * l(a, 7),
                a -> F * (l(a, 3) * l(a, 4) * l(a, 5) + 2 * l(a, 3) * l(a, 14) * l(a, 15)));
        // maxpool_backward(dx, dy, argmax, outputs): dy and argmax read, an atomic add into dx per output
        model("maxpool_backward", st, a -> l(a, 3), a -> F * 4 * l(a, 3));
        // avgpool_*(y|dx, x|dy, planes, h, wd, kh, kw, sh, sw, ph, pw, pb, pr, countPad, oh, ow)
        model("avgpool_forward", st, a -> l(a, 2) * l(a, 14) * l(a, 15) * (l(a, 5) * l(a, 6) + 1),
                a -> F * (l(a, 2) * l(a, 3) * l(a, 4) + l(a, 2) * l(a, 14) * l(a, 15)));
        model("avgpool_backward", st, a -> l(a, 2) * l(a, 14) * l(a, 15) * (l(a, 5) * l(a, 6) + 1),
                a -> F * (2 * l(a, 2) * l(a, 3) * l(a, 4) + l(a, 2) * l(a, 14) * l(a, 15)));
        model("global_avgpool_forward", st, a -> l(a, 2) * (l(a, 3) + 1), a -> F * l(a, 2) * (l(a, 3) + 1));
        model("global_avgpool_backward", st, a -> l(a, 2) * l(a, 3), a -> F * l(a, 2) * (l(a, 3) + 1));
        // channel_affine(y, x, scale, shift, n, channels, inner)
        model("channel_affine", st, a -> l(a, 4) * (present(a, 3) ? 2 : 1), a -> F * 2 * l(a, 4));
        // ---- head.cu: softmax(y, x, outer, n, inner), its backward (gx, gy, y, outer, n, inner)
        model("softmax_forward", st, a -> 5 * l(a, 2) * l(a, 3) * l(a, 4), a -> F * 2 * l(a, 2) * l(a, 3) * l(a, 4));
        model("softmax_backward", st, a -> 4 * l(a, 3) * l(a, 4) * l(a, 5), a -> F * 3 * l(a, 3) * l(a, 4) * l(a, 5));
        model("seed_one_hot", st, a -> 0, a -> F * (l(a, 2) * l(a, 3) + l(a, 2)));
        model("gather_target", st, a -> 0, a -> F * 3 * l(a, 3));
    }

    /** N·M·OH·OW of a conv kernel whose arguments (n, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow) start at {@code n}. */
    private static double outputs(Object[] a, int n) {
        return l(a, n) * l(a, n + 4) * l(a, n + 14) * l(a, n + 15);
    }

    /** 2 · N·M·OH·OW·(C/group)·kH·kW, plus the bias add per output (the bias pointer is argument 3). */
    private static double convFlops(Object[] a, int n) {
        double outputs = outputs(a, n);
        double macs = outputs * (l(a, n + 1) / l(a, n + 5)) * l(a, n + 6) * l(a, n + 7);
        return 2 * macs + (present(a, 3) ? outputs : 0);
    }

    /** x, w (and bias) read once, y written once in {@code out} bytes per element. */
    private static double convBytes(Object[] a, int n, double out) {
        double x = l(a, n) * l(a, n + 1) * l(a, n + 2) * l(a, n + 3);
        double w = l(a, n + 4) * (l(a, n + 1) / l(a, n + 5)) * l(a, n + 6) * l(a, n + 7);
        return F * (x + w + (present(a, 3) ? l(a, n + 4) : 0)) + out * outputs(a, n);
    }

    /** The cost of one launch of {@code kernel} with these arguments (the kernel's order); zero without a model. */
    public static Cost of(String kernel, Object... args) {
        Model m = MODELS.get(kernel);
        return m == null ? new Cost(0, 0) : new Cost(m.flops.applyAsDouble(args), m.bytes.applyAsDouble(args));
    }

    /** The structure class of a kernel or cuBLAS family ({@link Structure#UNKNOWN} without a model). */
    public static Structure structure(String family) {
        if (family.equals(SGEMM)) {
            return Structure.GEMM_FP32;
        }
        if (family.equals(DGEMM)) {
            return Structure.GEMM_FP64;
        }
        Model m = MODELS.get(family);
        return m == null ? Structure.UNKNOWN : m.structure;
    }

    /** Whether a kernel has a cost model. */
    public static boolean modelled(String kernel) {
        return MODELS.containsKey(kernel);
    }

    /** Counts one kernel launch (called by {@link Kernels} with the launch's arguments). */
    static void launched(String kernel, Object[] args) {
        Cost c = of(kernel, args);
        add(kernel, structure(kernel), 1, c.flops, c.bytes);
    }

    /**
     * The cost of a (strided-batched) GEMM C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C, {@code count}
     * times: 2mnk FLOPs each; A, B read, C written (and read when beta ≠ 0), an operand of batch
     * stride 0 read once for all.
     */
    public static Cost gemm(boolean f64, int m, int n, int k, float beta, int count, boolean sharedA,
            boolean sharedB) {
        double e = f64 ? D : F;
        double flops = 2.0 * m * n * k * count;
        double a = (double) m * k * (sharedA ? 1 : count);
        double b = (double) k * n * (sharedB ? 1 : count);
        double c = (double) m * n * count * (beta != 0f ? 2 : 1);
        return new Cost(flops, e * (a + b + c));
    }

    /** Counts one cuBLAS GEMM call (sgemm, or dgemm with {@code f64}). */
    static void gemmCalled(boolean f64, int m, int n, int k, float beta, int count, boolean sharedA,
            boolean sharedB) {
        Cost c = gemm(f64, m, n, k, beta, count, sharedA, sharedB);
        String family = f64 ? DGEMM : SGEMM;
        add(family, structure(family), 1, c.flops, c.bytes);
    }

    private static void add(String family, Structure s, long launches, double flops, double bytes) {
        Sum sum = SUMS.computeIfAbsent(family, f -> new Sum(s));
        synchronized (sum) {
            sum.launches += launches;
            sum.flops += flops;
            sum.bytes += bytes;
        }
    }

    /** Forgets every count. */
    public static void reset() {
        SUMS.clear();
    }

    /** The counts per family since the last reset, by family name. */
    public static Map<String, Totals> snapshot() {
        Map<String, Totals> out = new TreeMap<>();
        SUMS.forEach((f, s) -> {
            synchronized (s) {
                out.put(f, new Totals(f, s.structure, s.launches, s.flops, s.bytes));
            }
        });
        return out;
    }
}
