package dev.kxai.concepts;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.perturbation.LinearModels;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Set;
import org.apache.commons.math3.stat.inference.TTest;

/**
 * Captum's {@code TCAV} (Kim et al. 2018): a concept activation vector (CAV) is the normal of a
 * linear classifier separating a layer's activations on concept examples from those on random
 * counter-examples; the TCAV score of a class is the fraction of inputs whose class output
 * increases along the CAV (∂F_t/∂layer · cav > 0). The score is computed against several random
 * sets, and against random-vs-random CAVs as the null; a two-sided t-test (Commons Math) says whether
 * the concept's scores differ from the null's, as Captum's significance test does.
 *
 * <p>The classifier is least squares on ±1 labels with an intercept, solved by Commons Math's SVD
 * ({@link LinearModels#leastSquares}): a linear separator from a maintained library (Captum's default
 * trains an SGD linear model; any linear separator defines a CAV).
 */
public final class Tcav {
    /** The scores of one concept against each random set, the null's, and the test. */
    public record Result(double[] conceptScores, double[] randomScores, double pValue, double meanScore) {
        /** Whether the concept's scores differ from random ones at level alpha. */
        public boolean significant(double alpha) {
            return pValue < alpha;
        }
    }

    /** Singular values below this share of the largest are dropped from the CAV's fit. */
    static final double RCOND = 1e-5;

    private final Model model;
    private final String layer;

    public Tcav(Model model, String layer) {
        if (!model.graph().valueNames().contains(layer)) {
            throw new InvalidInputException("tcav: no value '" + layer + "' computed by a node of " + model.graph().source());
        }
        this.model = model;
        this.layer = layer;
    }

    /**
     * @param concept    examples of the concept (a batch of the model's input)
     * @param randoms    at least two sets of random counter-examples
     * @param inputs     the inputs whose class-{@code target} outputs are scored
     */
    public Result score(Tensor concept, List<Tensor> randoms, Tensor inputs, int target) {
        if (randoms.size() < 2) {
            throw new InvalidInputException("tcav: at least 2 random sets are needed for the significance test, got "
                    + randoms.size());
        }
        float[] grads = layerGradients(inputs, target);
        int per = grads.length / inputs.dim(0);
        double[] conceptScores = new double[randoms.size()];
        double[] randomScores = new double[randoms.size()];
        float[] actConcept = activations(concept);
        for (int i = 0; i < randoms.size(); i++) {
            float[] actRandom = activations(randoms.get(i));
            conceptScores[i] = fraction(grads, per, cav(actConcept, actRandom, per));
            float[] other = activations(randoms.get((i + 1) % randoms.size()));
            randomScores[i] = fraction(grads, per, cav(actRandom, other, per));
        }
        double p = new TTest().tTest(conceptScores, randomScores);
        double mean = java.util.Arrays.stream(conceptScores).average().orElse(Double.NaN);
        return new Result(conceptScores, randomScores, Double.isNaN(p) ? 1.0 : p, mean);
    }

    private float[] activations(Tensor x) {
        model.checkBatch(x, "tcav examples");
        return model.run("tcav activations", r -> r.evaluate(model.inputs(x).values(), Set.of(layer)).get(layer))
                .value().data();
    }

    private float[] layerGradients(Tensor x, int target) {
        Inputs in = model.inputs(x);
        int[] t = model.targets(new int[] {target}, x.dim(0));
        return model.run("tcav gradients", r -> r.gradients(in.values(), t, Set.of(layer)).get(layer)).value().data();
    }

    /** The unit normal of a least-squares separator: +1 for the first set's activations, −1 for the second's. */
    static double[] cav(float[] positive, float[] negative, int per) {
        int np = positive.length / per;
        int nn = negative.length / per;
        double[][] xs = new double[np + nn][per];
        double[] ys = new double[np + nn];
        double[] w = new double[np + nn];
        for (int i = 0; i < np + nn; i++) {
            float[] src = i < np ? positive : negative;
            int row = i < np ? i : i - np;
            for (int f = 0; f < per; f++) {
                xs[i][f] = src[row * per + f];
            }
            ys[i] = i < np ? 1 : -1;
            w[i] = 1;
        }
        // rcond 1e-5: activations are float, so a unit that is exactly the sum of others differs from
        // it only by rounding; without a cut the fit would read the labels from that noise
        double[] coef = LinearModels.leastSquares(xs, ys, w, RCOND).coef();
        double norm = 0;
        for (double c : coef) {
            norm += c * c;
        }
        norm = Math.sqrt(norm);
        for (int f = 0; f < coef.length; f++) {
            coef[f] = norm > 0 ? coef[f] / norm : 0;
        }
        return coef;
    }

    /** The fraction of rows whose gradient has a positive component along the CAV. */
    static double fraction(float[] grads, int per, double[] cav) {
        int rows = grads.length / per;
        int positive = 0;
        for (int r = 0; r < rows; r++) {
            double dot = 0;
            for (int f = 0; f < per; f++) {
                dot += grads[r * per + f] * cav[f];
            }
            positive += dot > 0 ? 1 : 0;
        }
        return (double) positive / rows;
    }
}
