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
