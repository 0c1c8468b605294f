package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The path methods beyond Captum (IDGI, Blur IG, Guided IG, IG over user-given α's) against their
 * own axioms: completeness where the paper proves it, closed forms on a linear model, equality with
 * IG where the points coincide, chunked = unchunked, and clear refusals.
 */
class BeyondCaptumTest {
    private static Model digits;
    private static Tensor x;

    @BeforeAll
    static void load() {
        Path d = TestData.reference("digits_cnn");
        digits = Model.load(d.resolve("model.onnx"), "cpu");
        x = NpyIO.read(d.resolve("input.npy"));
    }

    @AfterAll
    static void close() {
        digits.close();
    }

    private static Attribution run(Model m, Tensor in, String method, Map<String, Object> params, int target) {
        return Methods.create(method, m, Methods.Params.of(params)).attribute(m.inputs(in), new int[] {target});
    }

    /** logits = W · flatten(x) for x of [N, 1, 4, 4]: two classes, fixed random weights. */
    private static Model linear(float[] w) {
        List<Node> nodes = List.of(
                new Node("flat", "Flatten", new Op.Flatten(1), List.of("x"), "f"),
                new Node("fc", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("f", "w"), "logits"));
        Graph g = new Graph("linear", "x", new int[] {-1, 1, 4, 4}, "logits", nodes,
                Map.of("w", new Tensor(new int[] {2, 16}, w)));
        return Model.of(g, new CpuBackend());
    }

    private static float[] randomWeights(long seed) {
        Random r = new Random(seed);
        float[] w = new float[32];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        return w;
    }

    private static Tensor randomImages(long seed, int n) {
        Random r = new Random(seed);
        float[] v = new float[n * 16];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return new Tensor(new int[] {n, 1, 4, 4}, v);
    }

    private static double[] rowSums(Tensor a) {
        double[] s = new double[a.dim(0)];
        for (int i = 0; i < a.size(); i++) {
            s[i / a.rowSize()] += a.data()[i];
        }
        return s;
    }

    private static double[] logits(Model m, Tensor in, int target) {
        Tensor y = m.forward(m.inputs(in));
        double[] out = new double[in.dim(0)];
        for (int i = 0; i < out.length; i++) {
            out[i] = y.data()[i * y.rowSize() + target];
        }
        return out;
    }

    @Test
    void idgiIsCompleteWithFewStepsAndChunkingChangesNothing() {
        Attribution a = run(digits, x, "idgi", Map.of("n_steps", 8), 3);
        double[] fx = logits(digits, x, 3);
        double[] fb = logits(digits, new Tensor(x.shape(), new float[x.size()]), 3);
        double[] sums = rowSums(a.attributions());
        for (int i = 0; i < sums.length; i++) {
            // exact up to float rounding however few the steps (IG at 8 steps is far off on this model)
            assertEquals(fx[i] - fb[i], sums[i], 1e-4 * Math.max(1, Math.abs(fx[i] - fb[i])), "example " + i);
            assertEquals(0, a.convergenceDelta().data()[i], 1e-4, "delta of example " + i);
        }
        Attribution chunked = run(digits, x, "idgi", Map.of("n_steps", 8, "internal_batch_size", 3), 3);
        assertArrayEquals(a.attributions().data(), chunked.attributions().data(), 1e-6f);
    }

    @Test
    void idgiOnALinearModelGivesEachFeatureItsSquaredWeightShare() {
        float[] w = randomWeights(5);
        try (Model m = linear(w)) {
            Tensor in = randomImages(6, 2);
            Tensor a = run(m, in, "idgi", Map.of("n_steps", 5), 1).attributions();
            double norm = 0;
            for (int f = 0; f < 16; f++) {
                norm += (double) w[16 + f] * w[16 + f];
            }
            for (int i = 0; i < 2; i++) {
                double fx = 0;
                for (int f = 0; f < 16; f++) {
                    fx += (double) w[16 + f] * in.data()[i * 16 + f];
                }
                for (int f = 0; f < 16; f++) {
                    double want = (double) w[16 + f] * w[16 + f] / norm * fx; // F(x) − F(0) split by w²
                    assertEquals(want, a.data()[i * 16 + f], 1e-5 * Math.max(1, Math.abs(want)), "feature " + f);
                }
            }
        }
    }

    @Test
    void idgiRefusesAlphasThatDoNotSpanThePath() {
        var e = assertThrows(InvalidInputException.class, () -> run(digits, x, "idgi",
                Map.of("alphas", new double[] {0.1, 0.5, 1.0}), 3));
        assertTrue(e.getMessage().contains("start at 0"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> run(digits, x, "idgi",
                Map.of("alphas", new double[] {0, 0.5, 0.4, 1.0}), 3));
        assertTrue(e.getMessage().contains("alpha[2] = 0.4"), e.getMessage());
    }

    @Test
    void userAlphasAtGaussLegendresNodesAreIgExactly() {
        Quadrature q = Quadrature.of(Quadrature.Rule.GAUSS_LEGENDRE, 12);
        Tensor ig = run(digits, x, "integrated_gradients", Map.of("n_steps", 12), 3).attributions();
        Tensor custom = run(digits, x, "integrated_gradients", Map.of("alphas", q.alphas(), "alpha_weights", q.weights()),
                3).attributions();
        assertArrayEquals(ig.data(), custom.data(), 0f);
    }

    @Test
    void userAlphasWithoutWeightsTakeTheirCellsAndConverge() {
        // uniform midpoints with cell weights are riemann_middle exactly
        int n = 10;
        double[] mid = new double[n];
        for (int k = 0; k < n; k++) {
            mid[k] = (float) ((2 * k + 1) / (2.0 * n)); // torch.linspace's float32 points, as riemann_middle
        }
        Quadrature cells = Quadrature.custom(mid, null);
        double total = 0;
        for (double w : cells.weights()) {
            total += w;
        }
        assertEquals(1.0, total, 1e-12);
        // a non-uniform grid, dense near 0 where the digits model's output moves most: completeness improves with n
        double[] err = new double[2];
        int[] sizes = {16, 128};
        double[] fx = logits(digits, x, 3);
        double[] fb = logits(digits, new Tensor(x.shape(), new float[x.size()]), 3);
        for (int s = 0; s < 2; s++) {
            double[] a = new double[sizes[s]];
            for (int k = 0; k < a.length; k++) {
                double u = (k + 0.5) / a.length;
                a[k] = u * u;
            }
            double[] sums = rowSums(run(digits, x, "integrated_gradients", Map.of("alphas", a), 3).attributions());
            for (int i = 0; i < sums.length; i++) {
                err[s] = Math.max(err[s], Math.abs(sums[i] - (fx[i] - fb[i])));
            }
        }
        assertTrue(err[1] < err[0] / 4, "completeness error " + err[0] + " at 16 points, " + err[1] + " at 128");
        assertThrows(InvalidInputException.class, () -> Quadrature.custom(new double[] {0.2, 1.5}, null));
        assertThrows(InvalidInputException.class, () -> Quadrature.custom(new double[] {0.2, 0.5}, new double[] {1}));
        assertThrows(InvalidInputException.class, () -> run(digits, x, "integrated_gradients",
                Map.of("alpha_weights", new double[] {1}), 3));
    }

    @Test
    void blurOfADeltaIsScipysKernelAndConstantModeFades() {
        float[] plane = new float[9 * 9];
        plane[4 * 9 + 4] = 1;
        double sigma = 1.3;
        double[] b = GaussianBlur.blur(plane, 9, 9, sigma);
        double[] k = GaussianBlur.kernel(sigma);
        assertEquals(2 * 5 + 1, k.length, "radius ⌊4σ + 0.5⌋ = 5");
        for (int y = 0; y < 9; y++) {
            for (int c = 0; c < 9; c++) {
                assertEquals(k[y - 4 + 5] * k[c - 4 + 5], b[y * 9 + c], 1e-15, "(" + y + ", " + c + ")");
            }
        }
        float[] ones = new float[16];
        java.util.Arrays.fill(ones, 1f);
        double[] faded = GaussianBlur.blur(ones, 4, 4, 50);
        for (double v : faded) {
            assertTrue(v > 0 && v < 0.05, "a constant image blurred with σ = 50 mostly leaves the frame: " + v);
        }
        assertArrayEquals(new double[] {1, 1, 1, 1}, GaussianBlur.blur(new float[] {1, 1, 1, 1}, 2, 2, 0), 0);
    }

    @Test
    void blurIgOnALinearModelIsTheWeightTimesWhatTheBlurRemoved() {
        float[] w = randomWeights(7);
        try (Model m = linear(w)) {
            Tensor in = randomImages(8, 2);
            Attribution a = run(m, in, "blur_ig", Map.of("n_steps", 400, "max_sigma", 3.0, "grad_step", 1e-4), 0);
            double[] end = GaussianBlur.blur(in.data(), 4, 4, 3.0);
            for (int i = 0; i < 2; i++) {
                for (int f = 0; f < 16; f++) {
                    // ∫ ∂x/∂σ dσ from max to 0 = x − blur_max(x): the Riemann sum converges to it
                    double want = w[f] * (in.data()[i * 16 + f] - end[i * 16 + f]);
                    assertEquals(want, a.attributions().data()[i * 16 + f], 2e-2 * Math.max(0.1, Math.abs(want)),
                            "example " + i + " feature " + f);
                }
            }
        }
        assertThrows(InvalidInputException.class, () -> run(digits, x, "blur_ig", Map.of("max_sigma", -1.0), 3));
    }

    @Test
    void blurIgOnDigitsConvergesToCompletenessAndChunkingChangesNothing() {
        Attribution a = run(digits, x, "blur_ig", Map.of("n_steps", 64, "max_sigma", 8.0), 3);
        Attribution chunked = run(digits, x, "blur_ig", Map.of("n_steps", 64, "max_sigma", 8.0, "internal_batch_size", 7), 3);
        assertArrayEquals(a.attributions().data(), chunked.attributions().data(), 1e-6f);
        Attribution fine = run(digits, x, "blur_ig", Map.of("n_steps", 256, "max_sigma", 8.0), 3);
        double coarse = 0;
        double dense = 0;
        for (int i = 0; i < x.dim(0); i++) {
            coarse += Math.abs(a.convergenceDelta().data()[i]);
            dense += Math.abs(fine.convergenceDelta().data()[i]);
        }
        // Σ attr − (F(x) − F(x blurred at max_sigma)): a left Riemann sum's error, falling with the steps
        assertTrue(dense < coarse / 2, "mean |delta| " + coarse / x.dim(0) + " at 64 steps, " + dense / x.dim(0) + " at 256");
        double[] fx = logits(digits, x, 3);
        double[] sums = rowSums(fine.attributions());
        for (int i = 0; i < sums.length; i++) {
            assertTrue(Math.abs(fine.convergenceDelta().data()[i]) < 0.25, "example " + i + ": Σ attr " + sums[i]
                    + ", F(x) " + fx[i] + ", delta " + fine.convergenceDelta().data()[i]);
        }
    }

    @Test
    void guidedIgOnALinearModelIsGradientTimesInputMinusBaseline() {
        float[] w = randomWeights(9);
        try (Model m = linear(w)) {
            Tensor in = randomImages(10, 3);
            Tensor a = run(m, in, "guided_ig", Map.of("n_steps", 20), 1).attributions();
            for (int i = 0; i < 3; i++) {
                for (int f = 0; f < 16; f++) {
                    double want = (double) w[16 + f] * in.data()[i * 16 + f];
                    assertEquals(want, a.data()[i * 16 + f], 1e-5 * Math.max(1, Math.abs(want)), "feature " + f);
                }
            }
        }
    }

    @Test
    void guidedIgWithNoRoomToDeviateIsLeftRiemannIg() {
        // max_dist = 0 pins every feature to the straight line's α = k/n: IG's riemann_left
        Tensor g = run(digits, x, "guided_ig", Map.of("n_steps", 32, "max_dist", 0.0), 3).attributions();
        Tensor ig = run(digits, x, "integrated_gradients", Map.of("n_steps", 32, "method", "riemann_left"), 3)
                .attributions();
        for (int k = 0; k < ig.size(); k++) {
            assertEquals(ig.data()[k], g.data()[k], 1e-5 * Math.max(1, Math.abs(ig.data()[k])), "element " + k);
        }
    }

    @Test
    void guidedIgOnDigitsTakesAnotherPathAndReportsItsDelta() {
        Attribution g = run(digits, x, "guided_ig", Map.of("n_steps", 128), 3);
        double[] fx = logits(digits, x, 3);
        double[] fb = logits(digits, new Tensor(x.shape(), new float[x.size()]), 3);
        double[] sums = rowSums(g.attributions());
        Tensor ig = run(digits, x, "integrated_gradients", Map.of("n_steps", 128), 3).attributions();
        for (int i = 0; i < sums.length; i++) {
            // features may run max_dist ahead of the line within one step, so the sum is not exact
            // even at many steps (the paper's completeness is the continuous path's): reported, not zero
            assertEquals(sums[i] - (fx[i] - fb[i]), g.convergenceDelta().data()[i], 1e-3);
            assertTrue(Math.abs(g.convergenceDelta().data()[i]) < 0.25 * Math.max(1, Math.abs(fx[i] - fb[i])),
                    "example " + i + ": delta " + g.convergenceDelta().data()[i] + " of " + (fx[i] - fb[i]));
        }
        double diff = 0;
        for (int k = 0; k < ig.size(); k++) {
            diff = Math.max(diff, Math.abs(ig.data()[k] - g.attributions().data()[k]));
        }
        assertTrue(diff > 1e-3, "the adaptive path is not the straight one: max |GIG − IG| = " + diff);
        Attribution again = run(digits, x, "guided_ig", Map.of("n_steps", 128, "internal_batch_size", 4), 3);
        assertArrayEquals(g.attributions().data(), again.attributions().data(), 1e-6f);
        assertThrows(InvalidInputException.class, () -> run(digits, x, "guided_ig", Map.of("fraction", 0.0), 3));
    }
}
