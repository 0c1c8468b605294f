package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.Perturbation;
import dev.kxai.tensor.Tensor;
import java.util.List;

/**
 * Captum's {@code ShapleyValues} (exact) and {@code ShapleyValueSampling}. Feature groups are shared
 * across inputs ({@code feature_mask}; default one per scalar), a group "absent" taking its baseline.
 *
 * <p>Exact: Captum averages the marginal contributions over all n! orderings, (n + 1)·n! forward
 * rows; the same value is Σ_{S ∌ g} |S|!(n − |S| − 1)!/n! · (F(S ∪ g) − F(S)) over the 2^n
 * coalitions, so kxai evaluates each coalition once (64 rows per example for 6 features instead of
 * 5,040) and combines them in double.
 *
 * <p>Sampling: {@code n_samples} random orderings (seeded; or the caller's {@code permutations}),
 * the marginal contribution of each group averaged over them; 1 + n_samples·n rows per example.
 */
public final class ShapleyValues {
    /** The most feature groups the exact method takes: 2^20 coalitions per example. */
    public static final int MAX_EXACT_GROUPS = 20;

    private final Model model;
    private final Settings settings;
    private final boolean sampling;
    private final int nSamples;
    private final List<int[]> permutations;

    private ShapleyValues(Model model, Settings settings, boolean sampling, int nSamples, List<int[]> permutations) {
        this.model = model;
        this.settings = settings;
        this.sampling = sampling;
        this.nSamples = nSamples;
        this.permutations = permutations;
    }

    /** The exact Shapley values. */
    public static ShapleyValues exact(Model model, Settings settings) {
        return new ShapleyValues(model, settings, false, 0, null);
    }

    /**
     * Shapley value sampling over {@code nSamples} orderings drawn from the settings' seed, or over
     * the given {@code permutations} of the groups (then nSamples is their number).
     */
    public static ShapleyValues sampling(Model model, Settings settings, int nSamples, List<int[]> permutations) {
        if (permutations == null && nSamples < 1) {
            throw new InvalidInputException("shapley_value_sampling: n_samples must be at least 1, got " + nSamples);
        }
        dev.kxai.attr.Limits.samples("shapley_value_sampling", "n_samples", permutations == null ? nSamples
                : permutations.size());
        return new ShapleyValues(model, settings, true, permutations == null ? nSamples : permutations.size(),
                permutations == null ? null : List.copyOf(permutations));
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        String what = sampling ? "shapley_value_sampling" : "shapley_values";
        FeatureGroups fg = FeatureGroups.of(model, in, settings.baselines(), settings.featureMasks(), true, what);
        int[] t = model.targets(targets, in.batch());
        int n = fg.groups;
        int batch = in.batch();
        if (!sampling && n > MAX_EXACT_GROUPS) {
            throw new InvalidInputException("shapley_values: " + n + " feature groups need 2^" + n + " forward rows per "
                    + "example; the exact method takes at most " + MAX_EXACT_GROUPS + " (group features with feature_mask, "
                    + "or use shapley_value_sampling)");
        }
        int[][] orders = sampling ? orders(n) : null;
        int perRow = sampling ? 1 + nSamples * n : 1 << n;
        Coalitions c = new Coalitions(batch * perRow, n);
        boolean[] keep = new boolean[n];
        for (int r = 0; r < batch; r++) {
            if (sampling) {
                java.util.Arrays.fill(keep, false);
                c.add(r, keep);
                for (int[] order : orders) {
                    java.util.Arrays.fill(keep, false);
                    for (int g : order) {
                        keep[g] = true;
                        c.add(r, keep);
                    }
                }
            } else {
                for (int set = 0; set < 1 << n; set++) {
                    for (int g = 0; g < n; g++) {
                        keep[g] = (set >> g & 1) != 0;
                    }
                    c.add(r, keep);
                }
            }
        }
        Perturbation p = c.perturbation(fg);
        DevicePolicy.Ran<Attribution> ran = model.run(what.replace('_', ' '), runner -> {
            double[] f = PerturbationLoop.evaluate(runner, p, t, settings.chunks(batch), settings.progress(),
                    PerturbationLoop.Output.TARGET);
            double[][] phi = new double[batch][n];
            for (int r = 0; r < batch; r++) {
                int first = r * perRow;
                if (sampling) {
                    for (int k = 0; k < orders.length; k++) {
                        double prev = f[first];
                        for (int j = 0; j < n; j++) {
                            double cur = f[first + 1 + k * n + j];
                            phi[r][orders[k][j]] += cur - prev;
                            prev = cur;
                        }
                    }
                    for (int g = 0; g < n; g++) {
                        phi[r][g] /= orders.length;
                    }
                } else {
                    double[] w = exactWeights(n);
                    for (int set = 0; set < 1 << n; set++) {
                        int size = Integer.bitCount(set);
                        for (int g = 0; g < n; g++) {
                            if ((set >> g & 1) == 0) {
                                phi[r][g] += w[size] * (f[first + (set | 1 << g)] - f[first + set]);
                            }
                        }
                    }
                }
            }
            return Attribution.of(fg.spread(phi), null, runner.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    /** w[k] = k!(n − k − 1)!/n! = 1 / (n·C(n − 1, k)). */
    static double[] exactWeights(int n) {
        double[] w = new double[n];
        double binom = 1; // C(n − 1, k)
        for (int k = 0; k < n; k++) {
            w[k] = 1.0 / (n * binom);
            binom = binom * (n - 1 - k) / (k + 1);
        }
        return w;
    }

    /** The orderings: the caller's (checked to be permutations of 0..n−1), or drawn from the seed. */
    private int[][] orders(int n) {
        if (permutations != null) {
            int[][] o = permutations.toArray(new int[0][]);
            for (int k = 0; k < o.length; k++) {
                boolean[] seen = new boolean[n];
                if (o[k].length != n) {
                    throw new InvalidInputException("shapley_value_sampling: permutation " + k + " has " + o[k].length
                            + " entries; the inputs have " + n + " feature groups");
                }
                for (int g : o[k]) {
                    if (g < 0 || g >= n || seen[g]) {
                        throw new InvalidInputException("shapley_value_sampling: permutation " + k + " is not an ordering of "
                                + "0.." + (n - 1) + ": " + java.util.Arrays.toString(o[k]));
                    }
                    seen[g] = true;
                }
            }
            return o;
        }
        java.util.SplittableRandom rng = new java.util.SplittableRandom(settings.seed());
        int[][] o = new int[nSamples][];
        for (int k = 0; k < nSamples; k++) {
            o[k] = RandomOrders.permutation(n, rng);
        }
        return o;
    }
}
