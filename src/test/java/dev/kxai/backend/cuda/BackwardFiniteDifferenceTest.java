package dev.kxai.backend.cuda;

import dev.kxai.testing.GradientCheck;
import dev.kxai.testing.GradientCheck.Report;
import static dev.kxai.backend.cuda.CudaTestKit.avgPool;
import static dev.kxai.backend.cuda.CudaTestKit.awayFromZero;
import static dev.kxai.backend.cuda.CudaTestKit.conv;
import static dev.kxai.backend.cuda.CudaTestKit.cuda;
import static dev.kxai.backend.cuda.CudaTestKit.distinct;
import static dev.kxai.backend.cuda.CudaTestKit.maxPool;
import static dev.kxai.backend.cuda.CudaTestKit.rand;
import static dev.kxai.backend.cuda.CudaTestKit.s;
import static dev.kxai.backend.cuda.CudaTestKit.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.cuda.CudaTestKit.G;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The CUDA runner's input gradients against central finite differences of the CUDA runner's OWN
 * forward, for every op with a backward kernel: L(x) = Σ_rows Σ_f G_f · y_f(x) with a random G
 * (the gradient runs the body plus a Flatten/Gemm head holding G). Differences are taken in double
 * from float forwards, output by output, with the step actually taken in float. All perturbed
 * copies of the input go through the device in a few large batches (rows are independent), so a
 * check costs a handful of launches. Inputs keep clear of kinks: no ReLU input near 0, max-pool
 * inputs pairwise at least twice the step apart.
 */
class BackwardFiniteDifferenceTest {
    private static final double RTOL = 2e-3;
    private static final double ATOL_FRACTION = 1e-3;
    /** Rows per forward call of the perturbed batch. */
    private static final int ROWS_PER_CALL = 512;

    @RegisterExtension
    final NoFallback noFallback = new NoFallback();


    /** Fails on a large overall error or one bad element: the CPU operator tests' checker. */
    static Report compare(double[] analytic, double[] fd) {
        return GradientCheck.compare(analytic, fd, RTOL, ATOL_FRACTION);
    }

    /** The analytic gradient and its finite-difference twin, both from the CUDA runner. */
    record Pair(double[] analytic, double[] fd) {
    }

    static Pair gradients(G g, Tensor x, double h, long seed) {
        return gradients(g, x, h, seed, ROWS_PER_CALL);
    }

    /** rowsPerCall 1 for graphs that fit only a batch of one (a Reshape to a fixed shape). */
    static Pair gradients(G g, Tensor x, double h, long seed, int rowsPerCall) {
        int batch = x.dim(0);
        int features = x.rowSize();
        float[] gw;
        double[] fd = new double[x.size()];
        try (ModelRunner body = cuda().prepare(g.build())) {
            int outs = body.outputsPerExample();
            gw = rand(new Random(seed), -1, 1, outs).data();
            // rows 2j and 2j+1: example j / features, element j % features moved up and down
            int total = 2 * x.size();
            int[] shape = x.shape();
            float[] steps = new float[x.size()];
            for (int start = 0; start < total; start += rowsPerCall) {
                int rows = Math.min(rowsPerCall, total - start);
                float[] data = new float[rows * features];
                for (int q = 0; q < rows; q++) {
                    int j = (start + q) / 2;
                    int example = j / features;
                    int e = j % features;
                    System.arraycopy(x.data(), example * features, data, q * features, features);
                    float v = x.data()[j];
                    float moved = (float) ((start + q) % 2 == 0 ? v + h : v - h);
                    data[q * features + e] = moved;
                    if ((start + q) % 2 == 0) {
                        steps[j] = moved;
                    } else {
                        steps[j] -= moved;
                    }
                }
                shape[0] = rows;
                float[] y = body.forward(new Tensor(shape.clone(), data)).data();
                assertEquals((long) rows * outs, y.length, "forward size");
                for (int q = 0; q < rows; q++) {
                    int j = (start + q) / 2;
                    double sign = (start + q) % 2 == 0 ? 1 : -1;
                    double sum = 0;
                    for (int f = 0; f < outs; f++) {
                        sum += (double) gw[f] * y[q * outs + f];
                    }
                    fd[j] += sign * sum;
                }
            }
            for (int j = 0; j < fd.length; j++) {
                fd[j] /= steps[j];
            }
        }
        double[] analytic;
        try (ModelRunner headed = cuda().prepare(g.withHead(gw))) {
            ModelRunner.Gradient gr = headed.gradient(x, new int[batch]);
            assertArrayEquals(x.shape(), gr.inputGradient().shape(), "gradient shape");
            analytic = toDouble(gr.inputGradient().data());
        }
        return new Pair(analytic, fd);
    }

    private static void check(String label, G g, Tensor x, double h, long seed) {
        check(label, g, x, h, seed, ROWS_PER_CALL);
    }

    private static void check(String label, G g, Tensor x, double h, long seed, int rowsPerCall) {
        Pair p = gradients(g, x, h, seed, rowsPerCall);
        double maxFd = Arrays.stream(p.fd()).map(Math::abs).max().orElse(0);
        assertTrue(maxFd > 0, label + ": the finite differences are all zero (a test that cannot fail)");
        Report r = compare(p.analytic(), p.fd());
        assertTrue(r.ok(), label + ": " + r);
    }

    // ------------------------------------------------------------------ the checker can fail

    @Test
    void checkerRejectsAPerturbedGradient() {
        Random r = new Random(1);
        G g = new G(3, 4);
        g.then(new Op.Sigmoid());
        Pair p = gradients(g, rand(r, -3, 3, 2, 3, 4), 1e-2, 2);
        assertTrue(compare(p.analytic(), p.fd()).ok(), "true gradient rejected: " + compare(p.analytic(), p.fd()));
        int biggest = 0;
        for (int i = 0; i < p.fd().length; i++) {
            biggest = Math.abs(p.fd()[i]) > Math.abs(p.fd()[biggest]) ? i : biggest;
        }
        double[] oneOff = p.analytic().clone();
        oneOff[biggest] *= 1.05;
        assertFalse(compare(oneOff, p.fd()).ok(), "5% error in one element accepted");
        double[] swapped = p.analytic().clone();
        swapped[0] = p.analytic()[5];
        swapped[5] = p.analytic()[0];
        assertFalse(compare(swapped, p.fd()).ok(), "swapped elements accepted");
    }

    // ------------------------------------------------------------------ activations and softmax

    @Test
    void activations() {
        Random r = new Random(10);
        // act_backward: no ReLU input within 2e-2 of 0, a 5e-3 step never crosses the kink
        Tensor x = awayFromZero(r, 2, 2e-2, 3, 3, 5, 7);
        for (Op op : new Op[] {new Op.Relu(), new Op.LeakyRelu(0.1f), new Op.LeakyRelu(1.5f)}) {
            G g = new G(3, 5, 7);
            g.then(op);
            check(op.toString(), g, x, 5e-3, 11);
        }
        for (Op op : new Op[] {new Op.Sigmoid(), new Op.Tanh()}) {
            G g = new G(31);
            g.then(op);
            check(op.toString(), g, rand(r, -3, 3, 3, 31), 1e-2, 12);
        }
    }

    @Test
    void leakyReluNegativeAlpha() {
        Random r = new Random(13);
        G g = new G(31);
        g.then(new Op.LeakyRelu(-0.5f));
        check("LeakyRelu(-0.5)", g, awayFromZero(r, 2, 2e-2, 2, 31), 5e-3, 14);
    }

    @Test
    void softmax() {
        Random r = new Random(20);
        G a = new G(31);
        a.then(new Op.Softmax(1));
        check("Softmax axis 1 of [B,31]", a, rand(r, -2, 2, 3, 31), 1e-2, 21);
        G b = new G(5, 7);
        b.then(new Op.Softmax(-1));
        check("Softmax last axis of [B,5,7]", b, rand(r, -2, 2, 2, 5, 7), 1e-2, 22);
        G c = new G(5, 7);
        c.then(new Op.Softmax(1));
        check("Softmax axis 1 of [B,5,7]", c, rand(r, -2, 2, 2, 5, 7), 1e-2, 23);
        G d = new G(5, 7);
        d.then(new Op.Softmax(1, true));
        check("Softmax flattened at axis 1 of [B,5,7] (opset 12)", d, rand(r, -2, 2, 2, 5, 7), 1e-2, 24);
    }

    // ------------------------------------------------------------------ convolution (im2col_input_grad)

    @Test
    void convolutionInputGradient() {
        Random r = new Random(30);
        // C, H, W, M, kh, kw, strides, pads, dilations, group, autoPad
        Object[][] cases = {
            {2, 7, 5, 3, 3, 3, s(2, 2), s(1, 0, 0, 1), s(1, 1), 1, "NOTSET"},
            {2, 9, 7, 2, 3, 3, s(1, 1), s(2, 2, 2, 2), s(2, 2), 1, "NOTSET"},
            {4, 5, 7, 6, 3, 2, s(1, 1), s(1, 0, 1, 1), s(1, 1), 2, "NOTSET"},
            {3, 7, 6, 2, 4, 3, s(2, 2), s(), s(1, 1), 1, "SAME_UPPER"},
            {2, 8, 5, 4, 2, 5, s(2, 1), s(1, 2, 0, 2), s(2, 1), 2, "NOTSET"},
        };
        int i = 0;
        for (Object[] c : cases) {
            int ch = (Integer) c[0];
            int h = (Integer) c[1];
            int w = (Integer) c[2];
            int m = (Integer) c[3];
            int kh = (Integer) c[4];
            int kw = (Integer) c[5];
            int group = (Integer) c[9];
            G g = new G(ch, h, w);
            g.then(conv(s(kh, kw), (int[]) c[6], (int[]) c[7], (int[]) c[8], group, (String) c[10]),
                    rand(r, -1, 1, m, ch / group, kh, kw), rand(r, -1, 1, m));
            // linear in x: no truncation error, so a large step keeps rounding small
            check("Conv #" + i + " " + Arrays.toString(c), g, rand(r, -1, 1, 2, ch, h, w), 0.1, 31 + i++);
        }
    }

    // ------------------------------------------------------------------ pooling and normalisation

    @Test
    void maxPoolOverlappingPaddedCeil() {
        Random r = new Random(40);
        Object[][] cases = {
            {s(3, 3), s(2, 2), s(1, 1, 1, 1), s(1, 1), false},
            {s(3, 3), s(1, 1), s(0, 0, 0, 0), s(1, 1), false},
            {s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), true},
            {s(3, 2), s(2, 3), s(1, 0, 0, 1), s(1, 1), true},
            {s(2, 2), s(1, 1), s(0, 0, 0, 0), s(2, 2), false},
        };
        int i = 0;
        for (Object[] c : cases) {
            G g = new G(2, 7, 5);
            g.then(maxPool((int[]) c[0], (int[]) c[1], (int[]) c[2], (int[]) c[3], (Boolean) c[4]));
            // pairwise 0.05 apart, step 5e-3: no window's winner changes
            check("MaxPool #" + i + " k" + Arrays.toString((int[]) c[0]) + " s" + Arrays.toString((int[]) c[1]) + " p"
                    + Arrays.toString((int[]) c[2]) + " ceil " + c[4], g, distinct(r, 0.05, 2, 2, 7, 5), 5e-3, 41 + i++);
        }
    }

    @Test
    void averagePoolBothDivisors() {
        Random r = new Random(50);
        Object[][] cases = {
            {s(3, 3), s(2, 2), s(1, 1, 1, 1), false},
            {s(2, 2), s(2, 2), s(0, 0, 0, 0), true},
            {s(3, 3), s(1, 1), s(1, 0, 1, 2), false},
            {s(3, 3), s(2, 2), s(1, 1, 1, 1), true},
        };
        int i = 0;
        for (Object[] c : cases) {
            for (boolean countPad : new boolean[] {false, true}) {
                G g = new G(2, 7, 5);
                g.then(avgPool((int[]) c[0], (int[]) c[1], (int[]) c[2], countPad, (Boolean) c[3]));
                check("AveragePool #" + i + " p" + Arrays.toString((int[]) c[2]) + " ceil " + c[3] + " count_include_pad "
                        + countPad, g, rand(r, -1, 1, 2, 2, 7, 5), 0.1, 51 + i++);
            }
        }
    }

    @Test
    void globalAveragePoolAndBatchNorm() {
        Random r = new Random(60);
        G gap = new G(3, 7, 5);
        gap.then(new Op.GlobalAveragePool());
        check("GlobalAveragePool", gap, rand(r, -1, 1, 2, 3, 7, 5), 0.1, 61);
        G bn = new G(3, 7, 5);
        bn.then(new Op.BatchNormalization(1e-5f), rand(r, 0.5, 2, 3), rand(r, -1, 1, 3), rand(r, -1, 1, 3),
                rand(r, 0.1, 2, 3));
        check("BatchNormalization (channel_affine)", bn, rand(r, -2, 2, 2, 3, 7, 5), 0.1, 62);
    }

    @Test
    void layoutAndReductions() {
        Random r = new Random(100);
        long seed = 101;
        for (dev.kxai.testing.LayoutCases c : dev.kxai.testing.LayoutCases.ALL) {
            G g = CudaTestKit.layout(c);
            check(c.label(), g, c.input(r, 2), 0.1, seed++);
        }
    }

    @Test
    void where() {
        Random r = new Random(40);
        long seed = 41;
        for (dev.kxai.testing.WhereCases c : dev.kxai.testing.WhereCases.ALL) {
            G g = new G(c.example());
            String cond = g.c(c.condition());
            String other = g.c(c.other());
            g.op(new Op.Where(), c.inputIsX() ? new String[] {cond, "x", other} : new String[] {cond, other, "x"});
            check(c.label(), g, c.input(r, 2), 1e-2, seed++);
        }
    }

    @Test
    void divAndPow() {
        Random r = new Random(90);
        long seed = 91;
        for (dev.kxai.testing.DivPowCases c : dev.kxai.testing.DivPowCases.ALL) {
            G g = CudaTestKit.divPow(c, r);
            check(c.label(), g, c.input(r, 2), 1e-2, seed++);
        }
    }

    @Test
    void unaryFamily() {
        Random r = new Random(80);
        long seed = 81;
        for (dev.kxai.testing.UnaryCases.Case c : dev.kxai.testing.UnaryCases.ALL) {
            if (c.piecewiseConstant()) {
                continue; // gradient 0 = finite differences 0: nothing to prove here; KernelParityTest checks both passes
            }
            G g = new G(13);
            g.then(c.op());
            check(c.label(), g, c.input(r, 2, 13), 1e-2, seed++);
        }
    }

    @Test
    void padEveryMode() {
        Random r = new Random(70);
        long seed = 71;
        for (dev.kxai.testing.PadCases.Case c : dev.kxai.testing.PadCases.ALL) {
            G g = new G(c.example());
            g.then(c.op());
            int[] shape = c.batchShape(2);
            check("Pad " + c.label(), g, rand(r, -1, 1, shape), 0.1, seed++);
        }
    }

    // ------------------------------------------------------------------ broadcasting arithmetic

    @Test
    void binaryOpsWithBroadcasting() {
        Random r = new Random(70);
        // example shape of x, constant shape, x on the left
        Object[][] cases = {
            {s(3, 5, 7), s(3, 1, 1), true},
            {s(3, 5, 7), s(), false},
            {s(31), s(31), true},
            {s(3, 1, 1), s(3, 5, 7), true},   // x broadcast: binary_backward with atomics
            {s(1, 5, 7), s(3, 1, 1), false},
            {s(1), s(31), true},
        };
        int i = 0;
        for (Op op : new Op[] {new Op.Add(), new Op.Sub(), new Op.Mul()}) {
            for (Object[] c : cases) {
                int[] xs = (int[]) c[0];
                G g = new G(xs);
                String k = g.c(rand(r, -2, 2, (int[]) c[1]));
                if ((Boolean) c[2]) {
                    g.op(op, "x", k);
                } else {
                    g.op(op, k, "x");
                }
                Tensor x = rand(r, -2, 2, CudaTestKit.withBatch(2, xs));
                check(op.getClass().getSimpleName() + " x" + Arrays.toString(xs) + " / " + Arrays.toString((int[]) c[1]),
                        g, x, 0.25, 71 + i++);
            }
            // both operands from the input, one broadcast: x ⊙ GAP(x) (quadratic: the central difference is exact)
            G se = new G(3, 5, 7);
            String p = se.op(new Op.GlobalAveragePool(), "x");
            se.op(op, "x", p);
            check(op.getClass().getSimpleName() + "(x, GAP x)", se, rand(r, -2, 2, 2, 3, 5, 7), 0.25, 90 + i++);
        }
    }

    // ------------------------------------------------------------------ gemm, matmul, concat

    @Test
    void gemmAndMatMul() {
        Random r = new Random(80);
        for (boolean tb : new boolean[] {false, true}) {
            G g = new G(31);
            g.then(new Op.Gemm(0.7f, 1f, false, tb), tb ? rand(r, -1, 1, 17, 31) : rand(r, -1, 1, 31, 17),
                    rand(r, -1, 1, 17));
            check("Gemm transB=" + tb, g, rand(r, -1, 1, 3, 31), 0.1, 81);
            // transA: A = x reshaped to [K, M]
            G t = new G(4 * 6);
            t.then(new Op.Reshape(false), new Tensor(s(2), new float[] {6, 4}));
            t.then(new Op.Gemm(-1.3f, 0.5f, true, tb), tb ? rand(r, -1, 1, 5, 6) : rand(r, -1, 1, 6, 5),
                    rand(r, -1, 1, 4, 5));
            t.then(new Op.Reshape(false), new Tensor(s(2), new float[] {1, 20}));
            check("Gemm transA transB=" + tb, t, rand(r, -1, 1, 1, 24), 0.1, 82, 1);
        }
        G m = new G(5, 31);
        m.then(new Op.MatMul(), rand(r, -1, 1, 31, 7));
        check("MatMul [B,5,31] x [31,7]", m, rand(r, -1, 1, 2, 5, 31), 0.1, 83);
        // both operands from the input, equal leading dimensions (attention-like): x [B,2,20] seen
        // as A [B,2,5,4] and as B [B,2,4,5]
        G both = new G(2, 20);
        String a = both.op(new Op.Reshape(false), "x", both.c(new Tensor(s(4), new float[] {-1, 2, 5, 4})));
        String b = both.op(new Op.Reshape(false), "x", both.c(new Tensor(s(4), new float[] {-1, 2, 4, 5})));
        both.op(new Op.MatMul(), a, b);
        check("MatMul [B,2,5,4] x [B,2,4,5], both from the input", both, rand(r, -1, 1, 3, 2, 20), 0.05, 84);
    }

    @Test
    void concat() {
        Random r = new Random(90);
        G g = new G(3, 5, 7);
        String t = g.op(new Op.Tanh(), "x");
        String m = g.op(new Op.Mul(), "x", g.c(rand(r, -1, 1, 3, 1, 1)));
        g.op(new Op.Concat(1), t, "x", m);
        check("Concat axis 1", g, rand(r, -1, 1, 2, 3, 5, 7), 1e-2, 91);
        G h = new G(5, 7);
        String s = h.op(new Op.Sigmoid(), "x");
        h.op(new Op.Concat(-1), s, "x");
        check("Concat axis -1", h, rand(r, -1, 1, 2, 5, 7), 1e-2, 92);
    }
}
