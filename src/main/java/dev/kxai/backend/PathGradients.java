package dev.kxai.backend;

import dev.kxai.tensor.Tensor;

/**
 * Σ_k w_k ∇F_t(b + α_k (x − b)) for every example, accumulated chunk by chunk where the backend
 * computes: the method owns the loop over chunks ({@code dev.kxai.attr.PathLoop}), the backend
 * only runs "these steps". The model outputs at α = 0 and α = 1 are kept when the rule evaluates
 * them, so the convergence delta needs no extra forward pass then. Not thread-safe: one per call.
 */
public interface PathGradients extends AutoCloseable {
    /**
     * Adds steps [k0, k1) to the accumulated sum. A {@link dev.kxai.DeviceException} that says out
     * of memory leaves the sum untouched: the caller may retry the steps in smaller chunks.
     */
    void run(int k0, int k1);

    /** The accumulated sum, in the input's space (with the first-layer saving, its transpose applied). */
    Result result();

    /** One result per target set of a path opened for several ({@link ModelRunner#openPath(PathInputs,
     * float[], float[], int[][], boolean)}), in their order. */
    default java.util.List<Result> results() {
        return java.util.List.of(result());
    }

    @Override
    void close();

    /**
     * @param gradientSums  Σ_k w_k g_k per example for each path value ({@link PathInputs#names}), its shape
     * @param outputAtBase  F_t(b_i) per example, or null if no step had α = 0
     * @param outputAtInput F_t(x_i) per example, or null if no step had α = 1
     */
    record Result(java.util.List<Tensor> gradientSums, double[] outputAtBase, double[] outputAtInput) {
        public Result {
            gradientSums = java.util.List.copyOf(gradientSums);
        }

        /** The first path value's sum (the only one of a single-input path). */
        public Tensor gradientSum() {
            return gradientSums.get(0);
        }
    }
}
