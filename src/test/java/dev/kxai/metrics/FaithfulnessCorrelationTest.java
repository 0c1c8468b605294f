package dev.kxai.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.InputXGradient;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.tensor.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Faithfulness correlation: exactly 1 for a linear model explained by input × gradient (the sum of
 * a subset's attributions is the output's drop when it goes to zero), −1 for its negation; IG on
 * the digits correlates better than a shuffled map.
 */
class FaithfulnessCorrelationTest {
    @Test
    void inputTimesGradientOfALinearModelCorrelatesPerfectly() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(5, 12);
        String name = m.graph().inputName();
        Tensor attr = new InputXGradient(m).attribute(m.inputs(x), new int[] {2}).attributions();
        float[] negated = attr.data().clone();
        for (int i = 0; i < negated.length; i++) {
            negated[i] = -negated[i];
        }
        for (Integer size : new Integer[] {null, 2, 5}) {
            FaithfulnessCorrelation fc = new FaithfulnessCorrelation(m).subsetSize(size).nRuns(40).seed(9);
            Scores s = fc.compute(m.inputs(x), Map.of(name, attr), 2);
            Scores neg = fc.compute(m.inputs(x), Map.of(name, new Tensor(attr.shape(), negated)), 2);
            for (int r = 0; r < 5; r++) {
                assertEquals(1.0, s.values()[r], 1e-5, "|S| = " + size + ", example " + r);
                assertEquals(-1.0, neg.values()[r], 1e-5, "|S| = " + size + ", example " + r);
            }
        }
    }

    @Test
    void integratedGradientsCorrelateBetterThanAShuffledMapOnTheDigits() {
        MetricModels.Explained d = MetricModels.digits((m, x, t) -> new IntegratedGradients(m).attribute(x, t));
        Model m = d.m();
        Tensor x = d.x();
        int[] t = d.t();
        String name = m.graph().inputName();
        Tensor ig = d.attr().get(name);
        float[] shuffled = ig.data().clone();
        int per = ig.rowSize();
        java.util.SplittableRandom rng = new java.util.SplittableRandom(5);
        for (int r = 0; r < x.dim(0); r++) {
            for (int i = per - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                float tmp = shuffled[r * per + i];
                shuffled[r * per + i] = shuffled[r * per + j];
                shuffled[r * per + j] = tmp;
            }
        }
        FaithfulnessCorrelation fc = new FaithfulnessCorrelation(m);
        Scores good = fc.compute(m.inputs(x), Map.of(name, ig), t);
        Scores bad = fc.compute(m.inputs(x), Map.of(name, new Tensor(ig.shape(), shuffled)), t);
        assertTrue(good.mean() > 0.5, "IG " + good.mean());
        assertTrue(good.mean() > bad.mean() + 0.3, "IG " + good.mean() + " vs shuffled " + bad.mean());
        // the same seed, the same subsets, whatever the rows per pass (the CPU's sums round a little
        // differently in other batch shapes)
        assertEquals(good.mean(), fc.internalBatchSize(13).compute(m.inputs(x), Map.of(name, ig), t).mean(), 1e-6);
    }

    @Test
    void subsetsMustLeaveSomeFeatures() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(2, 1);
        var e = assertThrows(InvalidInputException.class, () -> new FaithfulnessCorrelation(m).subsetSize(6)
                .compute(m.inputs(x), Map.of(m.graph().inputName(), x), 0));
        assertTrue(e.getMessage().contains("a subset of 6 features of 6; it needs 1 to 5"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> new FaithfulnessCorrelation(m).nRuns(1));
        assertTrue(e.getMessage().contains("n_runs must be at least 2"), e.getMessage());
    }
}
