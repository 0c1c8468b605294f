package dev.kxai.attr;

import dev.kxai.InvalidInputException;
import java.util.Arrays;
import java.util.Locale;

/**
 * The points α_k on [0, 1] where Integrated Gradients samples the path, and their weights, exactly
 * as Captum 0.8.0 builds them ({@code captum/attr/_utils/approximation_methods.py}): Riemann alphas
 * from a float32 {@code torch.linspace}, weights 1/n (trapezoid halves the ends); Gauss–Legendre
 * nodes and weights in float64, mapped from [−1, 1] to [0, 1]. A value, so other schedules can be
 * added without new code paths.
 *
 * <p>Captum's quirk, kept for parity: {@code riemann_trapezoid} samples n points from 0 to 1 but
 * weighs them 1/n (ends halved), so its weights sum to 1 − 1/n and its convergence delta shrinks
 * only like 1/n.
 */
public record Quadrature(Rule rule, double[] alphas, double[] weights) {

    /** Captum's {@code method} names. */
    public enum Rule {
        RIEMANN_LEFT("riemann_left"),
        RIEMANN_RIGHT("riemann_right"),
        RIEMANN_MIDDLE("riemann_middle"),
        RIEMANN_TRAPEZOID("riemann_trapezoid"),
        GAUSS_LEGENDRE("gausslegendre"),
        /** User-given α's and weights ({@link Quadrature#custom}); not a name {@link #parse} accepts. */
        CUSTOM("custom");

        private final String captumName;

        Rule(String captumName) {
            this.captumName = captumName;
        }

        public String captumName() {
            return captumName;
        }

        public boolean isRiemann() {
            return this != GAUSS_LEGENDRE && this != CUSTOM;
        }

        /** Parses Captum's name (also accepting upper case and {@code gauss_legendre}). */
        public static Rule parse(String name) {
            String n = name.trim().toLowerCase(Locale.ROOT).replace("gauss_legendre", "gausslegendre");
            for (Rule r : values()) {
                if (r != CUSTOM && r.captumName.equals(n)) {
                    return r;
                }
            }
            throw new InvalidInputException("unknown integration method '" + name + "'; known: riemann_left, "
                    + "riemann_right, riemann_middle, riemann_trapezoid, gausslegendre");
        }
    }

    /**
     * The most integration steps a call may take: a path method keeps its α's and weights (16 bytes a
     * step), so 10^7 steps would need 160 MB before any model runs and the 96 MiB heap the README
     * quotes runs out (issue 13). 10^6 steps (16 MB) is far beyond any converged integral (the delta
     * shrinks like 1/n² with Gauss–Legendre); {@code -Dkxai.max.steps=N} raises it.
     */
    public static final int MAX_STEPS = Integer.getInteger("kxai.max.steps", 1_000_000);

    /** Refuses {@code n} steps beyond {@link #MAX_STEPS}, naming the method. */
    public static void checkSteps(String method, long n) {
        if (n > MAX_STEPS) {
            throw new InvalidInputException(method + ": n_steps " + n + " exceeds the limit of " + MAX_STEPS
                    + " steps (its integration points alone would take " + (16 * n >> 20) + " MiB; raise the limit with "
                    + "-Dkxai.max.steps=N)");
        }
    }

    public static Quadrature of(Rule rule, int n) {
        checkSteps(rule.captumName(), n);
        if (rule == Rule.CUSTOM) {
            throw new InvalidInputException("custom integration points are given as alphas (and weights), not as n_steps");
        }
        if (rule.isRiemann() && n < 2) {
            throw new InvalidInputException("n_steps must be at least 2 for " + rule.captumName() + ", got " + n);
        }
        if (n < 1) {
            throw new InvalidInputException("n_steps must be at least 1, got " + n);
        }
        double[] alphas = new double[n];
        double[] weights = new double[n];
        switch (rule) {
            case GAUSS_LEGENDRE -> {
                double[][] nw = GaussLegendre.nodesAndWeights(n);
                for (int k = 0; k < n; k++) {
                    alphas[k] = 0.5 * (1 + nw[0][k]);
                    weights[k] = 0.5 * nw[1][k];
                }
            }
            default -> {
                Arrays.fill(weights, 1.0 / n);
                float[] a = switch (rule) {
                    case RIEMANN_TRAPEZOID -> linspace(0, 1, n);
                    case RIEMANN_LEFT -> linspace(0, 1 - 1.0 / n, n);
                    case RIEMANN_MIDDLE -> linspace(1.0 / (2 * n), 1 - 1.0 / (2 * n), n);
                    default -> linspace(1.0 / n, 1, n); // RIEMANN_RIGHT
                };
                for (int k = 0; k < n; k++) {
                    alphas[k] = a[k];
                }
                if (rule == Rule.RIEMANN_TRAPEZOID) {
                    weights[0] /= 2;
                    weights[n - 1] /= 2;
                }
            }
        }
        return new Quadrature(rule, alphas, weights);
    }

    /**
     * User-given points α_k ∈ [0, 1] (increasing) and their weights; weights null gives each α the
     * part of [0, 1] closer to it than to its neighbours (cells bounded by the midpoints, the first
     * from 0 and the last to 1: they sum to 1, and uniform midpoints get 1/n each, as riemann_middle).
     */
    public static Quadrature custom(double[] alphas, double[] weights) {
        if (alphas == null || alphas.length == 0) {
            throw new InvalidInputException("alphas: give at least one integration point in [0, 1]");
        }
        checkSteps("alphas", alphas.length);
        for (int k = 0; k < alphas.length; k++) {
            if (!(alphas[k] >= 0 && alphas[k] <= 1)) {
                throw new InvalidInputException("alphas: alpha[" + k + "] = " + alphas[k] + " is outside [0, 1]");
            }
            if (k > 0 && !(alphas[k] > alphas[k - 1])) {
                throw new InvalidInputException("alphas: the points must increase; alpha[" + k + "] = " + alphas[k]
                        + " follows " + alphas[k - 1]);
            }
        }
        double[] w;
        if (weights == null) {
            w = new double[alphas.length];
            for (int k = 0; k < alphas.length; k++) {
                double lo = k == 0 ? 0 : (alphas[k - 1] + alphas[k]) / 2;
                double hi = k == alphas.length - 1 ? 1 : (alphas[k] + alphas[k + 1]) / 2;
                w[k] = hi - lo;
            }
        } else {
            if (weights.length != alphas.length) {
                throw new InvalidInputException("alphas: " + alphas.length + " points but " + weights.length
                        + " weights; give one weight per point");
            }
            for (int k = 0; k < weights.length; k++) {
                if (!Double.isFinite(weights[k])) {
                    throw new InvalidInputException("alphas: weight[" + k + "] = " + weights[k] + " is not finite");
                }
            }
            w = weights.clone();
        }
        return new Quadrature(Rule.CUSTOM, alphas.clone(), w);
    }

    /**
     * {@code torch.linspace(start, end, steps)} in float32 as PyTorch's CPU kernel computes it: the
     * first half counts up from start, the second half down from end.
     */
    static float[] linspace(double start, double end, int steps) {
        float s = (float) start;
        float e = (float) end;
        float[] out = new float[steps];
        if (steps == 1) {
            out[0] = s;
            return out;
        }
        float step = (e - s) / (steps - 1);
        int halfway = steps / 2;
        for (int i = 0; i < steps; i++) {
            out[i] = i < halfway ? s + step * i : e - step * (steps - i - 1);
        }
        return out;
    }

    public int steps() {
        return alphas.length;
    }

    /** Alphas as float32, what the path kernels take. */
    public float[] alphasF() {
        float[] f = new float[alphas.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) alphas[i];
        }
        return f;
    }

    /** Weights as float32 ({@code torch.tensor(step_sizes)} in Captum). */
    public float[] weightsF() {
        float[] f = new float[weights.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) weights[i];
        }
        return f;
    }
}
