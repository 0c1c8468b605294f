package dev.kxai.backend;

import dev.kxai.tensor.Tensor;

/**
 * Σ_k w_k ∇F_t(b + α_k (x − b)) for every example, computed in chunks of steps so that memory is
 * flat in the number of steps: no steps × batch gradient tensor outlives its chunk. The model
 * outputs at α = 0 and α = 1 are kept when the rule evaluates them, so the convergence delta
 * needs no extra forward pass then.
 */
public final class PathIntegral {
    private PathIntegral() {
    }

    /** Progress of a long integration, called after each chunk. */
    @FunctionalInterface
    public interface Progress {
        void stepsDone(int done, int total);

        Progress NONE = (d, t) -> { };
    }

    /**
     * @param gradientSum  Σ_k w_k g_k per example, shape of x
     * @param outputAtBase F_t(b_i) per example, or null if no step had α = 0
     * @param outputAtInput F_t(x_i) per example, or null if no step had α = 1
     */
    public record Result(Tensor gradientSum, double[] outputAtBase, double[] outputAtInput) {
    }

    /** The gradient of each row's target output with respect to the rows, and the outputs. */
    @FunctionalInterface
    public interface RowGradient {
        ModelRunner.Gradient of(Tensor rows, int[] targets);
    }

    public static Result run(ModelRunner runner, Tensor x, Tensor base, float[] alphas, float[] weights, int[] targets,
            int stepsPerChunk, Progress progress) {
        return run(runner::gradient, x, base, alphas, weights, targets, stepsPerChunk, progress);
    }

    /**
     * The loop itself, over any function of path rows: the model's input gradient, or (with the
     * first-layer saving) the gradient of the layers after the first with respect to its output,
     * where x and b are then that layer's outputs at the endpoints.
     */
    public static Result run(RowGradient gradient, Tensor x, Tensor base, float[] alphas, float[] weights,
            int[] targets, int stepsPerChunk, Progress progress) {
        return run(gradient, (out, k0, k1) -> PathOps.interpolate(out, x.data(), base.data(), alphas, k0, k1, x.dim(0),
                x.rowSize()), x, alphas, weights, targets, stepsPerChunk, progress);
    }

    /** Writes the path rows of steps [k0, k1), step-major, into out. */
    @FunctionalInterface
    public interface Interpolation {
        void rows(float[] out, int k0, int k1);
    }

    /** The loop with a given interpolation; {@code x} gives the shape of one path row per example. */
    public static Result run(RowGradient gradient, Interpolation interpolation, Tensor x, float[] alphas,
            float[] weights, int[] targets, int stepsPerChunk, Progress progress) {
        int batch = x.dim(0);
        int features = x.rowSize();
        int steps = alphas.length;
        int chunk = Math.max(1, Math.min(stepsPerChunk, steps));
        float[] acc = new float[x.size()];
        double[] atBase = null;
        double[] atInput = null;
        float[] path = new float[chunk * batch * features];
        int[] rowTargets = new int[chunk * batch];
        for (int k0 = 0; k0 < steps; k0 += chunk) {
            int k1 = Math.min(steps, k0 + chunk);
            int rows = (k1 - k0) * batch;
            float[] chunkPath = rows * features == path.length ? path : new float[rows * features];
            interpolation.rows(chunkPath, k0, k1);
            for (int r = 0; r < rows; r++) {
                rowTargets[r] = targets[r % batch];
            }
            int[] pathShape = x.shape();
            pathShape[0] = rows;
            ModelRunner.Gradient g = gradient.of(new Tensor(pathShape, chunkPath),
                    java.util.Arrays.copyOf(rowTargets, rows));
            PathOps.accumulate(acc, g.inputGradient().data(), weights, k0, k1, batch, features);
            int per = g.output().rowSize();
            for (int k = k0; k < k1; k++) {
                if (alphas[k] == 0f || alphas[k] == 1f) {
                    double[] o = new double[batch];
                    for (int i = 0; i < batch; i++) {
                        o[i] = g.output().data()[((k - k0) * batch + i) * per + targets[i]];
                    }
                    if (alphas[k] == 0f) {
                        atBase = o;
                    } else {
                        atInput = o;
                    }
                }
            }
            progress.stepsDone(k1, steps);
        }
        return new Result(new Tensor(x.shape(), acc), atBase, atInput);
    }
}
