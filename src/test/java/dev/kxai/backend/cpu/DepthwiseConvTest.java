package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.exec.OpSet;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The depthwise path ({@link DepthwiseConv}) against the all-double path: every float output within
 * its stated bound of the exact value, the exact values those of the double path, the fixed
 * summation order (bias, then one FMA per tap in row-major order) bit for bit, batch invariance,
 * the input gradient against the im2col path's, and a ReLU6 kink decided as the double path
 * decides it. Finite differences of the backward: {@link OperatorGradientTest}'s depthwise cases.
 */
class DepthwiseConvTest {
    @AfterEach
    void floatPath() {
        ExactDecisions.exactPath = false;
    }

    /** A random depthwise geometry: kernel 1..7, stride 1..3, pads, dilation, multiplier 1..2. */
    private record Geometry(int n, int c, int h, int w, int mult, int kh, int kw, int[] strides, int[] pads,
            int[] dil) {
        Op.Conv op() {
            return new Op.Conv(new int[] {kh, kw}, strides, pads, dil, c, "NOTSET");
        }

        @Override
        public String toString() {
            return "n" + n + " c" + c + " " + h + "x" + w + " mult" + mult + " k" + kh + "x" + kw + " s"
                    + strides[0] + "," + strides[1] + " pads " + java.util.Arrays.toString(pads) + " dil " + dil[0] + ","
                    + dil[1];
        }
    }

    private static List<Geometry> geometries() {
        List<Geometry> g = new java.util.ArrayList<>(List.of(
                // MobileNetV2's layers: 3x3 stride 1 and 2, pad 1
                new Geometry(2, 8, 14, 14, 1, 3, 3, new int[] {1, 1}, new int[] {1, 1, 1, 1}, new int[] {1, 1}),
                new Geometry(2, 8, 15, 15, 1, 3, 3, new int[] {2, 2}, new int[] {1, 1, 1, 1}, new int[] {1, 1}),
                // EfficientNet's 5x5 stride 2, ConvNeXt's 7x7 pad 3
                new Geometry(1, 6, 16, 16, 1, 5, 5, new int[] {2, 2}, new int[] {2, 2, 2, 2}, new int[] {1, 1}),
                new Geometry(1, 4, 9, 11, 1, 7, 7, new int[] {1, 1}, new int[] {3, 3, 3, 3}, new int[] {1, 1}),
                // TF-style asymmetric "same" pads at stride 2, dilation, multiplier 2, no pads
                new Geometry(3, 5, 12, 13, 1, 3, 3, new int[] {2, 2}, new int[] {0, 0, 1, 1}, new int[] {1, 1}),
                new Geometry(1, 3, 13, 12, 1, 3, 3, new int[] {1, 1}, new int[] {2, 2, 2, 2}, new int[] {2, 2}),
                new Geometry(2, 4, 10, 10, 2, 3, 3, new int[] {2, 1}, new int[] {1, 0, 1, 2}, new int[] {1, 2}),
                new Geometry(1, 2, 7, 7, 1, 7, 7, new int[] {1, 1}, new int[] {0, 0, 0, 0}, new int[] {1, 1}),
                // a 1-pixel output, and pads larger than the kernel's reach
                new Geometry(1, 3, 3, 3, 1, 3, 3, new int[] {2, 2}, new int[] {0, 0, 0, 0}, new int[] {1, 1}),
                new Geometry(1, 2, 5, 6, 1, 3, 3, new int[] {3, 2}, new int[] {4, 3, 4, 3}, new int[] {1, 1})));
        Random r = new Random(99);
        for (int i = 0; i < 12; i++) {
            int kh = 1 + r.nextInt(7);
            int kw = 1 + r.nextInt(7);
            int dh = 1 + r.nextInt(2);
            int dw = 1 + r.nextInt(2);
            int[] pads = {r.nextInt(kh), r.nextInt(kw), r.nextInt(kh), r.nextInt(kw)};
            int h = (kh - 1) * dh + 1 + r.nextInt(12);
            int w = (kw - 1) * dw + 1 + r.nextInt(12);
            g.add(new Geometry(1 + r.nextInt(3), 2 + r.nextInt(5), h, w, 1 + r.nextInt(2), kh, kw,
                    new int[] {1 + r.nextInt(2), 1 + r.nextInt(2)}, pads, new int[] {dh, dw}));
        }
        return g;
    }

    private static Node node(Op.Conv op) {
        return new Node("dw", "Conv", op, List.of("x", "w", "b"), "y");
    }

    @Test
    void withinItsBoundOfTheDoublePathAndInAFixedOrder() {
        Random r = new Random(1);
        for (Geometry geo : geometries()) {
            Op.Conv op = geo.op();
            Tensor x = random(r, geo.n, geo.c, geo.h, geo.w);
            Tensor w = random(r, geo.c * geo.mult, 1, geo.kh, geo.kw);
            Tensor b = random(r, geo.c * geo.mult);
            assertTrue(DepthwiseConv.takes(op, x, w), geo.toString());
            Tensor y = ConvOps.forward(node(op), op, x, w, b);
            assertNotNull(y.exact(), geo + ": the float path states its bounds");
            ExactDecisions.exactPath = true;
            Tensor exact = ConvOps.forward(node(op), op, x, w, b);
            ExactDecisions.exactPath = false;
            assertEquals(null, exact.exact(), geo + ": the exact path needs no bounds");
            assertArrayEquals(exact.shape(), y.shape(), geo.toString());
            float[] ordered = fixedOrder(x, w, b, ConvOps.window(node(op), op, x, w));
            for (int i = 0; i < y.size(); i++) {
                float v = y.data()[i];
                float e = exact.data()[i];
                assertEquals(e, y.exact().exact(i), geo + ": exact value of element " + i);
                float bound = y.exact().bound(i, v);
                assertTrue(Math.abs(v - e) <= bound, geo + ": element " + i + " float " + v + " exact " + e
                        + " beyond its bound " + bound);
                assertTrue(bound < 1e-3f * (1 + Math.abs(e)), geo + ": bound " + bound + " useless");
                assertEquals(ordered[i], v, 0f, geo + ": element " + i + " is not bias + FMAs in tap order");
            }
        }
    }

    /** Bias, then Math.fma per tap in row-major order, padding taps adding 0·w: the order the path promises. */
    private static float[] fixedOrder(Tensor x, Tensor w, Tensor b, Window win) {
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int mg = m / c;
        float[] y = new float[n * m * win.outH() * win.outW()];
        int k = 0;
        for (int img = 0; img < n; img++) {
            for (int oc = 0; oc < m; oc++) {
                int plane = (img * c + oc / mg) * win.inH() * win.inW();
                for (int oy = 0; oy < win.outH(); oy++) {
                    for (int ox = 0; ox < win.outW(); ox++) {
                        float s = b.data()[oc];
                        for (int i = 0; i < win.kh(); i++) {
                            for (int j = 0; j < win.kw(); j++) {
                                int iy = oy * win.sh() - win.padTop() + i * win.dh();
                                int ix = ox * win.sw() - win.padLeft() + j * win.dw();
                                boolean inside = iy >= 0 && iy < win.inH() && ix >= 0 && ix < win.inW();
                                float xv = inside ? x.data()[plane + iy * win.inW() + ix] : 0f;
                                s = Math.fma(xv, w.data()[oc * win.kh() * win.kw() + i * win.kw() + j], s);
                            }
                        }
                        y[k++] = s;
                    }
                }
            }
        }
        return y;
    }

    @Test
    void inputGradientMatchesTheIm2colPath() {
        Random r = new Random(2);
        for (Geometry geo : geometries()) {
            Op.Conv op = geo.op();
            Tensor x = random(r, geo.n, geo.c, geo.h, geo.w);
            Tensor w = random(r, geo.c * geo.mult, 1, geo.kh, geo.kw);
            Window win = ConvOps.window(node(op), op, x, w);
            Tensor g = random(r, geo.n, geo.c * geo.mult, win.outH(), win.outW());
            float[] dw = ConvOps.inputGradient(node(op), op, x, w, g).data();
            float[] ref = ConvOps.inputGradient(node(op), op, x, w, g, false).data();
            for (int i = 0; i < ref.length; i++) {
                assertEquals(ref[i], dw[i], 1e-5f * (1 + Math.abs(ref[i])), geo + ": dx[" + i + "]");
            }
        }
    }

    @Test
    void rowsAreTheSameBitsAloneOrBatched() {
        Random r = new Random(3);
        for (Geometry geo : geometries()) {
            Op.Conv op = geo.op();
            Tensor x = random(r, geo.n, geo.c, geo.h, geo.w);
            Tensor w = random(r, geo.c * geo.mult, 1, geo.kh, geo.kw);
            Tensor b = random(r, geo.c * geo.mult);
            Window win = ConvOps.window(node(op), op, x, w);
            Tensor g = random(r, geo.n, geo.c * geo.mult, win.outH(), win.outW());
            float[] y = ConvOps.forward(node(op), op, x, w, b).data();
            float[] dx = ConvOps.inputGradient(node(op), op, x, w, g).data();
            int inRow = x.size() / geo.n;
            int outRow = g.size() / geo.n;
            for (int img = 0; img < geo.n; img++) {
                Tensor xi = new Tensor(new int[] {1, geo.c, geo.h, geo.w},
                        java.util.Arrays.copyOfRange(x.data(), img * inRow, (img + 1) * inRow));
                Tensor gi = new Tensor(new int[] {1, geo.c * geo.mult, win.outH(), win.outW()},
                        java.util.Arrays.copyOfRange(g.data(), img * outRow, (img + 1) * outRow));
                assertArrayEquals(java.util.Arrays.copyOfRange(y, img * outRow, (img + 1) * outRow),
                        ConvOps.forward(node(op), op, xi, w, b).data(), geo + ": forward of row " + img);
                assertArrayEquals(java.util.Arrays.copyOfRange(dx, img * inRow, (img + 1) * inRow),
                        ConvOps.inputGradient(node(op), op, xi, w, gi).data(), geo + ": input gradient of row " + img);
            }
        }
    }

    @Test
    void fusedReluIsReluOfTheForward() {
        Random r = new Random(4);
        for (Geometry geo : geometries()) {
            Op.Conv op = geo.op();
            Tensor x = random(r, geo.n, geo.c, geo.h, geo.w);
            Tensor w = random(r, geo.c * geo.mult, 1, geo.kh, geo.kw);
            Tensor b = random(r, geo.c * geo.mult);
            Tensor y = ConvOps.forward(node(op), op, x, w, b);
            Tensor relu = CpuOpSet.run(new Node("relu", "Relu", new Op.Relu(), List.of("y"), "r"), new Tensor[] {y})
                    .output();
            Tensor fused = ConvOps.forwardRelu(node(op), op, x, w, b);
            assertArrayEquals(relu.data(), fused.data(), geo.toString());
        }
    }

    /**
     * A 1×4 kernel at stride 4 (four phases) whose taps read 1, t, 1, base with weights 1e4, 1, −1e4,
     * 1: in float t is lost against 1e4, the exact value is base + t. With base = 6 and ±t the outputs
     * sit on either side of ReLU6's upper kink (and with base = 0 of its lower one) while float gives
     * the kink itself; Clip's output and gradient must be those of the double path.
     */
    @Test
    void relu6TakesTheExactSideOfItsKinks() {
        relu6NearTies(1);   // every output near a kink: the planes get per-element sums S before recomputing
    }

    @Test
    void relu6TakesTheExactSideOfAFewNearTies() {
        relu6NearTies(40);  // one output in 40 near a kink: recomputed directly from the plane's bound
    }

    private static void relu6NearTies(int every) {
        int c = 3;
        int h = 5;
        int ow = 8;
        Random r = new Random(5);
        float[] x = new float[c * h * ow * 4];
        float[] w = new float[c * 4];
        for (int ch = 0; ch < c; ch++) {
            w[ch * 4] = 1e4f;
            w[ch * 4 + 1] = 1f;
            w[ch * 4 + 2] = -1e4f;
            w[ch * 4 + 3] = 1f;
            for (int p = 0; p < h * ow; p++) {
                int at = ch * h * ow * 4 + p * 4;
                x[at] = 1f;
                x[at + 1] = (r.nextBoolean() ? 1 : -1) * (1e-6f + r.nextFloat() * 1e-6f);
                x[at + 2] = 1f;
                x[at + 3] = r.nextBoolean() ? 6f : 0f;
                if (p % every != 0) {
                    x[at + 1] = 0f;    // exact in float, and far from both kinks
                    x[at + 3] = 3f;
                }
            }
        }
        Op.Conv op = new Op.Conv(new int[] {1, 4}, new int[] {1, 4}, new int[] {0, 0, 0, 0}, new int[] {1, 1}, c,
                "NOTSET");
        Node conv = new Node("dw", "Conv", op, List.of("x", "w"), "y");
        Tensor xt = new Tensor(new int[] {1, c, h, ow * 4}, x);
        Tensor wt = new Tensor(new int[] {c, 1, 1, 4}, w);
        Tensor raw = ConvOps.forward(conv, op, xt, wt, null);
        int wrong = 0;
        for (int i = 0; i < raw.size(); i++) {
            float v = raw.data()[i];
            float e = raw.exact().exact(i);
            if (i % (h * ow) % every == 0) {
                assertTrue(v == 0f || v == 6f, "float lost the tiny term at " + i + ": " + v);
                wrong += v != e ? 1 : 0;
            }
        }
        int planted = (h * ow + every - 1) / every * c;
        assertEquals(planted, wrong, "every planted output is off its exact value in float");

        Node clip = new Node("relu6", "Clip", new Op.Unary(Op.Unary.Kind.CLIP, 0f, 6f), List.of("y"), "z");
        Tensor g = new Tensor(raw.shape(), filled(raw.size(), 1f));
        long before = ExactDecisions.RECOMPUTED.sum();
        Tensor y = ConvOps.forward(conv, op, xt, wt, null);
        OpSet.Forward<Tensor> f = CpuOpSet.run(clip, new Tensor[] {y});
        Tensor grad = CpuOpSet.gradient(clip, new Tensor[] {y}, f, g, new boolean[] {true})[0];
        assertTrue(ExactDecisions.RECOMPUTED.sum() - before >= planted, "every planted output was recomputed");

        ExactDecisions.exactPath = true;
        Tensor ye = ConvOps.forward(conv, op, xt, wt, null);
        assertEquals(null, ye.exact());
        OpSet.Forward<Tensor> fe = CpuOpSet.run(clip, new Tensor[] {ye});
        Tensor grade = CpuOpSet.gradient(clip, new Tensor[] {ye}, fe, g, new boolean[] {true})[0];
        assertArrayEquals(fe.output().data(), f.output().data(), "ReLU6 outputs");
        assertArrayEquals(grade.data(), grad.data(), "ReLU6 gradients (which side of each kink)");
        int inside = 0;
        for (float v : grade.data()) {
            inside += v != 0f ? 1 : 0;
        }
        assertTrue(inside > 0 && inside < grade.size(), "both sides of the kinks planted: " + inside);
    }

    /**
     * ReLU6 maps with zero regions into a layer with zero biases (BatchNorm at its initial state,
     * folded): the windows of zeros give exact zeros on the kink, which the plane's bound cannot
     * clear but the per-element sums S can; decisions as on the double path, and few recomputed.
     */
    @Test
    void windowsOfZerosAreNotRecomputed() {
        Random r = new Random(6);
        int c = 4;
        int h = 20;
        float[] x = new float[2 * c * h * h];
        for (int i = 0; i < x.length; i++) {
            int col = i % h;
            x[i] = col < h / 2 ? 0f : Math.min(6f, Math.max(0f, (float) r.nextGaussian() * 3)); // left half zeros
        }
        Tensor xt = new Tensor(new int[] {2, c, h, h}, x);
        Tensor wt = random(r, c, 1, 3, 3);
        Tensor bt = Tensor.zeros(c);
        Op.Conv op = new Op.Conv(new int[] {3, 3}, new int[] {1, 1}, new int[] {1, 1, 1, 1}, new int[] {1, 1}, c,
                "NOTSET");
        Node clip = new Node("relu6", "Clip", new Op.Unary(Op.Unary.Kind.CLIP, 0f, 6f), List.of("y"), "z");
        long before = ExactDecisions.RECOMPUTED.sum();
        Tensor y = ConvOps.forward(node(op), op, xt, wt, bt);
        int zeros = 0;
        for (float v : y.data()) {
            zeros += v == 0f ? 1 : 0;
        }
        assertTrue(zeros > y.size() / 3, "windows of zeros planted: " + zeros);
        float[] z = CpuOpSet.run(clip, new Tensor[] {y}).output().data();
        long recomputed = ExactDecisions.RECOMPUTED.sum() - before;
        ExactDecisions.exactPath = true;
        float[] ze = CpuOpSet.run(clip, new Tensor[] {ConvOps.forward(node(op), op, xt, wt, bt)}).output().data();
        ExactDecisions.exactPath = false;
        for (int i = 0; i < z.length; i++) {
            assertEquals(ze[i] > 0f && ze[i] < 6f, z[i] > 0f && z[i] < 6f, "ReLU6 side at " + i);
        }
        assertTrue(recomputed < y.size() / 20, recomputed + " of " + y.size() + " recomputed");
    }

    @Test
    void simdAndScalarMaxAbsAgree() {
        SimdLoops scalar = new SimdLoops.Scalar("test");
        SimdLoops simd = SimdLoops.get();
        Random r = new Random(7);
        for (int n : new int[] {0, 1, 15, 16, 17, 100, 1031}) {
            float[] x = new float[n + 5];
            for (int i = 0; i < x.length; i++) {
                x[i] = (r.nextFloat() - 0.5f) * (float) Math.pow(10, r.nextInt(20) - 10);
            }
            assertEquals(scalar.maxAbs(x, 2, 2 + n), simd.maxAbs(x, 2, 2 + n), 0f, "n " + n);
            if (n > 0) {
                x[2 + r.nextInt(n)] = Float.NaN; // a NaN anywhere makes the bound NaN
                assertTrue(Float.isNaN(simd.maxAbs(x, 2, 2 + n)), "NaN lost, n " + n);
                assertTrue(Float.isNaN(scalar.maxAbs(x, 2, 2 + n)), "NaN lost (scalar), n " + n);
            }
        }
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
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
