package dev.kxai.backend.cuda;

import dev.kxai.graph.Window;

/**
 * Typed launchers, one per kernel of kernels/*.cu: each owns its grid, block and shared-memory
 * arithmetic and passes arguments in the kernel's order with the kernel's widths (int vs long
 * long), so a caller cannot get either wrong. Geometry: 1-D grid-stride kernels take any grid;
 * the grid is capped (fewer blocks, more iterations each) — on the CPU emulator hard, since every
 * CUDA thread there is a fiber.
 * <p>
 * Public, with its constructor, {@link #geometry}, the ACT_ codes of the activations the
 * benchmarks time and the launchers of the path, conv, pooling, activation and softmax kernels,
 * only so that the JMH kernel benchmarks ({@code bench/}) can launch and time the real kernels:
 * exposed for benchmarks, not part of kxai's API.
 */
public final class Kernels {
    static final int BLOCK = 256;
    /** Threads per block of row_sum: a power of two in 32..1024. */
    static final int ROW_SUM_BLOCK = 256;
    /** Threads per block of global_avgpool_forward (its shared array is sized for this). */
    static final int GAP_BLOCK = 256;

    private final CudaRuntime rt;
    private final int maxBlocks;

    public Kernels(CudaRuntime rt) {
        this.rt = rt;
        this.maxBlocks = rt.emulated() ? 16 : 65535;
    }

    private int grid(long n) {
        return (int) Math.max(1, Math.min(maxBlocks, (n + BLOCK - 1) / BLOCK));
    }

    private void launch1d(String name, long n, Object... args) {
        run(name, grid(n), BLOCK, args);
    }

    /** Launches {@code name} and counts its cost ({@link KernelCosts}, from the same arguments). */
    private void run(String name, int grid, int block, Object... args) {
        Launch.run(rt.function(name), grid, block, 0, args);
        KernelCosts.launched(name, args);
    }

    // ---- rules.cu
    void deepLiftScale(DeviceBuffer num, DeviceBuffer gy, DeviceBuffer y, long half, boolean maxPool) {
        launch1d("deeplift_scale", 2 * half, num, gy, y, half, maxPool ? 1 : 0);
    }

    void deepLiftRescale(DeviceBuffer gx, DeviceBuffer plain, DeviceBuffer num, DeviceBuffer x, long half,
            boolean sumHalves, float eps) {
        launch1d("deeplift_rescale", 2 * half, gx, plain, num, x, half, sumHalves ? 1 : 0, eps);
    }

    void lrpStabilize(DeviceBuffer out, DeviceBuffer r, DeviceBuffer z, long n, float eps) {
        launch1d("lrp_stabilize", n, out, r, z, n, eps);
    }

    // ---- perturb.cu
    void perturbSingle(DeviceBuffer out, DeviceBuffer x, DeviceBuffer base, int baseRows, DeviceBuffer mask,
            int maskRows, DeviceBuffer home, DeviceBuffer group, int samples, long features) {
        launch1d("perturb_single", samples * features, out, x, base, baseRows, mask, maskRows, home, group, samples,
                features);
    }

    void perturbCoalition(DeviceBuffer out, DeviceBuffer x, DeviceBuffer base, int baseRows, DeviceBuffer mask,
            int maskRows, DeviceBuffer home, DeviceBuffer take, int groups, int samples, long features) {
        launch1d("perturb_coalition", samples * features, out, x, base, baseRows, mask, maskRows, home, take, groups,
                samples, features);
    }

    void perturbBox(DeviceBuffer out, DeviceBuffer x, DeviceBuffer base, int baseRows, DeviceBuffer home,
            DeviceBuffer boxes, DeviceBuffer dims, int rank, int samples, long features) {
        launch1d("perturb_box", samples * features, out, x, base, baseRows, home, boxes, dims, rank, samples,
                features);
    }

    // ---- path.cu
    public void pathInterpolate(DeviceBuffer out, DeviceBuffer x, DeviceBuffer base, DeviceBuffer alphas, int steps, int batch,
            long features) {
        launch1d("path_interpolate", batch * features, out, x, base, alphas, steps, batch, features);
    }

    /** As {@link #pathInterpolate} from double endpoints (the first layer's outputs), rounded once to float. */
    void pathInterpolateF64(DeviceBuffer out, DeviceBuffer x, DeviceBuffer base, DeviceBuffer alphas, int steps,
            int batch, long features) {
        launch1d("path_interpolate_f64", batch * features, out, x, base, alphas, steps, batch, features);
    }

    public void pathAccumulate(DeviceBuffer acc, DeviceBuffer grads, DeviceBuffer weights, int steps, int batch, long features) {
        launch1d("path_accumulate", batch * features, acc, grads, weights, steps, batch, features);
    }

    public void attributionFinish(DeviceBuffer attr, DeviceBuffer acc, DeviceBuffer x, DeviceBuffer base, int batch,
            long features, boolean multiplyByInputs) {
        launch1d("attribution_finish", batch * features, attr, acc, x, base, batch, features, multiplyByInputs ? 1 : 0);
    }

    void rowSum(DeviceBuffer out, DeviceBuffer a, int rows, long cols) {
        run("row_sum", Math.max(1, Math.min(rows, maxBlocks)), ROW_SUM_BLOCK, out, a, rows, cols);
    }

    // ---- dense.cu (activation codes as in the kernel file)
    static final int ACT_NONE = 0;
    public static final int ACT_RELU = 1;
    static final int ACT_LEAKY_RELU = 2;
    public static final int ACT_SIGMOID = 3;
    public static final int ACT_TANH = 4;

    void biasActForward(DeviceBuffer y, DeviceBuffer bias, long rows, int cols, int act, float alpha) {
        launch1d("bias_act_forward", rows * cols, y, bias, rows, cols, act, alpha);
    }

    /** v = pre + bias; pre = v; y = act(v): the fusion that keeps the pre-activation for the backward. */
    void biasActForwardKeep(DeviceBuffer y, DeviceBuffer pre, DeviceBuffer bias, long rows, int cols, int act,
            float alpha) {
        launch1d("bias_act_forward_keep", rows * cols, y, pre, bias, rows, cols, act, alpha);
    }

    /** y[m×n] (double) = alpha · a[m×k] · op(b) + beta · c[n] (c may be null), unrounded. */
    void gemmF64(DeviceBuffer y, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, int m, int n, int k, boolean transB,
            float alpha, float beta) {
        launch1d("gemm_f64", (long) m * n, y, a, b, c, m, n, k, transB ? 1 : 0, alpha, beta);
    }

    public void actForward(DeviceBuffer y, DeviceBuffer x, long n, int act, float alpha) {
        launch1d("act_forward", n, y, x, n, act, alpha);
    }

    public void actBackward(DeviceBuffer gx, DeviceBuffer gy, DeviceBuffer y, long n, int act, float alpha) {
        launch1d("act_backward", n, gx, gy, y, n, act, alpha);
    }

    /** op: 0 add, 1 sub, 2 mul; dims d[4] of the output, element strides as[4], bs[4] (0 = broadcast). */
    void binaryForward(DeviceBuffer out, DeviceBuffer a, DeviceBuffer b, int op, int[] d, long[] as, long[] bs) {
        long n = (long) d[0] * d[1] * d[2] * d[3];
        launch1d("binary_forward", n, out, a, b, op, d[0], d[1], d[2], d[3], as[0], as[1], as[2], as[3], bs[0], bs[1],
                bs[2], bs[3]);
    }

    /** out = c != 0 ? x : y over 4-D output dims, each operand by its strides. */
    void whereForward(DeviceBuffer out, DeviceBuffer c, DeviceBuffer x, DeviceBuffer y, int[] d, long[] cs, long[] xs,
            long[] ys) {
        long n = (long) d[0] * d[1] * d[2] * d[3];
        launch1d("where_forward", n, out, c, x, y, d[0], d[1], d[2], d[3], cs[0], cs[1], cs[2], cs[3], xs[0], xs[1],
                xs[2], xs[3], ys[0], ys[1], ys[2], ys[3]);
    }

    /** g (zeroed) += gy where the condition picks operand {@code which} (0: x, 1: y), onto its broadcast dims. */
    void whereBackward(DeviceBuffer g, DeviceBuffer gy, DeviceBuffer c, int which, int[] d, long[] gs, long[] cs) {
        long n = (long) d[0] * d[1] * d[2] * d[3];
        launch1d("where_backward", n, g, gy, c, which, d[0], d[1], d[2], d[3], gs[0], gs[1], gs[2], gs[3], cs[0], cs[1],
                cs[2], cs[3]);
    }

    void binaryBackward(DeviceBuffer g, DeviceBuffer gy, DeviceBuffer other, float scale, int[] d, long[] gs, long[] os) {
        long n = (long) d[0] * d[1] * d[2] * d[3];
        launch1d("binary_backward", n, g, gy, other, scale, d[0], d[1], d[2], d[3], gs[0], gs[1], gs[2], gs[3], os[0],
                os[1], os[2], os[3]);
    }

    /** g (zeroed) += d(a op b)/d(operand) · gy for Div (3) and Pow (4); operand 0 is a, 1 is b. */
    void binaryGrad(DeviceBuffer g, DeviceBuffer gy, DeviceBuffer a, DeviceBuffer b, int op, int operand, int[] d,
            long[] gs, long[] as, long[] bs) {
        long n = (long) d[0] * d[1] * d[2] * d[3];
        launch1d("binary_grad", n, g, gy, a, b, op, operand, d[0], d[1], d[2], d[3], gs[0], gs[1], gs[2], gs[3], as[0],
                as[1], as[2], as[3], bs[0], bs[1], bs[2], bs[3]);
    }

    void scaleCopy(DeviceBuffer dst, DeviceBuffer src, long n, float scale) {
        launch1d("scale_copy", n, dst, src, n, scale);
    }

    void addInplace(DeviceBuffer dst, DeviceBuffer src, long n) {
        launch1d("add_inplace", n, dst, src, n);
    }

    /** y = f(x) for the unary family; {@code kind} is {@code Op.Unary.Kind.code}. */
    void unaryForward(DeviceBuffer y, DeviceBuffer x, long n, int kind, float a, float b) {
        launch1d("unary_forward", n, y, x, n, kind, a, b);
    }

    /** gx = gy · f'(x) for the unary family. */
    void unaryBackward(DeviceBuffer gx, DeviceBuffer gy, DeviceBuffer x, long n, int kind, float a, float b) {
        launch1d("unary_backward", n, gx, gy, x, n, kind, a, b);
    }

    /**
     * y[e] = x[Σ coord_d(e)·strides[d]] over 6 output dims (leading 1s): a transpose (the strides
     * permuted) or a broadcast (stride 0 along the broadcast axes).
     */
    void stridedCopy6(DeviceBuffer y, DeviceBuffer x, int[] out, long[] strides) {
        long n = (long) out[0] * out[1] * out[2] * out[3] * out[4] * out[5];
        launch1d("strided_copy6", n, y, x, out[0], out[1], out[2], out[3], out[4], out[5], strides[0], strides[1],
                strides[2], strides[3], strides[4], strides[5]);
    }

    /** Resize of NCHW's spatial axes by two taps per output row and column. */
    void resizeForward(DeviceBuffer y, DeviceBuffer x, DeviceBuffer ih, DeviceBuffer wh, DeviceBuffer iw,
            DeviceBuffer ww, long planes, int h, int w, int oh, int ow) {
        launch1d("resize_forward", planes * oh * ow, y, x, ih, wh, iw, ww, planes, h, w, oh, ow);
    }

    /** Its backward, gathered per input element over the output ranges that read it. */
    void resizeBackward(DeviceBuffer dx, DeviceBuffer dy, DeviceBuffer ih, DeviceBuffer wh, DeviceBuffer iw,
            DeviceBuffer ww, DeviceBuffer loH, DeviceBuffer hiH, DeviceBuffer loW, DeviceBuffer hiW, long planes, int h,
            int w, int oh, int ow) {
        launch1d("resize_backward", planes * h * w, dx, dy, ih, wh, iw, ww, loH, hiH, loW, hiW, planes, h, w, oh, ow);
    }

    /**
     * y[o, j, i] = x[o, ids[j], i] (x as [outer, dim, inner], y as [outer, count, inner]); ids are
     * floats holding integers, negative from the end: a Gather's per-request ids, or a Select's
     * constant indices.
     */
    void gatherForward(DeviceBuffer y, DeviceBuffer x, DeviceBuffer ids, long outer, int count, int dim, long inner) {
        launch1d("gather_forward", outer * count * inner, y, x, ids, outer, count, dim, inner);
    }

    /** dx[o, k, i] = Σ_{j: ids[j] = k} dy[o, j, i]; every dx element written. */
    void gatherBackward(DeviceBuffer dx, DeviceBuffer dy, DeviceBuffer ids, long outer, int count, int dim, long inner) {
        launch1d("gather_backward", outer * dim * inner, dx, dy, ids, outer, count, dim, inner);
    }

    /** ReduceMean/ReduceSum over the flagged axes of a 4-D (leading 1s) input; y holds its outputs. */
    void reduceForward(DeviceBuffer y, DeviceBuffer x, int[] in, boolean[] reduced, boolean mean) {
        long n = 1;
        for (int d = 0; d < 4; d++) {
            n *= reduced[d] ? 1 : in[d];
        }
        launch1d("reduce_forward", n, y, x, in[0], in[1], in[2], in[3], flag(reduced[0]), flag(reduced[1]),
                flag(reduced[2]), flag(reduced[3]), flag(mean));
    }

    /** ReduceMax ({@code max}) or ReduceMin over the flagged axes of a 4-D (leading 1s) input. */
    void reduceExtremeForward(DeviceBuffer y, DeviceBuffer x, int[] in, boolean[] reduced, boolean max) {
        long n = 1;
        for (int d = 0; d < 4; d++) {
            n *= reduced[d] ? 1 : in[d];
        }
        launch1d("reduce_extreme_forward", n, y, x, in[0], in[1], in[2], in[3], flag(reduced[0]), flag(reduced[1]),
                flag(reduced[2]), flag(reduced[3]), max ? 0 : 1);
    }

    /** Their backward: dy split evenly among the inputs equal to the output. */
    void reduceExtremeBackward(DeviceBuffer dx, DeviceBuffer dy, DeviceBuffer x, DeviceBuffer y, int[] in,
            boolean[] reduced) {
        long n = (long) in[0] * in[1] * in[2] * in[3];
        launch1d("reduce_extreme_backward", n, dx, dy, x, y, in[0], in[1], in[2], in[3], flag(reduced[0]),
                flag(reduced[1]), flag(reduced[2]), flag(reduced[3]));
    }

    void reduceBackward(DeviceBuffer dx, DeviceBuffer dy, int[] in, boolean[] reduced, boolean mean) {
        long n = (long) in[0] * in[1] * in[2] * in[3];
        launch1d("reduce_backward", n, dx, dy, in[0], in[1], in[2], in[3], flag(reduced[0]), flag(reduced[1]),
                flag(reduced[2]), flag(reduced[3]), flag(mean));
    }

    private static int flag(boolean b) {
        return b ? 1 : 0;
    }

    /** Pad over 4 dims (leading dims 1): in and out shapes, begin pads; mode 0 constant, 1 reflect, 2 edge, 3 wrap. */
    void padForward(DeviceBuffer y, DeviceBuffer x, int mode, float value, int[] in, int[] out, int[] begin) {
        long n = (long) out[0] * out[1] * out[2] * out[3];
        launch1d("pad_forward", n, y, x, mode, value, in[0], in[1], in[2], in[3], out[0], out[1], out[2], out[3],
                begin[0], begin[1], begin[2], begin[3]);
    }

    /** The gather backward of {@link #padForward}: every dx element written (no zero fill needed). */
    void padBackward(DeviceBuffer dx, DeviceBuffer dy, int mode, int[] in, int[] out, int[] begin) {
        long n = (long) in[0] * in[1] * in[2] * in[3];
        launch1d("pad_backward", n, dx, dy, mode, in[0], in[1], in[2], in[3], out[0], out[1], out[2], out[3],
                begin[0], begin[1], begin[2], begin[3]);
    }

    // ---- conv.cu

    /** {kh, kw, sh, sw, ph, pw, dh, dw, pb, pr, oh, ow}: the order the conv kernels' launchers read. */
    public static int[] geometry(Window w) {
        return new int[] {w.kh(), w.kw(), w.sh(), w.sw(), w.padTop(), w.padLeft(), w.dh(), w.dw(), w.padBottom(),
            w.padRight(), w.outH(), w.outW()};
    }

    public void conv2dForward(DeviceBuffer y, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, int n, int c, int h, int wd,
            int m, int groups, int[] g) {
        launch1d("conv2d_forward", (long) n * m * g[10] * g[11], y, x, w, bias, n, c, h, wd, m, groups, g[0], g[1], g[2],
                g[3], g[4], g[5], g[6], g[7], g[10], g[11]);
    }

    /** As {@link #conv2dForward} into a double buffer, the accumulators unrounded. */
    void conv2dForwardF64(DeviceBuffer y, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, int n, int c, int h,
            int wd, int m, int groups, int[] g) {
        launch1d("conv2d_forward_f64", (long) n * m * g[10] * g[11], y, x, w, bias, n, c, h, wd, m, groups, g[0], g[1],
                g[2], g[3], g[4], g[5], g[6], g[7], g[10], g[11]);
    }

    /** Threads per block of conv2d_forward_f32 (its tiles are laid out for exactly this). */
    static final int CONV_TILE_THREADS = 256;
    /** Output channels per group up to which conv2d_forward_f32_narrow's 16×256 tiles are used (else 64×64). */
    static final int CONV_NARROW_MAX_CHANNELS = 16;
    /** Threads per block of plane_max_abs (its shared array is sized for this). */
    static final int MAX_ABS_BLOCK = 256;

    /**
     * The FP32 implicit-GEMM convolution: one block per output tile, 64 channels × 64 positions, or
     * 16 × 256 (the _narrow kernel) for layers of at most 16 channels per group (grid-strided over
     * the tiles); {@code bound} (per image and output channel) with {@code relu} repairs and clamps
     * in the epilogue.
     */
    public void conv2dForwardF32(DeviceBuffer y, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer bound,
            DeviceBuffer count, boolean relu, boolean tf32, int n, int c, int h, int wd, int m, int groups, int[] g) {
        int mg = m / groups;
        boolean narrow = mg <= CONV_NARROW_MAX_CHANNELS;
        int tm = narrow ? 16 : 64;
        int tn = narrow ? 256 : 64;
        long cols = (long) n * g[10] * g[11];
        long tiles = (long) groups * ((mg + tm - 1) / tm) * ((cols + tn - 1) / tn);
        run(narrow ? "conv2d_forward_f32_narrow" : "conv2d_forward_f32", (int) Math.max(1, Math.min(maxBlocks, tiles)),
                CONV_TILE_THREADS, y, x, w, bias, bound,
                count, relu ? 1 : 0, tf32 ? 1 : 0, n, c, h, wd, m, groups, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[10], g[11]);
    }

    void planeMaxAbs(DeviceBuffer out, DeviceBuffer x, long planes, long area) {
        run("plane_max_abs", (int) Math.max(1, Math.min(planes, maxBlocks)), MAX_ABS_BLOCK, out, x, planes, area);
    }

    void convPlaneBound(DeviceBuffer bound, DeviceBuffer maxAbs, DeviceBuffer absTaps, DeviceBuffer bias, int n, int c,
            int m, int groups, int kk, float gamma) {
        launch1d("conv_plane_bound", (long) n * m, bound, maxAbs, absTaps, bias, n, c, m, groups, kk, gamma);
    }

    /** kinks: one or two values; count (an int, or null) gets the outputs recomputed. */
    void convRepairKinks(DeviceBuffer y, DeviceBuffer count, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias,
            DeviceBuffer bound, float[] kinks, boolean relu, int n, int c, int h, int wd, int m, int groups, int[] g) {
        launch1d("conv_repair_kinks", (long) n * m * g[10] * g[11], y, count, x, w, bias, bound, kinks[0],
                kinks.length > 1 ? kinks[1] : kinks[0], Math.min(2, kinks.length), relu ? 1 : 0, n, c, h, wd, m, groups, g[0], g[1],
                g[2], g[3], g[4], g[5], g[6], g[7], g[10], g[11]);
    }

    /** The pool's geometry {@code pg}; x's planes each have one bound. */
    void maxpoolRepairMark(DeviceBuffer mark, DeviceBuffer x, DeviceBuffer bound, boolean relu, long planes, int h,
            int wd, int[] pg) {
        launch1d("maxpool_repair_mark", planes * pg[10] * pg[11], mark, x, bound, relu ? 1 : 0, planes, h, wd, pg[0], pg[1], pg[2],
                pg[3], pg[4], pg[5], pg[6], pg[7], pg[10], pg[11]);
    }

    void convRepairMarked(DeviceBuffer y, DeviceBuffer count, DeviceBuffer mark, DeviceBuffer x, DeviceBuffer w,
            DeviceBuffer bias, boolean relu, int n, int c, int h, int wd, int m, int groups, int[] g) {
        launch1d("conv_repair_marked", (long) n * m * g[10] * g[11], y, count, mark, x, w, bias, relu ? 1 : 0, n, c, h, wd, m, groups,
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[10], g[11]);
    }

    /** A residual sum's elements near a kink flagged; an operand without bounds passes null and hw 1. */
    void sumMarkKinks(DeviceBuffer mark, DeviceBuffer y, DeviceBuffer a, DeviceBuffer boundA, long hwA, boolean reluA,
            DeviceBuffer b, DeviceBuffer boundB, long hwB, boolean reluB, long n, float[] kinks) {
        launch1d("sum_mark_kinks", n, mark, y, a, boundA, hwA, reluA ? 1 : 0, b, boundB, hwB, reluB ? 1 : 0, n, kinks[0],
                kinks.length > 1 ? kinks[1] : kinks[0], Math.min(2, kinks.length));
    }

    void addMarked(DeviceBuffer y, DeviceBuffer mark, DeviceBuffer a, DeviceBuffer b, long n) {
        launch1d("add_marked", n, y, mark, a, b, n);
    }

    /** g = {kh, kw, sh, sw, ph, pw, dh, dw, pb, pr, oh, ow}. */
    public void im2colInputGrad(DeviceBuffer dx, DeviceBuffer dcols, int n, int c, int h, int wd, int[] g) {
        launch1d("im2col_input_grad", (long) n * c * h * wd, dx, dcols, n, c, h, wd, g[0], g[1], g[2], g[3], g[4], g[5],
                g[6], g[7], g[10], g[11]);
    }

    public void maxpoolForward(DeviceBuffer y, DeviceBuffer argmax, DeviceBuffer x, long planes, int h, int wd, int[] g) {
        launch1d("maxpool_forward", planes * g[10] * g[11], y, argmax, x, planes, h, wd, g[0], g[1], g[2], g[3], g[4],
                g[5], g[6], g[7], g[10], g[11]);
    }

    public void maxpoolBackward(DeviceBuffer dx, DeviceBuffer dy, DeviceBuffer argmax, long outputs) {
        launch1d("maxpool_backward", outputs, dx, dy, argmax, outputs);
    }

    public void avgpoolForward(DeviceBuffer y, DeviceBuffer x, long planes, int h, int wd, int[] g, boolean countPad) {
        launch1d("avgpool_forward", planes * g[10] * g[11], y, x, planes, h, wd, g[0], g[1], g[2], g[3], g[4], g[5],
                g[8], g[9], countPad ? 1 : 0, g[10], g[11]);
    }

    public void avgpoolBackward(DeviceBuffer dx, DeviceBuffer dy, long planes, int h, int wd, int[] g, boolean countPad) {
        launch1d("avgpool_backward", planes * g[10] * g[11], dx, dy, planes, h, wd, g[0], g[1], g[2], g[3], g[4], g[5],
                g[8], g[9], countPad ? 1 : 0, g[10], g[11]);
    }

    public void globalAvgpoolForward(DeviceBuffer y, DeviceBuffer x, long planes, long area) {
        run("global_avgpool_forward", (int) Math.max(1, Math.min(planes, maxBlocks)), GAP_BLOCK, y, x, planes, area);
    }

    public void globalAvgpoolBackward(DeviceBuffer dx, DeviceBuffer dy, long planes, long area) {
        launch1d("global_avgpool_backward", planes * area, dx, dy, planes, area);
    }

    void channelAffine(DeviceBuffer y, DeviceBuffer x, DeviceBuffer scale, DeviceBuffer shift, long n, int channels,
            long inner) {
        launch1d("channel_affine", n, y, x, scale, shift, n, channels, inner);
    }

    // ---- head.cu
    public void softmaxForward(DeviceBuffer y, DeviceBuffer x, long outer, int n, long inner) {
        launch1d("softmax_forward", outer * inner, y, x, outer, n, inner);
    }

    public void softmaxBackward(DeviceBuffer gx, DeviceBuffer gy, DeviceBuffer y, long outer, int n, long inner) {
        launch1d("softmax_backward", outer * inner, gx, gy, y, outer, n, inner);
    }

    void seedOneHot(DeviceBuffer g, DeviceBuffer targets, int rows, int cols) {
        launch1d("seed_one_hot", (long) rows * cols, g, targets, rows, cols);
    }

    void gatherTarget(DeviceBuffer out, DeviceBuffer y, DeviceBuffer targets, int rows, int cols) {
        launch1d("gather_target", rows, out, y, targets, rows, cols);
    }
}
