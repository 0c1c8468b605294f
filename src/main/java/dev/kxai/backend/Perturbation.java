package dev.kxai.backend;

import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Perturbed copies of a batch, described compactly so that a backend builds them where it
 * computes (on CUDA on the device, from the batch and a few integers per sample; kernels/perturb.cu)
 * rather than receiving every perturbed row from the host. Sample {@code s} is a copy of row
 * {@code home[s]} of every model input, each input changed by its {@link Rule} (inputs without a
 * rule are copied unchanged: Captum's {@code additional_forward_args}, integer ids).
 *
 * <p>Every rule only selects values (the input's, another row's, or the baseline's), so the
 * perturbed rows are bit for bit the same on every backend and the same as Captum's
 * {@code x·(1 − mask) + baseline·mask}.
 *
 * @param inputs every model input, batch first (the same batch)
 * @param home   the row each sample copies, in [0, batch)
 * @param rules  how each perturbed input changes its copy
 */
public record Perturbation(Map<String, Tensor> inputs, int[] home, Map<String, Rule> rules) {
    public Perturbation {
        inputs = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(inputs));
        rules = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(rules));
        int batch = inputs.values().iterator().next().dim(0);
        for (int h : home) {
            if (h < 0 || h >= batch) {
                throw new IllegalArgumentException("sample copies row " + h + " of a batch of " + batch);
            }
        }
        for (Map.Entry<String, Rule> e : rules.entrySet()) {
            Tensor x = inputs.get(e.getKey());
            if (x == null) {
                throw new IllegalArgumentException("a rule for '" + e.getKey() + "', which is not an input " + inputs.keySet());
            }
            e.getValue().check(e.getKey(), x, home.length);
        }
    }

    /** Number of samples. */
    public int samples() {
        return home.length;
    }

    /** Rows of the batch the samples copy. */
    public int batch() {
        return inputs.values().iterator().next().dim(0);
    }

    /** How one input's copy changes; its baseline has one row, or one per row of the batch. */
    public sealed interface Rule permits Single, Coalition, Box {
        Tensor baseline();

        /** Refuses a rule that does not fit its input (shapes, ids out of range). */
        void check(String input, Tensor x, int samples);
    }

    /**
     * Feature ablation: the features whose group ({@code mask}) is {@code group[s]} take the
     * baseline, the others the home row; a group of −1 changes nothing.
     *
     * @param mask       a group id per feature of one example, or per feature of every row ({@code maskPerRow})
     */
    public record Single(Tensor baseline, int[] mask, boolean maskPerRow, int[] group) implements Rule {
        @Override
        public void check(String input, Tensor x, int samples) {
            checkBaseline(input, baseline, x);
            checkMask(input, mask, maskPerRow, x);
            for (int g : mask) {
                if (g < 0) {
                    // a group of −1 must change nothing: no feature may be in group −1 here
                    throw new IllegalArgumentException("feature mask of '" + input + "' holds group " + g
                            + "; ablation masks hold groups from 0");
                }
            }
            if (group.length != samples) {
                throw new IllegalArgumentException(group.length + " groups for " + samples + " samples");
            }
        }
    }

    /**
     * A coalition per sample (Shapley values, KernelSHAP, LIME, permutations, deletion curves):
     * the features of group g take row {@code take[s·groups + g]} of the input where that is ≥ 0,
     * else the baseline of the home row.
     */
    public record Coalition(Tensor baseline, int[] mask, boolean maskPerRow, int groups, int[] take) implements Rule {
        @Override
        public void check(String input, Tensor x, int samples) {
            checkBaseline(input, baseline, x);
            checkMask(input, mask, maskPerRow, x);
            for (int g : mask) {
                if (g >= groups) {
                    throw new IllegalArgumentException("feature group " + g + " of '" + input + "' is not below " + groups);
                }
            }
            if ((long) samples * groups != take.length) {
                throw new IllegalArgumentException(take.length + " coalition entries for " + samples + " samples of "
                        + groups + " groups");
            }
            for (int t : take) {
                if (t >= x.dim(0)) {
                    throw new IllegalArgumentException("a coalition takes row " + t + " of a batch of " + x.dim(0));
                }
            }
        }
    }

    /**
     * Occlusion: the features inside sample s's box take the baseline. {@code boxes[s·2R + 2d]}
     * and {@code [s·2R + 2d + 1]} are the box's [start, end) on example axis d (R axes); an empty
     * range on any axis makes an empty box.
     */
    public record Box(Tensor baseline, int[] boxes) implements Rule {
        @Override
        public void check(String input, Tensor x, int samples) {
            checkBaseline(input, baseline, x);
            int rank = x.rank() - 1;
            if (rank > MAX_BOX_AXES) {
                throw new InvalidInputException("occlusion of '" + input + "': at most " + MAX_BOX_AXES
                        + " axes per example, it has " + rank);
            }
            if ((long) samples * 2 * rank != boxes.length) {
                throw new IllegalArgumentException(boxes.length + " box bounds for " + samples + " samples of " + rank + " axes");
            }
        }
    }

    /** Axes of one example a box may have (ample for images and volumes; keeps the box table small). */
    public static final int MAX_BOX_AXES = 6;

    /** A baseline of one row, or of one per row, of the input's example shape. */
    static void checkBaseline(String input, Tensor baseline, Tensor x) {
        int[] xs = x.shape();
        int[] bs = baseline.shape();
        boolean rows = bs.length == xs.length && (bs[0] == 1 || bs[0] == xs[0]);
        if (!rows || !java.util.Arrays.equals(java.util.Arrays.copyOfRange(bs, 1, bs.length),
                java.util.Arrays.copyOfRange(xs, 1, xs.length))) {
            throw new InvalidInputException("baseline of '" + input + "' has shape " + Shapes.str(bs) + "; its input "
                    + Shapes.str(xs) + " needs [1 or " + xs[0] + ", ...the example's shape]");
        }
    }

    static void checkMask(String input, int[] mask, boolean perRow, Tensor x) {
        long want = perRow ? x.size() : x.rowSize();
        if (mask.length != want) {
            throw new IllegalArgumentException("feature mask of '" + input + "' has " + mask.length + " entries, not " + want);
        }
        for (int g : mask) {
            if (g < -1 || g >= MAX_ID) {
                throw new InvalidInputException("feature mask of '" + input + "' holds group " + g + " (valid: 0.."
                        + (MAX_ID - 1) + ", or −1 for a feature in no group)");
            }
        }
    }

    /** Ids travel as floats to the CPU twins: exact below 2^24. */
    public static final int MAX_ID = 1 << 24;
}
