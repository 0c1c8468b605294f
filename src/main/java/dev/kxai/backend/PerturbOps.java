package dev.kxai.backend;

/**
 * The perturbed rows of {@link Perturbation} on host arrays: the CPU twins of the kernels in
 * {@code kernels/perturb.cu}, with the same arguments. Each output value is a copy of an input
 * or a baseline value (no arithmetic), so twin and kernel agree bit for bit. Sample s's output
 * row is {@code out[s·features ...]}; {@code baseRows} and {@code maskRows} are 1 (one row for
 * every sample) or the batch (the home row's).
 */
public final class PerturbOps {
    private PerturbOps() {
    }

    /** out[s, f] = mask[m(s), f] == group[s] ? base[b(s), f] : x[home[s], f]. */
    public static void single(float[] out, float[] x, float[] base, int baseRows, int[] mask, int maskRows, int[] home,
            int[] group, int samples, int features) {
        for (int s = 0; s < samples; s++) {
            int r = home[s];
            int m = (maskRows == 1 ? 0 : r) * features;
            int b = (baseRows == 1 ? 0 : r) * features;
            int src = r * features;
            int dst = s * features;
            int g = group[s];
            for (int f = 0; f < features; f++) {
                out[dst + f] = mask[m + f] == g ? base[b + f] : x[src + f];
            }
        }
    }

    /**
     * t = take[s·groups + mask[m(s), f]], or home[s] for a feature in no group (mask −1);
     * out[s, f] = t ≥ 0 ? x[t, f] : base[b(s), f].
     */
    public static void coalition(float[] out, float[] x, float[] base, int baseRows, int[] mask, int maskRows,
            int[] home, int[] take, int groups, int samples, int features) {
        for (int s = 0; s < samples; s++) {
            int r = home[s];
            int m = (maskRows == 1 ? 0 : r) * features;
            int b = (baseRows == 1 ? 0 : r) * features;
            int dst = s * features;
            for (int f = 0; f < features; f++) {
                int g = mask[m + f];
                int t = g < 0 ? r : take[s * groups + g]; // a feature in no group (−1) keeps its home value
                out[dst + f] = t >= 0 ? x[t * features + f] : base[b + f];
            }
        }
    }

    /**
     * out[s, f] = f inside box s ? base[b(s), f] : x[home[s], f], f's coordinates taken on the
     * example axes {@code dims} (row-major) and box s's [start, end) per axis at {@code boxes[s·2R + 2d]}.
     */
    public static void box(float[] out, float[] x, float[] base, int baseRows, int[] home, int[] boxes, int[] dims,
            int samples, int features) {
        int rank = dims.length;
        for (int s = 0; s < samples; s++) {
            int r = home[s];
            int b = (baseRows == 1 ? 0 : r) * features;
            int src = r * features;
            int dst = s * features;
            int bx = s * 2 * rank;
            for (int f = 0; f < features; f++) {
                boolean inside = true;
                int rest = f;
                for (int d = rank - 1; d >= 0; d--) {
                    int c = rest % dims[d];
                    rest /= dims[d];
                    inside &= c >= boxes[bx + 2 * d] && c < boxes[bx + 2 * d + 1];
                }
                out[dst + f] = inside ? base[b + f] : x[src + f];
            }
        }
    }
}
