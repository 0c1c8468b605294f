package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;

/**
 * Guided Integrated Gradients (Kapishnikov, Venugopalan, Avci, Wedin, Terry and Birdal, "Guided
 * Integrated Gradients: An Adaptive Path Method for Removing Noise", CVPR 2021): the path from
 * the baseline to the input is chosen as it is walked. At each of n steps the L1 distance to the
 * input must shrink by 1/n of the total; it is taken from the {@code fraction} of features with the
 * smallest |gradient| (those the output is least sensitive to move first), keeping every feature
 * within {@code max_dist} (in α) of the straight line's progress. The attribution is the path
 * integral Σ Δx ⊙ ∇F along the walked path, so Σ attr ≈ F(x) − F(b) as for any path method (the
 * convergence delta reports how close).
 *
 * <p>Follows the authors' reference implementation ({@code saliency.core.guided_ig}, PAIR) step for
 * step: the point x in double, α's of features equal in input and baseline treated as done, the
 * lower quantile of |gradient| as the threshold, |a − b| ≤ 10⁻⁹·max(|a|, |b|) or 10⁻⁹ as "the step's
 * distance is reached". The n gradient evaluations are sequential (each depends on the last); each
 * evaluates the whole batch at once.
 */
public final class GuidedIntegratedGradients {
    private static final double EPSILON = 1e-9;

    private final Model model;
    private final int steps;
    private final double fraction;
    private final double maxDist;
    private final Baseline baseline;
    private final ChunkPolicy chunks;

    public GuidedIntegratedGradients(Model model, int steps, double fraction, double maxDist, Baseline baseline,
            Integer internalBatchSize) {
        if (steps < 1) {
            throw new InvalidInputException("guided_ig: n_steps must be at least 1, got " + steps);
        }
        Quadrature.checkSteps("guided_ig", steps);
        if (!(fraction > 0 && fraction <= 1)) {
            throw new InvalidInputException("guided_ig: fraction must be in (0, 1], got " + fraction);
        }
        if (!(maxDist >= 0 && maxDist <= 1)) {
            throw new InvalidInputException("guided_ig: max_dist must be in [0, 1], got " + maxDist);
        }
        this.model = model;
        this.steps = steps;
        this.fraction = fraction;
        this.maxDist = maxDist;
        this.baseline = baseline == null ? Baseline.zeros() : baseline;
        this.chunks = new ChunkPolicy(internalBatchSize);
    }

    public Attribution attribute(Inputs in, int... targets) {
        Tensor input = PathPoints.singleInput(model, in, "guided_ig");
        String name = model.attributed(in).get(0);
        int batch = input.dim(0);
        int per = input.rowSize();
        int[] t = model.targets(targets, batch);
        float[] xf = input.data();
        float[] bf = baseline.expand(input).data();
        var ran = model.run("guided integrated gradients", runner -> {
            double[] x = new double[input.size()];
            for (int k = 0; k < x.length; k++) {
                x[k] = bf[k];
            }
            double[] acc = new double[input.size()];
            double[] atBase = null;
            float[] point = new float[input.size()];
            for (int step = 0; step < steps; step++) {
                for (int k = 0; k < x.length; k++) {
                    point[k] = (float) x[k];
                }
                PathPoints.Values v = PathPoints.at(runner, new Tensor(input.shape(), point.clone()), t, chunks);
                if (step == 0) {
                    atBase = v.outputs();
                }
                for (int i = 0; i < batch; i++) {
                    step(i * per, per, step, x, xf, bf, v.gradients(), acc);
                }
            }
            double[] atInput = PathPoints.at(runner, input, t, chunks).outputs();
            return PathPoints.finish(name, input.shape(), acc, atInput, atBase, runner.device());
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    /** One step of one example (features off … off + per): moves x and adds Δx ⊙ gradient to acc. */
    private void step(int off, int per, int step, double[] x, float[] in, float[] base, float[] gradient, double[] acc) {
        double l1Total = 0;
        for (int f = off; f < off + per; f++) {
            l1Total += Math.abs((double) in[f] - base[f]);
        }
        if (l1Total == 0) {
            return; // the input is the baseline: attribution 0
        }
        double alpha = (step + 1.0) / steps;
        double alphaMin = Math.max(alpha - maxDist, 0.0);
        double alphaMax = Math.min(alpha + maxDist, 1.0);
        double l1Target = l1Total * (1 - (step + 1.0) / steps);
        double[] xMin = new double[per];
        double[] xMax = new double[per];
        double[] grad = new double[per];
        double[] abs = new double[per];
        for (int f = 0; f < per; f++) {
            double d = (double) in[off + f] - base[off + f];
            xMin[f] = base[off + f] + d * alphaMin;
            xMax[f] = base[off + f] + d * alphaMax;
        }
        double gamma = Double.POSITIVE_INFINITY;
        // each round with γ > 1 takes every selected feature to its bound, so rounds ≤ features + 1
        for (int round = 0; gamma > 1.0 && round <= per + 1; round++) {
            double[] old = Arrays.copyOfRange(x, off, off + per);
            for (int f = 0; f < per; f++) {
                double d = (double) in[off + f] - base[off + f];
                double a = d != 0 ? (x[off + f] - base[off + f]) / d : alphaMax;
                if (a < alphaMin) {
                    x[off + f] = xMin[f];
                }
            }
            double l1Current = 0;
            for (int f = 0; f < per; f++) {
                l1Current += Math.abs(x[off + f] - in[off + f]);
            }
            if (Math.abs(l1Target - l1Current) <= Math.max(EPSILON * Math.max(Math.abs(l1Target), Math.abs(l1Current)),
                    EPSILON)) {
                accumulate(off, per, x, old, gradient, acc);
                return;
            }
            for (int f = 0; f < per; f++) {
                grad[f] = x[off + f] == xMax[f] ? Double.POSITIVE_INFINITY : gradient[off + f];
                abs[f] = Math.abs(grad[f]);
            }
            double[] sorted = abs.clone();
            Arrays.sort(sorted);
            double threshold = sorted[(int) Math.floor(fraction * (per - 1))]; // numpy's 'lower' quantile
            double l1S = 0;
            boolean[] s = new boolean[per];
            for (int f = 0; f < per; f++) {
                s[f] = abs[f] <= threshold && grad[f] != Double.POSITIVE_INFINITY;
                if (s[f]) {
                    l1S += Math.abs(x[off + f] - xMax[f]);
                }
            }
            gamma = l1S > 0 ? (l1Current - l1Target) / l1S : Double.POSITIVE_INFINITY;
            if (gamma <= 0) {
                accumulate(off, per, x, old, gradient, acc); // already past the target (rounding): settle here
                return;
            }
            for (int f = 0; f < per; f++) {
                if (s[f]) {
                    x[off + f] = gamma > 1.0 ? xMax[f] : x[off + f] + (xMax[f] - x[off + f]) * gamma;
                }
            }
            accumulate(off, per, x, old, gradient, acc);
        }
    }

    private static void accumulate(int off, int per, double[] x, double[] old, float[] gradient, double[] acc) {
        for (int f = 0; f < per; f++) {
            acc[off + f] += (x[off + f] - old[f]) * gradient[off + f];
        }
    }
}
