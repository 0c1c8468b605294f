package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.ModelRunner;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;

/**
 * The target output and its input gradient at arbitrary points (rows of the model's input), in
 * chunks of the memory budget ({@link ChunkPolicy}): what the path methods whose points are not a
 * straight line from a baseline (Blur IG, Guided IG) or that need the output at every point (IDGI)
 * are built from. One forward and one backward per chunk; the output comes with the gradient.
 */
final class PathPoints {
    private PathPoints() {
    }

    /** Outputs F_t(p_r) per row and gradients ∂F_t/∂p at each row, flat [rows × example size]. */
    record Values(double[] outputs, float[] gradients) {
    }

    /**
     * @param points     rows of the model's input [R, ...]
     * @param rowTargets the target output of each row
     */
    static Values at(ModelRunner runner, Tensor points, int[] rowTargets, ChunkPolicy chunks) {
        int rows = points.dim(0);
        int per = points.rowSize();
        double[] outputs = new double[rows];
        float[] grads = new float[points.size()];
        int chunk = chunks.stepsPerChunk(runner, 1, rows);
        for (int r0 = 0; r0 < rows; r0 += chunk) {
            int r1 = Math.min(rows, r0 + chunk);
            int[] shape = points.shape();
            shape[0] = r1 - r0;
            Tensor x = new Tensor(shape, Arrays.copyOfRange(points.data(), r0 * per, r1 * per));
            ModelRunner.Gradient g = runner.gradient(x, Arrays.copyOfRange(rowTargets, r0, r1));
            int outs = g.output().rowSize();
            for (int r = r0; r < r1; r++) {
                outputs[r] = g.output().data()[(r - r0) * outs + rowTargets[r]];
            }
            System.arraycopy(g.inputGradient().data(), 0, grads, r0 * per, (r1 - r0) * per);
        }
        return new Values(outputs, grads);
    }

    /**
     * The attribution from its double accumulator, rounded once, with the convergence delta
     * Σ attr − (F(x) − F(start)) per row.
     */
    static Attribution finish(String name, int[] shape, double[] acc, double[] atInput, double[] atStart, String device) {
        int batch = shape[0];
        int per = acc.length / batch;
        float[] attr = new float[acc.length];
        float[] delta = new float[batch];
        for (int i = 0; i < batch; i++) {
            double sum = 0;
            for (int f = 0; f < per; f++) {
                attr[i * per + f] = (float) acc[i * per + f];
                sum += attr[i * per + f];
            }
            delta[i] = (float) (sum - (atInput[i] - atStart[i]));
        }
        return Attribution.of(java.util.Map.of(name, new Tensor(shape, attr)), new Tensor(new int[] {batch}, delta),
                device, null);
    }

    /**
     * The one attributed input of a single-input model: these methods move the input along a path
     * of their own, which is defined for one tensor (a model with additional inputs is refused, with
     * the method named).
     */
    static Tensor singleInput(Model model, Inputs in, String method) {
        model.check(in);
        if (in.values().size() != 1 || model.attributed(in).size() != 1) {
            throw new InvalidInputException(method + ": explains models with one float input; this one is given "
                    + in.values().keySet() + " (use integrated_gradients, saliency or the perturbation methods for several "
                    + "inputs)");
        }
        return in.get(model.attributed(in).get(0));
    }
}
