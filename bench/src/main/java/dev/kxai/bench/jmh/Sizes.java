package dev.kxai.bench.jmh;

import dev.kxai.graph.Window;
import java.util.Random;

/**
 * The shapes the kernel benchmarks run at, shared by the CPU and GPU benchmarks and by
 * {@link Work}: taken from the benchmark workloads of {@code bench/workloads_def.py}.
 */
final class Sizes {
    private Sizes() {
    }

    // Integrated Gradients path of tinyvgg_course: batch 16, 50 steps, input 3×64×64.
    static final int PATH_BATCH = 16;
    static final int PATH_STEPS = 50;
    static final int PATH_FEATURES = 3 * 64 * 64;

    // tinyvgg feature maps: 10 channels of 64×64; the batch axis is a chunk of path rows
    // (@Param rows, default 128: 21 MiB per tensor, beyond a 32 MiB L3 once input and output count).
    static final String ROWS_DEFAULT = "128";
    static final int FMAP_C = 10;
    static final int FMAP_H = 64;
    static final int FMAP_W = 64;

    /** tinyvgg's 3×3 convolution, stride 1, pad 1, on a 64×64 map. */
    static Window conv3x3() {
        return Window.of("bench_conv3x3", new int[] {3, 3}, new int[] {1, 1}, new int[] {1, 1, 1, 1}, null,
                "NOTSET", false, FMAP_H, FMAP_W);
    }

    /** tinyvgg's 2×2 pooling window, stride 2, no padding. */
    static final int[] POOL_KERNEL = {2, 2};
    static final int[] POOL_STRIDES = {2, 2};
    static final int[] POOL_PADS = {0, 0, 0, 0};

    static Window pool2x2() {
        return Window.of("bench_pool2x2", POOL_KERNEL, POOL_STRIDES, POOL_PADS, null, "NOTSET", false, FMAP_H, FMAP_W);
    }

    // Softmax over a 1000-class head (resnet18's), 4096 rows.
    static final int SOFTMAX_ROWS = 4096;
    static final int SOFTMAX_CLASSES = 1000;

    // The memory-copy baseline: 64 MiB copied to 64 MiB, far beyond the caches.
    static final int COPY_FLOATS = 16 * 1024 * 1024;

    /** Elements of a [rows, 10, 64, 64] feature map. */
    static long fmapElements(int rows) {
        return (long) rows * FMAP_C * FMAP_H * FMAP_W;
    }

    /** "MxNxK" → {M, N, K}. */
    static int[] gemmShape(String s) {
        String[] p = s.toLowerCase().split("x");
        if (p.length != 3) {
            throw new IllegalArgumentException("GEMM shape must be MxNxK, got '" + s + "'");
        }
        return new int[] {Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2])};
    }

    /** Uniform in [lo, hi), from a fixed seed. */
    static float[] random(long n, float lo, float hi, long seed) {
        float[] a = new float[Math.toIntExact(n)];
        Random r = new Random(seed);
        for (int i = 0; i < a.length; i++) {
            a[i] = lo + (hi - lo) * r.nextFloat();
        }
        return a;
    }
}
