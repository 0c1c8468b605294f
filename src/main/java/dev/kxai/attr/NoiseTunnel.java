package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Captum's {@code NoiseTunnel} over any method: each example is repeated {@code nt_samples} times
 * with Gaussian noise N(0, stdev²) added to its attributed inputs (rows i·n … i·n + n − 1 are
 * example i's, Captum's {@code repeat_interleave} order), the wrapped method explains the whole
 * expanded batch in one call (or in blocks of {@code nt_samples_batch_size} samples per example),
 * and the samples are combined: {@code smoothgrad} (mean), {@code smoothgrad_sq} (mean of squares),
 * {@code vargrad} (variance). The noise comes from a seeded generator (Captum's from torch's), so a
 * seed gives the same result on every backend; with stdevs 0 the result is the wrapped method's.
 * Additional and integer inputs are repeated unchanged. The wrapped method's baselines must fit
 * any batch (zeros, a scalar, one example).
 */
public final class NoiseTunnel {
    /** How the noisy samples' attributions are combined. */
    public enum Type {
        SMOOTHGRAD, SMOOTHGRAD_SQ, VARGRAD;

        public static Type parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "smoothgrad" -> SMOOTHGRAD;
                case "smoothgrad_sq" -> SMOOTHGRAD_SQ;
                case "vargrad" -> VARGRAD;
                default -> throw new InvalidInputException("unknown nt_type '" + s + "'; known: smoothgrad, smoothgrad_sq, "
                        + "vargrad");
            };
        }
    }

    private final Model model;
    private final Methods.Method inner;
    private final Type type;
    private final int samples;
    private final List<Double> stdevs;
    private final Integer samplesBatchSize;
    private final long seed;

    /**
     * @param stdevs one standard deviation for every attributed input, or one per attributed input
     */
    public NoiseTunnel(Model model, Methods.Method inner, Type type, int samples, List<Double> stdevs,
            Integer samplesBatchSize, long seed) {
        if (samples < 1) {
            throw new InvalidInputException("noise tunnel: nt_samples must be at least 1, got " + samples);
        }
        Limits.samples("noise tunnel", "nt_samples", samples);
        if (samplesBatchSize != null && samplesBatchSize < 1) {
            throw new InvalidInputException("noise tunnel: nt_samples_batch_size must be at least 1, got " + samplesBatchSize);
        }
        for (double s : stdevs) {
            if (!(s >= 0) || Double.isInfinite(s)) {
                throw new InvalidInputException("noise tunnel: stdevs must be finite and at least 0, got " + s);
            }
        }
        this.model = model;
        this.inner = inner;
        this.type = type;
        this.samples = samples;
        this.stdevs = List.copyOf(stdevs);
        this.samplesBatchSize = samplesBatchSize;
        this.seed = seed;
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        List<String> names = model.attributed(in);
        if (stdevs.size() != 1 && stdevs.size() != names.size()) {
            throw new InvalidInputException("noise tunnel: " + stdevs.size() + " stdevs for " + names.size()
                    + " attributed inputs " + names + "; give one per input, in this order, or one for all");
        }
        int batch = in.batch();
        int[] t = model.targets(targets, batch);
        SplittableRandom rng = new SplittableRandom(seed);
        int block = samplesBatchSize == null ? samples : Math.min(samples, samplesBatchSize);
        Map<String, double[]> sum = new LinkedHashMap<>();
        Map<String, double[]> sumSq = new LinkedHashMap<>();
        Map<String, int[]> shapes = new LinkedHashMap<>();
        Attribution last = null;
        java.util.List<float[]> deltas = new java.util.ArrayList<>();
        for (int k0 = 0; k0 < samples; k0 += block) {
            int m = Math.min(block, samples - k0);
            Inputs noisy = Inputs.empty();
            for (Map.Entry<String, Tensor> e : in.values().entrySet()) {
                int idx = names.indexOf(e.getKey());
                double sd = idx < 0 ? 0 : stdevs.get(stdevs.size() == 1 ? 0 : idx);
                Tensor rep = repeated(e.getValue(), m, idx >= 0 ? sd : 0, rng);
                noisy = in.isAdditional(e.getKey()) ? noisy.additional(e.getKey(), rep) : noisy.and(e.getKey(), rep);
            }
            int[] rt = new int[batch * m];
            for (int r = 0; r < rt.length; r++) {
                rt[r] = t[r / m];
            }
            last = inner.attribute(noisy, rt);
            Map<String, Tensor> by = last.byInput().isEmpty() ? Map.of(names.get(0), last.attributions()) : last.byInput();
            for (Map.Entry<String, Tensor> e : by.entrySet()) {
                Tensor a = e.getValue();
                int per = a.rowSize();
                double[] s = sum.computeIfAbsent(e.getKey(), k -> new double[batch * per]);
                double[] q = sumSq.computeIfAbsent(e.getKey(), k -> new double[batch * per]);
                for (int r = 0; r < batch * m; r++) {
                    int i = r / m;
                    for (int f = 0; f < per; f++) {
                        double v = a.data()[r * per + f];
                        s[i * per + f] += v;
                        q[i * per + f] += v * v;
                    }
                }
                if (!shapes.containsKey(e.getKey())) {
                    int[] shape = a.shape();
                    shape[0] = batch;
                    shapes.put(e.getKey(), shape);
                }
            }
            if (last.convergenceDelta() != null) {
                deltas.add(last.convergenceDelta().data());
            }
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String k : sum.keySet()) {
            double[] s = sum.get(k);
            double[] q = sumSq.get(k);
            float[] a = new float[s.length];
            for (int j = 0; j < a.length; j++) {
                double mean = s[j] / samples;
                a[j] = (float) switch (type) {
                    case SMOOTHGRAD -> mean;
                    case SMOOTHGRAD_SQ -> q[j] / samples;
                    case VARGRAD -> q[j] / samples - mean * mean;
                };
            }
            out.put(k, new Tensor(shapes.get(k), a));
        }
        Tensor delta = deltas.isEmpty() ? null : sampleDeltas(deltas, batch, block, samples);
        return new Attribution(out.values().iterator().next(), delta, last.device(), last.fallbackReason(), out);
    }

    /** The wrapped method's deltas of every noisy sample, in Captum's order [example, sample]. */
    private static Tensor sampleDeltas(List<float[]> blocks, int batch, int block, int samples) {
        float[] d = new float[batch * samples];
        int k0 = 0;
        for (float[] b : blocks) {
            int m = b.length / batch;
            for (int r = 0; r < b.length; r++) {
                d[(r / m) * samples + k0 + r % m] = b[r];
            }
            k0 += m;
        }
        return new Tensor(new int[] {batch * samples}, d);
    }

    /** Each row repeated m times in a row (repeat_interleave), with N(0, sd²) noise where sd > 0 (rng unused at 0). */
    static Tensor repeated(Tensor x, int m, double sd, SplittableRandom rng) {
        int per = x.rowSize();
        int rows = x.dim(0);
        float[] d = new float[rows * m * per];
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < m; k++) {
                int dst = (r * m + k) * per;
                for (int f = 0; f < per; f++) {
                    float v = x.data()[r * per + f];
                    d[dst + f] = sd > 0 ? v + (float) (sd * rng.nextGaussian()) : v;
                }
            }
        }
        int[] s = x.shape();
        s[0] = rows * m;
        return new Tensor(s, d);
    }
}
