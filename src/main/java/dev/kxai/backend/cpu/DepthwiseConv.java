package dev.kxai.backend.cpu;

import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;

/**
 * Depthwise convolution (group = input channels: each output channel reads one input plane; a
 * channel multiplier of up to {@link ConvOps#DIRECT_MAX_CHANNELS} outputs per input) in float,
 * any kernel size, stride, pads and dilation. MobileNetV2/V3, EfficientNet and ConvNeXt spend most
 * of their non-GEMM time here: as im2col + sgemm the per-group GEMM has M = 1 (a matrix-vector
 * product writing kh·kw copies of the plane), and the double direct loop runs at half float's
 * vector width; both ran at 0.05–0.08 of the sgemm peak.
 *
 * <p><b>Layout.</b> With stride s the input plane is split into s_h·s_w phase planes
 * (polyphase): phase (py, px) holds padded-input rows py, py + s_h, ... and columns px, px + s_w,
 * ..., so that output (oy, ox) reads tap (i, j) from phase ((i·d_h) mod s_h, (j·d_w) mod s_w) at
 * (oy + ⌊i·d_h/s_h⌋, ox + ⌊j·d_w/s_w⌋). Every tap is then a shift of one unit-stride loop over the
 * output plane, rows laid out at the phase width (the columns past outW are scratch), the loop
 * {@link SimdLoops#add(float[], int, int, int, float[], int, int, float[], int[])} runs for the
 * small-channel convolutions: SIMD over the plane, a bit-identical scalar twin without the
 * incubator module. Stride 1 is the one-phase case (the padded plane itself).
 *
 * <p><b>Fixed order.</b> Each output is bias, then one fused multiply-add per tap in the kernel's
 * row-major order (padding taps add 0·w), in float; nothing depends on the batch, the other
 * channels or how the planes are split over threads, so a row's values are the same bits alone or
 * batched ({@code --batch-invariant} and the serving batcher rely on that). The input gradient is
 * the adjoint in the same layout: per phase plane of the input, Σ over the taps of that phase (and
 * the multiplier's output channels), in a fixed order, then scattered back.
 *
 * <p><b>Exact decisions.</b> A sum of bias + k products by k roundings lies within
 * γ_k·(|b| + Σ|w|·|x|) of the exact sum, so each (image, channel) plane's bound is
 * γ_{k+1}·(|b| + Σ_taps|w|·max|x_c|) ({@link ExactDecisions#gamma} doubles γ as a margin), carried by
 * an {@link Exact} (the bound, and the exact path's value: the double sum rounded once), so the kink
 * repairs of Relu, Clip, HardSigmoid, HardSwish and max-pool apply as to the im2col path's
 * {@link ConvOps.Exact}. {@code -Dkxai.exact=true} and the first-layer saving's double accumulators
 * keep {@link ConvOps}'s double paths.
 */
final class DepthwiseConv {
    private DepthwiseConv() {
    }

    /**
     * Whether a layer takes this path: one input channel per group, more than one group (a single
     * input plane is an ordinary convolution with K = kh·kw; its output channels are better served
     * by one GEMM), and a multiplier small enough that the output planes' loads of x are shared by
     * the SIMD loop rather than by a GEMM.
     */
    static boolean takes(Op.Conv op, Tensor x, Tensor w) {
        int c = x.dim(1);
        return op.group() == c && c > 1 && w.dim(1) == 1 && w.dim(0) % c == 0
                && w.dim(0) / c <= ConvOps.DIRECT_MAX_CHANNELS;
    }

    /**
     * The polyphase geometry of a window: per tap (row-major) its phase and its shift within the
     * phase plane; phase planes of {@code ph} × {@code pw} (the output plane plus the largest shift).
     */
    record Phases(int sh, int sw, int maxA, int maxB, int ph, int pw, int[] phase, int[] a, int[] b) {
        static Phases of(Window win) {
            int khw = win.kh() * win.kw();
            int[] phase = new int[khw];
            int[] a = new int[khw];
            int[] b = new int[khw];
            for (int i = 0; i < win.kh(); i++) {
                for (int j = 0; j < win.kw(); j++) {
                    int t = i * win.kw() + j;
                    int ry = i * win.dh();
                    int rx = j * win.dw();
                    phase[t] = (ry % win.sh()) * win.sw() + rx % win.sw();
                    a[t] = ry / win.sh();
                    b[t] = rx / win.sw();
                }
            }
            int maxA = (win.kh() - 1) * win.dh() / win.sh();
            int maxB = (win.kw() - 1) * win.dw() / win.sw();
            return new Phases(win.sh(), win.sw(), maxA, maxB, win.outH() + maxA, win.outW() + maxB, phase, a, b);
        }

        int count() {
            return sh * sw;
        }

        int plane() {
            return ph * pw;
        }
    }

    /**
     * The forward (ReLU'd where {@code relu}: the elements within their bound of 0 recomputed first,
     * as {@link ConvOps}'s fused path does). The result carries its bounds and exact values.
     */
    static Tensor forward(Op.Conv op, Tensor x, Tensor w, Tensor bias, Window win, boolean relu) {
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int mg = m / c;
        int khw = win.kh() * win.kw();
        int oh = win.outH();
        int ow = win.outW();
        int hw = oh * ow;
        int inPlane = x.dim(2) * x.dim(3);
        float[] xd = x.data();
        float[] wf = w.data();
        float[] bd = bias == null ? null : bias.data();
        float[] y = new float[n * m * hw];
        Phases ph = Phases.of(win);
        int accPlane = oh * ph.pw();
        int span = vectorSpan((oh - 1) * ph.pw() + ow, accPlane);
        int[] off = new int[khw];
        for (int t = 0; t < khw; t++) {
            off[t] = ph.phase()[t] * ph.plane() + ph.a()[t] * ph.pw() + ph.b()[t];
        }
        // taps[g][t·mg + j]: the SIMD loop's layout (tap-major, the group's output channels inner)
        float[][] taps = TAPS.computeIfAbsent(wf, f -> tapMajor(f, c, mg, khw));
        float[] absTaps = ABS_TAPS.computeIfAbsent(wf, f -> absSums(f, m, khw));
        double gamma = ExactDecisions.gamma(khw + 1L);
        float[] planeBound = new float[n * m];
        Exact exact = new Exact(xd, c, wf, bd, win, m, planeBound, relu, gamma);
        int phLen = ph.count() * ph.plane() + ConvOps.SIMD_SLACK;
        // tasks of whole (image, input channel) planes: each output's sum is the same whatever the split
        forEachPlane(n * c, (long) mg * hw * khw, task -> {
            int img = task / c;
            int g = task % c;
            Scratch s = Scratch.get();
            float[] xp = s.floats(0, phLen);
            int xOff = (img * c + g) * inPlane;
            splitPhases(xd, xOff, win, ph, xp);
            float[] acc = s.floats(1, mg * accPlane);
            for (int j = 0; j < mg; j++) {
                Arrays.fill(acc, j * accPlane, (j + 1) * accPlane, bd == null ? 0f : bd[g * mg + j]);
            }
            SimdLoops.get().add(acc, 0, accPlane, mg, xp, 0, span, taps[g], off);
            int yOff = (img * m + g * mg) * hw;
            for (int j = 0; j < mg; j++) {
                for (int oy = 0; oy < oh; oy++) {
                    System.arraycopy(acc, j * accPlane + oy * ph.pw(), y, yOff + j * hw + oy * ow, ow);
                }
            }
            double mx = SimdLoops.get().maxAbs(xd, xOff, xOff + inPlane);
            for (int j = 0; j < mg; j++) {
                int oc = g * mg + j;
                double sum = (bd == null ? 0 : Math.abs(bd[oc])) + absTaps[oc] * mx;
                // no nonzero term: every partial sum is exactly 0; else γ·S plus what underflow can
                // lose, (k + 1) halves of float's smallest step
                planeBound[img * m + oc] = sum > 0 ? (float) (gamma * sum * (1 + 1e-6) + (khw + 1) * 0x1p-149) : 0f;
            }
            if (relu) {
                exact.repairKinks(y, yOff, yOff + mg * hw, RELU_KINK);
                SimdLoops.get().relu(y, y, yOff, yOff + mg * hw);
            }
        });
        return new Tensor(new int[] {n, m, oh, ow}, y).withExact(exact);
    }

    /**
     * dX, the adjoint of {@link #forward} in the same polyphase layout: the output gradient planes
     * padded by the largest shift, each phase plane of dX the sum over the taps of its phase (and the
     * multiplier's output channels, in order) of a shifted gradient plane, then scattered back to
     * dX's positions. In float like every convolution backward (it takes no decisions).
     */
    static Tensor inputGradient(Tensor x, Tensor w, Tensor gOut, Window win) {
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int mg = m / c;
        int khw = win.kh() * win.kw();
        int oh = win.outH();
        int ow = win.outW();
        int hw = oh * ow;
        int inH = x.dim(2);
        int inW = x.dim(3);
        float[] wf = w.data();
        float[] g = gOut.data();
        float[] dx = new float[x.size()];
        Phases ph = Phases.of(win);
        int gw = ph.pw() + ph.maxB();          // gradient planes: outW + 2·maxB wide,
        int gh = ph.ph() + ph.maxA();          // outH + 2·maxA high, g at (maxA, maxB)
        int gPlane = gw * gh;
        int accPlane = ph.ph() * gw;           // a phase plane of dX at the gradient planes' width
        int span = vectorSpan((ph.ph() - 1) * gw + ph.pw(), accPlane);
        // per phase: its taps (output channel j, tap t) in order, their weights' positions and shifts
        int phases = ph.count();
        int[][] tapIndex = new int[phases][];
        int[][] off = new int[phases][];
        for (int q = 0; q < phases; q++) {
            int count = 0;
            for (int t = 0; t < khw; t++) {
                count += ph.phase()[t] == q ? mg : 0;
            }
            tapIndex[q] = new int[count];
            off[q] = new int[count];
            int k = 0;
            for (int j = 0; j < mg; j++) {
                for (int t = 0; t < khw; t++) {
                    if (ph.phase()[t] == q) {
                        tapIndex[q][k] = j * khw + t;
                        off[q][k] = j * gPlane + (ph.maxA() - ph.a()[t]) * gw + ph.maxB() - ph.b()[t];
                        k++;
                    }
                }
            }
        }
        // wPhase[ch][q][k]: the weight of phase q's k-th tap for input channel ch
        float[][][] wPhase = new float[c][phases][];
        for (int ch = 0; ch < c; ch++) {
            for (int q = 0; q < phases; q++) {
                wPhase[ch][q] = new float[tapIndex[q].length];
                for (int k = 0; k < tapIndex[q].length; k++) {
                    wPhase[ch][q][k] = wf[ch * mg * khw + tapIndex[q][k]];
                }
            }
        }
        // the loop reads up to maxB + one rounded vector past the last gradient plane
        int gLen = mg * gPlane + ph.maxB() + ConvOps.SIMD_SLACK;
        forEachPlane(n * c, (long) mg * hw * khw, task -> {
            int img = task / c;
            int ch = task % c;
            Scratch s = Scratch.get();
            float[] gp = s.floats(0, gLen);
            Arrays.fill(gp, 0, gLen, 0f);
            int gOff = (img * m + ch * mg) * hw;
            for (int j = 0; j < mg; j++) {
                for (int oy = 0; oy < oh; oy++) {
                    System.arraycopy(g, gOff + j * hw + oy * ow, gp, j * gPlane + (oy + ph.maxA()) * gw + ph.maxB(), ow);
                }
            }
            float[] acc = s.floats(1, accPlane);
            int dxOff = (img * c + ch) * inH * inW;
            for (int q = 0; q < phases; q++) {
                int py = q / ph.sw();
                int px = q % ph.sw();
                if (tapIndex[q].length == 0) {
                    continue; // no tap reads this phase: its inputs' gradient is 0
                }
                Arrays.fill(acc, 0, accPlane, 0f);
                SimdLoops.get().add(acc, 0, accPlane, 1, gp, 0, span, wPhase[ch][q], off[q]);
                for (int r = 0; r < ph.ph(); r++) {
                    int iy = r * ph.sh() + py - win.padTop();
                    if (iy < 0 || iy >= inH) {
                        continue;
                    }
                    int lo = Math.max(0, ceilDiv(win.padLeft() - px, ph.sw()));
                    int hi = Math.min(ph.pw(), ceilDiv(inW + win.padLeft() - px, ph.sw()));
                    int row = dxOff + iy * inW + px - win.padLeft();
                    if (ph.sw() == 1) {
                        System.arraycopy(acc, r * gw + lo, dx, row + lo, hi - lo);
                    } else {
                        for (int col = lo; col < hi; col++) {
                            dx[row + col * ph.sw()] = acc[r * gw + col];
                        }
                    }
                }
            }
        });
        return new Tensor(x.shape(), dx);
    }

    /**
     * Phase planes of one input plane, zero where the padded input is padding (and the slack the
     * vector loop may read past them zeroed, so that scratch columns stay finite).
     */
    static void splitPhases(float[] x, int xOff, Window win, Phases ph, float[] xp) {
        int inH = win.inH();
        int inW = win.inW();
        int pw = ph.pw();
        int phLen = ph.count() * ph.plane();
        for (int q = 0; q < ph.count(); q++) {
            int py = q / ph.sw();
            int px = q % ph.sw();
            // phase columns col with input column col·sw + px − padLeft in [0, inW)
            int lo = Math.min(pw, Math.max(0, ceilDiv(win.padLeft() - px, ph.sw())));
            int hi = Math.max(lo, Math.min(pw, ceilDiv(inW + win.padLeft() - px, ph.sw())));
            for (int r = 0; r < ph.ph(); r++) {
                int dst = q * ph.plane() + r * pw;
                int iy = r * ph.sh() + py - win.padTop();
                if (iy < 0 || iy >= inH) {
                    Arrays.fill(xp, dst, dst + pw, 0f);
                    continue;
                }
                Arrays.fill(xp, dst, dst + lo, 0f);
                int src = xOff + iy * inW + px - win.padLeft();
                if (ph.sw() == 1) {
                    System.arraycopy(x, src + lo, xp, dst + lo, hi - lo);
                } else {
                    for (int col = lo; col < hi; col++) {
                        xp[dst + col] = x[src + col * ph.sw()];
                    }
                }
                Arrays.fill(xp, dst + hi, dst + pw, 0f);
            }
        }
        Arrays.fill(xp, phLen, phLen + ConvOps.SIMD_SLACK, 0f);
    }

    /**
     * A depthwise output's bound (per image and channel plane, {@link #forward}) and its exact value.
     * Its kink repair adds one step to {@link ConvOps.Exact}'s: a plane where many elements lie within
     * the plane's bound of a kink gets a bound per element, S(p) = Σ_taps |w|·|x| summed by the same
     * SIMD loop, before any is recomputed. Planes of exact zeros are what makes them many: MobileNetV2's
     * depthwise layers read ReLU6 maps, and a window of zeros with a zero bias (BatchNorm at its
     * initial state, folded) gives an output of exactly 0, on the kink, which the plane's bound
     * (from the plane's largest |x|) cannot clear. S is summed with |w| scaled by 2⁴⁰ (exact): S = 0
     * then proves every product below 2⁻¹⁹⁰, too small to move a float sum that starts at the bias,
     * so the float value is the exact one; else the element's bound is γ·(|b| + S·2⁻⁴⁰)·(1 + γ)
     * (the factor covers S's own float rounding) plus the underflow term.
     */
    static final class Exact implements dev.kxai.tensor.ExactValues {
        private final float[] x;
        private final int c;
        private final float[] w;
        private final float[] b;
        private final Window win;
        private final int m;
        private final int mg;
        private final int khw;
        private final int hw;
        private final float[] planeBound;
        private final boolean relu;
        private final double gamma;

        Exact(float[] x, int c, float[] w, float[] b, Window win, int m, float[] planeBound, boolean relu,
                double gamma) {
            this.x = x;
            this.c = c;
            this.w = w;
            this.b = b;
            this.win = win;
            this.m = m;
            this.mg = m / c;
            this.khw = win.kh() * win.kw();
            this.hw = win.outH() * win.outW();
            this.planeBound = planeBound;
            this.relu = relu;
            this.gamma = gamma;
        }

        @Override
        public float bound(int i, float value) {
            if (relu && value == 0f) {
                // a ReLU'd 0 is exact: its input was below −bound, or was recomputed before the clamp
                return 0f;
            }
            float s = planeBound[i / hw];
            return s > 0f ? s + (float) (2 * ExactDecisions.U * Math.abs(value)) : 0f;
        }

        @Override
        public float exact(int i) {
            int plane = i / hw;
            int oc = plane % m;
            int pos = i - plane * hw;
            int oy = pos / win.outW();
            int ox = pos - oy * win.outW();
            int inH = win.inH();
            int inW = win.inW();
            int xPlane = (plane / m * c + oc / mg) * inH * inW;
            int wBase = oc * khw;
            double acc = b == null ? 0 : b[oc];
            int y0 = oy * win.sh() - win.padTop();
            int x0 = ox * win.sw() - win.padLeft();
            for (int ki = 0; ki < win.kh(); ki++) {
                int iy = y0 + ki * win.dh();
                if (iy < 0 || iy >= inH) {
                    continue;
                }
                int row = xPlane + iy * inW;
                for (int kj = 0; kj < win.kw(); kj++) {
                    int ix = x0 + kj * win.dw();
                    if (ix >= 0 && ix < inW) {
                        acc += (double) w[wBase + ki * win.kw() + kj] * x[row + ix];
                    }
                }
            }
            float v = (float) acc;
            return relu && !(v > 0) ? 0f : v;
        }

        /** Candidates per plane above which S is summed for the plane (an exact() costs ~16 elements of S). */
        private static final int S_RATIO = 16;

        private static final double S_SCALE = 0x1p40;

        /** {@link ExactDecisions#repairKinks} for this layer's outputs [from, to), plane by plane. */
        void repairKinks(float[] y, int from, int to, float[] kinks) {
            long recomputed = 0;
            int[] near = null;
            for (int p0 = from; p0 < to; ) {
                int plane = p0 / hw;
                int end = Math.min(to, (plane + 1) * hw);
                float pb = planeBound[plane];
                if (!(pb > 0f)) {
                    p0 = end; // the plane's values are exact (or its bound NaN: nothing to decide on)
                    continue;
                }
                if (near == null) {
                    near = new int[Math.min(hw, to - from)];
                }
                int count = 0;
                for (int i = p0; i < end; i++) {
                    float v = y[i];
                    if (ExactDecisions.distance(v, kinks) <= pb + (float) (2 * ExactDecisions.U) * Math.abs(v)) {
                        near[count++] = i;
                    }
                }
                if (count > 0 && (long) count * S_RATIO > hw) {
                    recomputed += repairWithSums(y, plane, near, count, kinks);
                } else {
                    for (int k = 0; k < count; k++) {
                        y[near[k]] = exact(near[k]);
                    }
                    recomputed += count;
                }
                p0 = end;
            }
            ExactDecisions.CHECKED.add(to - from);
            if (recomputed > 0) {
                ExactDecisions.RECOMPUTED.add(recomputed);
            }
        }

        /** The plane's S(p) by the SIMD loop, then only the candidates within their own bound recomputed. */
        private long repairWithSums(float[] y, int plane, int[] near, int count, float[] kinks) {
            int img = plane / m;
            int oc = plane % m;
            Phases ph = Phases.of(win);
            int ow = win.outW();
            int accPlane = win.outH() * ph.pw();
            Scratch s = Scratch.get();
            int phLen = ph.count() * ph.plane();
            float[] xp = s.floats(0, phLen + ConvOps.SIMD_SLACK);
            splitPhases(x, (img * c + oc / mg) * win.inH() * win.inW(), win, ph, xp);
            for (int i = 0; i < phLen; i++) {
                xp[i] = Math.abs(xp[i]);
            }
            float[] absW = new float[khw];
            int[] off = new int[khw];
            for (int t = 0; t < khw; t++) {
                absW[t] = (float) (Math.abs(w[oc * khw + t]) * S_SCALE);
                off[t] = ph.phase()[t] * ph.plane() + ph.a()[t] * ph.pw() + ph.b()[t];
            }
            float[] sums = s.floats(1, accPlane);
            java.util.Arrays.fill(sums, 0, accPlane, 0f);
            SimdLoops.get().add(sums, 0, accPlane, 1, xp, 0, vectorSpan((win.outH() - 1) * ph.pw() + ow, accPlane),
                    absW, off);
            double absB = b == null ? 0 : Math.abs(b[oc]);
            long recomputed = 0;
            for (int k = 0; k < count; k++) {
                int i = near[k];
                int pos = i - plane * hw;
                float sum = sums[pos / ow * ph.pw() + pos % ow];
                if (sum == 0f) {
                    continue; // every product below 2^-190: the float value is the exact one
                }
                float v = y[i];
                double bound = gamma * (absB + sum / S_SCALE) * (1 + gamma) + (khw + 1) * 0x1p-149
                        + 2 * ExactDecisions.U * Math.abs(v);
                if (ExactDecisions.distance(v, kinks) <= bound) {
                    y[i] = exact(i);
                    recomputed++;
                }
            }
            return recomputed;
        }
    }

    /**
     * Multiply-adds per parallel task, about 20 µs of the SIMD loop: a late layer (7×7 planes) is a
     * few hundred microseconds in all, and a task per plane would cost more in forks and joins
     * (and, on a loaded machine, in waiting for a descheduled thread) than it computes.
     */
    static final long WORK_GRAIN = 1L << 19;

    /** body(p) for every plane p in [0, planes), in contiguous blocks of at least {@link #WORK_GRAIN} work. */
    private static void forEachPlane(int planes, long workPerPlane, java.util.function.IntConsumer body) {
        int blocks = (int) Math.max(1, Math.min(planes, planes * workPerPlane / WORK_GRAIN));
        Parallel.forEach(blocks, blk -> {
            for (int p = (int) ((long) blk * planes / blocks); p < (int) ((long) (blk + 1) * planes / blocks); p++) {
                body.accept(p);
            }
        });
    }

    /** ⌈a / b⌉ for b &gt; 0 and any a. */
    private static int ceilDiv(int a, int b) {
        return -Math.floorDiv(-a, b);
    }

    /**
     * The span of a tap loop rounded up to whole vectors (16 floats covers every species) where the
     * accumulator plane has the room: the extra elements land in its scratch columns.
     */
    private static int vectorSpan(int span, int accPlane) {
        int rounded = (span + 15) / 16 * 16;
        return rounded <= accPlane && rounded - span <= ConvOps.SIMD_SLACK ? rounded : span;
    }

    /** The weights [c·mg, khw] as [c][khw·mg] (tap-major), once per weight array. */
    private static float[][] tapMajor(float[] w, int c, int mg, int khw) {
        float[][] out = new float[c][khw * mg];
        for (int g = 0; g < c; g++) {
            for (int j = 0; j < mg; j++) {
                for (int t = 0; t < khw; t++) {
                    out[g][t * mg + j] = w[(g * mg + j) * khw + t];
                }
            }
        }
        return out;
    }

    /** Σ_taps |w| per output channel (rounded up), once per weight array. */
    private static float[] absSums(float[] w, int m, int khw) {
        float[] a = new float[m];
        for (int oc = 0; oc < m; oc++) {
            double sum = 0;
            for (int t = 0; t < khw; t++) {
                sum += Math.abs(w[oc * khw + t]);
            }
            a[oc] = (float) (sum * (1 + 1e-6));
        }
        return a;
    }

    private static final float[] RELU_KINK = {0f};

    /** Keyed by the weight array's identity; an entry goes with the model's weights. */
    private static final java.util.Map<float[], float[][]> TAPS =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());
    private static final java.util.Map<float[], float[]> ABS_TAPS =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());
}
