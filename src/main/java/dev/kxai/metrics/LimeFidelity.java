package dev.kxai.metrics;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.attr.perturbation.Lime;
import dev.kxai.attr.perturbation.LinearModels;
import dev.kxai.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * LIME's local fidelity: how well each example's surrogate (the linear model LIME fits, whose
 * coefficients are its attributions) predicts the model on perturbations it was not fitted on.
 * The held-out coalitions z (each feature group kept with probability ½, as LIME samples; drawn
 * from the seed, the same for every example) run through the model in batched forward passes,
 * weighted by LIME's own similarity kernel, and
 * <pre>
 *   R²_w = 1 − Σ w (y − ŷ)² / Σ w (y − ȳ_w)²,   ŷ = intercept + coef · z,  ȳ_w = Σ w y / Σ w
 * </pre>
 * per example (1 is a perfect local fit; NaN where the held-out outputs do not vary). Works for
 * {@link Lime#kernelShap} too (then weighted by its kernel).
 */
public final class LimeFidelity {
    public static final int DEFAULT_HELD_OUT = 50;

    private final Lime lime;
    private final int heldOut;
    private final long seed;

    public LimeFidelity(Lime lime) {
        this(lime, DEFAULT_HELD_OUT, 0L);
    }

    private LimeFidelity(Lime lime, int heldOut, long seed) {
        if (heldOut < 2) {
            throw new InvalidInputException("lime_fidelity: at least 2 held-out samples, got " + heldOut);
        }
        this.lime = lime;
        this.heldOut = heldOut;
        this.seed = seed;
    }

    public LimeFidelity heldOut(int n) {
        return new LimeFidelity(lime, n, seed);
    }

    /** The seed of the held-out coalitions (the fit's own samples follow the Lime's settings). */
    public LimeFidelity seed(long s) {
        return new LimeFidelity(lime, heldOut, s);
    }

    /** The weighted R² of each example's surrogate on the held-out samples. */
    public Scores compute(Inputs in, int... targets) {
        Lime.Fitted fitted = lime.fit(in, targets);
        int groups = fitted.fits()[0].coef().length;
        SplittableRandom rng = new SplittableRandom(seed ^ 0x6C696D65L); // not one of the fit's per-example streams
        float[] z = new float[heldOut * groups];
        for (int i = 0; i < z.length; i++) {
            z[i] = rng.nextBoolean() ? 1f : 0f;
        }
        Lime.Fitted held = lime.samples(new Tensor(new int[] {heldOut, groups}, z), null).fit(in, targets);
        double[] out = new double[fitted.fits().length];
        for (int r = 0; r < out.length; r++) {
            out[r] = weightedR2(fitted.fits()[r], held.samples()[r], held.outputs()[r], held.weights()[r]);
        }
        return new Scores("lime_fidelity", out, held.attribution().device(), held.attribution().fallbackReason());
    }

    static double weightedR2(LinearModels.Fit fit, boolean[][] z, double[] y, double[] w) {
        double sw = 0;
        double swy = 0;
        for (int s = 0; s < y.length; s++) {
            sw += w[s];
            swy += w[s] * y[s];
        }
        double mean = swy / sw;
        double res = 0;
        double tot = 0;
        for (int s = 0; s < y.length; s++) {
            double pred = fit.intercept();
            for (int g = 0; g < z[s].length; g++) {
                pred += z[s][g] ? fit.coef()[g] : 0;
            }
            res += w[s] * (y[s] - pred) * (y[s] - pred);
            tot += w[s] * (y[s] - mean) * (y[s] - mean);
        }
        return tot == 0 ? Double.NaN : 1 - res / tot;
    }
}
