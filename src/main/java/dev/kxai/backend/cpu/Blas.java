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

    /** Below this many multiply-adds a GEMM runs on the calling thread: splitting costs more than it saves. */
    static final long SPLIT_MIN_MACS = 1L << 21;

    /**
     * {@link #gemm}, with the rows of C split over the cores. kxai runs OpenBLAS single-threaded
     * (OPENBLAS_NUM_THREADS=1, see README) and parallelises itself, so that the images of a batch,
     * not the BLAS's threads, share the cores; a large GEMM outside such a loop splits here. Each row of C
     * is still one BLAS dot-product order, so the result does not depend on the split. Must not be
     * called from inside a {@link Parallel} task that holds {@link Scratch} buffers.
     */
    static void gemmRows(boolean transA, boolean transB, int m, int n, int k, float alpha, float[] a, int offA,
            int lda, float[] b, int offB, int ldb, float beta, float[] c, int offC, int ldc) {
        int parts = Parallel.parallelism();
        if (parts < 2 || (long) m * n * k < SPLIT_MIN_MACS || m < 2 * parts) {
            gemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
            return;
        }
        // row blocks that are multiples of 16 keep the BLAS micro-kernels on full tiles
        int block = Math.max(16, ((m + parts - 1) / parts + 15) / 16 * 16);
        int blocks = (m + block - 1) / block;
        Parallel.forEach(blocks, p -> {
            int r0 = p * block;
            int rows = Math.min(block, m - r0);
            int aRow = transA ? offA + r0 : offA + r0 * lda;
            gemm(transA, transB, rows, n, k, alpha, a, aRow, lda, b, offB, ldb, beta, c, offC + r0 * ldc, ldc);
        });
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
