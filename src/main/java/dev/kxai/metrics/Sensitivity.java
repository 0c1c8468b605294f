package dev.kxai.metrics;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Methods;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Captum's {@code sensitivity_max} (Yeh et al. 2019): for n_perturb_samples perturbed copies
 * x + δ_k of each example,
 * <pre>
 *   sensitivity = max_k ‖expl(x + δ_k) − expl(x)‖ / ‖expl(x)‖
 * </pre>
 * the norm ({@code norm_ord}, default "fro": the 2-norm of the row) taken over every attributed
 * input's explanation of the example, flattened and concatenated; a zero ‖expl(x)‖ counts as 1,
 * as in Captum. The default perturbation draws δ uniformly from the L∞ ball of radius
 * {@code perturb_radius} (0.02), Captum's {@code default_perturb_func}; the target of each copy is
 * its example's.
 *
 * <p>The explanation is any {@link Methods.Method}, run once on one batch that holds the examples
 * and then every perturbed copy ((1 + n_perturb_samples) × batch rows, example-major as Captum's
 * {@code repeat_interleave}); the method chunks that batch itself. Additional and integer inputs
 * are repeated unchanged. A method whose baseline is a tensor of one row per example needs it for
 * that batch: give one example's baseline, or a scalar.
 */
public final class Sensitivity {
    /** Captum's default perturb_radius and n_perturb_samples. */
    public static final double DEFAULT_RADIUS = 0.02;

    public static final int DEFAULT_SAMPLES = 10;

    /** Captum's {@code perturb_func}: perturbed copies of one example. */
    @FunctionalInterface
    public interface PerturbFunction {
        /**
         * @param copies the example's n_perturb_samples copies by attributed input name, [n, ...] each
         * @param radius perturb_radius
         * @param rng    the example's random stream
         * @return the perturbed copies, by attributed input name, of the copies' shapes
         */
        Map<String, Tensor> perturbed(Map<String, Tensor> copies, double radius, SplittableRandom rng);
    }

    private final Model model;
    private final Methods.Method explanation;
    private final PerturbFunction perturb;
    private final double radius;
    private final int nPerturbSamples;
    private final double norm;
    private final long seed;

    private Sensitivity(Model model, Methods.Method explanation, PerturbFunction perturb, double radius, int n, double norm,
            long seed) {
        if (n < 1) {
            throw new InvalidInputException("sensitivity_max: n_perturb_samples must be at least 1, got " + n);
        }
        if (!(radius >= 0) || !Double.isFinite(radius)) {
            throw new InvalidInputException("sensitivity_max: perturb_radius must be finite and ≥ 0, got " + radius);
        }
        this.model = model;
        this.explanation = explanation;
        this.perturb = perturb;
        this.radius = radius;
        this.nPerturbSamples = n;
        this.norm = norm;
        this.seed = seed;
    }

    /** Captum's defaults: uniform noise in the L∞ ball of radius 0.02, 10 samples, the Frobenius norm; seed 0. */
    public Sensitivity(Model model, Methods.Method explanation) {
        this(model, explanation, uniform(), DEFAULT_RADIUS, DEFAULT_SAMPLES, 2, 0L);
    }

    public Sensitivity perturbation(PerturbFunction f) {
        return new Sensitivity(model, explanation, f, radius, nPerturbSamples, norm, seed);
    }

    public Sensitivity perturbRadius(double r) {
        return new Sensitivity(model, explanation, perturb, r, nPerturbSamples, norm, seed);
    }

    public Sensitivity nPerturbSamples(int n) {
        return new Sensitivity(model, explanation, perturb, radius, n, norm, seed);
    }

    /** {@code norm_ord}: "fro" (the default, = 2 on a flattened row), or a number p (inf, -inf allowed). */
    public Sensitivity normOrd(String ord) {
        return new Sensitivity(model, explanation, perturb, radius, nPerturbSamples, parseNorm(ord), seed);
    }

    public Sensitivity seed(long s) {
        return new Sensitivity(model, explanation, perturb, radius, nPerturbSamples, norm, s);
    }

    /** x + U(−radius, radius) on every value of every attributed input (Captum's default_perturb_func). */
    public static PerturbFunction uniform() {
        // in float, as torch adds a float noise tensor to the input
        return (copies, radius, rng) -> AttributedInputs.eachValue(copies,
                x -> (float) x + (float) ((2 * rng.nextDouble() - 1) * radius));
    }

    static double parseNorm(String ord) {
        String o = ord.strip().toLowerCase(Locale.ROOT);
        if (o.equals("fro")) {
            return 2;
        }
        if (o.equals("inf")) {
            return Double.POSITIVE_INFINITY;
        }
        if (o.equals("-inf")) {
            return Double.NEGATIVE_INFINITY;
        }
        try {
            double p = Double.parseDouble(o);
            if (!Double.isNaN(p)) {
                return p;
            }
        } catch (NumberFormatException e) {
            // the message below
        }
        throw new InvalidInputException("sensitivity_max: norm_ord '" + ord + "'; give fro or a number (inf, -inf too)");
    }

    /** torch.norm of a vector with p = ord: (Σ|v|^p)^(1/p), max|v| at inf, min|v| at −inf, the count of non-zeros at 0. */
    static double norm(double[] v, double p) {
        if (p == Double.POSITIVE_INFINITY || p == Double.NEGATIVE_INFINITY) {
            double m = p > 0 ? 0 : Double.POSITIVE_INFINITY;
            for (double x : v) {
                m = p > 0 ? Math.max(m, Math.abs(x)) : Math.min(m, Math.abs(x));
            }
            return m;
        }
        double s = 0;
        for (double x : v) {
            s += p == 0 ? (x != 0 ? 1 : 0) : p == 2 ? x * x : Math.pow(Math.abs(x), p);
        }
        return p == 0 ? s : p == 2 ? Math.sqrt(s) : Math.pow(s, 1 / p);
    }

    /** The maximum sensitivity of each example's explanation. */
    public Scores compute(Inputs in, int... targets) {
        AttributedInputs a = AttributedInputs.of(model, in, List.of(Baseline.zeros()), null, "sensitivity_max");
        int batch = a.batch;
        int n = nPerturbSamples;
        int[] t = model.targets(targets, batch);
        Inputs expanded = AttributedInputs.repeated(in, n, true);
        for (int r = 0; r < batch; r++) {
            Map<String, Tensor> copies = new LinkedHashMap<>();
            for (String name : a.names) {
                copies.put(name, AttributedInputs.copies(in.get(name), r, n));
            }
            Map<String, Tensor> p = perturb.perturbed(copies, radius, Stats.stream(seed, r));
            AttributedInputs.checkPerturbed("sensitivity_max", "perturbed copies", copies, p, r);
            for (String name : a.names) {
                float[] rows = p.get(name).data();
                System.arraycopy(rows, 0, expanded.get(name).data(), (batch + r * n) * (rows.length / n), rows.length);
            }
        }
        int[] te = new int[batch + batch * n];
        for (int s = 0; s < te.length; s++) {
            te[s] = t[s < batch ? s : (s - batch) / n];
        }
        Attribution e = explanation.attribute(expanded, te);
        AttributedInputs ea = AttributedInputs.of(model, expanded, List.of(Baseline.zeros()),
                e.byInputOr(model.graph().inputName()), "sensitivity_max");
        double[] out = new double[batch];
        for (int r = 0; r < batch; r++) {
            double[] base = ea.attributionRow(r);
            double n0 = norm(base, norm);
            n0 = n0 == 0 ? 1 : n0;
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < n; k++) {
                double[] pk = ea.attributionRow(batch + r * n + k);
                for (int f = 0; f < pk.length; f++) {
                    pk[f] = base[f] - pk[f];
                }
                max = Math.max(max, norm(pk, norm) / n0);
            }
            out[r] = max;
        }
        return new Scores("sensitivity_max", out, e.device(), e.fallbackReason());
    }
}
