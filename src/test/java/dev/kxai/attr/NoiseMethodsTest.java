package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * NoiseTunnel and GradientShap against their definitions: no noise = the wrapped method exactly,
 * SmoothGrad's sampling error falling as 1/sqrt(n), GradientShap with one point baseline = IG in
 * expectation, the three combinations' relations, and seeds.
 */
class NoiseMethodsTest {
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

    private static Tensor run(String method, Map<String, Object> params) {
        return Methods.create(method, digits, Methods.Params.of(params)).attribute(digits.inputs(x), new int[] {3}).attributions();
    }

    private static double relL2(Tensor a, Tensor b) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < a.size(); i++) {
            num += Math.pow(a.data()[i] - b.data()[i], 2);
            den += Math.pow(b.data()[i], 2);
        }
        return Math.sqrt(num / den);
    }

    @Test
    void withoutNoiseTheTunnelIsTheWrappedMethodExactly() {
        Tensor ig = run("integrated_gradients", Map.of("n_steps", 16));
        for (String type : List.of("smoothgrad", "smoothgrad_sq", "vargrad")) {
            Tensor nt = run("integrated_gradients", Map.of("n_steps", 16, "nt_type", type, "nt_samples", 3, "stdevs", 0.0));
            for (int i = 0; i < ig.size(); i++) {
                float v = ig.data()[i];
                float want = switch (type) {
                    case "smoothgrad" -> v;
                    case "smoothgrad_sq" -> (float) ((double) v * v);
                    default -> 0f;
                };
                assertTrue(Math.abs(nt.data()[i] - want) <= 1e-6 * Math.max(1, Math.abs(want)), type + " element " + i
                        + ": " + nt.data()[i] + " vs " + want);
            }
        }
        assertArrayEquals(ig.data(), run("integrated_gradients", Map.of("n_steps", 16, "nt_type", "smoothgrad",
                "nt_samples", 1, "stdevs", 0.0)).data(), 0f, "one sample, no noise: the same numbers (−0 = 0)");
    }

    @Test
    void smoothGradsErrorFallsAsOneOverRootN() {
        Tensor truth = run("saliency", Map.of("abs", false, "nt_type", "smoothgrad", "nt_samples", 1024, "stdevs", 0.3,
                "seed", 99L));
        int[] n = {4, 16, 64};
        double[] err = new double[n.length];
        for (int i = 0; i < n.length; i++) {
            for (long seed = 0; seed < 4; seed++) {
                err[i] += relL2(run("saliency", Map.of("abs", false, "nt_type", "smoothgrad", "nt_samples", n[i],
                        "stdevs", 0.3, "seed", seed)), truth) / 4;
            }
        }
        for (int i = 1; i < n.length; i++) {
            double ratio = err[i - 1] / err[i];
            assertTrue(ratio > 1.4 && ratio < 3.2, "4× the samples should halve the error: " + java.util.Arrays.toString(err));
        }
    }

    @Test
    void gradientShapWithOnePointBaselineIsIntegratedGradientsInExpectation() {
        Tensor ig = run("integrated_gradients", Map.of("n_steps", 64));
        double small = relL2(run("gradient_shap", Map.of("n_samples", 16, "seed", 1L)), ig);
        double large = relL2(run("gradient_shap", Map.of("n_samples", 1024, "seed", 1L)), ig);
        assertTrue(large < 0.1, "1024 draws of α: " + large);
        assertTrue(small > 2 * large, "more draws, closer: " + small + " → " + large);
    }

    @Test
    void combinationsAndSeeds() {
        Map<String, Object> base = Map.of("abs", false, "nt_samples", 8, "stdevs", 0.5, "seed", 5L);
        Tensor sg = run("saliency", with(base, "nt_type", "smoothgrad"));
        Tensor sq = run("saliency", with(base, "nt_type", "smoothgrad_sq"));
        Tensor vg = run("saliency", with(base, "nt_type", "vargrad"));
        for (int i = 0; i < sg.size(); i++) {
            double mean = sg.data()[i];
            assertTrue(vg.data()[i] >= -1e-6 * Math.max(1, sq.data()[i]), "variance ≥ 0");
            assertTrue(Math.abs(sq.data()[i] - mean * mean - vg.data()[i]) <= 1e-5 * Math.max(1, sq.data()[i]),
                    "vargrad = E[a²] − E[a]²");
        }
        assertArrayEquals(sg.data(), run("saliency", with(base, "nt_type", "smoothgrad")).data(), "the same seed");
        assertTrue(relL2(sg, run("saliency", with(with(base, "nt_type", "smoothgrad"), "seed", 6L))) > 1e-3,
                "another seed, other noise");
        assertArrayEquals(run("gradient_shap", Map.of("n_samples", 8, "stdevs", 0.1, "seed", 2L)).data(),
                run("gradient_shap", Map.of("n_samples", 8, "stdevs", 0.1, "seed", 2L, "internal_batch_size", 3)).data(),
                1e-6f, "gradient shap: the same draws in any chunking");
    }

    private static Map<String, Object> with(Map<String, Object> m, String k, Object v) {
        Map<String, Object> c = new java.util.HashMap<>(m);
        c.put(k, v);
        return c;
    }
}
