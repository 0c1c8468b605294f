package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.Perturbation;
import dev.kxai.tensor.Tensor;
import java.util.Locale;

/**
 * Captum's {@code Lime} and {@code KernelShap}: a linear model on binary coalition vectors z (1 =
 * the feature group keeps its value, 0 = its baseline), fitted to F_t(perturbed input) with a
 * weight per sample; its coefficients are the attributions (spread over each group's features,
 * Captum's {@code return_input_shape}). One model per example, as Captum fits for a batch.
 * <ul>
 *   <li>LIME: z ~ Bernoulli(½) per group, weight exp(−d²/(2·kernel_width²)) with d the cosine
 *       distance (or Euclidean) between the original and the perturbed input, Lasso(α = 0.01);</li>
 *   <li>KernelSHAP: z = all ones and all zeros (weight 10^6), then k ~ p(k) ∝ (n − 1)/(k(n − k)),
 *       k ones at random (weight 1), weighted least squares.</li>
 * </ul>
 * Captum's samples come from torch's generator; kxai's from a seeded SplittableRandom, or from
 * the caller ({@link #samples}: the same z, and weights, for every example), so that a result can
 * be compared with Captum's exactly. Every sample of every example runs in batched forward passes.
 */
public final class Lime {
    /** Captum's weight of the all-ones and all-zeros samples in KernelSHAP. */
    public static final double KERNEL_SHAP_INF_WEIGHT = 1_000_000.0;

    /** The interpretable model. */
    public enum Surrogate {
        LASSO, LINEAR_REGRESSION;

        public static Surrogate parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "lasso" -> LASSO;
                case "linear_regression", "linear", "least_squares" -> LINEAR_REGRESSION;
                default -> throw new InvalidInputException("unknown interpretable_model '" + s + "'; known: lasso, "
                        + "linear_regression");
            };
        }
    }

    private final Model model;
    private final Settings settings;
    private final boolean kernelShap;
    private final int nSamples;
    private final Surrogate surrogate;
    private final double alpha;
    private final double kernelWidth;
    private final boolean euclidean;
    private final Tensor givenSamples;
    private final Tensor givenWeights;

    private Lime(Model model, Settings settings, boolean kernelShap, int nSamples, Surrogate surrogate, double alpha,
            double kernelWidth, boolean euclidean, Tensor givenSamples, Tensor givenWeights) {
        if (nSamples < 1 && givenSamples == null) {
            throw new InvalidInputException((kernelShap ? "kernel_shap" : "lime") + ": n_samples must be at least 1, got "
                    + nSamples);
        }
        if (givenSamples == null) {
            dev.kxai.attr.Limits.samples(kernelShap ? "kernel_shap" : "lime", "n_samples", nSamples);
        }
        if (!(alpha >= 0) || !(kernelWidth > 0)) {
            throw new InvalidInputException("lime: alpha " + alpha + " must be ≥ 0 and kernel_width " + kernelWidth + " > 0");
        }
        this.model = model;
        this.settings = settings;
        this.kernelShap = kernelShap;
        this.nSamples = nSamples;
        this.surrogate = surrogate;
        this.alpha = alpha;
        this.kernelWidth = kernelWidth;
        this.euclidean = euclidean;
        this.givenSamples = givenSamples;
        this.givenWeights = givenWeights;
    }

    /** Captum's Lime defaults: 50 samples, Lasso(α = 0.01), cosine distance, kernel width 1. */
    public static Lime lime(Model model, Settings settings) {
        return new Lime(model, settings, false, 50, Surrogate.LASSO, 0.01, 1.0, false, null, null);
    }

    /** Captum's KernelShap defaults: 25 samples. */
    public static Lime kernelShap(Model model, Settings settings) {
        return new Lime(model, settings, true, 25, Surrogate.LINEAR_REGRESSION, 0.0, 1.0, false, null, null);
    }

    public Lime nSamples(int n) {
        return new Lime(model, settings, kernelShap, n, surrogate, alpha, kernelWidth, euclidean, givenSamples, givenWeights);
    }

    /** LIME's interpretable model and its α (Lasso). */
    public Lime surrogate(Surrogate s, double a) {
        return new Lime(model, settings, kernelShap, nSamples, s, a, kernelWidth, euclidean, givenSamples, givenWeights);
    }

    /** LIME's similarity: exp(−d²/(2·width²)) of the cosine (or Euclidean) distance d. */
    public Lime kernel(double width, boolean euclideanDistance) {
        return new Lime(model, settings, kernelShap, nSamples, surrogate, alpha, width, euclideanDistance, givenSamples,
                givenWeights);
    }

    /**
     * The caller's coalitions [samples, groups] of 0/1, the same for every example, and optionally
     * their weights [samples] (else the method's own weighting of each).
     */
    public Lime samples(Tensor z, Tensor weights) {
        return new Lime(model, settings, kernelShap, z.dim(0), surrogate, alpha, kernelWidth, euclidean, z, weights);
    }

    private String name() {
        return kernelShap ? "kernel_shap" : "lime";
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        return fit(in, targets).attribution();
    }

    /**
     * Per example r: its coalitions {@code samples[r]} ([samples][groups], true = the group keeps its
     * value), the model's outputs on them, their weights, and the fitted surrogate (coefficients per
     * feature group and intercept); with the attributions {@link #attribute} returns.
     */
    public record Fitted(boolean[][][] samples, double[][] outputs, double[][] weights, LinearModels.Fit[] fits,
            Attribution attribution) {
    }

    /** The fit behind {@link #attribute}: the samples, outputs, weights and surrogate of every example. */
    public Fitted fit(Inputs in, int... targets) {
        FeatureGroups fg = FeatureGroups.of(model, in, settings.baselines(), settings.featureMasks(), true, name());
        int[] t = model.targets(targets, in.batch());
        int n = fg.groups;
        int batch = in.batch();
        // each example its own samples (as Captum's per-example loop draws them), or the caller's for all
        boolean[][] given = givenSamples != null ? given(n) : null;
        boolean[][][] z = new boolean[batch][][];
        for (int r = 0; r < batch; r++) {
            z[r] = given != null ? given : coalitions(n, r);
        }
        int m = z[0].length;
        Coalitions c = new Coalitions(batch * m, n);
        double[][] weights = new double[batch][m];
        for (int r = 0; r < batch; r++) {
            for (int s = 0; s < m; s++) {
                c.add(r, z[r][s]);
                weights[r][s] = weight(fg, r, z[r][s], s);
            }
        }
        Perturbation p = c.perturbation(fg);
        DevicePolicy.Ran<Fitted> ran = model.run(name().replace('_', ' '), runner -> {
            double[] f = PerturbationLoop.evaluate(runner, p, t, settings.chunks(batch), settings.progress(),
                    PerturbationLoop.Output.TARGET);
            double[][] coef = new double[batch][];
            double[][] outputs = new double[batch][];
            LinearModels.Fit[] fits = new LinearModels.Fit[batch];
            for (int r = 0; r < batch; r++) {
                boolean[][] rowZ = z[r];
                double[][] xs = new double[m][n];
                double[] ys = new double[m];
                for (int s = 0; s < m; s++) {
                    for (int g = 0; g < n; g++) {
                        xs[s][g] = rowZ[s][g] ? 1 : 0;
                    }
                    ys[s] = (float) f[r * m + s]; // the model's float32 output, as Captum fits it
                }
                fits[r] = fit(xs, ys, weights[r]);
                coef[r] = fits[r].coef();
                outputs[r] = ys;
            }
            return new Fitted(z, outputs, weights, fits, Attribution.of(fg.spread(coef), null, runner.device(), null));
        });
        Fitted fitted = ran.value();
        return new Fitted(fitted.samples(), fitted.outputs(), fitted.weights(), fitted.fits(),
                fitted.attribution().ranOn(ran.device(), ran.fallbackReason()));
    }

    LinearModels.Fit fit(double[][] xs, double[] ys, double[] w) {
        if (kernelShap || surrogate == Surrogate.LINEAR_REGRESSION) {
            return LinearModels.leastSquares(xs, ys, w);
        }
        return LinearModels.lasso(xs, ys, w, alpha);
    }

    private boolean[][] given(int n) {
        if (givenSamples.rank() != 2 || givenSamples.dim(1) != n) {
            throw new InvalidInputException(name() + ": samples of shape " + dev.kxai.tensor.Shapes.str(givenSamples.shape())
                    + "; the inputs have " + n + " feature groups, so [samples, " + n + "]");
        }
        if (givenWeights != null && givenWeights.size() != givenSamples.dim(0)) {
            throw new InvalidInputException(name() + ": " + givenWeights.size() + " weights for " + givenSamples.dim(0)
                    + " samples");
        }
        boolean[][] z = new boolean[givenSamples.dim(0)][n];
        for (int s = 0; s < z.length; s++) {
            for (int g = 0; g < n; g++) {
                float v = givenSamples.data()[s * n + g];
                if (v != 0f && v != 1f) {
                    throw new InvalidInputException(name() + ": samples hold " + v + " at [" + s + ", " + g + "]; they are 0/1");
                }
                z[s][g] = v == 1f;
            }
        }
        return z;
    }

    /** Example r's coalitions drawn from the seed (each example its own stream). */
    private boolean[][] coalitions(int n, int r) {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(settings.seed() * 1_000_003L + r);
        boolean[][] z = new boolean[nSamples][n];
        if (!kernelShap) {
            for (boolean[] row : z) {
                for (int g = 0; g < n; g++) {
                    row[g] = rng.nextBoolean();
                }
            }
            return z;
        }
        double[] cum = new double[n];
        double total = 0;
        for (int k = 1; k < n; k++) {
            total += (n - 1.0) / (k * (double) (n - k));
            cum[k] = total;
        }
        for (int s = 0; s < nSamples; s++) {
            if (s == 0) {
                java.util.Arrays.fill(z[s], true);
                continue;
            }
            if (s == 1 || n < 2) {
                continue; // all zeros (and, with one group, nothing else to draw)
            }
            double u = rng.nextDouble() * total;
            int k = 1;
            while (k < n - 1 && cum[k] < u) {
                k++;
            }
            int[] idx = new int[n];
            for (int g = 0; g < n; g++) {
                idx[g] = g;
            }
            for (int i = 0; i < k; i++) { // partial Fisher–Yates: k groups uniformly at random
                int j = i + rng.nextInt(n - i);
                int tmp = idx[i];
                idx[i] = idx[j];
                idx[j] = tmp;
                z[s][idx[i]] = true;
            }
        }
        return z;
    }

    /** The sample's weight: the caller's, KernelSHAP's, or LIME's similarity kernel. */
    private double weight(FeatureGroups fg, int r, boolean[] z, int s) {
        if (givenWeights != null) {
            return givenWeights.data()[s];
        }
        if (kernelShap) {
            int on = 0;
            for (boolean b : z) {
                on += b ? 1 : 0;
            }
            return on == 0 || on == z.length ? KERNEL_SHAP_INF_WEIGHT : 1.0;
        }
        double d;
        if (euclidean) {
            d = Math.sqrt(euclideanSquared(fg, r, z));
        } else {
            double[] terms = Coalitions.cosineTerms(fg, r, z);
            // torch's cosine similarity: x·p / max(‖x‖·‖p‖, 1e-8)
            d = 1 - terms[0] / Math.max(Math.sqrt(terms[1] * terms[2]), 1e-8);
        }
        return Math.exp(-d * d / (2 * kernelWidth * kernelWidth));
    }

    private static double euclideanSquared(FeatureGroups fg, int r, boolean[] z) {
        double sum = 0;
        for (FeatureGroups.Input gi : fg.inputs) {
            int per = gi.x().rowSize();
            for (int f = 0; f < per; f++) {
                int g = gi.group(r, f);
                if (g >= 0 && !z[g]) {
                    double diff = gi.x().data()[r * per + f] - gi.baseline().data()[r * per + f];
                    sum += diff * diff;
                }
            }
        }
        return sum;
    }
}
