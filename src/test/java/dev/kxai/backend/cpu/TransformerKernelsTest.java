package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * The loops that vit_b_16's profile made faster, each against its straightforward twin (the index-array
 * or one-element-at-a-time loop it replaced, written out here) bit for bit, in pools of 1, 2 and 3
 * threads: Div/Pow gradients and the sums back onto broadcast operands, ReduceMean over trailing axes and
 * its gradient, Softmax and its gradient, Transpose, Select's gradient, and equal-batch MatMul.
 */
class TransformerKernelsTest {
    private static final int[] POOLS = {1, 2, 3};

    private static Tensor random(int[] shape, long seed, boolean positive) {
        Random r = new Random(seed);
        float[] v = new float[Shapes.intSize(shape)];
        for (int i = 0; i < v.length; i++) {
            double g = r.nextGaussian();
            v[i] = (float) (positive ? 0.5 + Math.abs(g) : g);
        }
        return new Tensor(shape, v);
    }

    private static <T> T in(int threads, Callable<T> work) throws Exception {
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            return pool.submit(work).get();
        } finally {
            pool.shutdown();
        }
    }

    /** The operand sums as before: through the index array, ascending output order. */
    private static float[] reduceToTwin(float[] g, int[] outShape, int[] shape, float scale) {
        int[] idx = ElementwiseOps.broadcastIndex(shape, outShape);
        float[] r = new float[Shapes.intSize(shape)];
        for (int i = 0; i < g.length; i++) {
            r[idx[i]] += scale * g[i];
        }
        return r;
    }

    @Test
    void divAndPowGradientsMatchTheIndexArrayLoops() throws Exception {
        // [full, other] pairs: LayerNorm's (x − μ) / σ with σ [.., 1], GELU's x / √2 (scalar), a bias
        // row, a block in the middle, and each the other way round
        int[] out = {2, 37, 768};
        int[][] others = {{2, 37, 768}, {1}, {2, 37, 1}, {768}, {1, 37, 768}, {37, 1}, {2, 1, 1}, {1, 1, 1}};
        long seed = 1;
        for (int[] o : others) {
            Tensor full = random(out, seed++, true);
            Tensor small = random(o, seed++, true);
            Tensor g = random(out, seed++, false);
            for (ElementwiseOps.Binary kind : new ElementwiseOps.Binary[] {ElementwiseOps.Binary.DIV, ElementwiseOps.Binary.POW}) {
                for (boolean smallFirst : new boolean[] {false, true}) {
                    Tensor a = smallFirst ? small : full;
                    Tensor b = smallFirst ? full : small;
                    float[][] want = divPowTwin(kind, a, b, out, g.data());
                    for (int threads : POOLS) {
                        Tensor[] got = in(threads, () -> ElementwiseOps.binaryBackward(kind, a, b, out, g, true, true));
                        String what = kind + " " + Shapes.str(a.shape()) + " op " + Shapes.str(b.shape()) + ", " + threads
                                + " threads";
                        assertArrayEquals(want[0], got[0].data(), 0f, what + ": dA");
                        assertArrayEquals(want[1], got[1].data(), 0f, what + ": dB");
                    }
                }
            }
        }
    }

    @Test
    void theSquaresGradientSkipsPowWithTheSameBits() {
        Random r = new Random(3);
        for (int i = 0; i < 100_000; i++) {
            double a = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(12) - 6));
            double g = (float) r.nextGaussian();
            assertEquals(g * 2.0 * Math.pow(a, 2.0 - 1.0), ElementwiseOps.binaryGradient(ElementwiseOps.Binary.POW, 0, a, 2.0, g));
        }
    }

    @Test
    void aFloatQuotientIsTheDoubleQuotientRoundedToFloat() {
        // what the Div gradient's float loop relies on, over random bit patterns (subnormals,
        // infinities and NaN included) and ordinary values
        Random r = new Random(8);
        for (int i = 0; i < 2_000_000; i++) {
            float g = i % 2 == 0 ? Float.intBitsToFloat(r.nextInt()) : (float) r.nextGaussian();
            float y = i % 3 == 0 ? Float.intBitsToFloat(r.nextInt()) : (float) (r.nextGaussian() * 3);
            float viaDouble = (float) ((double) g / y);
            float direct = g / y;
            assertEquals(0, Float.compare(viaDouble, direct), g + " / " + y);
        }
    }

    private static float[][] divPowTwin(ElementwiseOps.Binary kind, Tensor a, Tensor b, int[] out, float[] g) {
        int[] ia = ElementwiseOps.broadcastIndex(a.shape(), out);
        int[] ib = ElementwiseOps.broadcastIndex(b.shape(), out);
        float[] ca = new float[g.length];
        float[] cb = new float[g.length];
        for (int i = 0; i < g.length; i++) {
            double x = a.data()[ia[i]];
            double y = b.data()[ib[i]];
            ca[i] = (float) ElementwiseOps.binaryGradient(kind, 0, x, y, g[i]);
            cb[i] = (float) ElementwiseOps.binaryGradient(kind, 1, x, y, g[i]);
        }
        return new float[][] {reduceToTwin(ca, out, a.shape(), 1f), reduceToTwin(cb, out, b.shape(), 1f)};
    }

    @Test
    void broadcastForwardLoopsMatchTheIndexArrayLoop() throws Exception {
        // a Linear's bias first (Add(bias, MatMul)), scalars on either side, LayerNorm's [.., 1], equal shapes
        int[] out = {97, 1, 700}; // 68k elements: three tasks of Parallel.GRAIN
        int[][] others = {{700}, {1, 1, 700}, {1}, {97, 1, 1}, {97, 1, 700}, {1, 1, 1}, {2, 1, 1, 1}};
        long seed = 200;
        for (int[] o : others) {
            int[] outShape = Shapes.broadcast(out, o);
            Tensor full = random(out, seed++, true);
            Tensor small = random(o, seed++, true);
            for (ElementwiseOps.Binary kind : ElementwiseOps.Binary.values()) {
                for (boolean smallFirst : new boolean[] {false, true}) {
                    Tensor a = smallFirst ? small : full;
                    Tensor b = smallFirst ? full : small;
                    int[] ia = ElementwiseOps.broadcastIndex(a.shape(), outShape);
                    int[] ib = ElementwiseOps.broadcastIndex(b.shape(), outShape);
                    float[] want = new float[Shapes.intSize(outShape)];
                    for (int i = 0; i < want.length; i++) {
                        want[i] = ElementwiseOps.apply(kind, a.data()[ia[i]], b.data()[ib[i]]);
                    }
                    for (int threads : POOLS) {
                        Tensor got = in(threads, () -> ElementwiseOps.binary(kind, a, b, outShape));
                        assertArrayEquals(want, got.data(), 0f, kind + " " + Shapes.str(a.shape()) + " op "
                                + Shapes.str(b.shape()) + ", " + threads + " threads");
                    }
                }
            }
        }
    }

    @Test
    void sumsOntoBroadcastOperandsMatchTheIndexArrayLoop() throws Exception {
        int[] out = {3, 197, 300};
        int[][] shapes = {{300}, {1, 1, 300}, {197, 300}, {3, 197, 1}, {197, 1}, {3, 1, 1}, {1}, {1, 1, 1}, {3, 1, 300}};
        long seed = 40;
        for (int[] s : shapes) {
            float[] g = random(out, seed++, false).data();
            float[] want = reduceToTwin(g, out, s, -1f);
            for (int threads : POOLS) {
                Tensor got = in(threads, () -> ElementwiseOps.reduceTo(g, out, s, -1f));
                assertArrayEquals(want, got.data(), 0f, Shapes.str(s) + ", " + threads + " threads");
            }
        }
        assertNotNull(ElementwiseOps.Runs.of(new int[] {3, 197, 1}, out));
        assertNull(ElementwiseOps.Runs.of(new int[] {3, 1, 300}, out)); // two runs apart: the index arrays
    }

    @Test
    void reduceMeanOverTrailingAxesAndItsGradientMatchTheIndexLoop() throws Exception {
        int[] in = {2, 197, 1, 768};
        boolean[][] reduceds = {{false, false, false, true}, {false, false, true, true}, {false, true, true, true},
            {true, true, true, true}, {false, false, false, false}, {true, false, false, true}, {false, true, false, false}};
        Tensor x = random(in, 77, false);
        boolean[] trailing = {true, true, true, true, true, false, false}; // the fast loop, or the index array
        for (int c = 0; c < reduceds.length; c++) {
            boolean[] reduced = reduceds[c];
            assertEquals(trailing[c], ShapeOps.trailingBlock(in, reduced) > 0, java.util.Arrays.toString(reduced));
            int[] outShape = new int[in.length];
            for (int d = 0; d < in.length; d++) {
                outShape[d] = reduced[d] ? 1 : in[d];
            }
            for (boolean mean : new boolean[] {true, false}) {
                float[] want = reduceTwin(x, reduced, mean, outShape);
                Tensor g = random(outShape, 78, false);
                float[] wantBack = reduceBackwardTwin(in, reduced, mean, g);
                for (int threads : POOLS) {
                    Tensor got = in(threads, () -> ShapeOps.reduce(x, reduced, mean, outShape));
                    assertArrayEquals(want, got.data(), 0f, java.util.Arrays.toString(reduced) + " mean " + mean);
                    Tensor back = in(threads, () -> ShapeOps.reduceBackward(in, reduced, mean, g));
                    assertArrayEquals(wantBack, back.data(), 0f, java.util.Arrays.toString(reduced) + " backward");
                }
            }
        }
    }

    /** For each input element, the flat output element it reduces into (the twin's index array). */
    private static int[] outIndex(int[] in, boolean[] reduced) {
        int[] outShape = new int[in.length];
        for (int d = 0; d < in.length; d++) {
            outShape[d] = reduced[d] ? 1 : in[d];
        }
        int[] idx = new int[Shapes.intSize(in)];
        int[] c = new int[in.length];
        int[] os = Shapes.strides(outShape);
        for (int e = 0; e < idx.length; e++) {
            int rem = e;
            int off = 0;
            for (int d = in.length - 1; d >= 0; d--) {
                c[d] = rem % in[d];
                rem /= in[d];
                off += reduced[d] ? 0 : c[d] * os[d];
            }
            idx[e] = off;
        }
        return idx;
    }

    private static float[] reduceTwin(Tensor x, boolean[] reduced, boolean mean, int[] outShape) {
        int[] idx = outIndex(x.shape(), reduced);
        double[] sums = new double[Shapes.intSize(outShape)];
        for (int i = 0; i < idx.length; i++) {
            sums[idx[i]] += x.data()[i];
        }
        double count = (double) idx.length / sums.length;
        float[] y = new float[sums.length];
        for (int o = 0; o < y.length; o++) {
            y[o] = (float) (mean ? sums[o] / count : sums[o]);
        }
        return y;
    }

    private static float[] reduceBackwardTwin(int[] in, boolean[] reduced, boolean mean, Tensor g) {
        int[] idx = outIndex(in, reduced);
        float[] dx = new float[idx.length];
        double count = (double) dx.length / g.size();
        for (int i = 0; i < dx.length; i++) {
            dx[i] = mean ? (float) (g.data()[idx[i]] / count) : g.data()[idx[i]];
        }
        return dx;
    }

    @Test
    void softmaxAndItsGradientMatchTheSerialLoop() throws Exception {
        int[] shape = {12, 197, 197}; // attention probabilities: several blocks of rows per thread
        Tensor x = random(shape, 5, false);
        Tensor g = random(shape, 6, false);
        for (int axis = 0; axis < 3; axis++) {
            int a = axis;
            float[] want = softmaxTwin(x, a);
            float[] wantBack = softmaxBackwardTwin(new Tensor(shape, want), g, a);
            for (int threads : POOLS) {
                assertArrayEquals(want, in(threads, () -> ElementwiseOps.softmax(x, a)).data(), 0f, "axis " + a);
                assertArrayEquals(wantBack, in(threads, () -> ElementwiseOps.softmaxBackward(new Tensor(shape, want), g, a))
                        .data(), 0f, "backward, axis " + a);
            }
        }
    }

    private static float[] softmaxTwin(Tensor x, int axis) {
        int[] s = x.shape();
        int n = s[axis];
        int inner = Shapes.intSize(java.util.Arrays.copyOfRange(s, axis + 1, s.length));
        int outer = x.size() / (n * inner);
        float[] in = x.data();
        float[] out = new float[in.length];
        for (int o = 0; o < outer; o++) {
            for (int j = 0; j < inner; j++) {
                int base = o * n * inner + j;
                float max = Float.NEGATIVE_INFINITY;
                for (int c = 0; c < n; c++) {
                    max = Math.max(max, in[base + c * inner]);
                }
                double sum = 0;
                for (int c = 0; c < n; c++) {
                    float e = (float) Math.exp(in[base + c * inner] - max);
                    out[base + c * inner] = e;
                    sum += e;
                }
                float inv = (float) (1.0 / sum);
                for (int c = 0; c < n; c++) {
                    out[base + c * inner] *= inv;
                }
            }
        }
        return out;
    }

    private static float[] softmaxBackwardTwin(Tensor y, Tensor gOut, int axis) {
        int[] s = y.shape();
        int n = s[axis];
        int inner = Shapes.intSize(java.util.Arrays.copyOfRange(s, axis + 1, s.length));
        int outer = y.size() / (n * inner);
        float[] yo = y.data();
        float[] g = gOut.data();
        float[] gi = new float[g.length];
        for (int o = 0; o < outer; o++) {
            for (int j = 0; j < inner; j++) {
                int base = o * n * inner + j;
                double dot = 0;
                for (int c = 0; c < n; c++) {
                    dot += (double) g[base + c * inner] * yo[base + c * inner];
                }
                for (int c = 0; c < n; c++) {
                    int k = base + c * inner;
                    gi[k] = (float) (yo[k] * (g[k] - dot));
                }
            }
        }
        return gi;
    }

    @Test
    void transposeMatchesTheElementLoop() {
        int[][] shapes = {{197, 1, 768}, {197, 12, 64}, {12, 197, 64}, {1, 197, 768}, {2, 3, 4, 5}, {1, 1, 7}, {5, 1, 1, 3},
            {3, 1, 4, 1, 2}, {6}, {0, 3}};
        long seed = 90;
        for (int[] shape : shapes) {
            Tensor x = random(shape, seed++, false);
            for (int[] perm : permutations(shape.length)) {
                float[] want = transposeTwin(x, perm);
                Tensor got = ShapeOps.transpose(x, perm);
                assertArrayEquals(want, got.data(), 0f, Shapes.str(shape) + " perm " + java.util.Arrays.toString(perm));
                for (int d = 0; d < shape.length; d++) {
                    assertEquals(shape[perm[d]], got.dim(d));
                }
            }
        }
    }

    private static java.util.List<int[]> permutations(int n) {
        java.util.List<int[]> out = new java.util.ArrayList<>();
        permute(new int[n], new boolean[n], 0, out);
        return out;
    }

    private static void permute(int[] p, boolean[] used, int d, java.util.List<int[]> out) {
        if (d == p.length) {
            out.add(p.clone());
            return;
        }
        for (int a = 0; a < p.length; a++) {
            if (!used[a]) {
                used[a] = true;
                p[d] = a;
                permute(p, used, d + 1, out);
                used[a] = false;
            }
        }
    }

    private static float[] transposeTwin(Tensor x, int[] perm) {
        int[] in = x.shape();
        int[] st = Shapes.strides(in);
        int[] out = new int[in.length];
        for (int d = 0; d < in.length; d++) {
            out[d] = in[perm[d]];
        }
        float[] y = new float[x.size()];
        int[] c = new int[in.length];
        for (int e = 0; e < y.length; e++) {
            int rem = e;
            int src = 0;
            for (int d = in.length - 1; d >= 0; d--) {
                c[d] = rem % out[d];
                rem /= out[d];
                src += c[d] * st[perm[d]];
            }
            y[e] = x.data()[src];
        }
        return y;
    }

    @Test
    void selectGradientOfTheLastAxisMatchesTheGeneralLoop() {
        int[] inShape = {197, 1, 2304};
        int[] idx = new int[768];
        for (int j = 0; j < idx.length; j++) {
            idx[j] = 768 + j;
        }
        int[] repeated = {5, 5, 0, 2303, 5};
        for (int[] indices : new int[][] {idx, repeated}) {
            Op.Select op = new Op.Select(2, indices, new int[] {indices.length});
            int[] outShape = {197, 1, indices.length};
            Tensor g = random(outShape, 3, false);
            float[] want = new float[Shapes.intSize(inShape)];
            for (int o = 0; o < 197; o++) {
                for (int j = 0; j < indices.length; j++) {
                    want[o * 2304 + indices[j]] += g.data()[o * indices.length + j];
                }
            }
            assertArrayEquals(want, ShapeOps.selectBackward(inShape, op, g).data(), 0f);
        }
    }

    @Test
    void equalBatchMatMulIsOneGemmPerSliceWhateverTheThreads() throws Exception {
        int[] as = {12, 197, 64};
        int[] bs = {12, 64, 197};
        Tensor a = random(as, 11, false);
        Tensor b = random(bs, 12, false);
        Tensor gOut = random(new int[] {12, 197, 197}, 13, false);
        dev.kxai.graph.Node node = new dev.kxai.graph.Node("mm", "MatMul", new Op.MatMul(), java.util.List.of("a", "b"), "y");
        // the twin: each slice's GEMM on the calling thread, one after the other
        float[] y = new float[12 * 197 * 197];
        float[] da = new float[a.size()];
        float[] db = new float[b.size()];
        for (int t = 0; t < 12; t++) {
            Blas.gemm(false, false, 197, 197, 64, 1f, a.data(), t * 197 * 64, 64, b.data(), t * 64 * 197, 197, 0f, y,
                    t * 197 * 197, 197);
            Blas.gemm(false, true, 197, 64, 197, 1f, gOut.data(), t * 197 * 197, 197, b.data(), t * 64 * 197, 197, 0f, da,
                    t * 197 * 64, 64);
            Blas.gemm(true, false, 64, 197, 197, 1f, a.data(), t * 197 * 64, 64, gOut.data(), t * 197 * 197, 197, 0f, db,
                    t * 64 * 197, 197);
        }
        for (int threads : POOLS) {
            assertArrayEquals(y, in(threads, () -> DenseOps.matmul(node, a, b)).data(), 0f, threads + " threads");
            Tensor[] grads = in(threads, () -> DenseOps.matmulBackward(node, a, b, gOut, new boolean[] {true, true}));
            assertArrayEquals(da, grads[0].data(), 0f, threads + " threads: dA");
            assertArrayEquals(db, grads[1].data(), 0f, threads + " threads: dB");
        }
        // and the product itself, against double sums
        for (int t = 0; t < 12; t += 5) {
            for (int i = 0; i < 197; i += 17) {
                for (int j = 0; j < 197; j += 13) {
                    double s = 0;
                    for (int p = 0; p < 64; p++) {
                        s += (double) a.data()[(t * 197 + i) * 64 + p] * b.data()[(t * 64 + p) * 197 + j];
                    }
                    assertEquals(s, y[(t * 197 + i) * 197 + j], 1e-4);
                }
            }
        }
    }
}
