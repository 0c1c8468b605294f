package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU convolution has two paths, direct (few output channels, stride 1) and im2col + GEMM,
 * and the direct one two loop implementations (SIMD and scalar). They must agree: the forward
 * to within double rounding (it is rounded to float once, so in practice bit for bit), the
 * backward to float rounding; the SIMD and scalar loops bit for bit.
 */
class ConvPathsTest {
    /** batch, channels, h, w, out channels, kernel h, kernel w, pads (t, l, b, r), dilation h, w, group. */
    static Stream<Arguments> geometries() {
        return Stream.of(
                Arguments.of(2, 3, 64, 64, 10, 3, 3, new int[] {1, 1, 1, 1}, 1, 1, 1),   // tinyvgg's first layer
                Arguments.of(3, 10, 17, 13, 10, 3, 3, new int[] {1, 1, 1, 1}, 1, 1, 1),  // odd sizes
                Arguments.of(1, 4, 9, 11, 7, 3, 3, new int[] {0, 0, 0, 0}, 1, 1, 1),     // valid, no pad
                Arguments.of(2, 5, 12, 10, 16, 5, 3, new int[] {2, 1, 0, 2}, 1, 1, 1),   // asymmetric pads
                Arguments.of(1, 3, 15, 14, 5, 3, 3, new int[] {2, 2, 2, 2}, 2, 2, 1),    // dilation 2
                Arguments.of(2, 6, 8, 9, 4, 1, 1, new int[] {0, 0, 0, 0}, 1, 1, 1),      // 1x1
                Arguments.of(1, 8, 10, 10, 8, 3, 3, new int[] {1, 1, 1, 1}, 1, 1, 4),    // groups
                Arguments.of(1, 1, 1, 33, 3, 1, 3, new int[] {0, 1, 0, 1}, 1, 1, 1));    // one row
    }

    @ParameterizedTest
    @MethodSource("geometries")
    void directAndIm2colAgree(int n, int c, int h, int w, int m, int kh, int kw, int[] pads, int dh, int dw, int group) {
        Random r = new Random(n * 1000 + c * 100 + h);
        Op.Conv op = new Op.Conv(new int[] {kh, kw}, new int[] {1, 1}, pads, new int[] {dh, dw}, group, "NOTSET");
        Node node = new Node("conv", "Conv", op, List.of("x", "w", "b"), "y");
        Tensor x = random(r, n, c, h, w);
        Tensor wt = random(r, m, c / group, kh, kw);
        Tensor b = random(r, m);
        Window win = ConvOps.window(node, op, x, wt);
        assertTrue(ConvOps.direct(m / group, win), "the geometry must be one the direct path takes");

        double[] direct = (double[]) ConvOps.forward(node, op, x, wt, b, true, true);
        double[] gemm = (double[]) ConvOps.forward(node, op, x, wt, b, true, false);
        assertEquals(gemm.length, direct.length);
        for (int i = 0; i < gemm.length; i++) {
            assertEquals(gemm[i], direct[i], 1e-12 * (1 + Math.abs(gemm[i])), "forward element " + i);
        }
        float[] directF = (float[]) ConvOps.forward(node, op, x, wt, b, false, true);
        Tensor gemmT = (Tensor) ConvOps.forward(node, op, x, wt, b, false, false);
        float[] gemmF = gemmT.data();
        // the im2col path runs in float (sgemm): within its stated bound of the exact values,
        // and the bound's exact values are the direct path's (the double sums rounded once)
        for (int i = 0; i < gemmF.length; i++) {
            assertEquals(directF[i], gemmT.exact().exact(i), "exact value of element " + i);
            float bound = gemmT.exact().bound(i, gemmF[i]);
            assertTrue(Math.abs(gemmF[i] - directF[i]) <= bound, "element " + i + ": float " + gemmF[i]
                    + " vs exact " + directF[i] + " beyond the bound " + bound);
            assertTrue(bound < 1e-3f * (1 + Math.abs(directF[i])) , "bound " + bound + " is useless");
        }

        Tensor g = random(r, n, m, win.outH(), win.outW());
        float[] dDirect = ConvOps.inputGradient(node, op, x, wt, g, true).data();
        float[] dGemm = ConvOps.inputGradient(node, op, x, wt, g, false).data();
        float scale = 0;
        for (float v : dGemm) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < dGemm.length; i++) {
            assertEquals(dGemm[i], dDirect[i], 1e-5f * scale, "input gradient element " + i);
        }
    }

    @Test
    void simdAndScalarLoopsAgreeBitForBit() {
        SimdLoops scalar = new SimdLoops.Scalar("test");
        SimdLoops simd = SimdLoops.get();
        Random r = new Random(7);
        for (int span : new int[] {1, 7, 8, 15, 16, 17, 63, 64, 65, 1000, 4287, 33, 4096, 129, 2}) {
            int taps = 1 + r.nextInt(20);
            int planes = 1 + r.nextInt(15); // blocks of 8, 4, 2 and 1 in the SIMD loops
            int stride = span + r.nextInt(5);
            int[] off = new int[taps];
            double[] wd = new double[taps * planes];
            float[] wf = new float[taps * planes];
            for (int t = 0; t < taps; t++) {
                off[t] = r.nextInt(50);
            }
            for (int i = 0; i < wf.length; i++) {
                wf[i] = r.nextFloat() * 2 - 1;
                wd[i] = wf[i];
            }
            int a = r.nextInt(5);
            int p = r.nextInt(5);
            double[] xd = new double[p + 50 + span];
            float[] xf = new float[xd.length];
            for (int i = 0; i < xd.length; i++) {
                xf[i] = r.nextFloat() * 2 - 1;
                xd[i] = xf[i];
            }
            double[] accD1 = new double[a + planes * stride];
            float[] accF1 = new float[accD1.length];
            for (int i = 0; i < accD1.length; i++) {
                accF1[i] = r.nextFloat();
                accD1[i] = accF1[i];
            }
            double[] accD2 = accD1.clone();
            float[] accF2 = accF1.clone();
            scalar.add(accD1, a, stride, planes, xd, p, span, wd, off);
            simd.add(accD2, a, stride, planes, xd, p, span, wd, off);
            String what = "span " + span + ", " + planes + " planes (" + simd.describe() + ")";
            assertArrayEquals(accD1, accD2, 0.0, "double, " + what);
            scalar.add(accF1, a, stride, planes, xf, p, span, wf, off);
            simd.add(accF2, a, stride, planes, xf, p, span, wf, off);
            assertArrayEquals(accF1, accF2, 0f, "float, " + what);
            // and the sums are what they say: one element checked by hand
            int j = planes - 1;
            int q = span - 1;
            double expect = accD1[a + j * stride + q];
            double[] fresh = new double[accD1.length];
            scalar.add(fresh, a, stride, planes, xd, p, span, wd, off);
            double byHand = 0;
            for (int t = 0; t < taps; t++) {
                byHand = byHand + xd[p + off[t] + q] * wd[t * planes + j];
            }
            assertEquals(byHand, fresh[a + j * stride + q], 0.0, "scalar sum by hand, " + what);
            assertTrue(Double.isFinite(expect));
        }
    }

    @Test
    void simdAndScalarReluAgreeBitForBit() {
        SimdLoops scalar = new SimdLoops.Scalar("test");
        SimdLoops simd = SimdLoops.get();
        Random r = new Random(11);
        float[] special = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE,
            -Float.MIN_VALUE};
        for (int n : new int[] {1, 15, 16, 17, 100, 1031}) {
            float[] x = new float[n];
            float[] g = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = i < special.length ? special[i] : r.nextFloat() * 2 - 1;
                g[i] = r.nextFloat() * 2 - 1;
            }
            int from = n > 3 ? 3 : 0;
            float[] y1 = new float[n];
            float[] y2 = new float[n];
            scalar.relu(x, y1, from, n);
            simd.relu(x, y2, from, n);
            assertArrayEquals(y1, y2, 0f, "relu, n " + n);
            float[] g1 = new float[n];
            float[] g2 = new float[n];
            scalar.reluBackward(x, g, g1, from, n);
            simd.reluBackward(x, g, g2, from, n);
            assertArrayEquals(g1, g2, 0f, "relu backward, n " + n);
            for (int i = from; i < n; i++) {
                assertEquals(x[i] > 0f ? x[i] : 0f, y2[i], 0f, "relu(" + x[i] + ")");
            }
        }
    }

    @Test
    void simdAndScalarConversionsAgreeBitForBit() {
        SimdLoops scalar = new SimdLoops.Scalar("test");
        SimdLoops simd = SimdLoops.get();
        Random r = new Random(13);
        for (int n : new int[] {1, 7, 8, 9, 64, 100}) {
            float[] f = new float[n + 3];
            double[] d = new double[n + 3];
            for (int i = 0; i < f.length; i++) {
                f[i] = i == 0 ? Float.NaN : (r.nextFloat() - 0.5f) * (float) Math.pow(10, r.nextInt(60) - 30);
                // doubles halfway between floats, and beyond float range, test the rounding
                d[i] = i == 1 ? 1e39 : i == 2 ? (double) Math.nextUp(1f) / 2 + 0.5 : r.nextGaussian() * 1e-3;
            }
            double[] w1 = new double[n + 5];
            double[] w2 = new double[n + 5];
            scalar.widen(f, 2, w1, 1, n);
            simd.widen(f, 2, w2, 1, n);
            assertArrayEquals(w1, w2, 0.0, "widen, n " + n);
            float[] n1 = new float[n + 5];
            float[] n2 = new float[n + 5];
            scalar.narrow(d, 0, n1, 3, n);
            simd.narrow(d, 0, n2, 3, n);
            assertArrayEquals(n1, n2, 0f, "narrow, n " + n);
            assertEquals((float) d[0], n2[3], 0f);
        }
    }

    @Test
    void maxPoolFastPathMatchesTheRule() {
        // 2x2 stride 2 takes a branch-free path; check it against the rule written out: first
        // maximum in row-major window order wins, a NaN wins over numbers and stays
        Random r = new Random(5);
        Op.MaxPool op = new Op.MaxPool(new int[] {2, 2}, new int[] {2, 2}, new int[] {0, 0, 0, 0}, new int[] {1, 1},
                false, "NOTSET");
        Node node = new Node("pool", "MaxPool", op, List.of("x"), "y");
        int n = 2;
        int c = 3;
        int h = 7;
        int w = 9;
        float[] v = new float[n * c * h * w];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextInt(10) == 0 ? Float.NaN : r.nextInt(4); // many ties
        }
        PoolOps.MaxResult res = PoolOps.maxForward(node, op, new Tensor(new int[] {n, c, h, w}, v));
        int oh = h / 2;
        int ow = w / 2;
        for (int p = 0; p < n * c; p++) {
            for (int oy = 0; oy < oh; oy++) {
                for (int ox = 0; ox < ow; ox++) {
                    int best = -1;
                    for (int i = 0; i < 2; i++) {
                        for (int j = 0; j < 2; j++) {
                            int idx = p * h * w + (2 * oy + i) * w + 2 * ox + j;
                            if (best < 0 || v[idx] > v[best] || (Float.isNaN(v[idx]) && !Float.isNaN(v[best]))) {
                                best = idx;
                            }
                        }
                    }
                    int o = (p * oh + oy) * ow + ox;
                    assertEquals(best, res.argmax()[o], "winner of output " + o);
                    assertEquals(v[best], res.output().data()[o], 0f, "value of output " + o);
                }
            }
        }
    }

    @Test
    void testsRunWithTheSimdLoops() {
        // surefire starts the JVM with --add-modules jdk.incubator.vector: the SIMD loops are what the tests exercise
        assertTrue(SimdLoops.get().describe().startsWith("SIMD"), SimdLoops.get().describe());
    }

    private static Tensor random(Random r, int... shape) {
        int size = 1;
        for (int d : shape) {
            size *= d;
        }
        float[] v = new float[size];
        for (int i = 0; i < size; i++) {
            v[i] = r.nextFloat() * 2 - 1;
        }
        return new Tensor(shape, v);
    }
}
