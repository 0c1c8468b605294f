package dev.kxai.backend.cuda;

import dev.kxai.exec.ShapeInference;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;

/**
 * 2-D convolution on the device (kernels/conv.cu). The forward runs in FP32 (conv2d_forward_f32,
 * an implicit GEMM with shared-memory tiles) where the model's decisions on its output can be
 * repaired on the device ({@link CudaOpSet#fp32}), else in double (conv2d_forward: the exact path,
 * also everywhere with {@link #exactPath}). A float output carries an {@link Exact}: the bound of
 * each (image, output channel) plane, γ₂₅₇·(|b| + Σ|w|·max|x|) as on the CPU
 * (backend/cpu/ConvOps), and what recomputing one output in double needs; the operators that
 * decide on it (ReLU, LeakyReLU, Clip-like kinks, max-pool windows) recompute, in place, the
 * outputs within their bound of the decision first, so every decision is the double kernel's.
 * The input gradient is col2im(Wᵀ·dY) with one strided-batched SGEMM per group (FP32; the
 * backward takes no decisions). The forward in double for the first-layer saving.
 */
final class ConvOps {
    /**
     * Process-wide: every convolution accumulates in double (conv2d_forward), as
     * {@code -Dkxai.exact=true} asks; for comparisons and tests ({@link CudaBackend#exactPath}).
     */
    static volatile boolean exactPath = Boolean.getBoolean("kxai.exact");

    /** Unit roundoff of float. */
    private static final double U = 0x1p-24;
    /** Products summed in float before the double accumulator (conv.cu KX_CT_KBLOCK; the CPU's K_BLOCK). */
    static final int K_BLOCK = 256;

    /**
     * What repairing a float convolution's output needs: the layer's input, weights and bias as
     * the kernel read them, the bound per (image, output channel), and whether the tensor holds
     * ReLU of the convolution (a fused or following ReLU: its zeros are exact).
     */
    sealed interface Bounds permits Exact, Sum {
    }

    record Exact(DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer bound, int n, int c, int h, int wd,
            int m, int groups, int[] g, boolean relu) implements Bounds {
        Exact relu(boolean r) {
            return new Exact(x, w, bias, bound, n, c, h, wd, m, groups, g, r);
        }

        long hw() {
            return (long) g[10] * g[11];
        }
    }

    /**
     * A residual sum a + b of one shape where an operand carries an {@link Exact} (the other is
     * taken as it is): the CPU's ExactDecisions.sum on the device.
     */
    record Sum(DTensor a, DTensor b) implements Bounds {
        /** The sum's bounds, when its operands are of its size and carry conv bounds or none. */
        static Sum of(DTensor a, DTensor b, DTensor y) {
            boolean any = a.exact() instanceof Exact || b.exact() instanceof Exact;
            boolean plain = !(a.exact() instanceof Sum) && !(b.exact() instanceof Sum);
            return any && plain && a.size() == y.size() && b.size() == y.size() ? new Sum(a, b) : null;
        }
    }

    /**
     * A convolution's parameters as the device runs them (a following batch norm folded in, see
     * {@link CudaOpSet}) and Σ over the taps of |w| per (output channel, input channel) for the bound.
     */
    record Weights(DTensor w, DTensor bias, DeviceBuffer absTaps) {
    }

    private final Kernels k;
    private final DenseOps dense;
    /** Outputs recomputed in double by the repair kernels (one int on the device, or null; tests read it). */
    private DeviceBuffer repaired;

    ConvOps(Kernels k, DenseOps dense) {
        this.k = k;
        this.dense = dense;
    }

    /** The device int the repair kernels count into (set once the model's weights are uploaded). */
    void counter(DeviceBuffer c) {
        repaired = c;
    }

    /** The count so far (the caller has the device). */
    int repairedCount() {
        return repaired == null ? 0 : Float.floatToRawIntBits(repaired.download(1)[0]);
    }

    private static Window window(Node n, Op.Conv op, DTensor x, DTensor w) {
        return ShapeInference.window(n, op, x.shape(), w.shape());
    }

    /** γ_{min(k, 256) + 1}, doubled (the CPU's ExactDecisions.gamma), as a float rounded up. */
    static float gamma(int kk) {
        return gamma(kk, false);
    }

    /** TF32's unit roundoff: 10 stored mantissa bits, to nearest. */
    static final double U_TF32 = 0x1p-11;

    /**
     * The plane bound's factor: with {@code tf32} the kernel reads both operands rounded to TF32, so
     * each product of rounded operands is within (2·u_t + u_t²)·|w·x| of the exact product (u_t = 2⁻¹¹)
     * and the float sums run over magnitudes up to (1 + u_t)² larger: γ_tf32 = 2·(2u_t + u_t²)·(1 + 10⁻⁶)
     * + γ·(1 + u_t)², the product term doubled like the float part, rounded up.
     */
    static float gamma(int kk, boolean tf32) {
        double nu = (Math.min(kk, K_BLOCK) + 1L) * U;
        double g = 2 * nu / (1 - nu);
        if (tf32) {
            g = 2 * (2 * U_TF32 + U_TF32 * U_TF32) * (1 + 1e-6) + g * (1 + U_TF32) * (1 + U_TF32);
        }
        return Math.nextUp((float) g);
    }

    /** System property: FP32 convolutions and cuBLAS GEMMs read their operands as TF32 (off by default). */
    static final String TF32_PROPERTY = "kxai.cuda.tf32";

    /** Process-wide TF32 opt-in ({@link CudaBackend#tf32}); never on the exact path. */
    static volatile boolean tf32 = Boolean.parseBoolean(System.getProperty(TF32_PROPERTY, "false").trim());

    /** Whether TF32 applies now: opted in and not on the exact path. */
    static boolean tf32() {
        return tf32 && !exactPath;
    }

    /** Σ_taps |w| per (output channel, input channel of its group), rounded up a little (the CPU's absTapSums). */
    static float[] absTapSums(float[] w, int m, int cg, int taps) {
        float[] a = new float[m * cg];
        for (int oc = 0; oc < m; oc++) {
            for (int ch = 0; ch < cg; ch++) {
                double sum = 0;
                int base = (oc * cg + ch) * taps;
                for (int t = 0; t < taps; t++) {
                    sum += Math.abs(w[base + t]);
                }
                a[oc * cg + ch] = (float) (sum * (1 + 1e-6));
            }
        }
        return a;
    }

    /**
     * The forward: in FP32 with bounds when {@code wts} is given and {@code fp32} (then
     * {@code relu} fuses the ReLU, its kink repaired in the epilogue), else the double kernel
     * (then {@code relu} runs the activation after it).
     */
    DTensor forward(DeviceScope s, Node n, Op.Conv op, DTensor[] in, Weights wts, boolean fp32, boolean relu,
            int[] outShape) {
        DTensor x = in[0];
        DTensor w = wts != null ? wts.w() : in[1];
        DTensor bias = wts != null ? wts.bias() : in.length > 2 ? in[2] : null;
        Window win = window(n, op, x, w);
        int[] g = Kernels.geometry(win);
        int imgs = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        DeviceBuffer b = bias != null ? bias.buf() : null;
        DeviceBuffer y = s.floats((long) imgs * m * win.outH() * win.outW());
        if (!fp32 || wts == null || exactPath) {
            k.conv2dForward(y, x.buf(), w.buf(), b, imgs, c, x.dim(2), x.dim(3), m, op.group(), g);
            if (relu) {
                k.actForward(y, y, (long) imgs * m * win.outH() * win.outW(), Kernels.ACT_RELU, 0f);
            }
            return new DTensor(outShape.clone(), y);
        }
        int kk = c / op.group() * win.kh() * win.kw();
        DeviceBuffer maxAbs = s.floats((long) imgs * c);
        DeviceBuffer bound = s.floats((long) imgs * m);
        k.planeMaxAbs(maxAbs, x.buf(), (long) imgs * c, (long) x.dim(2) * x.dim(3));
        boolean t = tf32();
        k.convPlaneBound(bound, maxAbs, wts.absTaps(), b, imgs, c, m, op.group(), kk, gamma(kk, t));
        k.conv2dForwardF32(y, x.buf(), w.buf(), b, bound, repaired, relu, t, imgs, c, x.dim(2), x.dim(3), m, op.group(),
                g);
        return new DTensor(outShape.clone(), y,
                new Exact(x.buf(), w.buf(), b, bound, imgs, c, x.dim(2), x.dim(3), m, op.group(), g, relu));
    }

    /** Before a decision at these kinks on t (in place): the elements within their bound recomputed in double. */
    void repairKinks(DeviceScope s, DTensor t, float... kinks) {
        if (t.exact() instanceof Sum sum && kinks.length > 0) {
            repairSum(s, t, sum, kinks);
            return;
        }
        if (!(t.exact() instanceof Exact e) || kinks.length == 0) {
            return;
        }
        for (int i = 0; i < kinks.length; i += 2) {
            float[] two = i + 1 < kinks.length ? new float[] {kinks[i], kinks[i + 1]} : new float[] {kinks[i]};
            k.convRepairKinks(t.buf(), repaired, e.x(), e.w(), e.bias(), e.bound(), two, e.relu(), e.n(), e.c(), e.h(),
                    e.wd(), e.m(), e.groups(), e.g());
        }
    }

    /**
     * A residual sum's elements near a kink: flagged (sum_mark_kinks), each bounded operand's flagged
     * values recomputed on a copy (conv_repair_marked), and the exact operands added (add_marked).
     */
    private void repairSum(DeviceScope s, DTensor t, Sum sum, float[] kinks) {
        long n = t.size();
        Exact ea = sum.a().exact() instanceof Exact x ? x : null;
        Exact eb = sum.b().exact() instanceof Exact x ? x : null;
        for (int i = 0; i < kinks.length; i += 2) {
            float[] two = i + 1 < kinks.length ? new float[] {kinks[i], kinks[i + 1]} : new float[] {kinks[i]};
            DeviceBuffer mark = s.ints(n);
            mark.zero();
            k.sumMarkKinks(mark, t.buf(), sum.a().buf(), ea == null ? null : ea.bound(), ea == null ? 1 : ea.hw(),
                    ea != null && ea.relu(), sum.b().buf(), eb == null ? null : eb.bound(), eb == null ? 1 : eb.hw(),
                    eb != null && eb.relu(), n, two);
            DeviceBuffer ta = exactCopy(s, sum.a(), ea, mark);
            DeviceBuffer tb = exactCopy(s, sum.b(), eb, mark);
            k.addMarked(t.buf(), mark, ta, tb, n);
        }
    }

    /** The operand, or (if it carries bounds) a copy with its flagged elements recomputed in double. */
    private DeviceBuffer exactCopy(DeviceScope s, DTensor operand, Exact e, DeviceBuffer mark) {
        if (e == null) {
            return operand.buf();
        }
        DeviceBuffer copy = s.floats(operand.size());
        copy.copyFrom(operand.buf(), operand.size());
        k.convRepairMarked(copy, repaired, mark, e.x(), e.w(), e.bias(), e.relu(), e.n(), e.c(), e.h(), e.wd(), e.m(),
                e.groups(), e.g());
        return copy;
    }

    /** Before a max-pool of {@code pool} geometry on t: the windows' near-ties recomputed in double. */
    void repairPoolTies(DeviceScope s, DTensor t, int[] pool) {
        if (!(t.exact() instanceof Exact e)) {
            return;
        }
        DeviceBuffer mark = s.ints(t.size());
        mark.zero();
        long planes = (long) e.n() * e.m();
        k.maxpoolRepairMark(mark, t.buf(), e.bound(), e.relu(), planes, t.dim(2), t.dim(3), pool);
        k.convRepairMarked(t.buf(), repaired, mark, e.x(), e.w(), e.bias(), e.relu(), e.n(), e.c(), e.h(), e.wd(), e.m(),
                e.groups(), e.g());
    }

    /** The layer's output at x in double (unrounded), of the planned output shape. */
    DTensor forwardF64(DeviceScope s, Node n, Op.Conv op, DTensor x, DTensor w, DTensor bias, int[] outShape) {
        Window win = window(n, op, x, w);
        int m = w.dim(0);
        DTensor y = new DTensor(outShape.clone(), s.doubles(dev.kxai.tensor.Shapes.size(outShape)));
        k.conv2dForwardF64(y.buf(), x.buf(), w.buf(), bias != null ? bias.buf() : null, x.dim(0), x.dim(1), x.dim(2),
                x.dim(3), m, op.group(), Kernels.geometry(win));
        return y;
    }

    /** dX = col2im(Wᵀ·dY): one strided-batched GEMM per group over the images, then a gather. */
    DTensor inputGrad(DeviceScope s, Node n, Op.Conv op, DTensor x, DTensor w, DTensor gy) {
        Window win = window(n, op, x, w);
        int imgs = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        long colsPerImage = (long) c * win.kh() * win.kw() * hw;
        DeviceBuffer dcols = s.floats(imgs * colsPerImage);
        for (int g = 0; g < groups; g++) {
            dense.gemmBatched(true, false, kk, hw, mg, 1f, w.buf().viewFloats((long) g * mg * kk, (long) mg * kk), kk, 0,
                    gy.buf().viewFloats((long) g * mg * hw, gy.size() - (long) g * mg * hw), hw, (long) m * hw, 0f,
                    dcols.viewFloats((long) g * kk * hw, imgs * colsPerImage - (long) g * kk * hw), hw, colsPerImage, imgs);
        }
        DTensor dx = new DTensor(x.shape(), s.floats(x.size()));
        k.im2colInputGrad(dx.buf(), dcols, imgs, c, x.dim(2), x.dim(3), Kernels.geometry(win));
        return dx;
    }
}
