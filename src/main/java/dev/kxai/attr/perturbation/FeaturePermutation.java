package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Captum's {@code FeaturePermutation}: each feature group of each attributed input takes its
 * values from another row of the batch (a permutation of the rows other than the identity), and every feature of the group gets F_t(x) − F_t(x with the group permuted). Captum
 * draws a new permutation for every group; kxai uses one permutation per call (seeded, or the
 * caller's), so that the permuted rows are one per-row baseline for the ablation kernel: the
 * same expectation, and one description of all groups. Needs a batch of at least 2.
 */
public final class FeaturePermutation {
    private final Model model;
    private final Settings settings;
    private final int[] permutation;

    public FeaturePermutation(Model model, Settings settings, int[] permutation) {
        this.model = model;
        this.settings = settings;
        this.permutation = permutation == null ? null : permutation.clone();
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        int batch = in.batch();
        if (batch < 2) {
            throw new InvalidInputException("feature_permutation permutes features across the rows of a batch: it needs "
                    + "at least 2 rows, got " + batch);
        }
        FeatureGroups groups = FeatureGroups.of(model, in, settings.baselines(), settings.featureMasks(), false,
                "feature_permutation");
        int[] perm = permutation != null ? checked(permutation, batch) : draw(batch);
        Map<String, Tensor> permuted = new LinkedHashMap<>();
        for (FeatureGroups.Input gi : groups.inputs) {
            int per = gi.x().rowSize();
            float[] d = new float[gi.x().size()];
            for (int r = 0; r < batch; r++) {
                System.arraycopy(gi.x().data(), perm[r] * per, d, r * per, per);
            }
            permuted.put(gi.name(), new Tensor(gi.x().shape(), d));
        }
        return FeatureAblation.run(model, groups, model.targets(targets, batch), settings, "feature permutation", permuted);
    }

    private static int[] checked(int[] p, int batch) {
        boolean[] seen = new boolean[batch];
        boolean moves = false;
        if (p.length != batch) {
            throw new InvalidInputException("feature_permutation: a permutation of " + p.length + " rows for a batch of "
                    + batch);
        }
        for (int r = 0; r < batch; r++) {
            if (p[r] < 0 || p[r] >= batch || seen[p[r]]) {
                throw new InvalidInputException("feature_permutation: " + java.util.Arrays.toString(p)
                        + " is not a permutation of 0.." + (batch - 1));
            }
            seen[p[r]] = true;
            moves |= p[r] != r;
        }
        if (!moves) {
            throw new InvalidInputException("feature_permutation: the identity permutation changes nothing");
        }
        return p;
    }

    /** A seeded uniform permutation other than the identity (Captum redraws the identity too). */
    private int[] draw(int batch) {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(settings.seed());
        while (true) {
            int[] p = RandomOrders.permutation(batch, rng);
            for (int i = 0; i < batch; i++) {
                if (p[i] != i) {
                    return p;
                }
            }
        }
    }
}
