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
        boolean plain = op.transA() || Blas.batchInvariant() || ExactDecisions.exactPath;
        boolean blocked = !plain && k > 2 * K_BLOCK;
        if (blocked) {
            kBlocked(op, a.data(), b.data(), b.dim(1), m, n, k, beta, y);
        } else {
            Blas.gemmRows(op.transA(), op.transB(), m, n, k, op.alpha(), a.data(), 0, a.dim(1), b.data(), 0, b.dim(1),
                    beta, y, 0, n);
        }
        Tensor out = new Tensor(outShape, y);
        if (plain) {
            return out; // accumulated in double already (or a layout no decision follows in practice)
        }
        return out.withExact(new GemmExact(op, a, b, c, m, n, k, blocked ? K_BLOCK : k));
    }

    /** Products per float sum of a blocked Gemm (see {@link #kBlocked}); the convolutions' block too. */
    static final int K_BLOCK = ConvOps.K_BLOCK;

    /** Columns of Y per task of {@link #kBlocked}: fixed, so no result depends on the thread count. */
    private static final int COLUMN_CHUNK = 256;

    /**
     * Y = α·A·op(B) + β·Y for a long k (vgg's classifier: 25088) as float sgemms over blocks of
     * {@link #K_BLOCK} products, the blocks added in double and rounded once: each output's error is
     * then γ_{K_BLOCK+1}·Σ|terms| rather than γ_{k+1}·Σ|terms|, which flagged nearly every output of
     * such a layer for recomputation before its ReLU (25088 double multiply-adds each). Columns are
     * split into fixed chunks over the cores; B's blocks are passed in place except where the BLAS
     * binding's extent check (offset + ld·rows) would run past B (the last row of a transposed B, the
     * last block of a chunk right of column 0), which are copied.
     */
    private static void kBlocked(Op.Gemm op, float[] a, float[] b, int ldb, int m, int n, int k, float beta, float[] y) {
        int chunks = (n + COLUMN_CHUNK - 1) / COLUMN_CHUNK;
        float alpha = op.alpha();
        boolean tb = op.transB();
        Parallel.forEach(chunks, ch -> {
            int c0 = ch * COLUMN_CHUNK;
            int c1 = Math.min(n, c0 + COLUMN_CHUNK);
            int cols = c1 - c0;
            double[] acc = new double[m * cols];
            for (int r = 0; r < m; r++) {
                for (int o = 0; o < cols; o++) {
                    acc[r * cols + o] = beta == 0f ? 0.0 : (double) beta * y[r * n + c0 + o];
                }
            }
            float[] aBlock = new float[m * K_BLOCK];
            float[] part = new float[m * cols];
            float[] lastRow = tb && c1 == n ? new float[K_BLOCK] : null;
            float[] lastOut = new float[m];
            for (int k0 = 0; k0 < k; k0 += K_BLOCK) {
                int kb = Math.min(K_BLOCK, k - k0);
                for (int r = 0; r < m; r++) {
                    System.arraycopy(a, r * k + k0, aBlock, r * kb, kb);
                }
                if (!tb) {
                    // op(B) = B [k, n]: the block's rows are in place, unless the binding's extent check
                    // (offset + ld·rows) would run past B: the last block of a chunk right of column 0
                    int off = k0 * ldb + c0;
                    if (off + (long) ldb * kb <= b.length) {
                        Blas.gemm(false, false, m, cols, kb, 1f, aBlock, 0, kb, b, off, ldb, 0f, part, 0, cols);
                    } else {
                        float[] bBlock = new float[kb * cols];
                        for (int j = 0; j < kb; j++) {
                            System.arraycopy(b, off + j * ldb, bBlock, j * cols, cols);
                        }
                        Blas.gemm(false, false, m, cols, kb, 1f, aBlock, 0, kb, bBlock, 0, cols, 0f, part, 0, cols);
                    }
                } else {
                    int inPlace = c1 == n ? cols - 1 : cols;
                    if (inPlace > 0) {
                        Blas.gemm(false, true, m, inPlace, kb, 1f, aBlock, 0, kb, b, c0 * ldb + k0, ldb, 0f, part, 0,
                                cols);
                    }
                    if (lastRow != null) {
                        System.arraycopy(b, (n - 1) * ldb + k0, lastRow, 0, kb);
                        Blas.gemm(false, true, m, 1, kb, 1f, aBlock, 0, kb, lastRow, 0, kb, 0f, lastOut, 0, 1);
                        for (int r = 0; r < m; r++) {
                            part[r * cols + cols - 1] = lastOut[r];
                        }
                    }
                }
                for (int i = 0; i < acc.length; i++) {
                    acc[i] += (double) alpha * part[i];
                }
            }
            for (int r = 0; r < m; r++) {
                for (int o = 0; o < cols; o++) {
                    y[r * n + c0 + o] = (float) acc[r * cols + o];
                }
            }
        });
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

        /** {@code sumLength}: products per float sum (k, or the block of a blocked Gemm). */
        GemmExact(Op.Gemm op, Tensor a, Tensor b, Tensor c, int m, int n, int k, int sumLength) {
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
            this.gamma = ExactDecisions.gamma(sumLength + 1L);
            this.rowMax = new float[m];
            for (int r = 0; r < m; r++) {
                rowMax[r] = SimdLoops.get().maxAbs(this.a, r * k, (r + 1) * k); // NaN if any is
            }
            boolean tb = op.transB();
            this.colAbs = COL_ABS.computeIfAbsent(b.data(), d -> columnAbsSums(d, tb, n, k, ldb));
            float ca = 0f;
            for (float v : colAbs) {
                ca = Math.max(ca, v);
            }
            this.maxColAbs = ca;
            float cm = 0f;
            if (this.c != null) {
                for (float v : this.c) {
                    cm = Math.max(cm, Math.abs(op.beta() * v));
                }
            }
            this.maxC = cm;
        }

        private final float maxColAbs;
        private final float maxC;

        @Override
        public float maxBound(float[] data, int from, int to) {
            float rm = 0f;
            for (int r = from / n; r * n < to; r++) {
                rm = Math.max(rm, rowMax[r]);
            }
            double terms = Math.abs(op.alpha()) * (double) rm * maxColAbs + maxC;
            if (terms != terms) {
                return Float.NaN;
            }
            if (!(terms > 0)) {
                return 0f;
            }
            float v = SimdLoops.get().maxAbs(data, from, to);
            return v != v ? Float.NaN
                    : (float) ((gamma * terms * (1 + 1e-6) + 2 * ExactDecisions.U * v + (k + 1) * 0x1p-149) * (1 + 1e-6));
        }

        @Override
        public boolean knowsMaxBound() {
            return true;
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
            // four partial sums: independent chains (one accumulator serialises every add: ~30 µs for
            // vgg's k = 25088); any order of double sums rounds to the same float bar astronomically rare cases
            double s0 = 0;
            double s1 = 0;
            double s2 = 0;
            double s3 = 0;
            int ar = r * k;
            int j = 0;
            if (op.transB()) {
                int br = o * ldb;
                for (; j + 4 <= k; j += 4) {
                    s0 += (double) a[ar + j] * b[br + j];
                    s1 += (double) a[ar + j + 1] * b[br + j + 1];
                    s2 += (double) a[ar + j + 2] * b[br + j + 2];
                    s3 += (double) a[ar + j + 3] * b[br + j + 3];
                }
                for (; j < k; j++) {
                    s0 += (double) a[ar + j] * b[br + j];
                }
            } else {
                for (; j + 4 <= k; j += 4) {
                    s0 += (double) a[ar + j] * b[j * ldb + o];
                    s1 += (double) a[ar + j + 1] * b[(j + 1) * ldb + o];
                    s2 += (double) a[ar + j + 2] * b[(j + 2) * ldb + o];
                    s3 += (double) a[ar + j + 3] * b[(j + 3) * ldb + o];
                }
                for (; j < k; j++) {
                    s0 += (double) a[ar + j] * b[j * ldb + o];
                }
            }
            double sum = (s0 + s1) + (s2 + s3);
            double v = op.alpha() * sum + (c == null ? 0 : op.beta() * (double) c[cIndex(r, o)]);
            return (float) v;
        }
    }

    /** Σ_j |op(B)_jo| per output column o (rounded up). */
    private static float[] columnAbsSums(float[] b, boolean transB, int n, int k, int ldb) {
        double[] s = new double[n];
        // in the weights' own order (transB: a row per output column): the other order strides through
        // memory, ~1 s once per process for vgg's 25088 × 4096 classifier
        if (transB) {
            for (int o = 0; o < n; o++) {
                double sum = 0;
                for (int j = 0; j < k; j++) {
                    sum += Math.abs(b[o * ldb + j]);
                }
                s[o] = sum;
            }
        } else {
            for (int j = 0; j < k; j++) {
                for (int o = 0; o < n; o++) {
                    s[o] += Math.abs(b[j * ldb + o]);
                }
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
