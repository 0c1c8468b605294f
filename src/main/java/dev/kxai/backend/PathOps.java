package dev.kxai.backend;

/**
 * The path arithmetic of Integrated Gradients on host arrays: the CPU twins of the kernels in
 * {@code kernels/path.cu}, written in the same float expression order so that both agree.
 * Rows are step-major: row r = k·batch + i holds step k of example i.
 */
public final class PathOps {
    private PathOps() {
    }

    /** out[(k−k0)·B + i, f] = b[i,f] + α_k · (x[i,f] − b[i,f]) for k in [k0, k1). */
    public static void interpolate(float[] out, float[] x, float[] base, float[] alphas, int k0, int k1, int batch,
            int features) {
        for (int k = k0; k < k1; k++) {
            float a = alphas[k];
            int rowBase = (k - k0) * batch;
            for (int i = 0; i < batch; i++) {
                int src = i * features;
                int dst = (rowBase + i) * features;
                for (int f = 0; f < features; f++) {
                    float b = base[src + f];
                    out[dst + f] = b + a * (x[src + f] - b);
                }
            }
        }
    }

    /**
     * acc[i,f] += Σ_{k in [k0,k1)} w_k · g[(k−k0)·B + i, f], each step added to the running sum in
     * float in ascending k, exactly as the kernel does: the result does not depend on how the steps
     * are split into chunks (a chunk-local sum added at the end would regroup the additions, and a
     * request batched with others, chunked differently, would not come out bit for bit as alone).
     */
    public static void accumulate(float[] acc, float[] grads, float[] weights, int k0, int k1, int batch,
            int features) {
        int plane = batch * features;
        // Blocks of elements, steps inside: each block's running sums stay in cache while the
        // steps stream through it (the element-outer loop read k1 − k0 interleaved streams). Each
        // element starts from acc and adds the steps in ascending k: the kernel's float operations.
        int blocks = (plane + ACCUMULATE_BLOCK - 1) / ACCUMULATE_BLOCK;
        java.util.stream.IntStream.range(0, blocks).parallel().forEach(blk -> {
            int e0 = blk * ACCUMULATE_BLOCK;
            int n = Math.min(ACCUMULATE_BLOCK, plane - e0);
            float[] sum = java.util.Arrays.copyOfRange(acc, e0, e0 + n);
            for (int k = k0; k < k1; k++) {
                float w = weights[k];
                int g = (k - k0) * plane + e0;
                for (int j = 0; j < n; j++) {
                    sum[j] += w * grads[g + j];
                }
            }
            System.arraycopy(sum, 0, acc, e0, n);
        });
    }

    /** Elements per block of {@link #accumulate}: 16 KiB of running sums. */
    static final int ACCUMULATE_BLOCK = 4096;

    /** attr = acc ⊙ (x − b) when multiplying by inputs, else acc. */
    public static float[] finish(float[] acc, float[] x, float[] base, boolean multiplyByInputs) {
        float[] out = new float[acc.length];
        for (int j = 0; j < acc.length; j++) {
            out[j] = multiplyByInputs ? acc[j] * (x[j] - base[j]) : acc[j];
        }
        return out;
    }

    /** Sum of each row of a [rows, cols] array, accumulated in double. */
    public static double[] rowSums(float[] a, int rows, int cols) {
        double[] s = new double[rows];
        for (int r = 0; r < rows; r++) {
            double acc = 0;
            for (int c = 0; c < cols; c++) {
                acc += a[r * cols + c];
            }
            s[r] = acc;
        }
        return s;
    }
}
