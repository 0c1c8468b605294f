package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A parameter a method does not take (a misspelt key, another method's parameter, a noise-tunnel parameter
 * without nt_type) is an InvalidInputException naming it, the method and what it takes; it used to be
 * ignored without a word (issue 13).
 */
class MethodParametersTest {
    private static Model model;

    @BeforeAll
    static void load() {
        model = Model.load(TestData.reference("mlp_shapley").resolve("model.onnx"), "cpu");
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static String refused(String method, Map<String, Object> params) {
        return assertThrows(InvalidInputException.class, () -> Methods.create(method, model, Methods.Params.of(params)))
                .getMessage();
    }

    @Test
    void aNoiseTunnelParameterWithoutNtType() {
        String m = refused("ig", Map.of("stdevs", 0.1));
        assertTrue(m.contains("'stdevs'") && m.contains("without nt_type") && m.contains("integrated_gradients")
                && m.contains("n_steps") && m.contains("alphas"), m);
        m = refused("saliency", Map.of("nt_samples", 3));
        assertTrue(m.contains("'nt_samples'") && m.contains("method saliency takes abs, progress"), m);
    }

    @Test
    void aMisspeltOrForeignParameter() {
        String m = refused("integrated_gradients", Map.of("n_stpes", 10));
        assertTrue(m.contains("'n_stpes' is not one method integrated_gradients takes") && m.contains("n_steps"), m);
        m = refused("saliency", Map.of("n_steps", 10));
        assertTrue(m.contains("'n_steps'") && m.contains("saliency"), m);
        m = refused("ig", Map.of("feature_mask", new dev.kxai.tensor.Tensor(new int[] {1, 6}, new float[6])));
        assertTrue(m.contains("'feature_mask'") && m.contains("integrated_gradients"), m);
        m = refused("occlusion", Map.of("sliding_window_shapes", new int[] {1}, "feature_mask",
                new dev.kxai.tensor.Tensor(new int[] {1, 6}, new float[6])));
        assertTrue(m.contains("'feature_mask'") && m.contains("occlusion") && m.contains("sliding_window_shapes"), m);
        m = refused("input_x_gradient", Map.of("abs", true));
        assertTrue(m.contains("'abs'") && m.contains("takes progress"), m);
    }

    @Test
    void theParametersAMethodTakesStillWork() {
        float[] x = new float[6];
        java.util.Arrays.fill(x, 0.5f);
        dev.kxai.Inputs in = model.inputs(new dev.kxai.tensor.Tensor(new int[] {1, 6}, x));
        int[] t = {0};
        assertNotNull(Methods.create("ig", model, Methods.Params.of(Map.of("n_steps", 8, "nt_type", "smoothgrad",
                "stdevs", 0.1, "nt_samples", 2, "seed", 3L))).attribute(in, t));
        assertNotNull(Methods.create("gradient_shap", model, Methods.Params.of(Map.of("stdevs", 0.1, "n_samples", 2,
                "seed", 1L))).attribute(in, t)); // its own stdevs, no tunnel
        assertNotNull(Methods.create("saliency", model, Methods.Params.of(Map.of("abs", false, "progress", Progress.NONE)))
                .attribute(in, t));
    }

    @Test
    void usedKeepsWhatAMethodTakes() {
        Map<String, Object> all = Map.of("n_steps", 8, "abs", true, "seed", 0L, "method", "riemann_trapezoid");
        assertEquals(Map.of("abs", true), Methods.used("saliency", all));
        assertEquals(Map.of("n_steps", 8, "method", "riemann_trapezoid"), Methods.used("ig", all));
        assertEquals(Map.of("n_steps", 8, "method", "riemann_trapezoid", "seed", 0L, "nt_type", "vargrad"),
                Methods.used("ig", new java.util.HashMap<>(Map.of("n_steps", 8, "abs", true, "seed", 0L, "method",
                        "riemann_trapezoid", "nt_type", "vargrad"))));
        assertTrue(Methods.parameters("lime", false).containsAll(List.of("kernel_width", "feature_mask", "n_samples")));
    }
}
