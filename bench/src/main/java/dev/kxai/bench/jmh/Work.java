package dev.kxai.bench.jmh;

import static dev.kxai.bench.jmh.Sizes.FMAP_C;
import static dev.kxai.bench.jmh.Sizes.FMAP_H;
import static dev.kxai.bench.jmh.Sizes.FMAP_W;

import java.util.Map;

/**
 * What one benchmark operation moves or computes, for the report's rates.
 * <p>
 * {@code bytes} is the operation's compulsory memory traffic: every input element read once and
 * every output element written once (4 bytes a float or int, 8 a double); an output the operation
 * adds into ({@code +=}) counts as read and written. Traffic the implementation adds on top
 * (zero-filling a freshly allocated output, re-reading an input, write-allocate reads) is not
 * counted, so a rate below the copy rate can mean extra traffic as well as a slow loop; a rate
 * above it means the working set stayed in cache. {@code flops} is 2·M·N·K for a GEMM (and the
 * same multiply-adds for a direct convolution). One of the two is 0.
 *
 * @param bytes compulsory bytes per operation (0 for the compute-bound rows)
 * @param flops floating-point operations per operation (0 for the memory-bound rows)
 * @param copy  true for the memory-copy baseline the GB/s fractions refer to
 * @param sgemm true for a square GEMM, a candidate for the sgemm reference rate
 */
record Work(double bytes, double flops, boolean copy, boolean sgemm) {
    static Work bytes(double b) {
        return new Work(b, 0, false, false);
    }

    static Work flops(double f) {
        return new Work(0, f, false, false);
    }

    /**
     * The work of a JMH benchmark by its full name (package.Class.method) and parameters, or null
     * for a benchmark this table does not know. CPU and GPU benchmarks of the same kernel share a
     * method name, and so their work.
     */
    static Work of(String benchmark, Map<String, String> params) {
        return kernel(benchmark.substring(benchmark.lastIndexOf('.') + 1), params);
    }

    private static Work kernel(String method, Map<String, String> p) {
        double f = 4; // bytes per float or int
        long plane = (long) Sizes.PATH_BATCH * Sizes.PATH_FEATURES;
        long steps = Sizes.PATH_STEPS;
        int rows = Integer.parseInt(p.getOrDefault("rows", Sizes.ROWS_DEFAULT));
        long e = Sizes.fmapElements(rows);
        long pooled = e / 4; // 2×2 windows, stride 2
        long planes = (long) rows * FMAP_C;
        long kk = (long) FMAP_C * 3 * 3;
        long hw = (long) FMAP_H * FMAP_W;
        long chw = (long) FMAP_C * FMAP_H * FMAP_W;
        long sm = (long) Sizes.SOFTMAX_ROWS * Sizes.SOFTMAX_CLASSES;
        return switch (method) {
            case "arraycopy", "memcpyDtoD" -> new Work(2.0 * Sizes.COPY_FLOATS * f, 0, true, false);
            // out[k·B + i, f] = b + α_k (x − b): reads x, b, alphas; writes steps rows
            case "pathInterpolate" -> bytes((2 * plane + steps + steps * plane) * f);
            // acc += Σ_k w_k g_k: reads grads and weights, reads and writes acc
            case "pathAccumulate" -> bytes((steps * plane + steps + 2 * plane) * f);
            // attr = acc ⊙ (x − b): reads acc, x, b; writes attr
            case "attributionFinish" -> bytes(4 * plane * f);
            // the forward's im2col: reads each image once, writes double columns [kk, hw] per image
            case "im2col" -> bytes(rows * (chw * f + kk * hw * 8.0));
            // CPU col2im: reads float columns, dx += (read and write)
            case "col2im" -> bytes(rows * (kk * hw + 2 * chw) * f);
            // GPU im2col_input_grad: reads columns, writes dx (a gather, no +=)
            case "im2colInputGrad" -> bytes(rows * (kk * hw + chw) * f);
            // y and argmax (int) out
            case "maxPoolForward" -> bytes((e + 2 * pooled) * f);
            // reads dy and argmax, writes dx
            case "maxPoolBackward" -> bytes((2 * pooled + e) * f);
            case "avgPoolForward" -> bytes((e + pooled) * f);
            case "avgPoolBackward" -> bytes((pooled + e) * f);
            case "globalAvgPoolForward" -> bytes((e + planes) * f);
            case "globalAvgPoolBackward" -> bytes((planes + e) * f);
            // y = act(x); gx = gy · act'(y): reads gy and y
            case "activationForward" -> bytes(2 * e * f);
            case "activationBackward" -> bytes(3 * e * f);
            case "softmaxForward" -> bytes(2 * sm * f);
            // gx = y ⊙ (gy − Σ gy ⊙ y): reads y and gy
            case "softmaxBackward" -> bytes(3 * sm * f);
            // direct convolution: one multiply-add per tap per output (M = C = 10)
            case "conv2dForward", "conv2dInputGrad" -> flops(2.0 * rows * FMAP_C * hw * kk);
            case "sgemm" -> {
                int[] s = Sizes.gemmShape(p.getOrDefault("shape", p.getOrDefault("gpuShape", "")));
                yield new Work(0, 2.0 * s[0] * s[1] * s[2], false, s[0] == s[1] && s[1] == s[2]);
            }
            default -> null;
        };
    }
}
