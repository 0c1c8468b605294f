package dev.kxai.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.attr.Saliency;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** sensitivity_max: 0 where the explanation is constant, above 0 for a CNN; one call of the method; the norms. */
class SensitivityTest {
    @Test
    void saliencyOfALinearModelDoesNotMove() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(5, 7);
        Saliency s = new Saliency(m);
        Scores sens = new Sensitivity(m, (in, t) -> s.attribute(in, false, t)).compute(m.inputs(x), 2);
        assertArrayEquals(new double[5], sens.values(), 0.0, "the gradient is W's column everywhere");
    }

    @Test
    void saliencyOfTheDigitsCnnMovesAndTheMethodRunsOnceOnEveryCopy() {
        Model m = MetricModels.digits();
        Tensor x = MetricModels.digitsInput();
        int[] t = m.predict(x);
        Saliency s = new Saliency(m);
        List<int[]> calls = new ArrayList<>();
        Methods.Method counted = (in, targets) -> {
            calls.add(new int[] {in.batch(), targets.length});
            return s.attribute(in, false, targets);
        };
        Scores sens = new Sensitivity(m, counted).nPerturbSamples(6).seed(4).compute(m.inputs(x), t);
        assertEquals(1, calls.size(), "one call for the examples and all their copies");
        assertArrayEquals(new int[] {10 + 10 * 6, 10 + 10 * 6}, calls.get(0));
        for (double v : sens.values()) {
            assertTrue(v > 1e-3, "sensitivity " + v);
        }
        // the same seed, the same copies
        assertArrayEquals(sens.values(), new Sensitivity(m, counted).nPerturbSamples(6).seed(4).compute(m.inputs(x), t)
                .values(), 0.0);
    }

    @Test
    void theValueIsTheLargestRelativeChangeOverTheCopies() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(2, 8);
        String name = m.graph().inputName();
        // an "explanation" that is the input itself: expl(x + δ) − expl(x) = δ, so the value is max_k ‖δ_k‖ / ‖x‖
        Methods.Method identity = (in, t) -> Attribution.of(Map.of(name, in.get(name)), null, "cpu", null);
        double radius = 0.5;
        Sensitivity.PerturbFunction shift = (copies, r, rng) -> {
            Tensor c = copies.get(name);
            float[] p = c.data().clone();
            for (int k = 0; k < c.dim(0); k++) {
                p[k * MetricModels.FEATURES] += (float) (r * (k + 1)); // copy k moves feature 0 by r·(k + 1)
            }
            return Map.of(name, new Tensor(c.shape(), p));
        };
        Inputs in = m.inputs(x);
        for (String norm : new String[] {"fro", "1", "inf"}) {
            Scores s = new Sensitivity(m, identity).perturbation(shift).perturbRadius(radius).nPerturbSamples(3).normOrd(norm)
                    .compute(in, 0);
            for (int r = 0; r < 2; r++) {
                double[] row = new double[MetricModels.FEATURES];
                for (int f = 0; f < row.length; f++) {
                    row[f] = x.data()[r * row.length + f];
                }
                double xf = row[0];
                double moved = (float) (xf + radius * 3) - xf; // the largest move, as the float row holds it
                double want = Math.abs(moved) / Sensitivity.norm(row, Sensitivity.parseNorm(norm));
                assertEquals(want, s.values()[r], 1e-12, "norm " + norm + ", example " + r);
            }
        }
    }

    @Test
    void badNormsAndRadiiAreRefused() {
        Model m = MetricModels.linear();
        Saliency s = new Saliency(m);
        Sensitivity sens = new Sensitivity(m, (in, t) -> s.attribute(in, false, t));
        var e = assertThrows(InvalidInputException.class, () -> sens.normOrd("nuc"));
        assertTrue(e.getMessage().contains("norm_ord 'nuc'"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> sens.perturbRadius(-1));
        assertTrue(e.getMessage().contains("perturb_radius must be finite and ≥ 0, got -1.0"), e.getMessage());
    }
}
