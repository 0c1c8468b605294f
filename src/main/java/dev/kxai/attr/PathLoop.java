package dev.kxai.attr;

import dev.kxai.DeviceException;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathGradients;
import dev.kxai.backend.PathInputs;
import dev.kxai.tensor.Tensor;
import java.util.logging.Logger;

/**
 * The chunk loop of a straight-path method: Σ_k w_k ∇F_t(b + α_k (x − b)) per example, in chunks
 * sized by a {@link ChunkPolicy}, on whatever runner it is given (the backend keeps the path and
 * the accumulator where it computes). A chunk that runs out of device memory is retried smaller;
 * the accumulated sum is untouched until a chunk has succeeded.
 */
public final class PathLoop {
    private static final Logger LOG = Logger.getLogger(PathLoop.class.getName());

    private PathLoop() {
    }

    public static PathGradients.Result integrate(ModelRunner runner, Tensor x, Tensor base, float[] alphas,
            float[] weights, int[] targets, ChunkPolicy policy, Progress progress, boolean affineFirstLayer) {
        return integrate(runner, PathInputs.of(runner.graph().inputName(), x, base), alphas, weights, targets, policy,
                progress, affineFirstLayer);
    }

    /** The loop over a general path: several values interpolated together, others fixed ({@link PathInputs}). */
    public static PathGradients.Result integrate(ModelRunner runner, PathInputs spec, float[] alphas,
            float[] weights, int[] targets, ChunkPolicy policy, Progress progress, boolean affineFirstLayer) {
        return integrate(runner, spec, alphas, weights, new int[][] {targets}, policy, progress, affineFirstLayer).get(0);
    }

    /**
     * The loop for several target sets: one forward per chunk and a backward per set; one result per
     * set. The chunk is sized for the forward and one backward (the backwards run one after another).
     */
    public static java.util.List<PathGradients.Result> integrate(ModelRunner runner, PathInputs spec, float[] alphas,
            float[] weights, int[][] targets, ChunkPolicy policy, Progress progress, boolean affineFirstLayer) {
        int steps = alphas.length;
        int chunk = policy.stepsPerChunk(runner, spec.batch(), steps);
        PathGradients path = targets.length == 1
                ? runner.openPath(spec, alphas, weights, targets[0], affineFirstLayer)
                : runner.openPath(spec, alphas, weights, targets, affineFirstLayer);
        try {
            int k0 = 0;
            while (k0 < steps) {
                // the steps left in equal chunks (sizes differ by one at most), so that a device's pooled
                // buffers from the first chunk fit every later one (no short last chunk)
                int left = steps - k0;
                int k1 = k0 + ceilDiv(left, ceilDiv(left, chunk));
                try {
                    path.run(k0, k1);
                } catch (DeviceException e) {
                    if (e.outOfMemory() && k1 - k0 > 1) {
                        chunk = policy.afterOutOfMemory(k1 - k0);
                        LOG.info("device out of memory at " + (k1 - k0) + " steps per chunk; retrying with " + chunk);
                        continue;
                    }
                    throw e;
                }
                progress.stepsDone(k1, steps);
                k0 = k1;
            }
            return targets.length == 1 ? java.util.List.of(path.result()) : path.results();
        } finally {
            try {
                path.close();
            } catch (DeviceException e) {
                LOG.fine(() -> "freeing the path failed: " + e.getMessage()); // the first error is the one to report
            }
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
