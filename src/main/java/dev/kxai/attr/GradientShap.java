package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Captum's {@code GradientShap} (Lundberg and Lee 2017): for each example, {@code n_samples}
 * draws of a baseline row from the given distribution, an α ~ U(0, 1) and Gaussian noise
 * N(0, stdevs²) on the input; the gradient at b + α(x̃ − b) times (x̃ − b)
 * ({@code multiply_by_inputs}), averaged over the draws. In expectation over α this is Integrated
 * Gradients from each baseline, averaged over the baselines. All n_samples × batch gradient rows
 * run in chunks of the memory budget ({@link ChunkPolicy}). Seeded (Captum draws from numpy and
 * torch), the same on every backend.
 */
public final class GradientShap {
    private final Model model;
    private final int samples;
    private final List<Double> stdevs;
    private final boolean multiplyByInputs;
    private final long seed;
    private final Integer internalBatchSize;

    public GradientShap(Model model, int samples, List<Double> stdevs, boolean multiplyByInputs, long seed,
            Integer internalBatchSize) {
        if (samples < 1) {
            throw new InvalidInputException("gradient_shap: n_samples must be at least 1, got " + samples);
        }
        Limits.samples("gradient_shap", "n_samples", samples);
        this.model = model;
        this.samples = samples;
        this.stdevs = List.copyOf(stdevs);
        this.multiplyByInputs = multiplyByInputs;
        this.seed = seed;
        this.internalBatchSize = internalBatchSize;
        new ChunkPolicy(internalBatchSize);
    }

    /**
     * @param distributions per attributed input (in the model's order), baseline rows [K, ...example] to draw from
     */
    public Attribution attribute(Inputs in, List<Tensor> distributions, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(distributions, "distributions");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        List<String> names = model.attributed(in);
        if (distributions.size() != names.size()) {
            throw new InvalidInputException("gradient_shap: " + distributions.size() + " baseline distributions for "
                    + names.size() + " attributed inputs " + names);
        }
        if (stdevs.size() != 1 && stdevs.size() != names.size()) {
            throw new InvalidInputException("gradient_shap: " + stdevs.size() + " stdevs for " + names.size() + " inputs");
        }
        int batch = in.batch();
        int[] t = model.targets(targets, batch);
        int rows = batch * samples;
        int kRows = distributions.get(0).dim(0);
        for (int i = 0; i < names.size(); i++) {
            Tensor d = distributions.get(i);
            Tensor x = in.get(names.get(i));
            if (d.rank() != x.rank() || d.rowSize() != x.rowSize() || d.dim(0) != kRows) {
                throw new InvalidInputException("gradient_shap: baselines of '" + names.get(i) + "' have shape "
                        + Shapes.str(d.shape()) + "; they need [K, ...] with the example shape of " + Shapes.str(x.shape())
                        + " and the same K for every input");
            }
        }
        SplittableRandom rng = new SplittableRandom(seed);
        int[] pick = new int[rows];
        float[] alpha = new float[rows];
        for (int r = 0; r < rows; r++) {
            pick[r] = rng.nextInt(kRows);
            alpha[r] = (float) rng.nextDouble();
        }
        // x̃ and b per row (example i's samples at rows i·n …), and the scaled points
        Map<String, Tensor> noisy = new LinkedHashMap<>();
        Map<String, Tensor> points = new LinkedHashMap<>();
        Map<String, float[]> base = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i);
            Tensor xt = NoiseTunnel.repeated(in.get(n), samples, stdevs.get(stdevs.size() == 1 ? 0 : i), rng);
            int per = xt.rowSize();
            float[] b = new float[xt.size()];
            float[] p = new float[xt.size()];
            float[] dist = distributions.get(i).data();
            for (int r = 0; r < rows; r++) {
                for (int f = 0; f < per; f++) {
                    float bv = dist[pick[r] * per + f];
                    b[r * per + f] = bv;
                    p[r * per + f] = bv + alpha[r] * (xt.data()[r * per + f] - bv);
                }
            }
            noisy.put(n, xt);
            points.put(n, new Tensor(xt.shape(), p));
            base.put(n, b);
        }
        Map<String, Tensor> fixed = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : in.values().entrySet()) {
            if (!names.contains(e.getKey())) {
                fixed.put(e.getKey(), NoiseTunnel.repeated(e.getValue(), samples, 0, rng));
            }
        }
        int[] rt = new int[rows];
        for (int r = 0; r < rows; r++) {
            rt[r] = t[r / samples];
        }
        DevicePolicy.Ran<Attribution> ran = model.run("gradient shap", runner -> {
            int chunk = new ChunkPolicy(internalBatchSize).stepsPerChunk(runner, 1, rows);
            Map<String, double[]> sums = new LinkedHashMap<>();
            for (int start = 0; start < rows; start += chunk) {
                int r0 = start;
                int r1 = Math.min(rows, r0 + chunk);
                Map<String, Tensor> given = new java.util.HashMap<>();
                points.forEach((k, v) -> given.put(k, slice(v, r0, r1)));
                fixed.forEach((k, v) -> given.put(k, slice(v, r0, r1)));
                Map<String, Tensor> g = runner.gradients(given, java.util.Arrays.copyOfRange(rt, r0, r1),
                        new HashSet<>(names));
                for (String n : names) {
                    float[] gv = g.get(n).data();
                    float[] xv = noisy.get(n).data();
                    float[] bv = base.get(n);
                    int per = noisy.get(n).rowSize();
                    double[] s = sums.computeIfAbsent(n, k -> new double[batch * per]);
                    for (int r = r0; r < r1; r++) {
                        for (int f = 0; f < per; f++) {
                            int e = r * per + f;
                            float v = multiplyByInputs ? gv[(r - r0) * per + f] * (xv[e] - bv[e]) : gv[(r - r0) * per + f];
                            s[(r / samples) * per + f] += v;
                        }
                    }
                }
            }
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : names) {
                double[] s = sums.get(n);
                float[] a = new float[s.length];
                for (int j = 0; j < a.length; j++) {
                    a[j] = (float) (s[j] / samples);
                }
                by.put(n, new Tensor(in.get(n).shape(), a));
            }
            return Attribution.of(by, null, runner.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    private static Tensor slice(Tensor t, int r0, int r1) {
        int per = t.rowSize();
        int[] s = t.shape();
        s[0] = r1 - r0;
        return new Tensor(s, java.util.Arrays.copyOfRange(t.data(), r0 * per, r1 * per));
    }
}
