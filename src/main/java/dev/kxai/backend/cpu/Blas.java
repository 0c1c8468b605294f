package dev.kxai.backend.cpu;

/**
 * Row-major single-precision GEMM on top of netlib's column-major BLAS (the system OpenBLAS
 * through JNI when it loads, a pure-Java implementation otherwise).
 * <p>
 * Public, with {@link #gemm}, only so that the JMH kernel benchmarks ({@code bench/}) time GEMM
 * through the same wrapper as the backend: exposed for benchmarks, not part of kxai's API.
 */
public final class Blas {
    private static final dev.ludovic.netlib.blas.BLAS BLAS = dev.ludovic.netlib.blas.BLAS.getInstance();

    private Blas() {
    }

    /** The implementation netlib chose, for {@code kxai info}. */
    static String implementation() {
        return BLAS.getClass().getName();
    }

    /**
     * C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, all row-major; lda/ldb/ldc are the
     * row lengths of the stored matrices. Computed as Cᵀ = op(B)ᵀ op(A)ᵀ in column-major.
     */
    public static void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int offA, int lda,
            float[] b, int offB, int ldb, float beta, float[] c, int offC, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        BLAS.sgemm(transB ? "T" : "N", transA ? "T" : "N", n, m, k, alpha, b, offB, ldb, a, offA, lda, beta, c, offC,
                ldc);
    }

    /** Rows per task of {@link #gemmRows} (a multiple of 16: the BLAS micro-kernels' full tiles). */
    static final int ROW_BLOCK = 64;

    /** Below this many multiply-adds a GEMM runs on the calling thread: splitting costs more than it saves. */
    static final long SPLIT_MIN_MACS = 1L << 21;

    /**
     * {@link #gemm}, with the rows of C split over the cores. kxai runs OpenBLAS single-threaded
     * (OPENBLAS_NUM_THREADS=1, see README) and parallelises itself, so that the images of a batch,
     * not the BLAS's threads, share the cores; a large GEMM outside such a loop splits here, in blocks of
     * {@link #ROW_BLOCK} rows whatever the thread count, so the result does not depend on it. Must not be
     * called from inside a {@link Parallel} task that holds {@link Scratch} buffers.
     */
    static void gemmRows(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int offA,
            int lda, float[] b, int offB, int ldb, float beta, float[] c, int offC, int ldc) {
        if (batchInvariant) {
            gemmRowsInvariant(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
            return;
        }
        if ((long) m * n * k < SPLIT_MIN_MACS || m < 2 * ROW_BLOCK) {
            gemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
            return;
        }
        // fixed row blocks, whatever the thread count: OpenBLAS rounds a row differently by the block's
        // height (22162 of 453888 elements of a 197x2304x768 product moved between one call and a
        // 112 + 85 split), so blocks sized from the threads made results depend on --threads
        int block = ROW_BLOCK;
        int blocks = (m + block - 1) / block;
        Parallel.forEach(blocks, p -> {
            int r0 = p * block;
            int rows = Math.min(block, m - r0);
            if (transA) {
                // op(A)'s rows are columns of the stored [k, m] A: copied into a dense [k, rows] block,
                // since BLAS bindings check a sub-matrix's extent as offset + lda·k, which a column
                // block of A would overrun (vit_b_16's attention backward with 2 threads)
                float[] block0 = new float[k * rows];
                for (int j = 0; j < k; j++) {
                    System.arraycopy(a, offA + j * lda + r0, block0, j * rows, rows);
                }
                gemm(true, transB, rows, n, k, alpha, block0, 0, rows, b, offB, ldb, beta, c, offC + r0 * ldc, ldc);
                return;
            }
            gemm(false, transB, rows, n, k, alpha, a, offA + r0 * lda, lda, b, offB, ldb, beta, c, offC + r0 * ldc, ldc);
        });
    }

    /** Holders of the batch-invariant mode (explainers that batch; {@link #batchInvariant(boolean)}). */
    private static final java.util.concurrent.atomic.AtomicInteger INVARIANT_HOLDERS =
            new java.util.concurrent.atomic.AtomicInteger();
    private static volatile boolean batchInvariant;

    /**
     * Batch-invariant dense GEMMs for the whole process (off by default): OpenBLAS picks its kernels
     * and blockings by the matrices' shapes, so a row of C can round differently in a GEMM of 5 rows
     * than in one of 40 (measured: most rows of a 256×128 product differ in the last bit), and a
     * request answered inside a batch would not be bit for bit the request answered alone. On,
     * every row-split GEMM (Gemm and 2-D MatMul, forward and backward) accumulates in double and
     * rounds once, so a row's value no longer depends on the others (up to double rounding, far below
     * a float ulp); dense layers then cost about twice as much. Convolutions need nothing: they run
     * image by image, with the same GEMM shapes whatever the batch. For services that batch
     * requests ({@code BatchingExplainer}). Counted: each {@code true} holds the mode until its
     * {@code false}, so one explainer closing does not switch it off under another.
     */
    public static void batchInvariant(boolean on) {
        int holders = on ? INVARIANT_HOLDERS.incrementAndGet() : INVARIANT_HOLDERS.updateAndGet(h -> Math.max(0, h - 1));
        batchInvariant = holders > 0;
    }

    public static boolean batchInvariant() {
        return batchInvariant;
    }

    /** {@link #gemmRows} accumulated in double and rounded once (see {@link #batchInvariant(boolean)}). */
    private static void gemmRowsInvariant(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a,
            int offA, int lda, float[] b, int offB, int ldb, float beta, float[] c, int offC, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        int aLen = transA ? (k - 1) * lda + m : (m - 1) * lda + k;
        int bLen = transB ? (n - 1) * ldb + k : (k - 1) * ldb + n;
        double[] ad = new double[k == 0 ? 0 : aLen];
        double[] bd = new double[k == 0 ? 0 : bLen];
        for (int i = 0; i < ad.length; i++) {
            ad[i] = a[offA + i];
        }
        for (int i = 0; i < bd.length; i++) {
            bd[i] = b[offB + i];
        }
        double[] y = new double[m * n];
        if (beta != 0f) {
            for (int r = 0; r < m; r++) {
                for (int j = 0; j < n; j++) {
                    y[r * n + j] = c[offC + r * ldc + j];
                }
            }
        }
        int parts = Parallel.parallelism();
        if (k > 0 && parts > 1 && (long) m * n * k >= SPLIT_MIN_MACS && m >= 2 * parts) {
            // rows split over the cores as gemmRows does; in double the split changes no float result
            int block = Math.max(16, ((m + parts - 1) / parts + 15) / 16 * 16);
            int blocks = (m + block - 1) / block;
            Parallel.forEach(blocks, p -> {
                int r0 = p * block;
                int rows = Math.min(block, m - r0);
                dgemm(transA, transB, rows, n, k, alpha, ad, transA ? r0 : r0 * lda, lda, bd, 0, ldb, beta, y, r0 * n, n);
            });
        } else if (k > 0) {
            dgemm(transA, transB, m, n, k, alpha, ad, 0, lda, bd, 0, ldb, beta, y, 0, n);
        } else {
            for (int i = 0; i < y.length; i++) {
                y[i] *= beta;
            }
        }
        for (int r = 0; r < m; r++) {
            for (int j = 0; j < n; j++) {
                c[offC + r * ldc + j] = (float) y[r * n + j];
            }
        }
    }

    /** Double-precision twin of {@link #gemm}, same row-major conventions. */
    static void dgemm(boolean transA, boolean transB, int m, int n, int k, double alpha, double[] a, int offA, int lda,
            double[] b, int offB, int ldb, double beta, double[] c, int offC, int ldc) {
        if (m == 0 || n == 0) {
            return;
        }
        BLAS.dgemm(transB ? "T" : "N", transA ? "T" : "N", n, m, k, alpha, b, offB, ldb, a, offA, lda, beta, c, offC,
                ldc);
    }
}
