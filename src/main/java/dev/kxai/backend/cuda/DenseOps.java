package dev.kxai.backend.cuda;

import dev.kxai.graph.Op;
import jcuda.Pointer;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasOperation;

/**
 * Gemm and MatMul through cuBLAS (row-major through column-major: Cᵀ = op(B)ᵀ op(A)ᵀ), the bias
 * and activation fused on a GEMM's output (kernels/dense.cu), their backwards, and the first
 * layer's Gemm in double (gemm_f64) for the first-layer saving.
 */
final class DenseOps {
    private final CudaRuntime rt;
    private final Kernels k;

    DenseOps(CudaRuntime rt, Kernels k) {
        this.rt = rt;
        this.k = k;
    }

    /** A GEMM's output (after the fused activation, if any) and what that activation's backward reads. */
    record Fused(DTensor out, DeviceBuffer saved) {
    }

    /** Row-major C[M×N] = alpha·op(A)·op(B) + beta·C through column-major cuBLAS (Cᵀ = op(B)ᵀ op(A)ᵀ). */
    private void gemm(boolean ta, boolean tb, int m, int n, int kk, float alpha, DeviceBuffer a, int lda,
            DeviceBuffer b, int ldb, float beta, DeviceBuffer c, int ldc) {
        cublasHandle h = Work.cublas(rt);
        rt.mathMode(h, ConvOps.tf32());
        if (Work.recording()) {
            Work.submit(gemmOp(ta, tb, m, n, kk, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, false));
            KernelCosts.gemmCalled(false, m, n, kk, beta, 1, false, false);
            return;
        }
        JCublas2.cublasSgemm(h, tb ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
                ta ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N, n, m, kk, Pointer.to(new float[] {alpha}),
                b.ptr(), ldb, a.ptr(), lda, Pointer.to(new float[] {beta}), c.ptr(), ldc);
        KernelCosts.gemmCalled(false, m, n, kk, beta, 1, false, false);
    }

    void gemmBatched(boolean ta, boolean tb, int m, int n, int kk, float alpha, DeviceBuffer a, int lda,
            long strideA, DeviceBuffer b, int ldb, long strideB, float beta, DeviceBuffer c, int ldc, long strideC,
            int count) {
        cublasHandle h = Work.cublas(rt);
        rt.mathMode(h, ConvOps.tf32());
        if (Work.recording()) {
            Work.submit(gemmOp(ta, tb, m, n, kk, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, count, true));
            KernelCosts.gemmCalled(false, m, n, kk, beta, count, strideA == 0, strideB == 0);
            return;
        }
        JCublas2.cublasSgemmStridedBatched(h, tb ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
                ta ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N, n, m, kk, Pointer.to(new float[] {alpha}),
                b.ptr(), ldb, strideB, a.ptr(), lda, strideA, Pointer.to(new float[] {beta}), c.ptr(), ldc, strideC,
                count);
        KernelCosts.gemmCalled(false, m, n, kk, beta, count, strideA == 0, strideB == 0);
    }

    /** A GEMM as the validated graph replay compares and issues it ({@link StreamOp.Gemm}'s layout). */
    private StreamOp gemmOp(boolean ta, boolean tb, int m, int n, int kk, float alpha, DeviceBuffer a, int lda, long strideA,
            DeviceBuffer b, int ldb, long strideB, float beta, DeviceBuffer c, int ldc, long strideC, int count,
            boolean batched) {
        long[] shape = {tb ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
            ta ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N, n, m, kk, ldb, lda, ldc, count,
            Float.floatToRawIntBits(alpha), Float.floatToRawIntBits(beta), strideB, strideA, strideC, b.address(),
            a.address(), c.address(), ConvOps.tf32() ? 1 : 0};
        return new StreamOp.Gemm(Work.cublas(rt), shape, a.ptr(), b.ptr(), c.ptr(), batched);
    }

    /** Gemm of the planned output shape [M, N], and with a {@link Fusion} the activation after it (null: the Gemm alone). */
    Fused gemmForward(DeviceScope s, Op.Gemm op, DTensor[] in, int[] outShape, Fusion fusion) {
        DTensor a = in[0];
        DTensor b = in[1];
        int m = outShape[0];
        int n = outShape[1];
        int kk = op.transA() ? a.dim(0) : a.dim(1);
        DTensor y = new DTensor(outShape.clone(), s.floats((long) m * n));
        DTensor c = in.length > 2 ? in[2] : null;
        DeviceBuffer rowBias = null;
        float beta = op.beta();
        boolean fullC = c != null && c.rank() == 2 && c.size() == (long) m * n;
        if (c != null && beta != 0f && beta != 1f && !fullC) {
            // a broadcast C (row, column, scalar) is scaled once and then added as it is; a full
            // [M, N] C takes beta inside the GEMM
            DeviceBuffer scaled = s.floats(c.size());
            k.scaleCopy(scaled, c.buf(), c.size(), beta);
            c = new DTensor(c.shape(), scaled);
            beta = 1f;
        }
        if (c != null && beta != 0f) {
            boolean rowBiasShape = c.rank() == 1 || (c.rank() == 2 && c.dim(0) == 1);
            if (rowBiasShape && c.size() == n && beta == 1f) {
                gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), 0f, y.buf(), n);
                rowBias = c.buf();
            } else if (c.size() != (long) m * n || c.rank() != 2) {
                // any other C that broadcasts to [M, N] (a column, a scalar; checked by the plan):
                // GEMM, then a broadcast add
                int[] out = {m, n};
                DTensor prod = new DTensor(out, s.floats((long) m * n));
                gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), 0f,
                        prod.buf(), n);
                Broadcast bc = Broadcast.of(out, out, c.shape());
                k.binaryForward(y.buf(), prod.buf(), c.buf(), 0, bc.dims, bc.a, bc.b);
                return activate(s, y, null, fusion);
            } else {
                y.buf().copyFrom(c.buf(), c.size());
                gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), op.beta(),
                        y.buf(), n);
                return activate(s, y, null, fusion);
            }
        } else {
            gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), 0f, y.buf(), n);
        }
        return activate(s, y, rowBias, fusion);
    }

    /** The row bias (may be null) and the fused activation (may be null) on a GEMM's output, in one kernel. */
    private Fused activate(DeviceScope s, DTensor y, DeviceBuffer rowBias, Fusion fusion) {
        long rows = y.dim(0);
        int cols = y.dim(1);
        if (fusion == null) {
            if (rowBias != null) {
                k.biasActForward(y.buf(), rowBias, rows, cols, Kernels.ACT_NONE, 0f);
            }
            return new Fused(y, null);
        }
        DeviceBuffer[] outSaved = biasAct(s, y.buf(), rowBias, rows, cols, fusion);
        return new Fused(new DTensor(y.shape(), outSaved[0]), outSaved[1]);
    }

    /**
     * act(y + bias) on a GEMM's output y in one kernel (bias may be null). In place, the backward
     * then reading the output; for LeakyReLU with alpha &lt; 0 into a new buffer, the pre-activation
     * kept in y for the backward. Returns {output, what the backward reads}.
     */
    DeviceBuffer[] biasAct(DeviceScope s, DeviceBuffer y, DeviceBuffer bias, long rows, int cols, Fusion f) {
        if (f.keepsInput()) {
            DeviceBuffer out = s.floats(rows * cols);
            k.biasActForwardKeep(out, y, bias, rows, cols, f.code(), f.alpha());
            return new DeviceBuffer[] {out, y};
        }
        k.biasActForward(y, bias, rows, cols, f.code(), f.alpha());
        return new DeviceBuffer[] {y, y};
    }

    /**
     * MatMul: [..., M, K] × [K, N] as one GEMM over all rows, or [..., M, K] × [..., K, N] with equal
     * leading dimensions as one strided-batched GEMM (the operand shapes are the plan's to check).
     */
    DTensor matmul(DeviceScope s, DTensor a, DTensor b, int[] outShape) {
        int[] as = a.shape();
        int[] bs = b.shape();
        if (as.length >= 2 && bs.length == 2 && as[as.length - 1] == bs[0]) {
            int kk = bs[0];
            int n = bs[1];
            int rows = (int) (a.size() / kk);
            DTensor y = new DTensor(outShape.clone(), s.floats((long) rows * n));
            gemm(false, false, rows, n, kk, 1f, a.buf(), kk, b.buf(), n, 0f, y.buf(), n);
            return y;
        }
        int batches = equalBatches(as, bs);
        if (batches <= 0) {
            throw new IllegalStateException("MatMul of " + java.util.Arrays.toString(as) + " × "
                    + java.util.Arrays.toString(bs) + " reached cuda (the plan refuses it)");
        }
        int m = as[as.length - 2];
        int kk = as[as.length - 1];
        int n = bs[bs.length - 1];
        DTensor y = new DTensor(outShape.clone(), s.floats((long) batches * m * n));
        gemmBatched(false, false, m, n, kk, 1f, a.buf(), kk, (long) m * kk, b.buf(), n, (long) kk * n, 0f, y.buf(), n,
                (long) m * n, batches);
        return y;
    }

    /** The number of [M, K] × [K, N] products of an equal-batch MatMul (rank ≥ 3, same leading dims), else 0. */
    static int equalBatches(int[] as, int[] bs) {
        if (as.length != bs.length || as.length < 3 || as[as.length - 1] != bs[bs.length - 2]) {
            return 0;
        }
        int batches = 1;
        for (int d = 0; d < as.length - 2; d++) {
            if (as[d] != bs[d]) {
                return 0;
            }
            batches *= as[d];
        }
        return batches;
    }

    /** dA = dY·Bᵀ, and for an equal-batch MatMul dB = Aᵀ·dY, per batch (a 2-D B needing a gradient: refused by the plan). */
    DTensor[] matmulBackward(DeviceScope s, DTensor a, DTensor b, DTensor gy, boolean[] need) {
        int[] as = a.shape();
        int[] bs = b.shape();
        DTensor ga = need[0] ? new DTensor(as, s.floats(a.size())) : null;
        DTensor gb = need[1] ? new DTensor(bs, s.floats(b.size())) : null;
        int batches = equalBatches(as, bs);
        if (batches > 0) {
            int m = as[as.length - 2];
            int kk = as[as.length - 1];
            int nn = bs[bs.length - 1];
            if (ga != null) {
                gemmBatched(false, true, m, kk, nn, 1f, gy.buf(), nn, (long) m * nn, b.buf(), nn, (long) kk * nn, 0f,
                        ga.buf(), kk, (long) m * kk, batches);
            }
            if (gb != null) {
                gemmBatched(true, false, kk, nn, m, 1f, a.buf(), kk, (long) m * kk, gy.buf(), nn, (long) m * nn, 0f,
                        gb.buf(), nn, (long) kk * nn, batches);
            }
            return new DTensor[] {ga, gb};
        }
        if (gb != null) {
            throw new IllegalStateException("a 2-D MatMul operand computed from the input reached cuda");
        }
        int kk = bs[0];
        int nn = bs[1];
        int rows = (int) (a.size() / kk);
        gemm(false, true, rows, kk, nn, 1f, gy.buf(), nn, b.buf(), nn, 0f, ga.buf(), kk);
        return new DTensor[] {ga, null};
    }

    /** dA of a Gemm (weights and bias computed from the input are refused by the plan). */
    DTensor[] gemmBackward(DeviceScope s, Op.Gemm op, DTensor[] in, DTensor gy, boolean[] need) {
        DTensor a = in[0];
        DTensor b = in[1];
        int m = gy.dim(0);
        int n = gy.dim(1);
        int kk = op.transA() ? a.dim(0) : a.dim(1);
        if (need[1] || (in.length > 2 && need[2])) {
            throw new IllegalStateException("Gemm weights or bias computed from the input reached cuda");
        }
        DTensor[] r = new DTensor[in.length];
        if (need[0]) {
            DTensor ga = new DTensor(a.shape(), s.floats(a.size()));
            if (!op.transA()) {
                gemm(false, !op.transB(), m, kk, n, op.alpha(), gy.buf(), n, b.buf(), b.dim(1), 0f, ga.buf(), kk);
            } else {
                gemm(op.transB(), true, kk, m, n, op.alpha(), b.buf(), b.dim(1), gy.buf(), n, 0f, ga.buf(), m);
            }
            r[0] = ga;
        }
        return r;
    }

    /** The first layer's Gemm at x, in double (unrounded), of the planned output shape. */
    DTensor gemmF64(DeviceScope s, Op.Gemm op, DTensor x, DTensor w, DTensor c, int[] outShape) {
        int kk = x.dim(1);
        int n = outShape[1];
        DTensor y = new DTensor(outShape.clone(), s.doubles((long) x.dim(0) * n));
        k.gemmF64(y.buf(), x.buf(), w.buf(), c != null && op.beta() != 0f ? c.buf() : null, x.dim(0), n, kk,
                op.transB(), op.alpha(), op.beta());
        return y;
    }
}
