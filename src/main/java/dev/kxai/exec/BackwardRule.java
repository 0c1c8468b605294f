package dev.kxai.exec;

import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import java.util.function.Supplier;

/**
 * The backward of one node in a backward pass: by default the operator's gradient; a method that
 * needs another rule (guided backprop and deconvolution on ReLU, DeepLift's rescale) replaces it
 * for the operator kinds it cares about and leaves the rest to the gradient.
 *
 * @param <T> the backend's tensor type
 */
@FunctionalInterface
public interface BackwardRule<T> {
    /**
     * The gradients of the node's inputs (null where {@code call.need()} is false), or null to take
     * the operator's gradient ({@code call.gradient()}).
     */
    T[] backward(Call<T> call);

    /** The plain gradient everywhere. */
    static <T> BackwardRule<T> gradient() {
        return c -> null;
    }

    /** {@code rule} for the nodes whose operator is of kind {@code op}, the gradient elsewhere. */
    static <T> BackwardRule<T> forOp(Class<? extends Op> op, BackwardRule<T> rule) {
        return c -> op.isInstance(c.node().op()) ? rule.backward(c) : null;
    }

    /**
     * One node's backward: its inputs and output from the forward pass (null for a value a fused
     * group did not materialise), what the forward saved for it, the gradient arriving at its
     * output, which inputs need a gradient, and the operator's own gradient on demand.
     */
    record Call<T>(Arena arena, Node node, int index, T[] inputs, T output, Object saved, T gradOut, boolean[] need,
            Supplier<T[]> gradient) {
    }
}
