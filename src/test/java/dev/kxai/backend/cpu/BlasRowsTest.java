package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Row-split GEMMs ({@link Blas#gemmRows}) against a double product, in all four transpose forms. */
class BlasRowsTest {
    @Test
    void rowBlocksOfEveryTransposeFormMatchTheProduct() throws Exception {
        // in a pool of 2 (as kxai bench --threads 2 runs), whatever this machine's common pool is
        java.util.concurrent.ForkJoinPool pool = new java.util.concurrent.ForkJoinPool(2);
        try {
            pool.submit(() -> {
                assertEquals(2, Parallel.parallelism());
                check();
                return null;
            }).get();
        } finally {
            pool.shutdown();
        }
    }

    /** The row blocks are fixed: one thread, two or three give the same bits (--threads changes nothing). */
    @Test
    void resultDoesNotDependOnTheThreadCount() throws Exception {
        int m = 197; // vit_b_16's rows: one call and a thread-sized split rounded differently
        int n = 230;
        int k = 96;
        Random r = new Random(6);
        float[] a = random(r, m * k);
        float[] b = random(r, n * k);
        float[] first = null;
        for (int threads = 1; threads <= 3; threads++) {
            java.util.concurrent.ForkJoinPool pool = new java.util.concurrent.ForkJoinPool(threads);
            try {
                float[] c = pool.submit(() -> {
                    float[] out = new float[m * n];
                    Blas.gemmRows(false, true, m, n, k, 1f, a, 0, k, b, 0, k, 0f, out, 0, n);
                    return out;
                }).get();
                if (first == null) {
                    first = c;
                } else {
                    org.junit.jupiter.api.Assertions.assertArrayEquals(first, c, threads + " threads against 1");
                }
            } finally {
                pool.shutdown();
            }
        }
    }

    private static void check() {
        int m = 200;
        int n = 96;
        int k = 160; // m·n·k above SPLIT_MIN_MACS: split into row blocks
        Random r = new Random(4);
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                float[] a = random(r, m * k);
                float[] b = random(r, k * n);
                float[] c = new float[m * n];
                int lda = ta ? m : k;
                int ldb = tb ? k : n;
                Blas.gemmRows(ta, tb, m, n, k, 1f, a, 0, lda, b, 0, ldb, 0f, c, 0, n);
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int p = 0; p < k; p++) {
                            s += (double) (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                        }
                        assertEquals(s, c[i * n + j], 1e-4, "transA " + ta + " transB " + tb + " C[" + i + "," + j + "]");
                    }
                }
            }
        }
    }

    private static float[] random(Random r, int len) {
        float[] f = new float[len];
        for (int i = 0; i < len; i++) {
            f[i] = (float) r.nextGaussian();
        }
        return f;
    }
}
