package dev.kxai.attr;

import dev.kxai.backend.ModelRunner;

/**
 * How many path steps one pass evaluates: the one rule for every method with a path loop.
 * <ul>
 *   <li>{@code internal_batch_size} given (Captum's parameter, in rows = steps × examples): that
 *       many rows, at least one step, and never more than the budget below allows on a device;</li>
 *   <li>else as many steps as fit the runner's budget ({@link ModelRunner#chunkBudgetBytes()}: the
 *       CPU's heap budget, or the device's free memory) at the plan's working set per row;</li>
 *   <li>a chunk that runs out of device memory is retried with half as many steps.</li>
 * </ul>
 * Memory is therefore flat in n_steps.
 */
public record ChunkPolicy(Integer internalBatchSize) {
    public ChunkPolicy {
        if (internalBatchSize != null && internalBatchSize < 1) {
            throw new dev.kxai.InvalidInputException("internal_batch_size must be at least 1, got " + internalBatchSize);
        }
    }

    /** Steps per chunk for {@code batch} examples on a runner, of {@code steps} in all. */
    public int stepsPerChunk(ModelRunner runner, int batch, int steps) {
        long perStep = Math.max(1, 4L * batch * (runner.workingFloatsPerExample() + rowFloats(runner)));
        long fit = Math.max(1, runner.chunkBudgetBytes() / perStep);
        long want = internalBatchSize != null ? Math.max(1, internalBatchSize / batch)
                : fit;
        if (internalBatchSize != null && !runner.device().equals("cpu")) {
            want = Math.min(want, fit); // a device's memory is a hard limit; the heap budget is not
        }
        return (int) Math.max(1, Math.min(steps, want));
    }

    /**
     * Rows per chunk for a loop of forward passes only (the perturbation methods): the same rule,
     * but the budget divided by a forward pass's peak per row ({@link ModelRunner#forwardFloatsPerExample()}:
     * no gradients, and each activation dropped after its last reader) instead of the
     * forward+backward working set, so a perturbation loop runs fewer, larger passes.
     */
    public int rowsPerForwardChunk(ModelRunner runner, int rows) {
        long perRow = Math.max(1, 4L * (runner.forwardFloatsPerExample() + rowFloats(runner)));
        long fit = Math.max(1, runner.chunkBudgetBytes() / perRow);
        long want = internalBatchSize != null ? internalBatchSize : fit;
        if (internalBatchSize != null && !runner.device().equals("cpu")) {
            want = Math.min(want, fit);
        }
        return (int) Math.max(1, Math.min(rows, want));
    }

    /** The path row itself (one example's input), besides the working set. */
    private static long rowFloats(ModelRunner runner) {
        long n = 1;
        for (int d : runner.exampleShape()) {
            n *= d;
        }
        return n;
    }

    /** The chunk to retry with after {@code failed} steps ran out of device memory. */
    public int afterOutOfMemory(int failed) {
        return Math.max(1, failed / 2);
    }
}
