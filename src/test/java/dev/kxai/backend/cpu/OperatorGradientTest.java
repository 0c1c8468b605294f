package dev.kxai.backend.cpu;

import dev.kxai.testing.GradientCheck;
import dev.kxai.testing.GradientCheck.Report;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kxai.InvalidInputException;
import dev.kxai.backend.ModelRunner;
import dev.kxai.exec.OpSet;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Every operator's backward against central finite differences of L(x) = Σ G ⊙ forward(x), plus
 * forward semantics that a gradient check cannot see (tie-breaking, pad handling, divisors).
 *
 * <p>The differences are taken in double from float forwards. Each step uses the step actually
 * taken in float ((float)(x+h) − (float)(x−h)), and sums G ⊙ (y⁺ − y⁻) output by output, so
 * outputs the perturbation does not touch cancel exactly instead of adding rounding noise.
 */
class OperatorGradientTest {
    /** Relative tolerance: ops run in float, differences are of float outputs. */
    private static final double RTOL = 2e-3;
    /** Per-element absolute slack, as a fraction of the largest finite-difference entry. */
    private static final double ATOL_FRACTION = 1e-3;

    // ------------------------------------------------------------------------------------------
    // The checker
    // ------------------------------------------------------------------------------------------

    static Report compare(double[] analytic, double[] fd, double rtol, double atolFraction) {
        return GradientCheck.compare(analytic, fd, rtol, atolFraction);
    }

    /** ∂/∂in[which] of Σ G ⊙ forward(in), one element at a time, by central differences. */
    static double[] finiteDifference(Node node, Tensor[] in, int which, float[] g, double h) {
        float[] x = in[which].data();
        double[] fd = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            float xp = (float) (x[j] + h);
            float xm = (float) (x[j] - h);
            float[] yp = forwardWith(node, in, which, j, xp);
            float[] ym = forwardWith(node, in, which, j, xm);
            double s = 0;
            for (int k = 0; k < g.length; k++) {
                s += (double) g[k] * ((double) yp[k] - (double) ym[k]);
            }
            fd[j] = s / ((double) xp - (double) xm);
        }
        return fd;
    }

    private static float[] forwardWith(Node node, Tensor[] in, int which, int j, float v) {
        Tensor[] copy = in.clone();
        float[] d = in[which].data().clone();
        d[j] = v;
        copy[which] = new Tensor(in[which].shape(), d);
        return CpuOpSet.run(node, copy).output().data();
    }

    /**
     * Runs forward and backward with a random upstream gradient and checks every needed input's
     * gradient against finite differences; inputs not needed must come back null.
     */
    static Tensor[] checkGradients(String label, Node node, Tensor[] in, boolean[] need, double h, long seed) {
        return checkGradients(label, node, in, need, h, seed, RTOL, ATOL_FRACTION);
    }

    static Tensor[] checkGradients(String label, Node node, Tensor[] in, boolean[] need, double h, long seed,
            double rtol, double atolFraction) {
        float[][] before = new float[in.length][];
        for (int i = 0; i < in.length; i++) {
            before[i] = in[i].data().clone();
        }
        OpSet.Forward<Tensor> fwd = CpuOpSet.run(node, in);
        Tensor gOut = rand(new Random(seed), -1, 1, fwd.output().shape());
        float[] gCopy = gOut.data().clone();
        Tensor[] grads = CpuOpSet.gradient(node, in, fwd, gOut, need);
        assertArrayEquals(gCopy, gOut.data(), label + ": backward modified the upstream gradient");
        for (int i = 0; i < in.length; i++) {
            assertArrayEquals(before[i], in[i].data(), label + ": input " + i + " modified");
        }
        assertTrue(grads.length >= countTrue(need), label + ": too few gradients");
        for (int i = 0; i < in.length; i++) {
            if (!need[i]) {
                assertTrue(i >= grads.length || grads[i] == null, label + ": gradient for unneeded input " + i);
                continue;
            }
            assertNotNull(grads[i], label + ": no gradient for input " + i);
            assertArrayEquals(in[i].shape(), grads[i].shape(), label + ": gradient shape of input " + i);
            double[] fd = finiteDifference(node, in, i, gOut.data(), h);
            Report r = compare(toDouble(grads[i].data()), fd, rtol, atolFraction);
            assertTrue(r.ok(), label + ", input " + i + ": " + r);
        }
        return grads;
    }

    // ------------------------------------------------------------------------------------------
    // Data and node helpers
    // ------------------------------------------------------------------------------------------

    private static int countTrue(boolean[] b) {
        int n = 0;
        for (boolean v : b) {
            n += v ? 1 : 0;
        }
        return n;
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    static Tensor rand(Random r, double lo, double hi, int... shape) {
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        float[] d = new float[n];
        for (int i = 0; i < n; i++) {
            d[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return new Tensor(shape, d);
    }

    /** Uniform in ±scale with no element within margin of 0 (the ReLU kink). */
    static Tensor awayFromZero(Random r, double scale, double margin, int... shape) {
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        float[] d = new float[n];
        for (int i = 0; i < n; i++) {
            double v;
            do {
                v = scale * (2 * r.nextDouble() - 1);
            } while (Math.abs(v) < margin);
            d[i] = (float) v;
        }
        return new Tensor(shape, d);
    }

    /** A shuffled grid: every pair of elements at least gap apart, and none within gap/2 of 0. */
    static Tensor distinct(Random r, double gap, int... shape) {
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        List<Float> vals = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            vals.add((float) ((i - n / 2 + 0.5) * gap));
        }
        java.util.Collections.shuffle(vals, r);
        float[] d = new float[n];
        for (int i = 0; i < n; i++) {
            d[i] = vals.get(i);
        }
        return new Tensor(shape, d);
    }

    static Tensor t(int[] shape, float... data) {
        return new Tensor(shape, data);
    }

    static int[] s(int... dims) {
        return dims;
    }

    static Node node(Op op, int inputs) {
        String type = op.getClass().getSimpleName();
        List<String> names = IntStream.range(0, inputs).mapToObj(i -> "in" + i).toList();
        return new Node("test_" + type, type, op, names, "out");
    }

    static boolean[] need(boolean... b) {
        return b;
    }

    static Op.Conv conv(int[] k, int[] strides, int[] pads, int[] dil, int group, String autoPad) {
        return new Op.Conv(k, strides, pads, dil, group, autoPad);
    }

    static Op.MaxPool maxPool(int[] k, int[] strides, int[] pads, int[] dil, boolean ceil) {
        return new Op.MaxPool(k, strides, pads, dil, ceil, "NOTSET");
    }

    // ------------------------------------------------------------------------------------------
    // The checker itself must be able to fail
    // ------------------------------------------------------------------------------------------

    @Test
    void checkerAcceptsTheTrueGradientAndRejectsPerturbedOnes() {
        Random r = new Random(1);
        Node sig = node(new Op.Sigmoid(), 1);
        Tensor x = rand(r, -3, 3, 2, 3, 4);
        float[] g = rand(r, -1, 1, 2, 3, 4).data();
        OpSet.Forward<Tensor> fwd = CpuOpSet.run(sig, new Tensor[] {x});
        double[] analytic = toDouble(
                CpuOpSet.gradient(sig, new Tensor[] {x}, fwd, new Tensor(x.shape(), g), need(true))[0].data());
        double[] fd = finiteDifference(sig, new Tensor[] {x}, 0, g, 1e-2);
        assertTrue(compare(analytic, fd, RTOL, ATOL_FRACTION).ok(), "true gradient rejected");

        // one element 5% off: the norm barely moves in 24 elements, the per-element bound must catch it
        int biggest = 0;
        for (int i = 0; i < fd.length; i++) {
            biggest = Math.abs(fd[i]) > Math.abs(fd[biggest]) ? i : biggest;
        }
        double[] oneOff = analytic.clone();
        oneOff[biggest] *= 1.05;
        Report rep = compare(oneOff, fd, RTOL, ATOL_FRACTION);
        assertFalse(rep.ok(), "5% error in one element accepted: " + rep);
        assertEquals(biggest, rep.worstIndex());

        // two elements swapped (a gradient routed to the wrong place)
        double[] swapped = analytic.clone();
        swapped[0] = analytic[5];
        swapped[5] = analytic[0];
        assertFalse(compare(swapped, fd, RTOL, ATOL_FRACTION).ok(), "swapped elements accepted");

        // a wrong derivative: tanh's backward formula applied to sigmoid's output
        Tensor wrong = ElementwiseOps.activationBackward(ElementwiseOps.Activation.TANH, 0f, x, fwd.output(),
                new Tensor(x.shape(), g));
        assertFalse(compare(toDouble(wrong.data()), fd, RTOL, ATOL_FRACTION).ok(), "tanh'(y) accepted for sigmoid");

        // a sign slip and a NaN
        double[] negated = Arrays.stream(analytic).map(v -> -v).toArray();
        assertFalse(compare(negated, fd, RTOL, ATOL_FRACTION).ok(), "negated gradient accepted");
        double[] nan = analytic.clone();
        nan[3] = Double.NaN;
        assertFalse(compare(nan, fd, RTOL, ATOL_FRACTION).ok(), "NaN accepted");
    }

    @Test
    void checkerCatchesGemmGradientThatIgnoresAlpha() {
        // the mistake a Gemm backward is most likely to make: forgetting alpha (or applying beta to dA)
        Random r = new Random(2);
        Op.Gemm op = new Op.Gemm(0.7f, 1.3f, false, true);
        Node n = node(op, 3);
        Tensor[] in = {rand(r, -1, 1, 3, 4), rand(r, -1, 1, 5, 4), rand(r, -1, 1, 5)};
        Tensor g = rand(r, -1, 1, 3, 5);
        OpSet.Forward<Tensor> fwd = CpuOpSet.run(n, in);
        Tensor[] grads = CpuOpSet.gradient(n, in, fwd, g, need(true, true, true));
        double[] fdA = finiteDifference(n, in, 0, g.data(), 0.1);
        double[] fdC = finiteDifference(n, in, 2, g.data(), 0.1);
        assertTrue(compare(toDouble(grads[0].data()), fdA, RTOL, ATOL_FRACTION).ok());
        double[] noAlpha = Arrays.stream(toDouble(grads[0].data())).map(v -> v / 0.7).toArray();
        assertFalse(compare(noAlpha, fdA, RTOL, ATOL_FRACTION).ok(), "dA without alpha accepted");
        double[] noBeta = Arrays.stream(toDouble(grads[2].data())).map(v -> v / 1.3).toArray();
        assertFalse(compare(noBeta, fdC, RTOL, ATOL_FRACTION).ok(), "dC without beta accepted");
    }

    @Test
    void checkerCatchesMaxPoolGradientRoutedToTheRunnerUp() {
        Random r = new Random(3);
        Node n = node(maxPool(s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), false), 1);
        Tensor x = distinct(r, 0.05, 1, 1, 4, 4);
        Tensor g = rand(r, -1, 1, 1, 1, 2, 2);
        OpSet.Forward<Tensor> fwd = CpuOpSet.run(n, new Tensor[] {x});
        int[] argmax = (int[]) fwd.saved();
        // send window 0's gradient to the second largest element instead
        int w0 = argmax[0];
        int[] window = {0, 1, 4, 5};
        int second = -1;
        for (int i : window) {
            if (i != w0 && (second < 0 || x.data()[i] > x.data()[second])) {
                second = i;
            }
        }
        int[] wrongArg = argmax.clone();
        wrongArg[0] = second;
        double[] fd = finiteDifference(n, new Tensor[] {x}, 0, g.data(), 5e-3);
        assertTrue(compare(toDouble(PoolOps.maxBackward(x, argmax, g).data()), fd, RTOL, ATOL_FRACTION).ok());
        assertFalse(compare(toDouble(PoolOps.maxBackward(x, wrongArg, g).data()), fd, RTOL, ATOL_FRACTION).ok(),
                "gradient at the runner-up accepted");
    }

    // ------------------------------------------------------------------------------------------
    // Gemm and MatMul (linear: FD has no truncation error, so a large step keeps rounding small)
    // ------------------------------------------------------------------------------------------

    @Test
    void gemmAllTransposesWithAlphaBetaAndBothBiasShapes() {
        Random r = new Random(10);
        int m = 3;
        int k = 4;
        int n = 5;
        int[][] biasShapes = {{n}, {m, n}, {1, n}, {m, 1}};
        long seed = 100;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (int[] cs : biasShapes) {
                    Op.Gemm op = new Op.Gemm(0.7f, 1.3f, ta, tb);
                    Tensor a = ta ? rand(r, -1, 1, k, m) : rand(r, -1, 1, m, k);
                    Tensor b = tb ? rand(r, -1, 1, n, k) : rand(r, -1, 1, k, n);
                    Tensor c = rand(r, -1, 1, cs);
                    Tensor[] in = {a, b, c};
                    String label = "Gemm transA=" + ta + " transB=" + tb + " C" + Arrays.toString(cs);
                    checkGemmForward(label, op, a, b, c);
                    checkGradients(label, node(op, 3), in, need(true, true, true), 0.1, seed++);
                    // constant B and C (the usual Linear layer): checkGradients also asserts they come back null
                    checkGradients(label + " (A only)", node(op, 3), in, need(true, false, false), 0.1, seed++);
                    checkGradients(label + " (B only)", node(op, 3), in, need(false, true, false), 0.1, seed++);
                }
                // Gemm with two inputs: need[] has no slot for C
                Op.Gemm op = new Op.Gemm(-1.5f, 1f, ta, tb);
                Tensor[] in = {ta ? rand(r, -1, 1, k, m) : rand(r, -1, 1, m, k),
                    tb ? rand(r, -1, 1, n, k) : rand(r, -1, 1, k, n)};
                checkGradients("Gemm no C transA=" + ta + " transB=" + tb, node(op, 2), in, need(true, true), 0.1,
                        seed++);
            }
        }
    }

    @Test
    void gemmWithBetaZeroIgnoresCAndGivesItZeroGradient() {
        Random r = new Random(11);
        Op.Gemm op = new Op.Gemm(1f, 0f, false, false);
        Tensor[] in = {rand(r, -1, 1, 2, 3), rand(r, -1, 1, 3, 4), rand(r, -1, 1, 4)};
        Tensor y = CpuOpSet.run(node(op, 3), in).output();
        Tensor[] noC = {in[0], in[1]};
        assertArrayEquals(CpuOpSet.run(node(op, 2), noC).output().data(), y.data());
        Tensor[] g = checkGradients("Gemm beta=0", node(op, 3), in, need(true, true, true), 0.1, 12);
        for (float v : g[2].data()) {
            assertEquals(0f, v);
        }
    }

    private static void checkGemmForward(String label, Op.Gemm op, Tensor a, Tensor b, Tensor c) {
        int m = op.transA() ? a.dim(1) : a.dim(0);
        int k = op.transA() ? a.dim(0) : a.dim(1);
        int n = op.transB() ? b.dim(0) : b.dim(1);
        Tensor y = CpuOpSet.run(node(op, 3), new Tensor[] {a, b, c}).output();
        assertArrayEquals(s(m, n), y.shape(), label);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    double av = op.transA() ? a.data()[p * m + i] : a.data()[i * k + p];
                    double bv = op.transB() ? b.data()[j * k + p] : b.data()[p * n + j];
                    acc += av * bv;
                }
                int ci = c.rank() == 1 ? j : (c.dim(0) == 1 ? j : (c.dim(1) == 1 ? i : i * n + j));
                double expected = op.alpha() * acc + op.beta() * c.data()[ci];
                assertEquals(expected, y.data()[i * n + j], 1e-5, label + " y[" + i + "," + j + "]");
            }
        }
    }

    @Test
    void matMulSharedAndBatchedRightOperand() {
        Random r = new Random(20);
        Node n = node(new Op.MatMul(), 2);
        // [.., M, K] × [K, N]: B's gradient sums over every leading slice
        checkGradients("MatMul [2,3,4]x[4,5]", n, new Tensor[] {rand(r, -1, 1, 2, 3, 4), rand(r, -1, 1, 4, 5)},
                need(true, true), 0.1, 21);
        checkGradients("MatMul [2,2,3,4]x[4,2]", n, new Tensor[] {rand(r, -1, 1, 2, 2, 3, 4), rand(r, -1, 1, 4, 2)},
                need(true, true), 0.1, 22);
        checkGradients("MatMul [3,4]x[4,5]", n, new Tensor[] {rand(r, -1, 1, 3, 4), rand(r, -1, 1, 4, 5)},
                need(true, true), 0.1, 23);
        // equal-rank batched: each slice of B gets only its own slice's gradient
        checkGradients("MatMul [2,3,4]x[2,4,5]", n, new Tensor[] {rand(r, -1, 1, 2, 3, 4), rand(r, -1, 1, 2, 4, 5)},
                need(true, true), 0.1, 24);
        checkGradients("MatMul [2,2,3,4]x[2,2,4,3]", n,
                new Tensor[] {rand(r, -1, 1, 2, 2, 3, 4), rand(r, -1, 1, 2, 2, 4, 3)}, need(true, true), 0.1, 25);
        checkGradients("MatMul constant B", n, new Tensor[] {rand(r, -1, 1, 2, 3, 4), rand(r, -1, 1, 4, 5)},
                need(true, false), 0.1, 26);
        checkGradients("MatMul constant A", n, new Tensor[] {rand(r, -1, 1, 2, 3, 4), rand(r, -1, 1, 2, 4, 5)},
                need(false, true), 0.1, 27);
    }

    @Test
    void matMulForwardBatchedSlices() {
        // [2,1,2] × [2,2,1]: slice t uses B's slice t, not slice 0
        Tensor a = t(s(2, 1, 2), 1, 2, 3, 4);
        Tensor b = t(s(2, 2, 1), 5, 6, 7, 8);
        Tensor y = CpuOpSet.run(node(new Op.MatMul(), 2), new Tensor[] {a, b}).output();
        assertArrayEquals(s(2, 1, 1), y.shape());
        assertArrayEquals(new float[] {1 * 5 + 2 * 6, 3 * 7 + 4 * 8}, y.data());
    }

    // ------------------------------------------------------------------------------------------
    // Broadcasting arithmetic
    // ------------------------------------------------------------------------------------------

    @Test
    void addSubMulWithBroadcastingBothOperands() {
        Random r = new Random(30);
        int[][][] pairs = {
            {{2, 3, 4, 5}, {2, 3, 4, 5}},
            {{2, 3, 4, 5}, {3, 1, 1}},
            {{3, 1, 1}, {2, 3, 4, 5}},
            {{2, 3, 4, 5}, {}},
            {{}, {2, 3, 4, 5}},
            {{2, 3, 4, 5}, {5}},
            {{4, 5}, {5}},
            {{3, 1}, {1, 4}},
            {{2, 3, 4, 5}, {1, 1, 1, 1}},
            {{2, 1, 4}, {3, 1}},
        };
        Op[] ops = {new Op.Add(), new Op.Sub(), new Op.Mul()};
        long seed = 300;
        for (Op op : ops) {
            for (int[][] p : pairs) {
                Tensor a = rand(r, -2, 2, p[0]);
                Tensor b = rand(r, -2, 2, p[1]);
                String label = op.getClass().getSimpleName() + " " + Arrays.toString(p[0]) + " with "
                        + Arrays.toString(p[1]);
                // Add/Sub are linear and Mul bilinear: no truncation error, so a large step is exact
                checkGradients(label, node(op, 2), new Tensor[] {a, b}, need(true, true), 0.25, seed++);
                checkGradients(label + " (b constant)", node(op, 2), new Tensor[] {a, b}, need(true, false), 0.25,
                        seed++);
                checkGradients(label + " (a constant)", node(op, 2), new Tensor[] {a, b}, need(false, true), 0.25,
                        seed++);
            }
        }
    }

    @Test
    void broadcastForwardMatchesNumpy() {
        // [2,2] − [2]: the row vector is subtracted from every row
        Tensor a = t(s(2, 2), 10, 20, 30, 40);
        Tensor b = t(s(2), 1, 2);
        assertArrayEquals(new float[] {9, 18, 29, 38},
                CpuOpSet.run(node(new Op.Sub(), 2), new Tensor[] {a, b}).output().data());
        // scalar on the left of a Sub
        assertArrayEquals(new float[] {-9, -19, -29, -39},
                CpuOpSet.run(node(new Op.Sub(), 2), new Tensor[] {Tensor.scalar(1), a}).output().data());
        // [2,1] × [1,3] → outer product
        Tensor y = CpuOpSet.run(node(new Op.Mul(), 2), new Tensor[] {t(s(2, 1), 2, 3), t(s(1, 3), 1, 10, 100)})
                .output();
        assertArrayEquals(s(2, 3), y.shape());
        assertArrayEquals(new float[] {2, 20, 200, 3, 30, 300}, y.data());
        // [C,1,1] against [1,C,1,2]: per-channel offset
        Tensor z = CpuOpSet.run(node(new Op.Add(), 2),
                new Tensor[] {t(s(1, 2, 1, 2), 0, 0, 0, 0), t(s(2, 1, 1), 5, 7)}).output();
        assertArrayEquals(new float[] {5, 5, 7, 7}, z.data());
    }

    // ------------------------------------------------------------------------------------------
    // Activations and softmax
    // ------------------------------------------------------------------------------------------

    @Test
    void reluAndLeakyReluAwayFromTheKink() {
        Random r = new Random(40);
        // no element within 2e-2 of 0; a 5e-3 step never crosses the kink
        Tensor x = awayFromZero(r, 2, 2e-2, 2, 3, 4, 5);
        checkGradients("Relu", node(new Op.Relu(), 1), new Tensor[] {x}, need(true), 5e-3, 41);
        checkGradients("LeakyRelu 0.1", node(new Op.LeakyRelu(0.1f), 1), new Tensor[] {x}, need(true), 5e-3, 42);
        checkGradients("LeakyRelu 0.01", node(new Op.LeakyRelu(0.01f), 1), new Tensor[] {x}, need(true), 5e-3, 43);
        checkGradients("LeakyRelu 1.5", node(new Op.LeakyRelu(1.5f), 1), new Tensor[] {x}, need(true), 5e-3, 44);
    }

    @Test
    void reluFamilyForwardAndKinkChoice() {
        Tensor x = t(s(4), -2, 0, 0.5f, 3);
        assertArrayEquals(new float[] {0, 0, 0.5f, 3},
                CpuOpSet.run(node(new Op.Relu(), 1), new Tensor[] {x}).output().data());
        Node leaky = node(new Op.LeakyRelu(0.1f), 1);
        OpSet.Forward<Tensor> f = CpuOpSet.run(leaky, new Tensor[] {x});
        assertArrayEquals(new float[] {-0.2f, 0, 0.5f, 3}, f.output().data());
        // PyTorch's choice at 0: ReLU passes nothing, LeakyReLU passes alpha
        Tensor ones = t(s(4), 1, 1, 1, 1);
        assertArrayEquals(new float[] {0, 0, 1, 1}, CpuOpSet.gradient(node(new Op.Relu(), 1), new Tensor[] {x},
                CpuOpSet.run(node(new Op.Relu(), 1), new Tensor[] {x}), ones, need(true))[0].data());
        assertArrayEquals(new float[] {0.1f, 0.1f, 1, 1},
                CpuOpSet.gradient(leaky, new Tensor[] {x}, f, ones, need(true))[0].data());
    }

    @Test
    void sigmoidAndTanh() {
        Random r = new Random(50);
        Tensor x = rand(r, -4, 4, 2, 3, 4, 5);
        checkGradients("Sigmoid", node(new Op.Sigmoid(), 1), new Tensor[] {x}, need(true), 1e-2, 51);
        checkGradients("Tanh", node(new Op.Tanh(), 1), new Tensor[] {x}, need(true), 1e-2, 52);
        // saturated from below, where y itself (not 1 − y) carries the float precision
        Tensor big = rand(r, -9, -6, 3, 4);
        checkGradients("Sigmoid saturated", node(new Op.Sigmoid(), 1), new Tensor[] {big}, need(true), 1e-2, 53);
        float[] y = CpuOpSet.run(node(new Op.Sigmoid(), 1), new Tensor[] {t(s(3), -100, 0, 100)}).output().data();
        assertArrayEquals(new float[] {(float) (1 / (1 + Math.exp(100))), 0.5f, 1f}, y);
    }

    @Test
    void softmaxOverAxisOneAndTheLastAxis() {
        Random r = new Random(60);
        Tensor x3 = rand(r, -3, 3, 2, 4, 3);
        checkGradients("Softmax axis 1 of 3-D", node(new Op.Softmax(1), 1), new Tensor[] {x3}, need(true), 1e-2, 61);
        checkGradients("Softmax axis 2 of 3-D", node(new Op.Softmax(2), 1), new Tensor[] {x3}, need(true), 1e-2, 62);
        checkGradients("Softmax axis -1 of 3-D", node(new Op.Softmax(-1), 1), new Tensor[] {x3}, need(true), 1e-2, 63);
        checkGradients("Softmax axis 0 of 3-D", node(new Op.Softmax(0), 1), new Tensor[] {x3}, need(true), 1e-2, 64);
        // opsets 1-12: the input flattened to 2-D at the axis, one distribution per trailing block
        checkGradients("Softmax flattened at axis 1 of 3-D", node(new Op.Softmax(1, true), 1), new Tensor[] {x3},
                need(true), 1e-2, 67);
        float[] flat = CpuOpSet.run(node(new Op.Softmax(1, true), 1), new Tensor[] {x3}).output().data();
        for (int row = 0; row < 2; row++) { // each [4, 3] block sums to 1 as a whole, not per line of 3
            double sum = 0;
            for (int j = 0; j < 12; j++) {
                sum += flat[row * 12 + j];
            }
            assertEquals(1.0, sum, 1e-6, "flattened softmax block " + row);
        }
        checkGradients("Softmax 2-D", node(new Op.Softmax(1), 1), new Tensor[] {rand(r, -3, 3, 3, 6)}, need(true),
                1e-2, 65);
        // large logits: the max subtraction keeps exp finite
        checkGradients("Softmax large logits", node(new Op.Softmax(-1), 1),
                new Tensor[] {rand(r, 500, 503, 2, 5)}, need(true), 1e-2, 66);
    }

    @Test
    void softmaxForwardNormalisesAlongTheRightAxis() {
        // [1,2,2], axis 1: each column sums to 1, rows are untouched by each other
        Tensor x = t(s(1, 2, 2), 0, 0, (float) Math.log(3), 0);
        float[] y = CpuOpSet.run(node(new Op.Softmax(1), 1), new Tensor[] {x}).output().data();
        assertArrayEquals(new float[] {0.25f, 0.5f, 0.75f, 0.5f}, y, 1e-6f);
        float[] z = CpuOpSet.run(node(new Op.Softmax(-1), 1), new Tensor[] {x}).output().data();
        assertArrayEquals(new float[] {0.5f, 0.5f, 0.75f, 0.25f}, z, 1e-6f);
    }

    // ------------------------------------------------------------------------------------------
    // Shape operators
    // ------------------------------------------------------------------------------------------

    @Test
    void flattenReshapeIdentity() {
        Random r = new Random(70);
        Tensor x = rand(r, -1, 1, 2, 3, 4);
        int[][] flatShapes = {{1, 24}, {2, 12}, {6, 4}, {24, 1}};
        for (int axis = 0; axis <= 3; axis++) {
            Node n = node(new Op.Flatten(axis), 1);
            Tensor y = CpuOpSet.run(n, new Tensor[] {x}).output();
            assertArrayEquals(flatShapes[axis], y.shape(), "Flatten axis " + axis);
            assertArrayEquals(x.data(), y.data());
            checkGradients("Flatten axis " + axis, n, new Tensor[] {x}, need(true), 0.1, 71 + axis);
        }
        checkGradients("Flatten axis -1", node(new Op.Flatten(-1), 1), new Tensor[] {x}, need(true), 0.1, 75);

        float[][] targets = {{0, -1}, {-1, 6}, {4, 0, -1}, {0, 0, -1}, {-1}, {2, 0, 2, 2}};
        int[][] expected = {{2, 12}, {4, 6}, {4, 3, 2}, {2, 3, 4}, {24}, {2, 3, 2, 2}};
        for (int i = 0; i < targets.length; i++) {
            Node n = node(new Op.Reshape(false), 2);
            Tensor shape = t(s(targets[i].length), targets[i]);
            Tensor y = CpuOpSet.run(n, new Tensor[] {x, shape}).output();
            String label = "Reshape " + Arrays.toString(targets[i]);
            assertArrayEquals(expected[i], y.shape(), label);
            assertArrayEquals(x.data(), y.data(), label);
            checkGradients(label, n, new Tensor[] {x, shape}, need(true, false), 0.1, 80 + i);
        }

        Node id = node(new Op.Identity(), 1);
        assertArrayEquals(x.data(), CpuOpSet.run(id, new Tensor[] {x}).output().data());
        checkGradients("Identity", id, new Tensor[] {x}, need(true), 0.1, 90);
    }

    @Test
    void reshapeRejectsTwoInferredDims() {
        Tensor x = Tensor.zeros(2, 3, 4);
        Node n = node(new Op.Reshape(false), 2);
        try {
            CpuOpSet.run(n, new Tensor[] {x, t(s(2), -1, -1)});
            fail("two -1 accepted");
        } catch (InvalidInputException expected) {
            // the message names the node
            assertTrue(expected.getMessage().contains("test_Reshape"), expected.getMessage());
        }
    }

    @Test
    void layoutAndReductionsAgainstFiniteDifferences() {
        Random r = new Random(140);
        long seed = 141;
        for (dev.kxai.testing.LayoutCases c : dev.kxai.testing.LayoutCases.ALL) {
            Tensor x = c.input(r, 2);
            Tensor[] in = c.constant() == null ? new Tensor[] {x} : new Tensor[] {x, c.constant()};
            boolean[] need = c.constant() == null ? need(true) : need(true, false);
            checkGradients(c.label(), node(c.op(), in.length), in, need, 0.1, seed++);
            if (c.then() != null) {
                Tensor y = CpuOpSet.run(node(c.op(), in.length), in).output();
                checkGradients(c.label() + " (second op)", node(c.then(), 1), new Tensor[] {y}, need(true), 0.1, seed++);
            }
        }
        Tensor x = t(s(1, 2, 3), 1, 2, 3, 4, 5, 6);
        assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, CpuDispatch.FORWARD.visit(new Op.Transpose(new int[] {0, 2, 1}),
                new CpuDispatch.Fwd(node(new Op.Transpose(new int[] {0, 2, 1}), 1), new Tensor[] {x})).output().data());
        // ReduceMax ties: the gradient is split evenly among the maxima (PyTorch's amax rule)
        Op.Reduce max = new Op.Reduce(Op.Reduce.Kind.MAX, new int[] {-1}, false);
        Tensor tied = t(s(1, 3), 2, 2, 1);
        OpSet.Forward<Tensor> fm = CpuOpSet.run(node(max, 1), new Tensor[] {tied});
        assertArrayEquals(new float[] {2}, fm.output().data());
        assertArrayEquals(new float[] {0.5f, 0.5f, 0}, CpuOpSet.gradient(node(max, 1), new Tensor[] {tied}, fm,
                t(s(1), 1), need(true))[0].data());
        Op.Reduce mean = new Op.Reduce(Op.Reduce.Kind.MEAN, new int[] {-1}, false);
        assertArrayEquals(new float[] {2, 5}, CpuOpSet.run(node(mean, 1), new Tensor[] {x}).output().data());
        assertArrayEquals(s(1, 2), CpuOpSet.run(node(mean, 1), new Tensor[] {x}).output().shape());
    }

    @Test
    void whereAgainstFiniteDifferences() {
        Random r = new Random(150);
        long seed = 151;
        for (dev.kxai.testing.WhereCases c : dev.kxai.testing.WhereCases.ALL) {
            Tensor[] in = c.operands(c.input(r, 2));
            checkGradients(c.label(), node(new Op.Where(), 3), in, need(false, c.inputIsX(), !c.inputIsX()), 1e-2, seed++);
        }
        // a selection: -inf and NaN pass through unchanged
        Tensor y = CpuOpSet.run(node(new Op.Where(), 3), new Tensor[] {t(s(2), 1, 0), t(s(2), Float.NaN, 1),
            t(s(2), 0, Float.NEGATIVE_INFINITY)}).output();
        assertTrue(Float.isNaN(y.data()[0]) && y.data()[1] == Float.NEGATIVE_INFINITY);
        // the masks Where reads, computed per request: 1 or 0, broadcast, no gradient
        Tensor m = CpuOpSet.run(node(new Op.Compare(Op.Compare.Kind.LESS), 2), new Tensor[] {t(s(2, 2), 1, -1, 0, 2),
            t(s(2), 0.5f, 2)}).output();
        assertArrayEquals(new float[] {0, 1, 1, 0}, m.data());
        Tensor[] none = CpuOpSet.gradient(node(new Op.Compare(Op.Compare.Kind.EQUAL), 2), new Tensor[] {t(s(1), 1),
            t(s(1), 1)}, CpuOpSet.run(node(new Op.Compare(Op.Compare.Kind.EQUAL), 2), new Tensor[] {t(s(1), 1), t(s(1), 1)}),
            t(s(1), 1), need(true, true));
        assertTrue(none[0] == null && none[1] == null, "a comparison passes no gradient");
    }

    @Test
    void divAndPowAgainstFiniteDifferences() {
        Random r = new Random(130);
        long seed = 131;
        for (dev.kxai.testing.DivPowCases c : dev.kxai.testing.DivPowCases.ALL) {
            Tensor x = c.input(r, 2);
            Tensor k = c.constantValue(r);
            Tensor[] in = c.inputIsB() ? new Tensor[] {k, x} : new Tensor[] {x, k};
            boolean constantNeedsGradient = !(c.op() instanceof Op.Pow && !c.inputIsB() && c.cLo() == c.cHi());
            checkGradients(c.label(), node(c.op(), 2), in, need(true, constantNeedsGradient), 1e-2, seed++);
        }
        // PyTorch's rules at 0: d(0^b)/db = 0 for b >= 0, d(a^0)/da = 0
        Tensor[] g = ElementwiseOps.binaryBackward(ElementwiseOps.Binary.POW, t(s(2), 0, 3), t(s(2), 2, 0), s(2),
                t(s(2), 1, 1), true, true);
        assertArrayEquals(new float[] {0, 0}, g[0].data());
        assertArrayEquals(new float[] {0, (float) Math.log(3)}, g[1].data(), 1e-7f);
    }

    @Test
    void unaryFamilyAgainstFiniteDifferences() {
        Random r = new Random(120);
        long seed = 121;
        for (dev.kxai.testing.UnaryCases.Case c : dev.kxai.testing.UnaryCases.ALL) {
            checkGradients(c.label(), node(c.op(), 1), new Tensor[] {c.input(r, 3, 17)}, need(true), 1e-2, seed++);
        }
        // the kinks follow PyTorch: Clip (hardtanh, ReLU6) and HardSigmoid pass nothing at their bounds,
        // HardSwish is inclusive at 3, Abs has 0 at 0
        Tensor x = t(s(1, 5), -1, 0, 2, 3, -3);
        Tensor ones = t(s(1, 5), 1, 1, 1, 1, 1);
        assertArrayEquals(new float[] {0, 1, 0, 0, 0}, ElementwiseOps.unaryBackward(
                new Op.Unary(Op.Unary.Kind.CLIP, -1f, 2f), x, ones).data());
        assertArrayEquals(new float[] {1f / 6, 0.5f, 7f / 6, 1.5f, -0.5f}, ElementwiseOps.unaryBackward(
                new Op.Unary(Op.Unary.Kind.HARD_SWISH), x, ones).data(), 1e-7f);
        assertArrayEquals(new float[] {-1, 0, 1, 1, -1}, ElementwiseOps.unaryBackward(
                new Op.Unary(Op.Unary.Kind.ABS), x, ones).data());
        assertArrayEquals(new float[] {0, 0, 2, 2, 0}, ElementwiseOps.unary(
                new Op.Unary(Op.Unary.Kind.CLIP, 0f, 2f), x).data());
        assertEquals(0.8427007929497149, ElementwiseOps.unary(Op.Unary.Kind.ERF, 0, 0, 1.0), 1e-15);
        assertEquals(0.8413447460685429, ElementwiseOps.unary(Op.Unary.Kind.GELU, 0, 0, 1.0), 1e-15);
    }

    @Test
    void padEveryModeAgainstFiniteDifferences() {
        Random r = new Random(110);
        long seed = 111;
        for (dev.kxai.testing.PadCases.Case c : dev.kxai.testing.PadCases.ALL) {
            int[] shape = c.batchShape(2);
            checkGradients("Pad " + c.label(), node(c.op(), 1), new Tensor[] {rand(r, -1, 1, shape)}, need(true), 0.1,
                    seed++);
        }
        // reflect mirrors without repeating the edge, edge repeats it, wrap is periodic
        Tensor x = t(s(1, 4), 1, 2, 3, 4);
        assertArrayEquals(new float[] {3, 2, 1, 2, 3, 4, 3, 2}, CpuOpSet.run(node(new Op.Pad("reflect",
                new int[] {0, 2, 0, 2}, 0f, null), 1), new Tensor[] {x}).output().data());
        assertArrayEquals(new float[] {1, 1, 1, 2, 3, 4, 4, 4}, CpuOpSet.run(node(new Op.Pad("edge",
                new int[] {0, 2, 0, 2}, 0f, null), 1), new Tensor[] {x}).output().data());
        assertArrayEquals(new float[] {3, 4, 1, 2, 3, 4, 1, 2}, CpuOpSet.run(node(new Op.Pad("wrap",
                new int[] {0, 2, 0, 2}, 0f, null), 1), new Tensor[] {x}).output().data());
        assertArrayEquals(new float[] {9, 1, 2}, CpuOpSet.run(node(new Op.Pad("constant",
                new int[] {0, 1, 0, -2}, 9f, null), 1), new Tensor[] {x}).output().data());
    }

    @Test
    void concatAxisOneWithAConstantPart() {
        Random r = new Random(100);
        Tensor a = rand(r, -1, 1, 2, 2, 3);
        Tensor c = rand(r, -1, 1, 2, 1, 3);
        Tensor b = rand(r, -1, 1, 2, 3, 3);
        Node n = node(new Op.Concat(1), 3);
        Tensor y = CpuOpSet.run(n, new Tensor[] {a, c, b}).output();
        assertArrayEquals(s(2, 6, 3), y.shape());
        // y[1, 2, :] is c[1, 0, :]; y[1, 3, :] is b[1, 0, :]
        for (int k = 0; k < 3; k++) {
            assertEquals(c.data()[3 + k], y.data()[18 + 6 + k]);
            assertEquals(b.data()[9 + k], y.data()[18 + 9 + k]);
        }
        checkGradients("Concat axis 1, middle constant", n, new Tensor[] {a, c, b}, need(true, false, true), 0.1, 101);
        checkGradients("Concat axis 1, all", n, new Tensor[] {a, c, b}, need(true, true, true), 0.1, 102);
        checkGradients("Concat axis -1", node(new Op.Concat(-1), 3),
                new Tensor[] {rand(r, -1, 1, 2, 2, 1), rand(r, -1, 1, 2, 2, 3), rand(r, -1, 1, 2, 2, 2)},
                need(false, true, true), 0.1, 103);
        checkGradients("Concat axis 0", node(new Op.Concat(0), 3),
                new Tensor[] {rand(r, -1, 1, 1, 2), rand(r, -1, 1, 3, 2), rand(r, -1, 1, 2, 2)},
                need(true, true, false), 0.1, 104);
    }

    @Test
    void batchNormalization() {
        Random r = new Random(110);
        int c = 3;
        Tensor gamma = rand(r, 0.5, 2, c);
        Tensor beta = rand(r, -1, 1, c);
        Tensor mean = rand(r, -1, 1, c);
        Tensor var = rand(r, 0.2, 3, c);
        float eps = 1e-3f;
        Node n = node(new Op.BatchNormalization(eps), 5);
        Tensor x = rand(r, -2, 2, 2, c, 3, 4);
        Tensor[] in = {x, gamma, beta, mean, var};
        float[] y = CpuOpSet.run(n, in).output().data();
        for (int i = 0; i < y.length; i++) {
            int ch = (i / 12) % c;
            double expected = (x.data()[i] - mean.data()[ch]) / Math.sqrt(var.data()[ch] + eps) * gamma.data()[ch]
                    + beta.data()[ch];
            assertEquals(expected, y[i], 1e-5, "BatchNorm y[" + i + "]");
        }
        checkGradients("BatchNorm 4-D", n, in, need(true, false, false, false, false), 0.1, 111);
        checkGradients("BatchNorm 2-D", n, new Tensor[] {rand(r, -2, 2, 4, c), gamma, beta, mean, var},
                need(true, false, false, false, false), 0.1, 112);
    }

    @Test
    void globalAveragePool() {
        Random r = new Random(120);
        Node n = node(new Op.GlobalAveragePool(), 1);
        Tensor x = rand(r, -2, 2, 2, 3, 4, 5);
        Tensor y = CpuOpSet.run(n, new Tensor[] {x}).output();
        assertArrayEquals(s(2, 3, 1, 1), y.shape());
        double m = 0;
        for (int i = 20; i < 40; i++) {
            m += x.data()[i];
        }
        assertEquals(m / 20, y.data()[1], 1e-6);
        checkGradients("GlobalAveragePool", n, new Tensor[] {x}, need(true), 0.1, 121);
    }

    // ------------------------------------------------------------------------------------------
    // Convolution
    // ------------------------------------------------------------------------------------------

    /** One convolution case: input shape, weight shape, op, bias or not, pads the op must resolve to. */
    record ConvCase(String label, int[] xShape, int[] wShape, Op.Conv op, boolean bias, int[] resolvedPads,
            int[] outHW) {
    }

    private static List<ConvCase> convCases() {
        int[] one = {1, 1};
        return List.of(
                new ConvCase("3x3 stride 1 pad 1", s(2, 2, 5, 5), s(3, 2, 3, 3),
                        conv(s(3, 3), one, s(1, 1, 1, 1), one, 1, "NOTSET"), true, s(1, 1, 1, 1), s(5, 5)),
                new ConvCase("3x3 stride 2 asymmetric pads", s(1, 2, 6, 7), s(2, 2, 3, 3),
                        conv(s(3, 3), s(2, 2), s(0, 1, 1, 0), one, 1, "NOTSET"), true, s(0, 1, 1, 0), s(3, 3)),
                new ConvCase("3x3 stride (2,1) no pad", s(1, 1, 7, 5), s(2, 1, 3, 3),
                        conv(s(3, 3), s(2, 1), s(0, 0, 0, 0), one, 1, "NOTSET"), true, s(0, 0, 0, 0), s(3, 3)),
                new ConvCase("3x3 dilation 2 pad 2", s(1, 2, 6, 6), s(2, 2, 3, 3),
                        conv(s(3, 3), one, s(2, 2, 2, 2), s(2, 2), 1, "NOTSET"), true, s(2, 2, 2, 2), s(6, 6)),
                new ConvCase("groups 2", s(2, 4, 5, 5), s(6, 2, 3, 3),
                        conv(s(3, 3), one, s(1, 1, 1, 1), one, 2, "NOTSET"), true, s(1, 1, 1, 1), s(5, 5)),
                new ConvCase("depthwise (groups = channels)", s(1, 3, 4, 4), s(3, 1, 2, 2),
                        conv(s(2, 2), one, s(0, 0, 0, 0), one, 3, "NOTSET"), true, s(0, 0, 0, 0), s(3, 3)),
                // the depthwise path (DepthwiseConv): stride 2 (four phases), 5x5, 7x7, dilation, multiplier 2
                new ConvCase("depthwise 3x3 stride 2 pad 1", s(2, 4, 7, 6), s(4, 1, 3, 3),
                        conv(s(3, 3), s(2, 2), s(1, 1, 1, 1), one, 4, "NOTSET"), true, s(1, 1, 1, 1), s(4, 3)),
                new ConvCase("depthwise 5x5 stride 2 pad 2", s(1, 3, 9, 8), s(3, 1, 5, 5),
                        conv(s(5, 5), s(2, 2), s(2, 2, 2, 2), one, 3, "NOTSET"), true, s(2, 2, 2, 2), s(5, 4)),
                new ConvCase("depthwise 7x7 pad 3", s(1, 2, 8, 9), s(2, 1, 7, 7),
                        conv(s(7, 7), one, s(3, 3, 3, 3), one, 2, "NOTSET"), false, s(3, 3, 3, 3), s(8, 9)),
                new ConvCase("depthwise 3x3 dilation 2 stride (2,1) asymmetric pads", s(1, 3, 9, 7), s(3, 1, 3, 3),
                        conv(s(3, 3), s(2, 1), s(2, 1, 1, 2), s(2, 2), 3, "NOTSET"), true, s(2, 1, 1, 2), s(4, 6)),
                new ConvCase("depthwise multiplier 2 stride 2 SAME_UPPER", s(2, 3, 6, 6), s(6, 1, 3, 3),
                        conv(s(3, 3), s(2, 2), s(0, 0, 0, 0), one, 3, "SAME_UPPER"), true, s(0, 0, 1, 1), s(3, 3)),
                new ConvCase("2x3 kernel no bias", s(2, 2, 5, 6), s(3, 2, 2, 3),
                        conv(s(2, 3), one, s(1, 0, 0, 1), one, 1, "NOTSET"), false, s(1, 0, 0, 1), s(5, 5)),
                // total pad 1 on each axis: SAME_UPPER puts it at the end, SAME_LOWER at the start
                new ConvCase("SAME_UPPER stride 2", s(1, 2, 6, 6), s(2, 2, 3, 3),
                        conv(s(3, 3), s(2, 2), s(0, 0, 0, 0), one, 1, "SAME_UPPER"), true, s(0, 0, 1, 1), s(3, 3)),
                new ConvCase("SAME_LOWER stride 2", s(1, 2, 6, 6), s(2, 2, 3, 3),
                        conv(s(3, 3), s(2, 2), s(0, 0, 0, 0), one, 1, "SAME_LOWER"), true, s(1, 1, 0, 0), s(3, 3)),
                new ConvCase("SAME_UPPER stride 1 even kernel", s(1, 1, 5, 5), s(2, 1, 2, 2),
                        conv(s(2, 2), one, s(0, 0, 0, 0), one, 1, "SAME_UPPER"), false, s(0, 0, 1, 1), s(5, 5)),
                new ConvCase("1x1 stride 2", s(2, 3, 5, 5), s(4, 3, 1, 1),
                        conv(s(1, 1), s(2, 2), s(0, 0, 0, 0), one, 1, "NOTSET"), true, s(0, 0, 0, 0), s(3, 3)),
                // the float sgemm paths (more than 16 outputs per group): 1x1 reading the planes as
                // columns, forward and backward; and k = 288 summed as two sgemm blocks
                new ConvCase("1x1 pointwise, 20 outputs per group, groups 2", s(2, 6, 3, 4), s(40, 3, 1, 1),
                        conv(s(1, 1), one, s(0, 0, 0, 0), one, 2, "NOTSET"), true, s(0, 0, 0, 0), s(3, 4)),
                new ConvCase("3x3, k = 288 in two sgemm blocks", s(1, 32, 4, 4), s(18, 32, 3, 3),
                        conv(s(3, 3), one, s(1, 1, 1, 1), one, 1, "NOTSET"), true, s(1, 1, 1, 1), s(4, 4)));
    }

    /** Direct convolution in double, straight from the definition. */
    static double[] naiveConv(Tensor x, Tensor w, Tensor bias, int[] strides, int[] pads, int[] dil, int group,
            int outH, int outW) {
        int n = x.dim(0);
        int c = x.dim(1);
        int h = x.dim(2);
        int wd = x.dim(3);
        int m = w.dim(0);
        int cg = c / group;
        int mg = m / group;
        int kh = w.dim(2);
        int kw = w.dim(3);
        double[] y = new double[n * m * outH * outW];
        for (int b = 0; b < n; b++) {
            for (int oc = 0; oc < m; oc++) {
                int g = oc / mg;
                for (int oy = 0; oy < outH; oy++) {
                    for (int ox = 0; ox < outW; ox++) {
                        double acc = bias == null ? 0 : bias.data()[oc];
                        for (int ic = 0; ic < cg; ic++) {
                            int ch = g * cg + ic;
                            for (int i = 0; i < kh; i++) {
                                int iy = oy * strides[0] - pads[0] + i * dil[0];
                                for (int j = 0; j < kw; j++) {
                                    int ix = ox * strides[1] - pads[1] + j * dil[1];
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) {
                                        continue;
                                    }
                                    acc += (double) x.data()[((b * c + ch) * h + iy) * wd + ix]
                                            * w.data()[((oc * cg + ic) * kh + i) * kw + j];
                                }
                            }
                        }
                        y[((b * m + oc) * outH + oy) * outW + ox] = acc;
                    }
                }
            }
        }
        return y;
    }

    @Test
    void convForwardMatchesDirectConvolution() {
        Random r = new Random(130);
        for (ConvCase cc : convCases()) {
            Tensor x = rand(r, -2, 2, cc.xShape());
            Tensor w = rand(r, -1, 1, cc.wShape());
            Tensor b = cc.bias() ? rand(r, -1, 1, cc.wShape()[0]) : null;
            Tensor[] in = b == null ? new Tensor[] {x, w} : new Tensor[] {x, w, b};
            Tensor y = CpuOpSet.run(node(cc.op(), in.length), in).output();
            assertArrayEquals(s(cc.xShape()[0], cc.wShape()[0], cc.outHW()[0], cc.outHW()[1]), y.shape(), cc.label());
            double[] ref = naiveConv(x, w, b, cc.op().strides(), cc.resolvedPads(), cc.op().dilations(), cc.op().group(),
                    cc.outHW()[0], cc.outHW()[1]);
            for (int i = 0; i < ref.length; i++) {
                // the exact path accumulates in double and rounds once: at most one float ulp off; the
                // float (sgemm) path is within the bound it states, and gives the exact value on demand
                float want = (float) ref[i];
                if (y.exact() == null) {
                    assertEquals(want, y.data()[i], Math.ulp(want), cc.label() + " y[" + i + "]");
                } else {
                    assertEquals(want, y.exact().exact(i), Math.ulp(want), cc.label() + " exact y[" + i + "]");
                    assertEquals(ref[i], y.data()[i], y.exact().bound(i, y.data()[i]), cc.label() + " y[" + i + "]");
                }
            }
        }
    }

    @Test
    void convForwardHandComputed() {
        // 1x1x3x3 input 1..9, 2x2 all-ones kernel, stride 1: window sums
        Tensor x = t(s(1, 1, 3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9);
        Tensor w = t(s(1, 1, 2, 2), 1, 1, 1, 1);
        Op.Conv op = conv(s(2, 2), s(1, 1), s(0, 0, 0, 0), s(1, 1), 1, "NOTSET");
        Tensor y = CpuOpSet.run(node(op, 3), new Tensor[] {x, w, t(s(1), 0.5f)}).output();
        assertArrayEquals(new float[] {12.5f, 16.5f, 24.5f, 28.5f}, y.data());
        // dilation 2 on a 3x3 kernel covers the corners of a 5x5: 1 output
        Tensor x5 = new Tensor(s(1, 1, 5, 5), new float[25]);
        for (int i = 0; i < 25; i++) {
            x5.data()[i] = i;
        }
        Tensor w3 = t(s(1, 1, 3, 3), 1, 0, 0, 0, 0, 0, 0, 0, 1);
        Op.Conv dil = conv(s(3, 3), s(1, 1), s(0, 0, 0, 0), s(2, 2), 1, "NOTSET");
        Tensor yd = CpuOpSet.run(node(dil, 2), new Tensor[] {x5, w3}).output();
        assertArrayEquals(s(1, 1, 1, 1), yd.shape());
        assertEquals(0 + 24, yd.data()[0]);
    }

    @Test
    void convInputGradient() {
        Random r = new Random(140);
        long seed = 1400;
        for (ConvCase cc : convCases()) {
            Tensor x = rand(r, -2, 2, cc.xShape());
            Tensor w = rand(r, -1, 1, cc.wShape());
            Tensor b = cc.bias() ? rand(r, -1, 1, cc.wShape()[0]) : null;
            Tensor[] in = b == null ? new Tensor[] {x, w} : new Tensor[] {x, w, b};
            boolean[] need = b == null ? need(true, false) : need(true, false, false);
            checkGradients("Conv " + cc.label(), node(cc.op(), in.length), in, need, 0.1, seed++);
        }
    }

    @Test
    void convRejectsWeightsThatDependOnTheInput() {
        Random r = new Random(150);
        Op.Conv op = conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET");
        Tensor[] in = {rand(r, -1, 1, 1, 2, 4, 4), rand(r, -1, 1, 2, 2, 3, 3), rand(r, -1, 1, 2)};
        Node n = node(op, 3);
        OpSet.Forward<Tensor> f = CpuOpSet.run(n, in);
        Tensor g = rand(r, -1, 1, f.output().shape());
        try {
            CpuOpSet.gradient(n, in, f, g, need(true, true, false));
            fail("a weight gradient was silently dropped");
        } catch (InvalidInputException expected) {
            assertTrue(expected.getMessage().contains("weights"), expected.getMessage());
        }
    }

    @Test
    void convBiasThatDependsOnTheInputIsDifferentiatedOrRejected() {
        // like the weights: a bias computed from the input must get its gradient (Σ over N, H, W
        // of dY per channel) or be refused; dropping it silently loses part of the input gradient
        Random r = new Random(155);
        Op.Conv op = conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET");
        Tensor[] in = {rand(r, -1, 1, 2, 2, 4, 4), rand(r, -1, 1, 3, 2, 3, 3), rand(r, -1, 1, 3)};
        Node n = node(op, 3);
        OpSet.Forward<Tensor> f = CpuOpSet.run(n, in);
        Tensor[] grads;
        try {
            grads = CpuOpSet.gradient(n, in, f, rand(r, -1, 1, f.output().shape()), need(true, false, true));
        } catch (InvalidInputException refused) {
            return;
        }
        assertNotNull(grads[2], "Conv bias gradient requested by need[2] was silently dropped");
        checkGradients("Conv bias from input", n, in, need(true, false, true), 0.1, 156);
    }

    @Test
    void gemmRejectsCThatDoesNotBroadcastToMN() {
        // ONNX: C must be unidirectionally broadcastable to [M, N]; a [2, M, N] C broadcasts
        // with [M, N] the other way and would be read only in part
        Random r = new Random(157);
        Op.Gemm op = new Op.Gemm(1f, 1f, false, false);
        Tensor[] in = {rand(r, -1, 1, 2, 3), rand(r, -1, 1, 3, 4), rand(r, -1, 1, 2, 2, 4)};
        try {
            Tensor y = CpuOpSet.run(node(op, 3), in).output();
            fail("C " + Arrays.toString(in[2].shape()) + " accepted for a [2, 4] Gemm, output "
                    + Arrays.toString(y.shape()));
        } catch (InvalidInputException expected) {
            assertTrue(expected.getMessage().contains("does not broadcast"), expected.getMessage());
        }
    }

    // ------------------------------------------------------------------------------------------
    // Pooling
    // ------------------------------------------------------------------------------------------

    @Test
    void maxPoolGradientOnTieFreeInputs() {
        Random r = new Random(160);
        int[] one = {1, 1};
        int[] none = {0, 0, 0, 0};
        record Case(String label, Op.MaxPool op, int[] xShape, int[] outHW) {
        }
        List<Case> cases = List.of(
                new Case("2x2 stride 2", maxPool(s(2, 2), s(2, 2), none, one, false), s(2, 2, 4, 4), s(2, 2)),
                new Case("3x3 stride 1 (overlapping) pad 1", maxPool(s(3, 3), one, s(1, 1, 1, 1), one, false),
                        s(1, 2, 5, 5), s(5, 5)),
                new Case("3x3 stride 2 (overlapping)", maxPool(s(3, 3), s(2, 2), none, one, false), s(1, 2, 7, 7),
                        s(3, 3)),
                new Case("3x3 stride 2 ceil_mode", maxPool(s(3, 3), s(2, 2), none, one, true), s(1, 2, 6, 6),
                        s(3, 3)),
                new Case("2x2 stride 2 pad 1 ceil_mode", maxPool(s(2, 2), s(2, 2), s(1, 1, 1, 1), one, true),
                        s(1, 1, 5, 5), s(3, 3)),
                new Case("asymmetric pads", maxPool(s(2, 3), s(1, 2), s(1, 0, 0, 1), one, false), s(1, 1, 4, 6),
                        s(4, 3)),
                new Case("3x3 dilation 2", maxPool(s(3, 3), one, s(2, 2, 2, 2), s(2, 2), false), s(1, 1, 5, 5),
                        s(5, 5)));
        long seed = 1600;
        for (Case c : cases) {
            // every pair of elements 5e-2 apart; a 5e-3 step never changes a window's winner
            Tensor x = distinct(r, 5e-2, c.xShape());
            Node n = node(c.op(), 1);
            Tensor y = CpuOpSet.run(n, new Tensor[] {x}).output();
            assertArrayEquals(s(c.xShape()[0], c.xShape()[1], c.outHW()[0], c.outHW()[1]), y.shape(), c.label());
            checkGradients("MaxPool " + c.label(), n, new Tensor[] {x}, need(true), 5e-3, seed++);
        }
    }

    @Test
    void maxPoolTiesGoToTheFirstElementInRowMajorOrder() {
        Node n = node(maxPool(s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), false), 1);
        // window [[1,3],[3,2]]: the 3 at (0,1) comes first
        Tensor x = t(s(1, 1, 2, 2), 1, 3, 3, 2);
        OpSet.Forward<Tensor> f = CpuOpSet.run(n, new Tensor[] {x});
        assertEquals(3f, f.output().data()[0]);
        Tensor dx = CpuOpSet.gradient(n, new Tensor[] {x}, f, t(s(1, 1, 1, 1), 1), need(true))[0];
        assertArrayEquals(new float[] {0, 1, 0, 0}, dx.data());

        // all-equal window (a zero baseline): everything goes to (0,0)
        Tensor z = t(s(1, 1, 2, 2), 0, 0, 0, 0);
        OpSet.Forward<Tensor> fz = CpuOpSet.run(n, new Tensor[] {z});
        assertArrayEquals(new float[] {7, 0, 0, 0},
                CpuOpSet.gradient(n, new Tensor[] {z}, fz, t(s(1, 1, 1, 1), 7), need(true))[0].data());

        // the tie sits on the second row, after smaller values: the earlier 5, at (1,0), wins
        Tensor lower = t(s(1, 1, 2, 2), 1, 1, 5, 5);
        OpSet.Forward<Tensor> fl = CpuOpSet.run(n, new Tensor[] {lower});
        assertArrayEquals(new float[] {0, 0, 1, 0},
                CpuOpSet.gradient(n, new Tensor[] {lower}, fl, t(s(1, 1, 1, 1), 1), need(true))[0].data());

        // overlapping 2x2 windows, stride 1, on a constant 3x3 plane: each window picks its top-left
        Node ov = node(maxPool(s(2, 2), s(1, 1), s(0, 0, 0, 0), s(1, 1), false), 1);
        Tensor c = t(s(1, 1, 3, 3), 4, 4, 4, 4, 4, 4, 4, 4, 4);
        OpSet.Forward<Tensor> fc = CpuOpSet.run(ov, new Tensor[] {c});
        Tensor dc = CpuOpSet.gradient(ov, new Tensor[] {c}, fc, t(s(1, 1, 2, 2), 1, 10, 100, 1000), need(true))[0];
        assertArrayEquals(new float[] {1, 10, 0, 100, 1000, 0, 0, 0, 0}, dc.data());
    }

    @Test
    void maxPoolPadsNeverWin() {
        // all inputs negative: a pad counted as 0 would win every border window
        Node n = node(maxPool(s(2, 2), s(2, 2), s(1, 1, 1, 1), s(1, 1), false), 1);
        Tensor x = t(s(1, 1, 2, 2), -1, -2, -3, -4);
        OpSet.Forward<Tensor> f = CpuOpSet.run(n, new Tensor[] {x});
        assertArrayEquals(s(1, 1, 2, 2), f.output().shape());
        assertArrayEquals(new float[] {-1, -2, -3, -4}, f.output().data());
        Tensor dx = CpuOpSet.gradient(n, new Tensor[] {x}, f, t(s(1, 1, 2, 2), 1, 2, 3, 4), need(true))[0];
        assertArrayEquals(new float[] {1, 2, 3, 4}, dx.data());
    }

    @Test
    void poolCeilModeOutputSizes() {
        Tensor x5 = Tensor.zeros(1, 1, 5, 5);
        int[] one = {1, 1};
        int[] none = {0, 0, 0, 0};
        // 5 with k=2 s=2: floor 2, ceil 3
        assertArrayEquals(s(1, 1, 2, 2), PoolOps.maxForward(node(maxPool(s(2, 2), s(2, 2), none, one, false), 1),
                maxPool(s(2, 2), s(2, 2), none, one, false), x5).output().shape());
        assertArrayEquals(s(1, 1, 3, 3), PoolOps.maxForward(node(maxPool(s(2, 2), s(2, 2), none, one, true), 1),
                maxPool(s(2, 2), s(2, 2), none, one, true), x5).output().shape());
        // 5 with pad 1, k=2, s=2, ceil: 4 by the formula, but the 4th window would start in the
        // trailing pad, so PyTorch drops it: 3
        Op.MaxPool dropped = maxPool(s(2, 2), s(2, 2), s(1, 1, 1, 1), one, true);
        assertArrayEquals(s(1, 1, 3, 3), PoolOps.maxForward(node(dropped, 1), dropped, x5).output().shape());
    }

    @Test
    void averagePoolDivisorAtTheBorder() {
        // 3x3 input 1..9, 3x3 kernel, stride 1, pad 1
        Tensor x = t(s(1, 1, 3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9);
        Op.AveragePool excl = new Op.AveragePool(s(3, 3), s(1, 1), s(1, 1, 1, 1), false, false, "NOTSET");
        Op.AveragePool incl = new Op.AveragePool(s(3, 3), s(1, 1), s(1, 1, 1, 1), true, false, "NOTSET");
        float[] ye = CpuOpSet.run(node(excl, 1), new Tensor[] {x}).output().data();
        float[] yi = CpuOpSet.run(node(incl, 1), new Tensor[] {x}).output().data();
        // corner: 1+2+4+5 = 12 over 4 valid cells, or over all 9 cells of the padded window
        assertEquals(3f, ye[0], 1e-6f);
        assertEquals(12f / 9, yi[0], 1e-6f);
        // top edge: 1+2+3+4+5+6 = 21 over 6, or over 9
        assertEquals(3.5f, ye[1], 1e-6f);
        assertEquals(21f / 9, yi[1], 1e-6f);
        // centre: the same either way
        assertEquals(5f, ye[4], 1e-6f);
        assertEquals(5f, yi[4], 1e-6f);
        // last corner: 5+6+8+9 = 28
        assertEquals(7f, ye[8], 1e-6f);
        assertEquals(28f / 9, yi[8], 1e-6f);

        // the corner output's gradient spreads over its 4 valid cells with the same divisor
        float[] g = new float[9];
        g[0] = 1;
        Tensor go = t(s(1, 1, 3, 3), g);
        float[] de = CpuOpSet.gradient(node(excl, 1), new Tensor[] {x}, CpuOpSet.run(node(excl, 1), new Tensor[] {x}), go,
                need(true))[0].data();
        float[] di = CpuOpSet.gradient(node(incl, 1), new Tensor[] {x}, CpuOpSet.run(node(incl, 1), new Tensor[] {x}), go,
                need(true))[0].data();
        assertArrayEquals(new float[] {0.25f, 0.25f, 0, 0.25f, 0.25f, 0, 0, 0, 0}, de, 1e-7f);
        float q = 1f / 9;
        assertArrayEquals(new float[] {q, q, 0, q, q, 0, 0, 0, 0}, di, 1e-7f);
    }

    @Test
    void averagePoolCeilModeDivisor() {
        // 3x3 input, k=2, s=2, ceil: the last window holds one column (or row, or one cell); with
        // no pads both settings divide by the cells inside the input, as PyTorch does
        Tensor x = t(s(1, 1, 3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9);
        for (boolean cip : new boolean[] {false, true}) {
            Op.AveragePool op = new Op.AveragePool(s(2, 2), s(2, 2), s(0, 0, 0, 0), cip, true, "NOTSET");
            Tensor y = CpuOpSet.run(node(op, 1), new Tensor[] {x}).output();
            assertArrayEquals(s(1, 1, 2, 2), y.shape());
            assertArrayEquals(new float[] {3, 4.5f, 7.5f, 9}, y.data(), 1e-6f, "count_include_pad=" + cip);
        }
    }

    @Test
    void averagePoolGradient() {
        Random r = new Random(170);
        long seed = 1700;
        for (boolean cip : new boolean[] {false, true}) {
            Op.AveragePool[] ops = {
                new Op.AveragePool(s(3, 3), s(2, 2), s(1, 1, 1, 1), cip, false, "NOTSET"),
                new Op.AveragePool(s(3, 3), s(1, 1), s(1, 1, 1, 1), cip, false, "NOTSET"),
                new Op.AveragePool(s(2, 3), s(2, 1), s(0, 1, 1, 0), cip, false, "NOTSET"),
                new Op.AveragePool(s(2, 2), s(2, 2), s(0, 0, 0, 0), cip, false, "NOTSET"),
                new Op.AveragePool(s(3, 3), s(2, 2), s(1, 1, 1, 1), cip, true, "NOTSET"),
                new Op.AveragePool(s(3, 3), s(2, 2), s(0, 0, 0, 0), cip, false, "SAME_UPPER"),
            };
            for (Op.AveragePool op : ops) {
                Tensor x = rand(r, -2, 2, 2, 2, 6, 5);
                String label = "AveragePool k=" + Arrays.toString(op.kernel()) + " s=" + Arrays.toString(op.strides())
                        + " pads=" + Arrays.toString(op.pads()) + " cip=" + cip + " ceil=" + op.ceilMode() + " "
                        + op.autoPad();
                checkGradients(label, node(op, 1), new Tensor[] {x}, need(true), 0.1, seed++);
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Whole graphs through the runner
    // ------------------------------------------------------------------------------------------

    private static Node graphNode(String name, Op op, String out, String... inputs) {
        return new Node(name, op.getClass().getSimpleName(), op, List.of(inputs), out);
    }

    /**
     * ∂/∂x of Σ_r output[r, targets[r]] by central differences through the runner's forward: the
     * quantity whose gradient {@code gradient(x, targets)} returns.
     */
    private static double[] graphFiniteDifference(ModelRunner runner, Tensor x, int[] targets, double h) {
        float[] xd = x.data();
        double[] fd = new double[xd.length];
        int per = runner.outputsPerExample();
        for (int j = 0; j < xd.length; j++) {
            float[] p = xd.clone();
            float[] m = xd.clone();
            p[j] = (float) (xd[j] + h);
            m[j] = (float) (xd[j] - h);
            float[] yp = runner.forward(new Tensor(x.shape(), p)).data();
            float[] ym = runner.forward(new Tensor(x.shape(), m)).data();
            double s = 0;
            for (int r = 0; r < targets.length; r++) {
                s += (double) yp[r * per + targets[r]] - ym[r * per + targets[r]];
            }
            fd[j] = s / ((double) p[j] - m[j]);
        }
        return fd;
    }

    @Test
    void convReluMaxPoolFlattenGemmSoftmaxGraph() {
        int c = 2;
        int h = 6;
        int m = 3;
        int classes = 4;
        int rows = 2;
        double step = 1e-3;
        Op.Conv convOp = conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET");
        Node convNode = graphNode("conv", convOp, "z", "x", "w", "b");
        List<Node> nodes = List.of(convNode,
                graphNode("relu", new Op.Relu(), "a", "z"),
                graphNode("pool", maxPool(s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), false), "p", "a"),
                graphNode("flat", new Op.Flatten(1), "f", "p"),
                graphNode("fc", new Op.Gemm(1f, 1f, false, true), "logits", "f", "fcw", "fcb"),
                graphNode("softmax", new Op.Softmax(1), "probs", "logits"));
        // Draw until no conv output, and no pair inside a pool window, sits close enough to a
        // kink that a finite-difference step could cross it: one input element moves each conv
        // output by at most step·max|w|.
        for (long seed = 0; seed < 200; seed++) {
            Random r = new Random(5000 + seed);
            Tensor w = rand(r, -0.5, 0.5, m, c, 3, 3);
            Tensor b = rand(r, -0.2, 0.2, m);
            Tensor fcw = rand(r, -0.5, 0.5, classes, m * 3 * 3);
            Tensor fcb = rand(r, -0.5, 0.5, classes);
            Tensor x = rand(r, -1, 1, rows, c, h, h);
            double maxW = 0;
            for (float v : w.data()) {
                maxW = Math.max(maxW, Math.abs(v));
            }
            double reach = step * maxW;
            float[] z = CpuOpSet.run(convNode, new Tensor[] {x, w, b}).output().data();
            if (!kinkFree(z, rows * m, h, reach)) {
                continue;
            }
            Graph graph = new Graph("test:cnn", "x", s(-1, c, h, h), "probs", nodes,
                    Map.of("w", w, "b", b, "fcw", fcw, "fcb", fcb));
            ModelRunner runner = new CpuBackend().prepare(graph);
            assertArrayEquals(s(c, h, h), runner.exampleShape());
            assertEquals(classes, runner.outputsPerExample());
            int[] targets = {3, 1};
            ModelRunner.Gradient grad = runner.gradient(x, targets);
            assertArrayEquals(runner.forward(x).data(), grad.output().data());
            assertArrayEquals(x.shape(), grad.inputGradient().shape());
            double[] fd = graphFiniteDifference(runner, x, targets, step);
            // per row: each row's gradient is its own target's, and nonzero
            int per = c * h * h;
            for (int row = 0; row < rows; row++) {
                double[] a = Arrays.copyOfRange(toDouble(grad.inputGradient().data()), row * per, (row + 1) * per);
                double[] f = Arrays.copyOfRange(fd, row * per, (row + 1) * per);
                Report rep = compare(a, f, 3e-3, 2e-3);
                assertTrue(rep.ok(), "graph row " + row + " (seed " + seed + "): " + rep);
                assertTrue(Arrays.stream(f).map(Math::abs).max().orElse(0) > 1e-3, "row " + row + " has no gradient");
            }
            return;
        }
        fail("no kink-free draw in 200 seeds");
    }

    /**
     * True when every conv output is clear of 0 and every 2x2 window's winner is clear of the rest,
     * with 1.5× the room one step can use (reach per output, twice that for a difference).
     */
    private static boolean kinkFree(float[] z, int planes, int h, double reach) {
        for (float v : z) {
            if (Math.abs(v) < 1.5 * reach) {
                return false;
            }
        }
        for (int p = 0; p < planes; p++) {
            for (int oy = 0; oy < h / 2; oy++) {
                for (int ox = 0; ox < h / 2; ox++) {
                    float[] win = new float[4];
                    int k = 0;
                    for (int i = 0; i < 2; i++) {
                        for (int j = 0; j < 2; j++) {
                            win[k++] = Math.max(0f, z[p * h * h + (2 * oy + i) * h + 2 * ox + j]);
                        }
                    }
                    Arrays.sort(win);
                    if (win[3] > 0 && win[3] - win[2] < 3 * reach) {
                        return false;
                    }
                }
            }
        }
        return true;
    }

    @Test
    void valueReadByTwoNodesGetsBothGradientContributions() {
        // x → Conv → Add(conv, x) → Tanh → Flatten → MatMul: x reaches Add directly and through Conv
        Random r = new Random(6000);
        int c = 2;
        int h = 4;
        int classes = 3;
        Tensor w = rand(r, -0.5, 0.5, c, c, 3, 3);
        Tensor b = rand(r, -0.2, 0.2, c);
        Tensor fcw = rand(r, -0.5, 0.5, c * h * h, classes);
        Tensor x = rand(r, -1, 1, 2, c, h, h);
        Node convNode = graphNode("conv", conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET"), "z", "x", "w",
                "b");
        Node add = graphNode("add", new Op.Add(), "res", "z", "x");
        Node tanh = graphNode("tanh", new Op.Tanh(), "t", "res");
        Node flat = graphNode("flat", new Op.Flatten(1), "f", "t");
        Node fc = graphNode("fc", new Op.MatMul(), "y", "f", "fcw");
        Graph graph = new Graph("test:residual", "x", s(-1, c, h, h), "y", List.of(convNode, add, tanh, flat, fc),
                Map.of("w", w, "b", b, "fcw", fcw));
        ModelRunner runner = new CpuBackend().prepare(graph);
        int[] targets = {2, 0};
        Tensor gx = runner.gradient(x, targets).inputGradient();

        double[] fd = graphFiniteDifference(runner, x, targets, 1e-2);
        Report rep = compare(toDouble(gx.data()), fd, 3e-3, 2e-3);
        assertTrue(rep.ok(), "residual graph: " + rep);

        // the same gradient assembled by hand: dL/dres flows to x once directly and once through Conv
        Tensor z = CpuOpSet.run(convNode, new Tensor[] {x, w, b}).output();
        Tensor res = CpuOpSet.run(add, new Tensor[] {z, x}).output();
        OpSet.Forward<Tensor> tr = CpuOpSet.run(tanh, new Tensor[] {res});
        float[] seed = new float[2 * classes];
        seed[targets[0]] = 1;
        seed[classes + targets[1]] = 1;
        Tensor flatOut = CpuOpSet.run(flat, new Tensor[] {tr.output()}).output();
        Tensor gf = CpuOpSet.gradient(fc, new Tensor[] {flatOut, fcw}, CpuOpSet.run(fc, new Tensor[] {flatOut, fcw}),
                t(s(2, classes), seed), need(true, false))[0];
        Tensor gt = gf.reshape(tr.output().shape());
        Tensor gres = CpuOpSet.gradient(tanh, new Tensor[] {res}, tr, gt, need(true))[0];
        Tensor viaConv = ConvOps.inputGradient(convNode, (Op.Conv) convNode.op(), x, w, gres);
        double directNorm = 0;
        double convNorm = 0;
        for (int i = 0; i < gx.size(); i++) {
            float expected = gres.data()[i] + viaConv.data()[i];
            assertEquals(expected, gx.data()[i], 1e-6f * Math.max(1f, Math.abs(expected)), "gx[" + i + "]");
            directNorm += gres.data()[i] * gres.data()[i];
            convNorm += viaConv.data()[i] * viaConv.data()[i];
        }
        // both paths carry real weight, so losing either one would fail the checks above
        assertTrue(directNorm > 1e-2 && convNorm > 1e-2, "direct " + directNorm + ", via conv " + convNorm);
    }

    @Test
    void inputReadTwiceByOneNode() {
        // Mul(x, x): both operand slots of one node feed the same value
        Graph graph = new Graph("test:square", "x", s(-1, 3), "y",
                List.of(graphNode("sq", new Op.Mul(), "y", "x", "x")), Map.of());
        ModelRunner runner = new CpuBackend().prepare(graph);
        Tensor x = t(s(1, 3), 1.5f, -2f, 3f);
        assertArrayEquals(new float[] {0, -4f, 0}, runner.gradient(x, new int[] {1}).inputGradient().data());
    }
}
