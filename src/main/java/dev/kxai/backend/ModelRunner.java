package dev.kxai.backend;

import dev.kxai.exec.ExecutionPlan;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.Map;
import java.util.Set;

/**
 * A graph prepared on one backend: its {@link ExecutionPlan} and the backend's operators, run by
 * the one {@link dev.kxai.exec.Executor}. Thread-safe: every call owns its own activations, so a
 * service can share one runner between request threads. Device failures surface as
 * {@link dev.kxai.DeviceException}; {@link DevicePolicy} decides what happens then.
 */
public interface ModelRunner extends AutoCloseable {
    Graph graph();

    Backend backend();

    ExecutionPlan plan();

    /** Where this runner computes: "cpu", "cuda". */
    default String device() {
        return plan().device();
    }

    /** Shape of one example (input shape without the batch axis). */
    default int[] exampleShape() {
        return plan().exampleShape();
    }

    /** Number of output values per example (the range of valid targets). */
    default int outputsPerExample() {
        return plan().outputsPerExample();
    }

    /** Floats of activations and gradients one example needs in a forward+backward pass. */
    default long workingFloatsPerExample() {
        return plan().workingFloatsPerExample();
    }

    /** Floats of activations one example needs at the peak of a forward-only pass. */
    default long forwardFloatsPerExample() {
        return plan().forwardFloatsPerExample();
    }

    /** The model's output for a batch. */
    Tensor forward(Tensor x);

    /**
     * Forward, then backward from a one-hot seed at {@code targets[r]} of each row's output.
     *
     * @return the outputs and the gradient of output[r, targets[r]] with respect to x[r]
     */
    Gradient gradient(Tensor x, int[] targets);

    /**
     * A forward pass from any values (the model input, or intermediate values by name) to the
     * model output and the named {@code taps}; returns those values.
     */
    Map<String, Tensor> evaluate(Map<String, Tensor> given, Set<String> taps);

    /**
     * A forward pass from {@code given}, then the gradient of output[r, targets[r]] of each row with
     * respect to each value in {@code wrt} (the input, or any intermediate value).
     */
    Map<String, Tensor> gradients(Map<String, Tensor> given, int[] targets, Set<String> wrt);

    /**
     * A forward pass from {@code given}, then the gradient of one element of an intermediate value
     * per row ({@code value}[r, flat index {@code neuron[r]}], a neuron) with respect to each of
     * {@code wrt}; the value itself is returned under its own name too.
     */
    Map<String, Tensor> neuronGradients(Map<String, Tensor> given, String value, int[] neuron, Set<String> wrt);

    /**
     * A forward pass from {@code given}, then the gradient of Σ seed ⊙ {@code value} (summed per row)
     * with respect to each of {@code wrt}: {@code value} is the model output or any intermediate value,
     * {@code seed} has its shape at this batch. A one-hot seed on a row's logit is that class's
     * gradient, one on a flat index a neuron's ({@link #neuronGradients} is this), 1/(H·W) on a
     * channel the gradient of the channel's mean (activation maximisation's objectives). The value
     * itself is returned under its own name too.
     */
    Map<String, Tensor> seededGradients(Map<String, Tensor> given, String value, Tensor seed, Set<String> wrt);

    /**
     * Several targets from one forward pass: the forward runs once, then one backward per target set
     * ({@code targets[j]}, one target per row), each giving the gradients at {@code wrt}. Captum
     * needs a full forward and backward per target.
     */
    java.util.List<Map<String, Tensor>> gradients(Map<String, Tensor> given, int[][] targets, Set<String> wrt);

    /** Backward rules that replace ReLU's gradient (Captum's module hooks), for {@link #gradients(Map, int[], Set, ReluRule)}. */
    enum ReluRule {
        /** Guided backprop: relu of the ReLU's ordinary input gradient. */
        GUIDED_BACKPROP,
        /** Deconvolution: relu of the gradient arriving at the ReLU's output, ignoring its input. */
        DECONVOLUTION
    }

    /** As {@link #gradients(Map, int[], Set)} with every Relu node's backward replaced by {@code rule}. */
    Map<String, Tensor> gradients(Map<String, Tensor> given, int[] targets, Set<String> wrt, ReluRule rule);

    /**
     * As {@link #neuronGradients(Map, String, int[], Set)} with every Relu node's backward replaced by
     * {@code rule} (Captum's {@code NeuronGuidedBackprop}, {@code NeuronDeconvolution}).
     */
    Map<String, Tensor> neuronGradients(Map<String, Tensor> given, String value, int[] neuron, Set<String> wrt,
            ReluRule rule);

    /**
     * DeepLift's rescale rule (Captum's {@code DeepLift}): one pass over [given; reference] rows, the
     * backward from the targets of both halves, each ReLU, LeakyRelu, Sigmoid, Tanh, Elu and Softplus
     * node multiplying by Δout/Δin (its ordinary gradient where |Δin| < 1e-10); every other node its
     * gradient. MaxPool takes its gradient too, which is what Captum 0.8.0 computes (its reference
     * outputs on a max-pooling CNN match only that); with {@code maxPoolRule} it takes the max-pool
     * rule Captum documents (the halves' changes routed through both halves' winners), which keeps
     * Σ attributions = F(x) − F(reference).
     *
     * @param reference the reference value of each input of {@code given} (the same value for a fixed input)
     * @return the multipliers at {@code wrt} for the given rows, and F_t at the given and reference rows
     */
    DeepLiftResult deepLift(Map<String, Tensor> given, Map<String, Tensor> reference, int[] targets, Set<String> wrt,
            boolean maxPoolRule);

    /**
     * DeepLift's rescale rule seeded at {@code value} instead of the model output: {@code value} is the
     * model output (one-hot at {@code index[r]}, the targets) or any intermediate value (one-hot at
     * the flat element {@code index[r]} of each row's example: a neuron, Captum's
     * {@code construct_neuron_grad_fn}); both halves are seeded, as Captum's stacked forward is.
     * {@code outputAtInput}/{@code outputAtReference} are then the seeded element at both halves, and
     * {@link DeepLiftResult#valuesAtInput}/{@link DeepLiftResult#valuesAtReference} hold each value of
     * {@code wrt} at both halves (LayerDeepLift's layer(x) and layer(baseline)).
     */
    DeepLiftResult deepLift(Map<String, Tensor> given, Map<String, Tensor> reference, String value, int[] index,
            Set<String> wrt, boolean maxPoolRule);

    /** Multipliers (gradients under the rescale rule) and the targeted outputs at both ends. */
    record DeepLiftResult(Map<String, Tensor> multipliers, double[] outputAtInput, double[] outputAtReference,
            Map<String, Tensor> valuesAtInput, Map<String, Tensor> valuesAtReference) {
        public DeepLiftResult(Map<String, Tensor> multipliers, double[] outputAtInput, double[] outputAtReference) {
            this(multipliers, outputAtInput, outputAtReference, Map.of(), Map.of());
        }
    }

    /**
     * Layer-wise relevance propagation as Captum 0.8.0's {@code LRP} computes it: a forward pass of
     * the model, then a backward pass from a seed of 1 at each row's target in which every layer node
     * (Conv, Gemm, MatMul with its constant bias Add, MaxPool, AveragePool, GlobalAveragePool,
     * BatchNormalization, Add of two activations) applies its {@link LrpRule} from {@code rules},
     * Relu, Tanh, Dropout and Identity pass relevance on unchanged and Flatten, Reshape, Transpose,
     * Squeeze, Unsqueeze and Concat move it (their gradient); any other node on the way is refused
     * with its name. The relevance at each value of {@code wrt} (the input: LRP; any node's output:
     * LayerLRP) is returned multiplied by the row's target output, as Captum does.
     *
     * @return the relevance at each value of {@code wrt} and each row's target output
     */
    LrpResult lrp(Map<String, Tensor> given, int[] targets, Set<String> wrt, LrpRules rules);

    /** Relevance per value, and F_t per row (the relevance the propagation starts from). */
    record LrpResult(Map<String, Tensor> relevance, double[] output) {
    }

    /**
     * A straight path from {@code base} to {@code x} with the quadrature's alphas and weights, for a
     * method's chunk loop (Integrated Gradients): the backend keeps the path where it computes (on
     * CUDA on the device from interpolation to accumulation). With {@code affineFirstLayer} and a
     * plan that has an affine first node, that node runs only at the path's two ends.
     */
    default PathGradients openPath(Tensor x, Tensor base, float[] alphas, float[] weights, int[] targets,
            boolean affineFirstLayer) {
        return openPath(PathInputs.of(graph().inputName(), x, base), alphas, weights, targets, affineFirstLayer);
    }

    /**
     * The general path: every value of {@code p} interpolated with the same α, its fixed values
     * given at every step; the first-layer saving applies only to a path over the first input
     * alone.
     */
    PathGradients openPath(PathInputs p, float[] alphas, float[] weights, int[] targets, boolean affineFirstLayer);

    /**
     * A path for several target sets at once: each chunk runs one forward pass and one backward per
     * set, and {@link PathGradients#results} gives one sum per set (Captum runs the whole path per
     * target). A runner that cannot takes one set only.
     */
    default PathGradients openPath(PathInputs p, float[] alphas, float[] weights, int[][] targets,
            boolean affineFirstLayer) {
        if (targets.length != 1) {
            throw new UnsupportedOperationException(getClass().getSimpleName() + " runs one target set per path");
        }
        return openPath(p, alphas, weights, targets[0], affineFirstLayer);
    }

    /**
     * The model's output for samples [s0, s1) of a {@link Perturbation}, the perturbed rows built
     * where the backend computes: shape [s1 − s0, ...output row].
     */
    Tensor evaluatePerturbed(Perturbation p, int s0, int s1);

    /**
     * As {@link #evaluatePerturbed(Perturbation, int, int)}, returning the rows of {@code value}, any
     * value the forward computes (a layer, for neuron ablation), instead of the model output.
     */
    Tensor evaluatePerturbed(Perturbation p, int s0, int s1, String value);

    /** Bytes one chunk of path steps may use: the free device memory, or the CPU's heap budget. */
    long chunkBudgetBytes();

    /** Why this runner can no longer compute (its device failed), or null while it can. */
    default String unusableReason() {
        return null;
    }

    /** The node the first-layer saving applies to, or null where it does not apply. */
    default String affineFirstLayerNode() {
        int i = plan().affineFirstNode();
        return i >= 0 ? plan().node(i).name() : null;
    }

    /** The output of a forward pass and the input gradient of the targeted outputs. */
    record Gradient(Tensor output, Tensor inputGradient) {
    }

    @Override
    default void close() {
    }
}
