package dev.kxai.backend;

import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;

/**
 * A graph prepared on one backend. Thread-safe: every call owns its own activations, so a
 * service can share one runner between request threads.
 */
public interface ModelRunner extends AutoCloseable {
    Graph graph();

    Backend backend();

    /** Shape of one example (input shape without the batch axis). */
    int[] exampleShape();

    /** Number of output values per example (the range of valid targets). */
    int outputsPerExample();

    /** Floats of activations and gradients one example needs in a forward+backward pass. */
    long workingFloatsPerExample();

    /** The model's output for a batch. */
    Tensor forward(Tensor x);

    /**
     * Forward, then backward from a one-hot seed at {@code targets[r]} of each row's output.
     *
     * @return the outputs and the gradient of output[r, targets[r]] with respect to x[r]
     */
    Gradient gradient(Tensor x, int[] targets);

    /**
     * Σ_k w_k ∇F_t(b + α_k (x − b)) per example, in chunks of {@code stepsPerChunk} steps (an upper
     * bound: a backend may take fewer to fit its memory). The default runs the path on the host
     * through {@link #gradient}; a device backend overrides it to keep the path on the device.
     */
    default PathIntegral.Result integratePath(Tensor x, Tensor base, float[] alphas, float[] weights, int[] targets,
            int stepsPerChunk, PathIntegral.Progress progress) {
        return integratePath(x, base, alphas, weights, targets, stepsPerChunk, progress, false);
    }

    /**
     * As above; with {@code affineFirstLayer} a backend may use DESIGN.md's first saving: when the
     * input feeds one Conv/Gemm with constant weights, that layer is affine in α, so its outputs
     * at x and b are computed once and each step's pre-activation is interpolated from them; the
     * backward accumulates in that layer's output space and applies its transpose once per
     * example. Mathematically equal to the plain path; backends without it ignore the flag.
     */
    default PathIntegral.Result integratePath(Tensor x, Tensor base, float[] alphas, float[] weights, int[] targets,
            int stepsPerChunk, PathIntegral.Progress progress, boolean affineFirstLayer) {
        return PathIntegral.run(this, x, base, alphas, weights, targets, stepsPerChunk, progress);
    }

    /**
     * The node the first-layer saving would compute only at the path's endpoints (the input's
     * one affine reader), or null where the saving does not apply or the backend lacks it.
     */
    default String affineFirstLayerNode() {
        return null;
    }

    /** The output of a forward pass and the input gradient of the targeted outputs. */
    record Gradient(Tensor output, Tensor inputGradient) {
    }

    @Override
    default void close() {
    }
}
