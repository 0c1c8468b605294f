package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The float convolution takes the exact path's decisions (see {@link ExactDecisions}). Each case
 * plants outputs whose exact value is a tiny term beside two large ones that cancel, summed so that
 * float loses the tiny term: (1e4 + t) − 1e4 = 0 in float, t exactly. The raw float outputs are
 * checked to be wrong there (else the case tests nothing), then the ReLU's and the max-pool's
 * decisions are compared with those of the all-double path on the same inputs.
 */
class NearTieTest {
    private static final int C = 24;   // input channels (k = 24 per output: one sgemm block)
    private static final int M = 32;   // output channels: more than the direct path takes
    private static final int H = 8;
    private static final int W = 8;

    @AfterEach
    void floatPath() {
        ExactDecisions.exactPath = false;
    }

    private static final Op.Conv POINTWISE = new Op.Conv(new int[] {1, 1}, new int[] {1, 1}, new int[] {0, 0, 0, 0},
            new int[] {1, 1}, 1, "NOTSET");

    /**
     * x: channel 0 and 2 all ones, channel 1 the tiny terms, channel 3 the base values, the rest
     * random; w[oc]: 1e4, 1, −1e4, 1 on channels 0..3 (so the tiny term is added to 1e4 first and
     * lost in float), small random weights on the others scaled to 0 for the planted channels.
     */
    private static Tensor[] planted(float[] tiny, float[] base) {
        float[] x = new float[C * H * W];
        for (int p = 0; p < H * W; p++) {
            x[p] = 1f;
            x[H * W + p] = tiny[p];
            x[2 * H * W + p] = 1f;
            x[3 * H * W + p] = base[p];
        }
        float[] w = new float[M * C];
        for (int oc = 0; oc < M; oc++) {
            w[oc * C] = 1e4f;
            w[oc * C + 1] = 1f;
            w[oc * C + 2] = -1e4f;
            w[oc * C + 3] = 1f;
        }
        return new Tensor[] {new Tensor(new int[] {1, C, H, W}, x), new Tensor(new int[] {M, C, 1, 1}, w)};
    }

    private static Node conv() {
        return new Node("conv", "Conv", POINTWISE, List.of("x", "w"), "y");
    }

    @Test
    void reluTakesTheExactSideOfZero() {
        Random r = new Random(3);
        float[] tiny = new float[H * W];
        float[] base = new float[H * W];
        for (int p = 0; p < H * W; p++) {
            tiny[p] = (r.nextBoolean() ? 1 : -1) * (1e-6f + r.nextFloat() * 1e-6f); // exact value ±t
        }
        Tensor[] in = planted(tiny, base);
        Tensor raw = ConvOps.forward(conv(), POINTWISE, in[0], in[1], null);
        assertNotNull(raw.exact(), "the im2col path runs in float and states its bounds");
        int wrong = 0;
        for (int i = 0; i < raw.size(); i++) {
            if (Math.signum(raw.data()[i]) != Math.signum(raw.exact().exact(i))) {
                wrong++;
            }
        }
        assumeTrue(wrong > 0, "this BLAS kept the tiny terms: nothing planted to repair");

        long before = ExactDecisions.RECOMPUTED.sum();
        Tensor fused = ConvOps.forwardRelu(conv(), POINTWISE, in[0], in[1], null);
        ExactDecisions.exactPath = true;
        Tensor exact = ConvOps.forwardRelu(conv(), POINTWISE, in[0], in[1], null);
        assertEquals(null, exact.exact(), "the exact path's values need no bounds");
        for (int i = 0; i < exact.size(); i++) {
            assertEquals(exact.data()[i] > 0, fused.data()[i] > 0, "ReLU decision at " + i);
            if (Math.abs(raw.data()[i]) <= raw.exact().bound(i, raw.data()[i])) {
                assertEquals(exact.data()[i], fused.data()[i], "recomputed element " + i + " is the exact value");
            }
        }
        assertTrue(ExactDecisions.RECOMPUTED.sum() - before >= wrong, "every wrong sign was recomputed");

        // the same decisions through a standalone Relu after a residual Add (resnet's block end)
        ExactDecisions.exactPath = false;
        Tensor y = ConvOps.forward(conv(), POINTWISE, in[0], in[1], null);
        Tensor zero = Tensor.zeros(y.shape());
        Tensor sum = CpuOpSet.run(new Node("add", "Add", new Op.Add(), List.of("y", "z"), "s"), new Tensor[] {y, zero})
                .output();
        Tensor relu = CpuOpSet.run(new Node("relu", "Relu", new Op.Relu(), List.of("s"), "r"), new Tensor[] {sum})
                .output();
        for (int i = 0; i < exact.size(); i++) {
            assertEquals(exact.data()[i] > 0, relu.data()[i] > 0, "Add → Relu decision at " + i);
        }

        // and through an unfolded batch norm (Conv → BatchNormalization → Relu)
        Tensor ones = new Tensor(new int[] {M}, filled(M, 2f));
        Tensor zeros = Tensor.zeros(M);
        Tensor var = new Tensor(new int[] {M}, filled(M, 1f));
        Node bn = new Node("bn", "BatchNormalization", new Op.BatchNormalization(1e-5f),
                List.of("y", "g", "b", "m", "v"), "n");
        Tensor normed = CpuOpSet.run(bn, new Tensor[] {ConvOps.forward(conv(), POINTWISE, in[0], in[1], null), ones, zeros,
                zeros, var}).output();
        assertNotNull(normed.exact(), "batch norm carries the bounds");
        Tensor bnRelu = CpuOpSet.run(new Node("relu2", "Relu", new Op.Relu(), List.of("n"), "r2"), new Tensor[] {normed})
                .output();
        for (int i = 0; i < exact.size(); i++) {
            assertEquals(exact.data()[i] > 0, bnRelu.data()[i] > 0, "BatchNormalization → Relu decision at " + i);
        }
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    @Test
    void maxPoolPicksTheExactWinner() {
        // in every 2x2 window the first element is base, the second base + t: tied in float,
        // the second wins exactly
        float[] tiny = new float[H * W];
        float[] base = new float[H * W];
        Random r = new Random(5);
        for (int oy = 0; oy < H / 2; oy++) {
            for (int ox = 0; ox < W / 2; ox++) {
                float b = 0.5f + r.nextFloat();
                int p0 = 2 * oy * W + 2 * ox;
                base[p0] = b;
                base[p0 + 1] = b;
                base[p0 + W] = b - 0.25f;
                base[p0 + W + 1] = b - 0.25f;
                tiny[p0 + 1] = 2e-6f * b;
            }
        }
        assertPoolDecidesExactly(planted(tiny, base), 2);
    }

    /**
     * The same on whole 3×3 windows (stride 3), which the pool and its tie pass take as a max tree:
     * the first two taps tie in float, the second wins exactly.
     */
    @Test
    void maxPoolPicksTheExactWinnerInWhole3x3Windows() {
        float[] tiny = new float[H * W];
        float[] base = new float[H * W];
        Random r = new Random(6);
        for (int i = 0; i < H * W; i++) {
            base[i] = 0.1f;
        }
        for (int oy = 0; oy < H / 3; oy++) {
            for (int ox = 0; ox < W / 3; ox++) {
                float b = 0.5f + r.nextFloat();
                int p0 = 3 * oy * W + 3 * ox;
                base[p0] = b;
                base[p0 + 1] = b;
                tiny[p0 + 1] = 2e-6f * b;
            }
        }
        assertPoolDecidesExactly(planted(tiny, base), 3);
    }

    /**
     * k×k windows with stride k over the planted conv outputs: the float path's winners and values
     * are the all-double path's (skipped, with the reason, where the BLAS kept the tiny terms).
     */
    private static void assertPoolDecidesExactly(Tensor[] in, int k) {
        Op.MaxPool pool = new Op.MaxPool(new int[] {k, k}, new int[] {k, k}, new int[] {0, 0, 0, 0},
                new int[] {1, 1}, false, "NOTSET");
        Node poolNode = new Node("pool", "MaxPool", pool, List.of("y"), "p");
        Tensor raw = ConvOps.forward(conv(), POINTWISE, in[0], in[1], null);
        int[] rawWinners = PoolOps.maxForward(poolNode, pool, new Tensor(raw.shape(), raw.data().clone())).argmax();
        ExactDecisions.exactPath = true;
        Tensor exactY = ConvOps.forward(conv(), POINTWISE, in[0], in[1], null);
        int[] exactWinners = PoolOps.maxForward(poolNode, pool, exactY).argmax();
        int differ = 0;
        for (int o = 0; o < exactWinners.length; o++) {
            differ += rawWinners[o] != exactWinners[o] ? 1 : 0;
        }
        assumeTrue(differ > 0, "this BLAS kept the tiny terms: no tie planted");

        ExactDecisions.exactPath = false;
        Tensor y = ConvOps.forward(conv(), POINTWISE, in[0], in[1], null);
        PoolOps.MaxResult repaired = PoolOps.maxForward(poolNode, pool, y);
        for (int o = 0; o < exactWinners.length; o++) {
            assertEquals(exactWinners[o], repaired.argmax()[o], "winner of window " + o);
            assertEquals(exactY.data()[exactWinners[o]], repaired.output().data()[o], "value of window " + o);
        }
    }

    @Test
    void boundsHoldOnRandomLayersAndAreTight() {
        // random layers of several k (one and several sgemm blocks): every float output within its
        // bound of the exact value, and the bound far below the outputs' scale (else all recompute)
        Random r = new Random(11);
        for (int c : new int[] {3, 64, 300}) {
            Op.Conv op = new Op.Conv(new int[] {3, 3}, new int[] {1, 1}, new int[] {1, 1, 1, 1}, new int[] {1, 1}, 1,
                    "NOTSET");
            float[] x = new float[2 * c * 10 * 10];
            float[] w = new float[M * c * 9];
            float[] b = new float[M];
            for (int i = 0; i < x.length; i++) {
                x[i] = Math.max(0f, (float) r.nextGaussian()); // post-ReLU activations
            }
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) (r.nextGaussian() / Math.sqrt(c * 9));
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) r.nextGaussian() * 0.1f;
            }
            Node node = new Node("conv", "Conv", op, List.of("x", "w", "b"), "y");
            Tensor xt = new Tensor(new int[] {2, c, 10, 10}, x);
            Tensor wt = new Tensor(new int[] {M, c, 3, 3}, w);
            Tensor bt = new Tensor(new int[] {M}, b);
            Tensor y = ConvOps.forward(node, op, xt, wt, bt);
            double scale = 0;
            double worstBound = 0;
            for (int i = 0; i < y.size(); i++) {
                float exact = y.exact().exact(i);
                float bound = y.exact().bound(i, y.data()[i]);
                assertTrue(Math.abs(y.data()[i] - exact) <= bound, "k=" + c * 9 + " element " + i);
                scale = Math.max(scale, Math.abs(exact));
                worstBound = Math.max(worstBound, bound);
            }
            assertTrue(worstBound < 5e-3 * scale, "k=" + c * 9 + ": bound " + worstBound + " vs scale " + scale);
        }
    }

    @Test
    void reluAfterGemmTakesTheExactSideOfZero() {
        // rows [1, t, 1, 0...] against weight rows [1e4, 1, -1e4, small...]: exact value t, float 0
        int rows = 40;
        int k = 300;
        int n = 24;
        Random r = new Random(17);
        float[] a = new float[rows * k];
        for (int row = 0; row < rows; row++) {
            a[row * k] = 1f;
            a[row * k + 1] = (r.nextBoolean() ? 1 : -1) * (1e-6f + r.nextFloat() * 1e-6f);
            a[row * k + 2] = 1f;
        }
        float[] b = new float[n * k];
        for (int o = 0; o < n; o++) {
            b[o * k] = 1e4f;
            b[o * k + 1] = 1f;
            b[o * k + 2] = -1e4f;
        }
        Op.Gemm op = new Op.Gemm(1f, 1f, false, true);
        Node gemm = new Node("fc", "Gemm", op, List.of("a", "b"), "y");
        Tensor[] in = {new Tensor(new int[] {rows, k}, a), new Tensor(new int[] {n, k}, b)};
        Tensor raw = CpuOpSet.run(gemm, in).output();
        assertNotNull(raw.exact(), "a float Gemm states its bounds");
        int wrong = 0;
        for (int i = 0; i < raw.size(); i++) {
            wrong += Math.signum(raw.data()[i]) != Math.signum(raw.exact().exact(i)) ? 1 : 0;
            assertTrue(Math.abs(raw.data()[i] - raw.exact().exact(i)) <= raw.exact().bound(i, raw.data()[i]),
                    "element " + i + " within its bound");
        }
        assumeTrue(wrong > 0, "this BLAS kept the tiny terms: nothing planted to repair");
        Node relu = new Node("relu", "Relu", new Op.Relu(), List.of("y"), "r");
        Tensor repaired = CpuOpSet.run(relu, new Tensor[] {CpuOpSet.run(gemm, in).output()}).output();
        for (int i = 0; i < raw.size(); i++) {
            assertEquals(raw.exact().exact(i) > 0, repaired.data()[i] > 0, "ReLU decision at " + i);
        }
    }
}
