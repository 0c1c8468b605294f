package dev.kxai.backend.cpu;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/** Gemm and MatMul through BLAS, with their input gradients. */
final class DenseOps {
    private DenseOps() {
    }

    static Tensor gemm(Node node, Op.Gemm op, Tensor a, Tensor b, Tensor c) {
        if (a.rank() != 2 || b.rank() != 2) {
            throw new InvalidInputException("node '" + node.name() + "' (Gemm): needs 2-D operands, got "
                    + Shapes.str(a.shape()) + " and " + Shapes.str(b.shape()));
        }
        int m = op.transA() ? a.dim(1) : a.dim(0);
        int k = op.transA() ? a.dim(0) : a.dim(1);
        int kb = op.transB() ? b.dim(1) : b.dim(0);
        int n = op.transB() ? b.dim(0) : b.dim(1);
        if (k != kb) {
            throw new InvalidInputException("node '" + node.name() + "' (Gemm): inner dimensions differ: A "
                    + Shapes.str(a.shape()) + (op.transA() ? "ᵀ" : "") + " × B " + Shapes.str(b.shape())
                    + (op.transB() ? "ᵀ" : ""));
        }
        int[] outShape = {m, n};
        float[] y = new float[m * n];
        float beta = 0f;
        if (c != null && op.beta() != 0f) {
            if (!java.util.Arrays.equals(Shapes.broadcast(c.shape(), outShape), outShape)) {
                throw new InvalidInputException("node '" + node.name() + "' (Gemm): C " + Shapes.str(c.shape())
                        + " does not broadcast to " + Shapes.str(outShape));
            }
            if (c.size() == n && ElementwiseOps.isTrailing(c.shape(), outShape)) {
                for (int r = 0; r < m; r++) { // a bias row, copied into each row of Y
                    System.arraycopy(c.data(), 0, y, r * n, n);
                }
            } else {
                float[] cb = ElementwiseOps.binary(ElementwiseOps.Binary.ADD, Tensor.zeros(outShape), c, outShape).data();
                System.arraycopy(cb, 0, y, 0, y.length);
            }
            beta = op.beta();
        }
        Blas.gemmRows(op.transA(), op.transB(), m, n, k, op.alpha(), a.data(), 0, a.dim(1), b.data(), 0, b.dim(1), beta,
                y, 0, n);
        Tensor out = new Tensor(outShape, y);
        if (op.transA() || Blas.batchInvariant() || ExactDecisions.exactPath) {
            return out; // accumulated in double already (or a layout no decision follows in practice)
        }
        return out.withExact(new GemmExact(op, a, b, c, m, n, k));
    }

    /**
     * A float Gemm's bound per element, γ_{k+1}·(|α|·max_j|a_rj|·Σ_j|op(B)_jo| + |β·c|), the first
     * sum of |B| once per weight array, and the exact value (double sum, rounded once) on demand:
     * the ReLU after a dense layer decides as the all-double path would (see {@link ExactDecisions}).
     */
    private static final class GemmExact implements dev.kxai.tensor.ExactValues {
        private final Op.Gemm op;
        private final float[] a;
        private final float[] b;
        private final float[] c;
        private final int cRows;
        private final int cCols;
        private final int n;
        private final int k;
        private final int ldb;
        private final float[] rowMax;
        private final float[] colAbs;
        private final double gamma;

        GemmExact(Op.Gemm op, Tensor a, Tensor b, Tensor c, int m, int n, int k) {
            this.op = op;
            this.a = a.data();
            this.b = b.data();
            this.c = c == null || op.beta() == 0f ? null : c.data();
            // C broadcasts to [M, N]: a scalar, [N], [1, N], [M, 1] or [M, N]
            this.cRows = c == null || c.rank() < 2 ? 1 : c.dim(0);
            this.cCols = c == null || c.rank() == 0 ? 1 : c.dim(-1);
            this.n = n;
            this.k = k;
            this.ldb = b.dim(1);
            this.gamma = ExactDecisions.gamma(k + 1L);
            this.rowMax = new float[m];
            for (int r = 0; r < m; r++) {
                float mx = 0f;
                for (int j = r * k; j < (r + 1) * k; j++) {
                    float v = Math.abs(this.a[j]);
                    mx = v > mx || v != v ? v : mx;
                }
                rowMax[r] = mx;
            }
            boolean tb = op.transB();
            this.colAbs = COL_ABS.computeIfAbsent(b.data(), d -> columnAbsSums(d, tb, n, k, ldb));
        }

        @Override
        public float bound(int i, float value) {
            int r = i / n;
            int o = i - r * n;
            double cTerm = c == null ? 0 : Math.abs(op.beta() * c[cIndex(r, o)]);
            double terms = Math.abs(op.alpha()) * (double) rowMax[r] * colAbs[o] + cTerm;
            if (!(terms > 0)) {
                return 0f; // every term 0: the float sum is exactly 0
            }
            return (float) (gamma * terms * (1 + 1e-6) + 2 * ExactDecisions.U * Math.abs(value) + (k + 1) * 0x1p-149);
        }

        private int cIndex(int r, int o) {
            return (cRows == 1 ? 0 : r) * cCols + (cCols == 1 ? 0 : o);
        }

        @Override
        public float exact(int i) {
            int r = i / n;
            int o = i - r * n;
            double sum = 0;
            for (int j = 0; j < k; j++) {
                sum += (double) a[r * k + j] * (op.transB() ? b[o * ldb + j] : b[j * ldb + o]);
            }
            double v = op.alpha() * sum + (c == null ? 0 : op.beta() * (double) c[cIndex(r, o)]);
            return (float) v;
        }
    }

    /** Σ_j |op(B)_jo| per output column o (rounded up). */
    private static float[] columnAbsSums(float[] b, boolean transB, int n, int k, int ldb) {
        double[] s = new double[n];
        for (int j = 0; j < k; j++) {
            for (int o = 0; o < n; o++) {
                s[o] += Math.abs(transB ? b[o * ldb + j] : b[j * ldb + o]);
            }
        }
        float[] out = new float[n];
        for (int o = 0; o < n; o++) {
            out[o] = (float) (s[o] * (1 + 1e-6));
        }
        return out;
    }

    private static final java.util.Map<float[], float[]> COL_ABS =
            java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

    /** Gemm (transA = false, C a bias of [N] or [M, N] or absent) in double, not rounded. */
    static double[] gemmDouble(Op.Gemm op, Tensor a, Tensor b, Tensor c) {
        int m = a.dim(0);
        int k = a.dim(1);
        int n = op.transB() ? b.dim(0) : b.dim(1);
        double[] ad = new double[a.size()];
        for (int i = 0; i < ad.length; i++) {
            ad[i] = a.data()[i];
        }
        double[] bd = new double[b.size()];
        for (int i = 0; i < bd.length; i++) {
            bd[i] = b.data()[i];
        }
        double[] y = new double[m * n];
        if (c != null && op.beta() != 0f) {
            for (int i = 0; i < y.length; i++) {
                y[i] = op.beta() * (double) c.data()[c.size() == n ? i % n : i];
            }
        }
        Blas.dgemm(false, op.transB(), m, n, k, op.alpha(), ad, 0, k, bd, 0, b.dim(1), c != null && op.beta() != 0f ? 1.0 : 0.0,
                y, 0, n);
        return y;
    }

    static Tensor[] gemmBackward(Op.Gemm op, Tensor a, Tensor b, Tensor c, Tensor gOut, boolean[] need) {
        int m = gOut.dim(0);
        int n = gOut.dim(1);
        int k = op.transA() ? a.dim(0) : a.dim(1);
        float[] g = gOut.data();
        Tensor[] grads = new Tensor[3];
        if (need[0]) {
            float[] da = new float[a.size()];
            if (!op.transA()) { // dA[M,K] = α dY[M,N] · op(B)ᵀ
                Blas.gemmRows(false, !op.transB(), m, k, n, op.alpha(), g, 0, n, b.data(), 0, b.dim(1), 0f, da, 0, k);
            } else { // dA[K,M] = α op(B)[K,N] · dYᵀ
                Blas.gemmRows(op.transB(), true, k, m, n, op.alpha(), b.data(), 0, b.dim(1), g, 0, n, 0f, da, 0, m);
            }
            grads[0] = new Tensor(a.shape(), da);
        }
        if (need[1]) {
            float[] db = new float[b.size()];
            if (!op.transB()) { // dB[K,N] = α op(A)ᵀ · dY
                Blas.gemmRows(!op.transA(), false, k, n, m, op.alpha(), a.data(), 0, a.dim(1), g, 0, n, 0f, db, 0, n);
            } else { // dB[N,K] = α dYᵀ · op(A)
                Blas.gemmRows(true, op.transA(), n, k, m, op.alpha(), g, 0, n, a.data(), 0, a.dim(1), 0f, db, 0, k);
            }
            grads[1] = new Tensor(b.shape(), db);
        }
        if (c != null && need.length > 2 && need[2]) {
            grads[2] = ElementwiseOps.reduceTo(g, gOut.shape(), c.shape(), op.beta());
        }
        return grads;
    }

    /**
     * MatMul for A [..., M, K] with B [K, N] (the common "activations × weights"), or A and B of
     * equal rank ≥ 3 with equal leading (batch) dimensions.
     */
    static Tensor matmul(Node node, Tensor a, Tensor b) {
        Geometry g = geometry(node, a, b);
        float[] y = new float[g.batches * g.m * g.n];
        if (perBatch(g)) {
            Parallel.forEach(g.batches, t -> Blas.gemm(false, false, g.m, g.n, g.k, 1f, a.data(), t * g.m * g.k, g.k,
                    b.data(), t * g.k * g.n, g.n, 0f, y, t * g.m * g.n, g.n));
            return new Tensor(g.outShape, y);
        }
        for (int t = 0; t < g.batches; t++) {
            Blas.gemmRows(false, false, g.m, g.n, g.k, 1f, a.data(), t * g.m * g.k, g.k, b.data(), g.bBatched ? t * g.k * g.n : 0,
                    g.n, 0f, y, t * g.m * g.n, g.n);
        }
        return new Tensor(g.outShape, y);
    }

    /**
     * Whether an equal-batch MatMul (attention's scores and weighted values: 12 heads of [197, 64] ×
     * [64, 197] in vit_b_16) runs one whole GEMM per batch slice, the slices spread over the cores,
     * instead of slice after slice each split by rows: the slices are independent, there are enough
     * of them to fill the cores, and each is one GEMM of the same shape whatever the thread count.
     * Not in the batch-invariant mode, whose row-split GEMMs accumulate in double.
     */
    private static boolean perBatch(Geometry g) {
        return g.bBatched && g.batches >= 2 && g.batches >= Parallel.parallelism() && !Blas.batchInvariant();
    }

    static Tensor[] matmulBackward(Node node, Tensor a, Tensor b, Tensor gOut, boolean[] need) {
        Geometry g = geometry(node, a, b);
        float[] go = gOut.data();
        Tensor[] grads = new Tensor[2];
        if (perBatch(g)) {
            float[] da = need[0] ? new float[a.size()] : null;
            float[] db = need[1] ? new float[b.size()] : null;
            Parallel.forEach(g.batches, t -> {
                if (da != null) { // dA_t = dY_t · B_tᵀ
                    Blas.gemm(false, true, g.m, g.k, g.n, 1f, go, t * g.m * g.n, g.n, b.data(), t * g.k * g.n, g.n, 0f, da,
                            t * g.m * g.k, g.k);
                }
                if (db != null) { // dB_t = A_tᵀ · dY_t
                    Blas.gemm(true, false, g.k, g.n, g.m, 1f, a.data(), t * g.m * g.k, g.k, go, t * g.m * g.n, g.n, 0f, db,
                            t * g.k * g.n, g.n);
                }
            });
            grads[0] = da == null ? null : new Tensor(a.shape(), da);
            grads[1] = db == null ? null : new Tensor(b.shape(), db);
            return grads;
        }
        if (need[0]) {
            float[] da = new float[a.size()];
            for (int t = 0; t < g.batches; t++) {
                Blas.gemmRows(false, true, g.m, g.k, g.n, 1f, go, t * g.m * g.n, g.n, b.data(), g.bBatched ? t * g.k * g.n : 0,
                        g.n, 0f, da, t * g.m * g.k, g.k);
            }
            grads[0] = new Tensor(a.shape(), da);
        }
        if (need[1]) {
            float[] db = new float[b.size()];
            for (int t = 0; t < g.batches; t++) {
                // a shared B accumulates the contributions of every batch slice
                Blas.gemmRows(true, false, g.k, g.n, g.m, 1f, a.data(), t * g.m * g.k, g.k, go, t * g.m * g.n, g.n,
                        g.bBatched || t == 0 ? 0f : 1f, db, g.bBatched ? t * g.k * g.n : 0, g.n);
            }
            grads[1] = new Tensor(b.shape(), db);
        }
        return grads;
    }

    private record Geometry(int batches, int m, int k, int n, boolean bBatched, int[] outShape) {
    }

    private static Geometry geometry(Node node, Tensor a, Tensor b) {
        int[] as = a.shape();
        int[] bs = b.shape();
        if (as.length >= 2 && bs.length == 2 && as[as.length - 1] == bs[0]) {
            int k = bs[0];
            int n = bs[1];
            int rows = a.size() / Math.max(1, k);
            int[] out = as.clone();
            out[out.length - 1] = n;
            return new Geometry(1, rows, k, n, false, out);
        }
        if (as.length == bs.length && as.length >= 3 && as[as.length - 1] == bs[bs.length - 2]) {
            int batches = 1;
            for (int d = 0; d < as.length - 2; d++) {
                if (as[d] != bs[d]) {
                    batches = -1;
                    break;
                }
                batches *= as[d];
            }
            if (batches >= 0) {
                int[] out = as.clone();
                out[out.length - 1] = bs[bs.length - 1];
                return new Geometry(batches, as[as.length - 2], as[as.length - 1], bs[bs.length - 1], true, out);
            }
        }
        throw new InvalidInputException("node '" + node.name() + "' (MatMul): unsupported operand shapes "
                + Shapes.str(as) + " × " + Shapes.str(bs)
                + " (kxai supports [..., M, K] × [K, N] and equal-batch [..., M, K] × [..., K, N])");
    }
}
