package dev.kxai.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.tensor.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Deletion and insertion curves: Integrated Gradients beats a random order on the digits CNN; each
 * point is the model's output on the row the definition describes; buckets and the AUC.
 */
class DeletionInsertionTest {
    private static MetricModels.Explained digitsIg() {
        return MetricModels.digits((m, x, t) -> new IntegratedGradients(m).attribute(x, t));
    }

    @Test
    void integratedGradientsBeatARandomOrderOnTheDigits() {
        MetricModels.Explained d = digitsIg();
        Model m = d.m();
        Tensor x = d.x();
        int[] t = d.t();
        Map<String, Tensor> attr = d.attr();
        DeletionInsertion.Curves del = DeletionInsertion.deletion(m).compute(m.inputs(x), attr, t);
        DeletionInsertion.Curves ins = DeletionInsertion.insertion(m).compute(m.inputs(x), attr, t);
        // deletion: the probability falls faster when the most relevant pixels go first (lower AUC is better)
        assertTrue(del.meanAuc() < del.meanRandomAuc() - 0.2, del.meanAuc() + " vs random " + del.meanRandomAuc());
        // insertion: it rises faster (higher AUC is better)
        assertTrue(ins.meanAuc() > ins.meanRandomAuc() + 0.2, ins.meanAuc() + " vs random " + ins.meanRandomAuc());
        assertEquals(21, del.curves()[0].length);
        assertEquals("cpu", del.device());
        // deletion starts at x and ends at the baseline; insertion the other way round; both orders agree there
        for (int r = 0; r < x.dim(0); r++) {
            assertEquals(del.curves()[r][0], ins.curves()[r][20], 1e-12);
            assertEquals(del.curves()[r][20], ins.curves()[r][0], 1e-12);
            assertEquals(del.curves()[r][0], del.randomCurves()[r][0], 1e-12);
            assertEquals(del.curves()[r][20], del.randomCurves()[r][20], 1e-12);
        }
    }

    /** Row r at point k of the definition, built on the host: the first ⌊k·F/steps⌋ features of the order changed. */
    private static Tensor hostRow(Tensor x, Tensor base, Tensor attr, int r, int k, int steps, boolean deletion,
            boolean morf) {
        int per = x.rowSize();
        double[] a = new double[per];
        for (int f = 0; f < per; f++) {
            a[f] = attr.data()[r * per + f];
        }
        Integer[] order = new Integer[per];
        for (int f = 0; f < per; f++) {
            order[f] = f;
        }
        java.util.Arrays.sort(order, (p, q) -> {
            int c = morf ? Double.compare(a[q], a[p]) : Double.compare(a[p], a[q]);
            return c != 0 ? c : Integer.compare(p, q);
        });
        int changed = (int) ((long) k * per / steps);
        float[] row = new float[per];
        for (int f = 0; f < per; f++) {
            row[f] = deletion ? x.data()[r * per + f] : base.data()[f];
        }
        for (int j = 0; j < changed; j++) {
            int f = order[j];
            row[f] = deletion ? base.data()[f] : x.data()[r * per + f];
        }
        int[] shape = x.shape();
        shape[0] = 1;
        return new Tensor(shape, row);
    }

    private static double softmaxAt(Tensor y, int t) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : y.data()) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : y.data()) {
            sum += Math.exp(v - max);
        }
        return Math.exp(y.data()[t] - max) / sum;
    }

    @Test
    void eachPointIsTheModelOnTheRowTheDefinitionDescribes() {
        MetricModels.Explained e = digitsIg();
        Model m = e.m();
        Tensor x = e.x();
        int[] t = e.t();
        Map<String, Tensor> attr = e.attr();
        Tensor a = attr.get(m.graph().inputName());
        float[] b = new float[x.rowSize()];
        for (int f = 0; f < b.length; f++) {
            b[f] = 0.1f * (f % 5); // a baseline that is not zero, one example broadcast to every row
        }
        int[] shape = x.shape();
        shape[0] = 1;
        Tensor base = new Tensor(shape, b);
        int steps = 7; // 64 features in 7 steps: uneven buckets (9 or 10 features)
        for (boolean deletion : new boolean[] {true, false}) {
            for (DeletionInsertion.Order order : DeletionInsertion.Order.values()) {
                DeletionInsertion d = DeletionInsertion.deletion(m).mode(deletion ? DeletionInsertion.Mode.DELETION
                        : DeletionInsertion.Mode.INSERTION).order(order).steps(steps).baselines(Baseline.of(base));
                DeletionInsertion.Curves c = d.compute(m.inputs(x), attr, t);
                DeletionInsertion.Curves raw = d.probability(false).compute(m.inputs(x), attr, t);
                for (int r : new int[] {0, 3, 9}) {
                    for (int k : new int[] {0, 1, 3, 6, 7}) {
                        Tensor y = m.forward(hostRow(x, base, a, r, k, steps, deletion, order == DeletionInsertion.Order.MORF));
                        String where = (deletion ? "deletion" : "insertion") + " " + order + " row " + r + " point " + k;
                        assertEquals(y.data()[t[r]], raw.curves()[r][k], 1e-5, where + " (raw output)");
                        assertEquals(softmaxAt(y, t[r]), c.curves()[r][k], 1e-6, where + " (probability)");
                    }
                }
            }
        }
    }

    @Test
    void bucketsSplitTheOrderInEqualParts() {
        // 64 features, 20 steps: point k changes ⌊64k/20⌋ features
        int[] b = DeletionInsertion.buckets(64, 20);
        for (int k = 0; k <= 20; k++) {
            int changed = 0;
            for (int g : b) {
                changed += g < k ? 1 : 0;
            }
            assertEquals(64 * k / 20, changed, "point " + k);
        }
        // more steps than features: some points change nothing new
        assertArrayEquals(new int[] {1, 3, 5}, DeletionInsertion.buckets(3, 6));
        assertArrayEquals(new int[] {0, 0, 0}, DeletionInsertion.buckets(3, 1));
    }

    @Test
    void theAucIsTheTrapezoidRuleOverTheFraction() {
        assertEquals(0.5, DeletionInsertion.auc(new double[] {0, 1}), 0.0);
        assertEquals(1.0, DeletionInsertion.auc(new double[] {1, 1, 1, 1, 1}), 0.0);
        assertEquals((1 + 0) / 2.0 * 0.5 + (0 + 0.5) / 2 * 0.5, DeletionInsertion.auc(new double[] {1, 0, 0.5}), 1e-15);
    }

    @Test
    void theRandomOrderIsSeeded() {
        Model m = MetricModels.linear();
        Tensor x = MetricModels.linearInput(3, 9);
        Map<String, Tensor> attr = Map.of(m.graph().inputName(), x);
        DeletionInsertion d = DeletionInsertion.deletion(m).steps(6).probability(false);
        double[][] a = d.seed(1).compute(m.inputs(x), attr, 0).randomCurves();
        double[][] again = d.seed(1).compute(m.inputs(x), attr, 0).randomCurves();
        double[][] other = d.seed(2).compute(m.inputs(x), attr, 0).randomCurves();
        boolean differs = false;
        for (int r = 0; r < 3; r++) {
            assertArrayEquals(a[r], again[r], 0.0);
            differs |= !java.util.Arrays.equals(a[r], other[r]);
        }
        assertTrue(differs);
    }

    @Test
    void badStepsAndOrdersAreRefused() {
        Model m = MetricModels.linear();
        var e = assertThrows(InvalidInputException.class, () -> DeletionInsertion.deletion(m).steps(0));
        assertTrue(e.getMessage().contains("steps must be at least 1, got 0"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> DeletionInsertion.Order.parse("most"));
        assertTrue(e.getMessage().contains("unknown order 'most'"), e.getMessage());
    }
}
