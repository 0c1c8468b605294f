package dev.kxai.attr.perturbation;

import dev.kxai.backend.Perturbation;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Samples that are coalitions of feature groups shared across inputs (Shapley values, KernelSHAP,
 * LIME): sample s copies row {@code home[s]} and keeps group g where {@code keep(s, g)}, else
 * takes the baseline. Built once into one {@link Perturbation} whose rules share the coalition
 * table.
 */
final class Coalitions {
    private final int[] home;
    private final int[] take;
    private final int groups;
    private int size;

    Coalitions(int capacity, int groups) {
        if ((long) capacity * groups > Integer.MAX_VALUE - 16) {
            throw new dev.kxai.InvalidInputException(capacity + " coalitions of " + groups + " feature groups are too many "
                    + "to describe; group the features (feature_mask) or use fewer samples");
        }
        this.home = new int[capacity];
        this.take = new int[capacity * groups];
        this.groups = groups;
    }

    /** Adds a coalition of row r: bit g of {@code keep} set keeps group g. */
    int add(int r, boolean[] keep) {
        int s = size++;
        home[s] = r;
        for (int g = 0; g < groups; g++) {
            take[s * groups + g] = keep[g] ? r : -1;
        }
        return s;
    }

    int size() {
        return size;
    }

    Perturbation perturbation(FeatureGroups fg) {
        int[] h = java.util.Arrays.copyOf(home, size);
        int[] t = java.util.Arrays.copyOf(take, size * groups);
        Map<String, Perturbation.Rule> rules = new LinkedHashMap<>();
        for (FeatureGroups.Input gi : fg.inputs) {
            rules.put(gi.name(), new Perturbation.Coalition(gi.baseline(), gi.mask(), gi.perRow(), groups, t));
        }
        return new Perturbation(fg.all.values(), h, rules);
    }

    /** The perturbed values of the attributed inputs of coalition s, flattened (LIME's distance needs them). */
    static double[] cosineTerms(FeatureGroups fg, int r, boolean[] keep) {
        double dot = 0;
        double xx = 0;
        double pp = 0;
        for (FeatureGroups.Input gi : fg.inputs) {
            Tensor x = gi.x();
            int per = x.rowSize();
            float[] xv = x.data();
            float[] bv = gi.baseline().data();
            for (int f = 0; f < per; f++) {
                int g = gi.group(r, f);
                double xf = xv[r * per + f];
                double pf = g < 0 || keep[g] ? xf : bv[r * per + f];
                dot += xf * pf;
                xx += xf * xf;
                pp += pf * pf;
            }
        }
        return new double[] {dot, xx, pp};
    }
}
