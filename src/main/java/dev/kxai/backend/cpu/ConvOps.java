package dev.kxai.backend.cpu;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * 2-D convolution as im2col + GEMM, one image per task, images spread over the cores. The input
 * gradient is Wᵀ·dY folded back by col2im. Weights are constants: no weight gradient is formed.
 * <p>
 * Public, with {@link #im2col(float[], int, int, Window, double[])} and {@link #col2im}, only so
 * that the JMH kernel benchmarks ({@code bench/}) can time the real twins: exposed for benchmarks,
 * not part of kxai's API.
 */
public final class ConvOps {
    private ConvOps() {
    }

    static Window window(Node node, Op.Conv op, Tensor x, Tensor w) {
        if (x.rank() != 4 || w.rank() != 4) {
            throw new InvalidInputException("node '" + node.name() + "' (Conv): needs NCHW input and 4-D weights, got "
                    + Shapes.str(x.shape()) + " and " + Shapes.str(w.shape()));
        }
        int c = x.dim(1);
        if (c % op.group() != 0 || w.dim(0) % op.group() != 0 || w.dim(1) != c / op.group()) {
            throw new InvalidInputException("node '" + node.name() + "' (Conv): input " + Shapes.str(x.shape())
                    + " has " + c + " channels; weights " + Shapes.str(w.shape()) + " with group=" + op.group()
                    + " expect " + w.dim(1) * op.group());
        }
        int[] kernel = op.kernel() != null ? op.kernel() : new int[] {w.dim(2), w.dim(3)};
        return Window.of(node.name(), kernel, op.strides(), op.pads(), op.dilations(), op.autoPad(), false, x.dim(2),
                x.dim(3));
    }

    /**
     * The forward accumulates in double and rounds once, so each output is the correctly rounded
     * value whatever BLAS runs underneath. Float GEMMs round in their own summation order; two
     * outputs one ulp apart can then come out equal (or swapped), which flips a max-pool winner or
     * a ReLU and moves gradient to another pixel. Found on the tinyvgg reference: at α = 0.25 two
     * conv outputs 5.7e-9 apart tied in float and the path gradient left Captum's by 5e-4.
     * The backward takes no decisions, so it stays in float.
     */
    static Tensor forward(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias) {
        if (depthwiseFloat(op, x, w)) {
            return DepthwiseConv.forward(op, x, w, bias, window(node, op, x, w), false);
        }
        return asTensor(outputShape(node, op, x, w), forward(node, op, x, w, bias, false));
    }

    /**
     * A depthwise layer on the float path: {@link DepthwiseConv} (its own loop, in float, with the
     * same bounds and exact values). The exact path ({@code -Dkxai.exact=true}) keeps the double
     * loops below.
     */
    private static boolean depthwiseFloat(Op.Conv op, Tensor x, Tensor w) {
        return !ExactDecisions.exactPath && x.rank() == 4 && w.rank() == 4 && DepthwiseConv.takes(op, x, w);
    }

    /** The float paths' result: a Tensor from the float sgemm path (it carries bounds), or the exact path's floats. */
    private static Tensor asTensor(int[] shape, Object r) {
        return r instanceof Tensor t ? t : new Tensor(shape, (float[]) r);
    }

    /**
     * ReLU(conv(x)) in one pass: the ReLU is applied as the rounded sums are stored, which gives
     * exactly ReLU of {@link #forward}'s output without a second pass and tensor. For a Conv whose
     * only reader is a Relu (the runner decides).
     */
    static Tensor forwardRelu(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias) {
        Window win = window(node, op, x, w);
        if (depthwiseFloat(op, x, w)) {
            return DepthwiseConv.forward(op, x, w, bias, win, true);
        }
        return asTensor(outputShape(node, op, x, w),
                forward(node, op, x, w, bias, false, direct(w.dim(0) / op.group(), win), true));
    }

    /** The forward's double accumulators before rounding (the first-layer saving interpolates these). */
    static double[] forwardDouble(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias) {
        return (double[]) forward(node, op, x, w, bias, true);
    }

    static int[] outputShape(Node node, Op.Conv op, Tensor x, Tensor w) {
        Window win = window(node, op, x, w);
        return new int[] {x.dim(0), w.dim(0), win.outH(), win.outW()};
    }

    private static Object forward(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias, boolean asDouble) {
        Window win = window(node, op, x, w);
        return forward(node, op, x, w, bias, asDouble, direct(w.dim(0) / op.group(), win), false);
    }

    /** The forward on a chosen path (tests compare the two); direct needs {@link #direct}'s geometry. */
    static Object forward(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias, boolean asDouble, boolean direct) {
        return forward(node, op, x, w, bias, asDouble, direct, false);
    }

    private static Object forward(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias, boolean asDouble,
            boolean direct, boolean relu) {
        Window win = window(node, op, x, w);
        if (!asDouble && !direct && !ExactDecisions.exactPath) {
            return forwardFloat(op, x, w, bias, win, relu);
        }
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        int inPlane = x.dim(2) * x.dim(3);
        float[] xd = x.data();
        float[] wf = w.data();
        double[] wd = direct ? null : asDouble(wf);
        float[] bd = bias == null ? null : bias.data();
        float[] y = asDouble ? null : new float[n * m * hw];
        double[] yd = asDouble ? new double[n * m * hw] : null;
        // the direct path accumulates rows of the padded width, im2col + GEMM rows of outW
        int rowStride = direct ? paddedWidth(win) : win.outW();
        int accPlane = win.outH() * rowStride;
        Parallel.forEach(n, img -> {
            Scratch s = Scratch.get();
            double[] acc = s.doubles(0, mg * accPlane);
            for (int g = 0; g < groups; g++) {
                for (int oc = 0; oc < mg; oc++) {
                    java.util.Arrays.fill(acc, oc * accPlane, (oc + 1) * accPlane, bd == null ? 0.0 : bd[g * mg + oc]);
                }
                int xOff = (img * c + g * cg) * inPlane;
                if (direct) {
                    double[] xp = s.doubles(1, paddedInputLength(cg, win));
                    padForward(xd, xOff, cg, win, xp);
                    directForward(xp, wf, g * mg * kk, cg, mg, win, acc);
                } else {
                    double[] cols = s.doubles(1, kk * hw);
                    im2col(xd, xOff, cg, win, cols);
                    Blas.dgemm(false, false, mg, hw, kk, 1.0, wd, g * mg * kk, kk, cols, 0, hw, 1.0, acc, 0, hw);
                }
                int yOff = (img * m + g * mg) * hw;
                for (int row = 0; row < mg * win.outH(); row++) {
                    int src = row * rowStride;
                    int dst = yOff + row * win.outW();
                    if (asDouble) {
                        System.arraycopy(acc, src, yd, dst, win.outW());
                    } else {
                        SimdLoops.get().narrow(acc, src, y, dst, win.outW());
                        if (relu) {
                            SimdLoops.get().relu(y, y, dst, dst + win.outW());
                        }
                    }
                }
            }
        });
        return asDouble ? yd : y;
    }

    /**
     * The forward in float: im2col (none for a 1×1, stride-1, unpadded layer: the input planes are
     * the columns) + sgemm per image and group, at twice dgemm's rate. The result carries a bound
     * per image and output channel, γ_{k+1}·(|b| + Σ_c Σ_taps |w|·max|x_c|) (any summation order,
     * see {@link ExactDecisions}), and the exact path's value of each element on demand; a fused
     * ReLU recomputes the elements within their bound of 0 before it clamps.
     */
    private static Tensor forwardFloat(Op.Conv op, Tensor x, Tensor w, Tensor bias, Window win, boolean relu) {
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        int inPlane = x.dim(2) * x.dim(3);
        float[] xd = x.data();
        float[] wf = w.data();
        float[] bd = bias == null ? null : bias.data();
        float[] y = new float[n * m * hw];
        boolean pointwise = pointwise(win);
        float[] absTaps = ABS_TAPS.computeIfAbsent(wf, f -> absTapSums(f, m, cg, win.kh() * win.kw()));
        OneDnn.Layer dnnl = OneDnn.layer(wf, bd, false, win, c, m, groups);
        // oneDNN sums slices of the channels in float, each added to the output in float: a sum tree of
        // depth OneDnn.sumDepth; the sgemm path sums blocks of K_BLOCK products in float and adds the
        // blocks in double: γ_{K_BLOCK+1}. The + 1: the bias.
        boolean onDnnl = dnnl != null && dnnl.forward(n, xd, y);
        int blocks = onDnnl ? 1 : (kk + K_BLOCK - 1) / K_BLOCK;
        float[] wBlocks = blocks > 1 ? K_BLOCKED.computeIfAbsent(wf, f -> kBlocked(f, m, kk)) : null;
        double gamma = ExactDecisions.gamma(
                (onDnnl ? OneDnn.sumDepth(c, groups, win.kh() * win.kw()) : Math.min(kk, K_BLOCK)) + 1L);
        float[] planeBound = new float[n * m];
        // a 1×1 layer also gets a bound per position, from max_c |x_c(p)|: tighter where a position's
        // channels are small, and 0 (exact) where they are all 0 (sparse ReLU maps, zero biases)
        float[] posMax = pointwise ? new float[n * groups * hw] : null;
        float[] rowAbs = pointwise ? ROW_ABS.computeIfAbsent(wf, f -> rowAbsSums(absTaps, m, cg)) : null;
        Exact exact = new Exact(xd, c, x.dim(2), x.dim(3), wf, bd, win, groups, m, planeBound, relu, posMax, rowAbs,
                (float) (gamma * (1 + 1e-6)));
        double[] maxAbs = new double[n * c];
        Parallel.forEach(n, img -> {
            Scratch s = Scratch.get();
            double[] acc = blocks > 1 ? s.doubles(0, mg * hw) : null;
            for (int g = 0; g < groups; g++) {
                int xOff = (img * c + g * cg) * inPlane;
                int yOff = (img * m + g * mg) * hw;
                if (!onDnnl) {
                    float[] cols = pointwise ? xd : s.floats(0, kk * hw);
                    int colsOff = pointwise ? xOff : 0;
                    if (!pointwise) {
                        im2col(xd, xOff, cg, win, cols);
                    }
                    if (blocks == 1) {
                        gemmBlock(wf, g * mg * kk, kk, cols, colsOff, hw, mg, kk, bd, g * mg, y, yOff);
                    } else {
                        // each block of K_BLOCK products summed by sgemm, the blocks added in double
                        float[] part = s.floats(1, mg * hw);
                        for (int oc = 0; oc < mg; oc++) {
                            java.util.Arrays.fill(acc, oc * hw, (oc + 1) * hw, bd == null ? 0.0 : bd[g * mg + oc]);
                        }
                        for (int k0 = 0; k0 < kk; k0 += K_BLOCK) {
                            int kb = Math.min(K_BLOCK, kk - k0);
                            Blas.gemm(false, false, mg, hw, kb, 1f, wBlocks, m * k0 + g * mg * kb, kb, cols,
                                    colsOff + k0 * hw, hw, 0f, part, 0, hw);
                            SimdLoops.get().addTo(part, 0, acc, 0, mg * hw);
                        }
                        SimdLoops.get().narrow(acc, 0, y, yOff, mg * hw);
                    }
                }
                for (int ch = 0; ch < cg; ch++) {
                    maxAbs[img * c + g * cg + ch] =
                            SimdLoops.get().maxAbs(xd, xOff + ch * inPlane, xOff + (ch + 1) * inPlane);
                }
                if (posMax != null) {
                    int pOff = (img * groups + g) * hw;
                    for (int ch = 0; ch < cg; ch++) {
                        SimdLoops.get().maxAbsInto(xd, xOff + ch * inPlane, posMax, pOff, hw);
                    }
                }
            }
        });
        // Σ_c Σ_taps |w|·max|x_c| per image and output channel: one double GEMM [n, c] × [c, m] (a
        // loop per image was m·c multiply-adds each, 1M for resnet50's wide 1×1 layers)
        double[] sums = new double[n * m];
        if (groups == 1) {
            double[] absTapsD = ABS_TAPS_D.computeIfAbsent(wf, f -> toDouble(absTaps));
            Blas.dgemm(false, true, n, m, c, 1.0, maxAbs, 0, c, absTapsD, 0, c, 0.0, sums, 0, m);
        } else {
            for (int img = 0; img < n; img++) {
                for (int oc = 0; oc < m; oc++) {
                    int g = oc / mg;
                    double sum = 0;
                    for (int ch = 0; ch < cg; ch++) {
                        sum += absTaps[oc * cg + ch] * maxAbs[img * c + g * cg + ch];
                    }
                    sums[img * m + oc] = sum;
                }
            }
        }
        for (int img = 0; img < n; img++) {
            boolean nan = false;
            for (int ch = 0; ch < c; ch++) {
                nan |= maxAbs[img * c + ch] != maxAbs[img * c + ch];
            }
            for (int oc = 0; oc < m; oc++) {
                double sum = (bd == null ? 0 : Math.abs(bd[oc])) + sums[img * m + oc];
                // a NaN input decides nothing (whatever the BLAS made of NaN · 0); no nonzero term: every
                // partial sum is 0, exactly (zero baselines, zero biases); else γ·S plus what underflow
                // can lose, (k+1) halves of float's smallest step
                planeBound[img * m + oc] = nan ? Float.NaN
                        : sum > 0 ? (float) (gamma * sum * (1 + 1e-6) + (kk + 1) * 0x1p-149) : 0f;
            }
        }
        if (relu) {
            Parallel.forEach(n, img -> {
                int yOff = img * m * hw;
                exact.repairKinks(y, yOff, yOff + m * hw, RELU_KINK);
                SimdLoops.get().relu(y, y, yOff, yOff + m * hw);
            });
        }
        return new Tensor(new int[] {n, m, win.outH(), win.outW()}, y).withExact(exact);
    }

    /**
     * Products per sgemm call of the float forward. Each call's sum of at most K_BLOCK products
     * lies within γ_{K_BLOCK+1}·Σ|terms| of the exact one whatever its order; the calls' results are
     * added in double. The bound is then set by K_BLOCK, not by the layer's k (4608 in resnet18's
     * last stage), and so is the share of outputs near a decision that must be recomputed.
     */
    static final int K_BLOCK = 256;

    /**
     * The weights [m, kk] as consecutive column blocks [m, K_BLOCK] (the last one narrower), each
     * a dense matrix: BLAS bindings check a sub-matrix's extent as offset + lda·rows, which a
     * column block of the row-major weights would overrun.
     */
    private static float[] kBlocked(float[] w, int m, int kk) {
        float[] out = new float[m * kk];
        for (int k0 = 0; k0 < kk; k0 += K_BLOCK) {
            int kb = Math.min(K_BLOCK, kk - k0);
            for (int oc = 0; oc < m; oc++) {
                System.arraycopy(w, oc * kk + k0, out, m * k0 + oc * kb, kb);
            }
        }
        return out;
    }

    private static final java.util.Map<float[], float[]> K_BLOCKED =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

    /** One sgemm over all of k into y (bias first): layers with k ≤ K_BLOCK. */
    private static void gemmBlock(float[] w, int wOff, int lda, float[] cols, int colsOff, int hw, int mg, int kk,
            float[] bias, int oc0, float[] y, int yOff) {
        float beta = 0f;
        if (bias != null) {
            for (int oc = 0; oc < mg; oc++) {
                java.util.Arrays.fill(y, yOff + oc * hw, yOff + (oc + 1) * hw, bias[oc0 + oc]);
            }
            beta = 1f;
        }
        Blas.gemm(false, false, mg, hw, kk, 1f, w, wOff, lda, cols, colsOff, hw, beta, y, yOff, hw);
    }

    private static final float[] RELU_KINK = {0f};

    /** A 1×1, stride-1, unpadded window: im2col's columns would be the input planes themselves. */
    static boolean pointwise(Window win) {
        return win.kh() == 1 && win.kw() == 1 && win.sh() == 1 && win.sw() == 1 && win.padTop() == 0
                && win.padLeft() == 0 && win.padBottom() == 0 && win.padRight() == 0;
    }

    /** Σ over the taps of |w| per (output channel, input channel of its group), once per weight array. */
    private static float[] absTapSums(float[] w, int m, int cg, int taps) {
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

    /** Σ_c of {@link #absTapSums} per output channel: ||w_oc||₁. */
    private static float[] rowAbsSums(float[] absTaps, int m, int cg) {
        float[] r = new float[m];
        for (int oc = 0; oc < m; oc++) {
            double sum = 0;
            for (int ch = 0; ch < cg; ch++) {
                sum += absTaps[oc * cg + ch];
            }
            r[oc] = (float) (sum * (1 + 1e-6));
        }
        return r;
    }

    private static final java.util.Map<float[], float[]> ROW_ABS =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

    private static final java.util.Map<float[], double[]> ABS_TAPS_D =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

    private static final java.util.Map<float[], float[]> ABS_TAPS =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

    /**
     * A float convolution's bounds (per image and output channel, plus the rounding of the value
     * itself) and the exact path's value of one output: the double sum of bias and products, rounded
     * once (ReLU'd for a fused Conv+Relu).
     */
    static final class Exact implements dev.kxai.tensor.ExactValues {
        private final float[] x;
        private final int c;
        private final int inH;
        private final int inW;
        private final float[] w;
        private final float[] b;
        private final Window win;
        private final int m;
        private final int cg;
        private final int mg;
        private final int hw;
        private final float[] planeBound;
        private final boolean relu;
        private final float[] posMax;
        private final float[] rowAbs;
        private final float gamma;
        private final int groups;

        Exact(float[] x, int c, int inH, int inW, float[] w, float[] b, Window win, int groups, int m,
                float[] planeBound, boolean relu, float[] posMax, float[] rowAbs, float gamma) {
            this.x = x;
            this.c = c;
            this.inH = inH;
            this.inW = inW;
            this.w = w;
            this.b = b;
            this.win = win;
            this.m = m;
            this.cg = c / groups;
            this.mg = m / groups;
            this.hw = win.outH() * win.outW();
            this.planeBound = planeBound;
            this.relu = relu;
            this.posMax = posMax;
            this.rowAbs = rowAbs;
            this.gamma = gamma;
            this.groups = groups;
        }

        /** The sum part of element i's bound: the plane's, or the smaller position bound of a 1×1 layer. */
        private float sumBound(int i, float plane) {
            if (posMax == null) {
                return plane;
            }
            int pl = i / hw;
            int img = pl / m;
            int oc = pl - img * m;
            double terms = (b == null ? 0 : Math.abs(b[oc])) + (double) rowAbs[oc] * posMax[(img * groups + oc / mg) * hw + i % hw];
            return terms > 0 ? Math.min(plane, (float) (gamma * terms + (cg + 1) * 0x1p-149)) : 0f;
        }

        @Override
        public float bound(int i, float value) {
            if (relu && value == 0f) {
                // a ReLU'd 0 is exact: its input was below −bound, or was recomputed before the clamp
                return 0f;
            }
            float s = sumBound(i, planeBound[i / hw]);
            return s > 0f ? s + (float) (2 * ExactDecisions.U * Math.abs(value)) : 0f;
        }

        /**
         * {@link ExactDecisions#repairKinks} for one kink, plane by plane: the bound's per-plane part
         * read once per plane rather than divided out per element.
         */
        void repairKinks(float[] y, int from, int to, float[] kinks) {
            long recomputed = 0;
            for (int p0 = from; p0 < to; ) {
                int plane = p0 / hw;
                int end = Math.min(to, (plane + 1) * hw);
                float pb = planeBound[plane];
                if (!(pb > 0f)) {
                    p0 = end; // the plane's values are exact (or its bound NaN: nothing to decide on)
                    continue;
                }
                if (kinks.length == 1) {
                    // one kink (ReLU's 0): a SIMD scan for the few candidates. |v| ≤ |k| + |v − k| makes
                    // |v − k| ≤ (pb + 2u·|k|) / (1 − 2u) hold wherever the test below can; the margin
                    // covers the roundings of this threshold
                    float k = kinks[0];
                    float t = Math.nextUp((float) ((pb + 2 * ExactDecisions.U * Math.abs(k))
                            / (1 - 2 * ExactDecisions.U) * (1 + 1e-6)));
                    SimdLoops loops = SimdLoops.get();
                    for (int i = loops.nextWithin(y, p0, end, k, t); i < end; i = loops.nextWithin(y, i + 1, end, k, t)) {
                        recomputed += repairOne(y, i, kinks, pb);
                    }
                } else {
                    for (int i = p0; i < end; i++) {
                        recomputed += repairOne(y, i, kinks, pb);
                    }
                }
                p0 = end;
            }
            ExactDecisions.CHECKED.add(to - from);
            if (recomputed > 0) {
                ExactDecisions.RECOMPUTED.add(recomputed);
            }
        }

        @Override
        public float maxBound(float[] data, int from, int to) {
            // bound(i, v) ≤ planeBound + 2u·|v| (the position bound of a 1×1 layer is never larger)
            float pb = 0f;
            for (int p = from / hw; p * hw < to; p++) {
                float b = planeBound[p];
                if (b != b) {
                    return Float.NaN;
                }
                pb = Math.max(pb, b);
            }
            if (!(pb > 0f)) {
                return 0f; // every element exact
            }
            float maxAbs = SimdLoops.get().maxAbs(data, from, to);
            return maxAbs != maxAbs ? Float.NaN : (float) ((pb + 2 * ExactDecisions.U * maxAbs) * (1 + 1e-6));
        }

        @Override
        public boolean knowsMaxBound() {
            return true;
        }

        /** Element i recomputed (1) if within its bound of a kink, else left (0). */
        private int repairOne(float[] y, int i, float[] kinks, float pb) {
            float v = y[i];
            float dist = ExactDecisions.distance(v, kinks);
            if (dist <= pb + (float) (2 * ExactDecisions.U) * Math.abs(v) && (posMax == null || near(i, v, dist, pb))) {
                y[i] = exact(i);
                return 1;
            }
            return 0;
        }

        /** A 1×1 layer's element flagged by its plane's bound: flagged by its position's bound too? */
        private boolean near(int i, float v, float dist, float pb) {
            float s = sumBound(i, pb);
            return s > 0f && dist <= s + (float) (2 * ExactDecisions.U) * Math.abs(v);
        }

        @Override
        public float exact(int i) {
            int plane = i / hw;
            int img = plane / m;
            int oc = plane % m;
            int pos = i % hw;
            int oy = pos / win.outW();
            int ox = pos % win.outW();
            int g = oc / mg;
            int kh = win.kh();
            int kw = win.kw();
            // the window's rows and columns inside the input, once for all channels
            int ki0 = 0;
            int ki1 = 0;
            int kj0 = 0;
            int kj1 = 0;
            int iy0 = oy * win.sh() - win.padTop();
            int ix0 = ox * win.sw() - win.padLeft();
            while (ki0 < kh && iy0 + ki0 * win.dh() < 0) {
                ki0++;
            }
            for (ki1 = ki0; ki1 < kh && iy0 + ki1 * win.dh() < inH; ki1++) {
                // rows inside
            }
            while (kj0 < kw && ix0 + kj0 * win.dw() < 0) {
                kj0++;
            }
            for (kj1 = kj0; kj1 < kw && ix0 + kj1 * win.dw() < inW; kj1++) {
                // columns inside
            }
            // one partial sum per channel, added after: the channels' sums are independent chains
            // (the out-of-order core overlaps them), where one accumulator would serialise every add.
            // Any order of double sums rounds to the same float but in astronomically rare cases.
            double acc = b == null ? 0 : b[oc];
            int inPlane = inH * inW;
            int taps = kh * kw;
            int xPlane = (img * c + g * cg) * inPlane + iy0 * inW + ix0;
            int wBase = oc * cg * taps;
            for (int ch = 0; ch < cg; ch++, xPlane += inPlane, wBase += taps) {
                double part = 0;
                for (int ki = ki0; ki < ki1; ki++) {
                    int xr = xPlane + ki * win.dh() * inW;
                    int wr = wBase + ki * kw;
                    for (int kj = kj0; kj < kj1; kj++) {
                        part += (double) w[wr + kj] * x[xr + kj * win.dw()];
                    }
                }
                acc += part;
            }
            float v = (float) acc;
            return relu && !(v > 0) ? 0f : v;
        }
    }

    /**
     * Direct convolution (no im2col) when a group has few output channels: a GEMM with M that
     * small runs far below the BLAS's peak, and im2col would write kh·kw copies of the input for
     * it. Only stride 1 with pads inside the kernel's extent (the common "same" 3×3 layer); other
     * geometries take im2col + GEMM.
     */
    static boolean direct(int outChannelsPerGroup, Window w) {
        int ekh = (w.kh() - 1) * w.dh();
        int ekw = (w.kw() - 1) * w.dw();
        return outChannelsPerGroup <= DIRECT_MAX_CHANNELS && w.sh() == 1 && w.sw() == 1 && w.padTop() <= ekh
                && w.padBottom() <= ekh && w.padLeft() <= ekw && w.padRight() <= ekw;
    }

    /** Output channels per group up to which the direct convolution beats im2col + GEMM (tinyvgg: 10). */
    static final int DIRECT_MAX_CHANNELS = 16;

    /** Width of the direct forward's padded input planes: outW + (kw − 1)·dw (= inW + both pads). */
    public static int paddedWidth(Window w) {
        return w.outW() + (w.kw() - 1) * w.dw();
    }

    /** Height of the direct forward's padded input planes: outH + (kh − 1)·dh. */
    public static int paddedHeight(Window w) {
        return w.outH() + (w.kh() - 1) * w.dh();
    }

    /**
     * Elements past the padded planes that the tap loops may read: they run their vector loop
     * over whole vectors into the last row's scratch columns instead of a scalar tail.
     */
    static final int SIMD_SLACK = 64;

    /** Length of the buffer {@link #padForward} fills (with the slack the tap loops read). */
    public static int paddedInputLength(int channels, Window w) {
        return channels * paddedWidth(w) * paddedHeight(w) + SIMD_SLACK;
    }

    /** Length of the buffer {@link #padBackward} fills (with the slack the tap loops read). */
    public static int paddedGradientLength(int channels, Window w) {
        return channels * (w.inW() + (w.kw() - 1) * w.dw()) * (w.inH() + (w.kh() - 1) * w.dh()) + SIMD_SLACK;
    }

    /**
     * The span of a tap loop over a plane of the padded width, rounded up to whole vectors where
     * the accumulator plane has the room (the extra elements land in scratch columns).
     */
    private static int vectorSpan(int span, int accPlane) {
        int rounded = (span + 15) / 16 * 16;
        return rounded <= accPlane && rounded - span <= SIMD_SLACK ? rounded : span;
    }

    /**
     * The input planes of one image and group, zero-padded to {@link #paddedHeight} × {@link #paddedWidth}
     * and widened to double, so that with stride 1 output (oy, ox) reads padded (oy + i·dh, ox + j·dw).
     */
    public static void padForward(float[] x, int xOff, int channels, Window w, double[] xp) {
        int wp = paddedWidth(w);
        int plane = wp * paddedHeight(w);
        java.util.Arrays.fill(xp, 0, channels * plane, 0.0);
        for (int ch = 0; ch < channels; ch++) {
            for (int y = 0; y < w.inH(); y++) {
                int src = xOff + (ch * w.inH() + y) * w.inW();
                int dst = ch * plane + (y + w.padTop()) * wp + w.padLeft();
                SimdLoops.get().widen(x, src, xp, dst, w.inW());
            }
        }
    }

    /**
     * acc[oc, oy, ox] += Σ_{ic, i, j} w[oc, ic, i, j] · xp[ic, oy + i·dh, ox + j·dw] for one image and
     * group (stride 1), in double: each product of two floats is exact in double, so the result is
     * that of im2col + dgemm to within double rounding, far below the final float rounding. The
     * accumulator has the padded width (columns ≥ outW are scratch), which makes every tap a shift
     * of one long loop over the plane; {@link SimdLoops} adds all cg·kh·kw taps of an output plane
     * in one pass.
     */
    public static void directForward(double[] xp, float[] w, int wOff, int cg, int mg, Window win, double[] acc) {
        int wp = paddedWidth(win);
        int plane = wp * paddedHeight(win);
        int span = (win.outH() - 1) * wp + win.outW();
        int accPlane = win.outH() * wp;
        int khw = win.kh() * win.kw();
        int[] off = new int[cg * khw];
        for (int ic = 0; ic < cg; ic++) {
            for (int i = 0; i < win.kh(); i++) {
                for (int j = 0; j < win.kw(); j++) {
                    off[ic * khw + i * win.kw() + j] = ic * plane + i * win.dh() * wp + j * win.dw();
                }
            }
        }
        // taps[t·mg + oc]: every output channel of the group in one call, sharing the loads of x
        double[] taps = new double[cg * khw * mg];
        for (int oc = 0; oc < mg; oc++) {
            for (int t = 0; t < cg * khw; t++) {
                taps[t * mg + oc] = w[wOff + oc * cg * khw + t];
            }
        }
        SimdLoops.get().add(acc, 0, accPlane, mg, xp, 0, vectorSpan(span, accPlane), taps, off);
    }

    /**
     * The output gradient of one image and group laid out for the adjoint: zero-padded planes
     * of (inH + ekh) × (inW + ekw) with g[oc, oy, ox] at (oy + ekh − padTop, ox + ekw − padLeft), so
     * that dx[ic, iy, ix] = Σ w[oc, ic, i, j] · gp[oc, iy + (kh−1−i)·dh, ix + (kw−1−j)·dw].
     */
    public static void padBackward(float[] g, int gOff, int channels, Window w, float[] gp) {
        int ekh = (w.kh() - 1) * w.dh();
        int ekw = (w.kw() - 1) * w.dw();
        int wg = w.inW() + ekw;
        int plane = wg * (w.inH() + ekh);
        java.util.Arrays.fill(gp, 0, channels * plane, 0f);
        for (int ch = 0; ch < channels; ch++) {
            for (int oy = 0; oy < w.outH(); oy++) {
                System.arraycopy(g, gOff + (ch * w.outH() + oy) * w.outW(), gp,
                        ch * plane + (oy + ekh - w.padTop()) * wg + ekw - w.padLeft(), w.outW());
            }
        }
    }

    /**
     * The adjoint of {@link #directForward} in float (the backward takes no decisions, so float
     * is enough): dxp[ic, iy, ix] += Σ_{oc, i, j} w[oc, ic, i, j] · gp[oc, iy + (kh−1−i)·dh,
     * ix + (kw−1−j)·dw] over a plane of the padded width; the caller copies columns < inW out.
     */
    public static void directBackward(float[] gp, float[] w, int wOff, int cg, int mg, Window win, float[] dxp) {
        int ekh = (win.kh() - 1) * win.dh();
        int ekw = (win.kw() - 1) * win.dw();
        int wg = win.inW() + ekw;
        int plane = wg * (win.inH() + ekh);
        int span = (win.inH() - 1) * wg + win.inW();
        int dxPlane = win.inH() * wg;
        int khw = win.kh() * win.kw();
        int[] off = new int[mg * khw];
        for (int oc = 0; oc < mg; oc++) {
            for (int i = 0; i < win.kh(); i++) {
                for (int j = 0; j < win.kw(); j++) {
                    off[oc * khw + i * win.kw() + j] = oc * plane + (win.kh() - 1 - i) * win.dh() * wg
                            + (win.kw() - 1 - j) * win.dw();
                }
            }
        }
        // taps[t·cg + ic] with t = (oc, i, j): every input channel of the group in one call
        float[] taps = new float[mg * khw * cg];
        for (int ic = 0; ic < cg; ic++) {
            for (int oc = 0; oc < mg; oc++) {
                for (int k = 0; k < khw; k++) {
                    taps[(oc * khw + k) * cg + ic] = w[wOff + (oc * cg + ic) * khw + k];
                }
            }
        }
        SimdLoops.get().add(dxp, 0, dxPlane, cg, gp, 0, vectorSpan(span, dxPlane), taps, off);
    }

    /**
     * Weights widened to double, once per weight array rather than per call (resnet18's convolution
     * weights are 11 M floats). Keyed by identity; the entry goes with the model's weights.
     */
    private static final java.util.Map<float[], double[]> WIDENED =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

    private static double[] asDouble(float[] f) {
        return WIDENED.computeIfAbsent(f, ConvOps::toDouble);
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    static Tensor inputGradient(Node node, Op.Conv op, Tensor x, Tensor w, Tensor gOut) {
        Window win = window(node, op, x, w);
        if (DepthwiseConv.takes(op, x, w)) {
            // the backward is float on every path (it takes no decisions): the depthwise loop under
            // -Dkxai.exact=true too
            return DepthwiseConv.inputGradient(x, w, gOut, win);
        }
        return inputGradient(node, op, x, w, gOut, direct(w.dim(0) / op.group(), win));
    }

    /** The input gradient on a chosen path (tests compare the two). */
    static Tensor inputGradient(Node node, Op.Conv op, Tensor x, Tensor w, Tensor gOut, boolean direct) {
        Window win = window(node, op, x, w);
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        int inPlane = x.dim(2) * x.dim(3);
        float[] wd = w.data();
        float[] g = gOut.data();
        float[] dx = new float[x.size()];
        int ekh = (win.kh() - 1) * win.dh();
        int ekw = (win.kw() - 1) * win.dw();
        int wg = win.inW() + ekw;
        // oneDNN's backward kernels work on blocks of 16 channels: a first layer's 3 run 2x slower there
        // than as sgemm + col2im
        if (!direct && !ExactDecisions.exactPath && c >= 16) {
            OneDnn.Layer dnnl = OneDnn.layer(wd, null, true, win, c, m, groups);
            if (dnnl != null && dnnl.backwardData(n, g, dx)) {
                return new Tensor(x.shape(), dx);
            }
        }
        Parallel.forEach(n, img -> {
            Scratch s = Scratch.get();
            for (int gr = 0; gr < groups; gr++) {
                int gOff = (img * m + gr * mg) * hw;
                int dxOff = (img * c + gr * cg) * inPlane;
                if (direct) {
                    float[] gp = s.floats(0, paddedGradientLength(mg, win));
                    padBackward(g, gOff, mg, win, gp);
                    float[] dxp = s.floats(1, cg * win.inH() * wg);
                    java.util.Arrays.fill(dxp, 0, cg * win.inH() * wg, 0f);
                    directBackward(gp, wd, gr * mg * kk, cg, mg, win, dxp);
                    for (int row = 0; row < cg * win.inH(); row++) {
                        System.arraycopy(dxp, row * wg, dx, dxOff + row * win.inW(), win.inW());
                    }
                } else if (pointwise(win)) {
                    // a 1×1, stride-1, unpadded layer's columns are the input planes: dX_g = W_gᵀ · dY_g directly
                    Blas.gemm(true, false, kk, hw, mg, 1f, wd, gr * mg * kk, kk, g, gOff, hw, 0f, dx, dxOff, hw);
                } else {
                    float[] cols = s.floats(0, kk * hw);
                    // dcols[kk, hw] = W_gᵀ[kk, mg] · dY_g[mg, hw]
                    Blas.gemm(true, false, kk, hw, mg, 1f, wd, gr * mg * kk, kk, g, gOff, hw, 0f, cols, 0, hw);
                    col2im(cols, cg, win, dx, dxOff);
                }
            }
        });
        return new Tensor(x.shape(), dx);
    }

    /** Gradient of a bias computed from the input: dY summed over images and positions per channel. */
    static Tensor biasGradient(Tensor gOut) {
        int n = gOut.dim(0);
        int m = gOut.dim(1);
        int hw = gOut.size() / Math.max(1, n * m);
        float[] g = gOut.data();
        float[] d = new float[m];
        for (int i = 0; i < g.length; i++) {
            d[(i / hw) % m] += g[i];
        }
        return new Tensor(new int[] {m}, d);
    }

    /**
     * cols[(ch·kh + i)·kw + j, oy·outW + ox] = x[ch, oy·sh − pt + i·dh, ox·sw − pl + j·dw] (0 outside),
     * widened to double for the forward's dgemm. Each output row copies its in-range columns and
     * zero-fills the rest, with no test per element.
     */
    public static void im2col(float[] x, int xOff, int channels, Window w, double[] cols) {
        int len = channels * w.kh() * w.kw() * w.outH() * w.outW();
        float[] f = Scratch.get().floats(0, len);
        im2col(x, xOff, channels, w, f);
        SimdLoops.get().widen(f, 0, cols, 0, len);
    }

    /** im2col into float columns (the forward's sgemm). */
    public static void im2col(float[] x, int xOff, int channels, Window w, float[] cols) {
        int h = w.inH();
        int wid = w.inW();
        int oh = w.outH();
        int ow = w.outW();
        int sw = w.sw();
        int row = 0;
        for (int ch = 0; ch < channels; ch++) {
            int plane = xOff + ch * h * wid;
            for (int i = 0; i < w.kh(); i++) {
                for (int j = 0; j < w.kw(); j++, row++) {
                    int base = row * oh * ow;
                    int shift = j * w.dw() - w.padLeft();
                    int lo = Math.min(ow, firstInside(shift, sw));
                    int hi = Math.max(lo, endInside(shift, sw, wid, ow));
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * w.sh() - w.padTop() + i * w.dh();
                        int dst = base + oy * ow;
                        if (iy < 0 || iy >= h) {
                            java.util.Arrays.fill(cols, dst, dst + ow, 0f);
                            continue;
                        }
                        int src = plane + iy * wid + shift;
                        java.util.Arrays.fill(cols, dst, dst + lo, 0f);
                        if (sw == 1) {
                            for (int ox = lo; ox < hi; ox++) {
                                cols[dst + ox] = x[src + ox];
                            }
                        } else {
                            for (int ox = lo; ox < hi; ox++) {
                                cols[dst + ox] = x[src + ox * sw];
                            }
                        }
                        java.util.Arrays.fill(cols, dst + hi, dst + ow, 0f);
                    }
                }
            }
        }
    }

    /** The first output column whose input column ox·stride + shift is ≥ 0. */
    private static int firstInside(int shift, int stride) {
        return shift >= 0 ? 0 : (-shift + stride - 1) / stride;
    }

    /** One past the last output column (at most outW) whose input column ox·stride + shift is &lt; inW. */
    private static int endInside(int shift, int stride, int inW, int outW) {
        int last = inW - 1 - shift;
        return last < 0 ? 0 : Math.min(outW, last / stride + 1);
    }

    /** The adjoint of im2col: adds each column entry back to the input element it was read from. */
    public static void col2im(float[] cols, int channels, Window w, float[] dx, int dxOff) {
        int h = w.inH();
        int wid = w.inW();
        int oh = w.outH();
        int ow = w.outW();
        int sw = w.sw();
        int row = 0;
        for (int ch = 0; ch < channels; ch++) {
            int plane = dxOff + ch * h * wid;
            for (int i = 0; i < w.kh(); i++) {
                for (int j = 0; j < w.kw(); j++, row++) {
                    int base = row * oh * ow;
                    int shift = j * w.dw() - w.padLeft();
                    int lo = Math.min(ow, firstInside(shift, sw));
                    int hi = Math.max(lo, endInside(shift, sw, wid, ow));
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * w.sh() - w.padTop() + i * w.dh();
                        if (iy < 0 || iy >= h) {
                            continue;
                        }
                        int dst = plane + iy * wid + shift;
                        int src = base + oy * ow;
                        if (sw == 1) {
                            for (int ox = lo; ox < hi; ox++) {
                                dx[dst + ox] += cols[src + ox];
                            }
                        } else {
                            for (int ox = lo; ox < hi; ox++) {
                                dx[dst + ox * sw] += cols[src + ox];
                            }
                        }
                    }
                }
            }
        }
    }
}
