package dev.kxai.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.perturbation.Lime;
import dev.kxai.attr.perturbation.Settings;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** LIME's local fidelity: a perfect fit where the model is linear in the coalitions, less on an MLP. */
class LimeFidelityTest {
    @Test
    void aLinearModelIsFittedPerfectlyOnHeldOutSamples() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(4, 3);
        // F(z) = Σ_g w_g (z_g x_g + (1 − z_g) b_g) + c is linear in z: least squares recovers it exactly
        Lime shap = Lime.kernelShap(m, Settings.defaults()).nSamples(40);
        Scores s = new LimeFidelity(shap).compute(m.inputs(x), 1);
        for (double v : s.values()) {
            assertEquals(1.0, v, 1e-6);
        }
        assertEquals("cpu", s.device());
    }

    @Test
    void anMlpIsNotLinearInItsCoalitions() {
        Model m = Model.load(TestData.reference("mlp_tabular").resolve("model.onnx"), "cpu");
        Tensor x = NpyIO.read(TestData.reference("mlp_tabular").resolve("input.npy"));
        int[] t = m.predict(x);
        Lime lime = Lime.lime(m, Settings.defaults().seed(3)).surrogate(Lime.Surrogate.LINEAR_REGRESSION, 0).nSamples(200);
        Scores s = new LimeFidelity(lime).heldOut(100).compute(m.inputs(x), t);
        double worst = 1;
        for (double v : s.values()) {
            assertTrue(Double.isNaN(v) || v <= 1 + 1e-12, "R² " + v);
            worst = Math.min(worst, Double.isNaN(v) ? 1 : v);
        }
        assertTrue(worst < 0.999, "some example's surrogate misses: worst R² " + worst);
        assertTrue(s.mean() > 0, "but it is better than the mean: " + s.mean());
        // the fit's surrogate is what attribute returns: the coefficients spread over the features
        Lime.Fitted f = lime.fit(m.inputs(x), t);
        Tensor a = lime.attribute(m.inputs(x), t).attributions();
        for (int g = 0; g < x.rowSize(); g++) {
            assertEquals(f.fits()[0].coef()[g], a.data()[g], 1e-6);
        }
    }
}
