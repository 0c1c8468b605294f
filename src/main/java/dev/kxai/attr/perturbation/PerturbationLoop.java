package dev.kxai.attr.perturbation;

import dev.kxai.DeviceException;
import dev.kxai.attr.ChunkPolicy;
import dev.kxai.attr.Progress;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.Perturbation;
import dev.kxai.tensor.Tensor;
import java.util.function.IntUnaryOperator;
import java.util.logging.Logger;

/**
 * The chunk loop of the perturbation methods: the targeted output of every sample of a
 * {@link Perturbation}, evaluated in chunks of rows sized by a {@link ChunkPolicy} (the runner's
 * memory budget at a forward-only pass's peak per row, or {@code internal_batch_size}); a chunk that runs out of device memory is retried
 * with half the rows. The perturbed rows are built by the backend, chunk by chunk; or, for rows
 * with no compact description (random noise: the metrics' infidelity), by the caller.
 */
public final class PerturbationLoop {
    private static final Logger LOG = Logger.getLogger(PerturbationLoop.class.getName());

    private PerturbationLoop() {
    }

    /** What a sample's output row is reduced to. */
    public enum Output {
        /** The output value at the target (Captum's forward output with {@code target}). */
        TARGET,
        /** The softmax probability of the target (deletion and insertion curves). */
        TARGET_PROBABILITY
    }

    /**
     * out[s] = F_t(sample s), t being the target of the sample's home row.
     *
     * @param rowTargets the target of each row of the batch
     */
    public static double[] evaluate(ModelRunner runner, Perturbation p, int[] rowTargets, ChunkPolicy policy,
            Progress progress, Output output) {
        return evaluate(runner, p.samples(), s -> rowTargets[p.home()[s]], (s0, s1) -> runner.evaluatePerturbed(p, s0, s1),
                policy, progress, output);
    }

    /** The model's output rows for samples [s0, s1): shape [s1 − s0, ...output row]. */
    @FunctionalInterface
    public interface Chunk {
        Tensor evaluate(int s0, int s1);
    }

    /**
     * The same loop over samples that the caller evaluates chunk by chunk (rows that have no compact
     * description, built on the host: random noise): out[s] = F_{target(s)}(sample s).
     */
    public static double[] evaluate(ModelRunner runner, int samples, IntUnaryOperator target, Chunk chunkOutputs,
            ChunkPolicy policy, Progress progress, Output output) {
        double[] out = new double[samples];
        int chunk = policy.rowsPerForwardChunk(runner, samples);
        int s0 = 0;
        while (s0 < samples) {
            int s1 = Math.min(samples, s0 + chunk);
            Tensor y;
            try {
                y = chunkOutputs.evaluate(s0, s1);
            } catch (DeviceException e) {
                if (e.outOfMemory() && s1 - s0 > 1) {
                    chunk = policy.afterOutOfMemory(s1 - s0);
                    LOG.info("device out of memory at " + (s1 - s0) + " perturbed rows per pass; retrying with " + chunk);
                    continue;
                }
                throw e;
            }
            int per = y.rowSize();
            float[] v = y.data();
            for (int s = s0; s < s1; s++) {
                int t = target.applyAsInt(s);
                int row = (s - s0) * per;
                out[s] = output == Output.TARGET ? v[row + t] : softmaxAt(v, row, per, t);
            }
            progress.stepsDone(s1, samples);
            s0 = s1;
        }
        return out;
    }

    /** exp(v_t − max) / Σ exp(v_j − max) over one row, in double. */
    static double softmaxAt(float[] v, int row, int per, int t) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < per; j++) {
            max = Math.max(max, v[row + j]);
        }
        double sum = 0;
        for (int j = 0; j < per; j++) {
            sum += Math.exp(v[row + j] - max);
        }
        return Math.exp(v[row + t] - max) / sum;
    }
}
