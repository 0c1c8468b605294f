package dev.kxai.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Saliency;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Infidelity: 0 for a linear model explained by its gradient (Σ I·w = w·x − w·(x − I) exactly),
 * clearly above 0 for a CNN; Captum's normalize; the caller's perturbations; square removal;
 * seeded and independent of the chunking.
 */
class InfidelityTest {
    private static final int TARGET = 1;

    /** The signed gradient. */
    private static final MetricModels.Explain SALIENCY = (m, x, t) -> new Saliency(m).attribute(x, false, t);

    /** Σ_f w_f² of the target's column: E[(Σ I·w)²] = σ²·this for Gaussian I. */
    private static double columnNormSquared() {
        double s = 0;
        for (int f = 0; f < MetricModels.FEATURES; f++) {
            double w = MetricModels.W[f * MetricModels.CLASSES + TARGET];
            s += w * w;
        }
        return s;
    }

    @Test
    void aLinearModelExplainedByItsGradientHasZeroInfidelity() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(8, 1);
        // Saliency with abs = false is the gradient, here column TARGET of W: Σ_f I_f·w_f = F(x) − F(x − I) exactly
        Map<String, Tensor> attr = MetricModels.byInput(m, new Saliency(m).attribute(x, false, TARGET));
        for (double std : new double[] {Infidelity.DEFAULT_NOISE_STD, 0.1}) {
            Scores s = new Infidelity(m).perturbation(Infidelity.gaussian(std)).nPerturbSamples(20).seed(3)
                    .compute(m.inputs(x), attr, TARGET);
            double scale = std * std * columnNormSquared(); // the mean of b² = (F(x) − F(x − I))²
            for (double v : s.values()) {
                // the model's float32 forward rounds F(x) and F(x − I) (about 1e-7 each) before the difference
                assertTrue(v / scale < (std < 0.01 ? 1e-8 : 1e-10), "infidelity " + v + " relative " + v / scale
                        + " at std " + std);
            }
            assertEquals("cpu", s.device());
        }
    }

    @Test
    void aCnnExplainedByItsGradientHasClearlyPositiveInfidelity() {
        MetricModels.Explained d = MetricModels.digits(SALIENCY);
        double std = 0.1;
        Scores s = new Infidelity(d.m()).perturbation(Infidelity.gaussian(std)).compute(d.in(), d.attr(), d.t());
        Tensor a = d.attr().get(d.m().graph().inputName());
        Tensor x = d.x();
        int per = a.rowSize();
        for (int r = 0; r < x.dim(0); r++) {
            double norm = 0;
            for (int f = 0; f < per; f++) {
                norm += a.data()[r * per + f] * a.data()[r * per + f];
            }
            double relative = s.values()[r] / (std * std * norm);
            assertTrue(relative > 1e-3, "example " + r + ": infidelity " + s.values()[r] + ", relative " + relative);
        }
    }

    @Test
    void normalizeRescalesTheAttributionsByTheLeastSquaresFactor() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(4, 2);
        Tensor g = new Saliency(m).attribute(x, false, TARGET).attributions();
        float[] twice = g.data().clone();
        for (int i = 0; i < twice.length; i++) {
            twice[i] *= 2;
        }
        Map<String, Tensor> attr = Map.of(m.graph().inputName(), new Tensor(g.shape(), twice));
        Infidelity inf = new Infidelity(m).perturbation(Infidelity.gaussian(0.1)).seed(5);
        Scores plain = inf.compute(m.inputs(x), attr, TARGET);
        Scores normalized = inf.normalize(true).compute(m.inputs(x), attr, TARGET);
        double scale = 0.01 * columnNormSquared();
        for (int r = 0; r < 4; r++) {
            // a = 2b: (a − b)² = b², about σ²‖w‖²; β = ½ makes it 0
            assertTrue(plain.values()[r] / scale > 0.1, "unnormalized " + plain.values()[r]);
            assertTrue(normalized.values()[r] / scale < 1e-10, "normalized " + normalized.values()[r]);
        }
    }

    @Test
    void theCallersPerturbationsAreUsedAsGiven() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(3, 3);
        String name = m.graph().inputName();
        int n = 4;
        // I_k = 0.25·(k + 1) on feature 2 only; zero attributions: infidelity = mean_k (w_2·I_k)²
        Infidelity.PerturbFunction f = (copies, baselines, rng) -> {
            Tensor c = copies.get(name);
            assertArrayEquals(new int[] {n, MetricModels.FEATURES}, c.shape());
            float[] i = new float[c.size()];
            for (int k = 0; k < n; k++) {
                i[k * MetricModels.FEATURES + 2] = 0.25f * (k + 1);
            }
            return Map.of(name, new Tensor(c.shape(), i));
        };
        Scores s = new Infidelity(m).perturbation(f).nPerturbSamples(n).compute(m.inputs(x),
                Map.of(name, Tensor.zeros(x.shape())), TARGET);
        double w2 = MetricModels.W[2 * MetricModels.CLASSES + TARGET];
        double want = 0;
        for (int k = 0; k < n; k++) {
            want += Math.pow(w2 * 0.25 * (k + 1), 2) / n;
        }
        for (double v : s.values()) {
            assertEquals(want, v, want * 1e-5);
        }
    }

    @Test
    void squareRemovalSetsOneSquarePerCopyToTheBaseline() {
        int n = 6;
        Tensor copies = new Tensor(new int[] {n, 2, 8, 8}, new float[n * 128]);
        for (int i = 0; i < copies.size(); i++) {
            copies.data()[i] = 1 + i % 7;
        }
        Tensor base = new Tensor(copies.shape(), new float[n * 128]);
        java.util.Arrays.fill(base.data(), 0.5f);
        Tensor i = Infidelity.squareRemoval(3).perturbations(Map.of("x", copies), Map.of("x", base),
                new SplittableRandom(1)).get("x");
        for (int k = 0; k < n; k++) {
            for (int c = 0; c < 2; c++) {
                int inside = 0;
                int minY = 8;
                int minX = 8;
                for (int y = 0; y < 8; y++) {
                    for (int xx = 0; xx < 8; xx++) {
                        int at = ((k * 2 + c) * 8 + y) * 8 + xx;
                        float v = i.data()[at];
                        if (v != 0) {
                            assertEquals(copies.data()[at] - 0.5f, v, "I = x − baseline inside the square");
                            inside++;
                            minY = Math.min(minY, y);
                            minX = Math.min(minX, xx);
                        }
                    }
                }
                assertEquals(9, inside, "a 3×3 square in copy " + k + ", channel " + c);
                for (int y = minY; y < minY + 3; y++) {
                    for (int xx = minX; xx < minX + 3; xx++) {
                        assertTrue(i.data()[((k * 2 + c) * 8 + y) * 8 + xx] != 0, "the square is contiguous");
                    }
                }
            }
        }
        // the default side is a quarter of the smaller side: 2 on 8×8
        Tensor d = Infidelity.squareRemoval(0).perturbations(Map.of("x", copies), Map.of("x", base),
                new SplittableRandom(2)).get("x");
        int nonZero = 0;
        for (float v : d.data()) {
            nonZero += v != 0 ? 1 : 0;
        }
        assertEquals(n * 2 * 4, nonZero);
    }

    @Test
    void squareRemovalOnDigitsIsSeededAndIndependentOfTheChunking() {
        MetricModels.Explained d = MetricModels.digits(SALIENCY);
        Infidelity inf = new Infidelity(d.m()).perturbation(Infidelity.squareRemoval(3)).baselines(Baseline.scalar(0.25f))
                .seed(11);
        double[] a = inf.compute(d.in(), d.attr(), d.t()).values();
        double[] b = inf.internalBatchSize(7).compute(d.in(), d.attr(), d.t()).values();
        double[] other = inf.seed(12).compute(d.in(), d.attr(), d.t()).values();
        boolean differs = false;
        for (int r = 0; r < a.length; r++) {
            // 7 rows per pass: the same perturbations; the CPU's outputs round a little differently in other batch shapes
            assertEquals(a[r], b[r], 1e-5 * a[r], "example " + r);
            differs |= a[r] != other[r];
            assertTrue(a[r] > 0);
        }
        assertTrue(differs, "another seed, other squares");
    }

    @Test
    void errorsNameTheValueAtFault() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(2, 4);
        String name = m.graph().inputName();
        Map<String, Tensor> attr = new LinkedHashMap<>(Map.of(name, Tensor.zeros(2, 5)));
        var e = assertThrows(InvalidInputException.class, () -> new Infidelity(m).compute(m.inputs(x), attr, 0));
        assertTrue(e.getMessage().contains("attributions of '" + name + "' have shape [2, 5]"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> new Infidelity(m).nPerturbSamples(0));
        assertTrue(e.getMessage().contains("n_perturb_samples must be at least 1, got 0"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> new Infidelity(m).perturbation(Infidelity.squareRemoval(2))
                .compute(m.inputs(x), Map.of(name, Tensor.zeros(x.shape())), 0));
        assertTrue(e.getMessage().contains("square removal needs inputs of at least two example axes"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> new Infidelity(m).perturbation((c, b, r) -> Map.of())
                .compute(m.inputs(x), Map.of(name, Tensor.zeros(x.shape())), 0));
        assertTrue(e.getMessage().contains("perturbations of '" + name + "' of shape none"), e.getMessage());
    }
}
