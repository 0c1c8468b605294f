package dev.kxai.cli;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * The perturbation methods' options (a picocli mixin), turned into Captum's parameter names:
 * occlusion's window and strides, a feature mask, sample counts, the seed, caller-given samples.
 */
final class PerturbationOptions {
    @picocli.CommandLine.Mixin
    PathMethodOptions paths = new PathMethodOptions();

    @Option(names = "--sliding-window", paramLabel = "D0,D1,...", split = ",", description = "occlusion: "
            + "sliding_window_shapes over one example's axes, e.g. 3,16,16 for an image [C, H, W].")
    int[] slidingWindow;

    @Option(names = "--strides", paramLabel = "S|S0,S1,...", split = ",", description = "occlusion: the window's step "
            + "per axis, or one for all (default: 1).")
    int[] strides;

    @Option(names = "--feature-mask", paramLabel = "[NAME=]MASK.npy", description = {"feature_ablation, "
            + "neuron_feature_ablation, layer_feature_ablation (over the --layer's example: Captum's layer_mask), "
            + "feature_permutation, shapley_values, shapley_value_sampling, kernel_shap, lime: integer group ids that "
            + "move together", "(the example's shape, [1, ...] or one per row); default: every scalar alone. Repeat as "
            + "NAME=FILE per input."})
    java.util.List<String> featureMasks;

    @Option(names = "--superpixels", paramLabel = "N", description = "A feature mask of N×N squares over each image, "
            + "shared by its channels (for every attributed input without a --feature-mask).")
    Integer superpixels;

    @Option(names = "--n-samples", description = "shapley_value_sampling (default 25), kernel_shap (25), lime (50): "
            + "orderings or coalitions sampled per example.")
    Integer nSamples;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the sampling methods (default: ${DEFAULT-VALUE}); "
            + "the same seed gives the same result on every backend.")
    long seed;

    @Option(names = "--perturbations-per-eval", description = "At most this many perturbations of the batch per "
            + "forward pass (default: as many as the memory budget allows).")
    Integer perturbationsPerEval;

    @Option(names = "--samples", paramLabel = "Z.npy", description = "kernel_shap, lime: the coalitions to use, "
            + "[samples, groups] of 0/1, the same for every example (e.g. Captum's, to compare exactly).")
    Path samples;

    @Option(names = "--sample-weights", paramLabel = "W.npy", description = "kernel_shap, lime: a weight per sample "
            + "of --samples (default: the method's kernel).")
    Path sampleWeights;

    @Option(names = "--interpretable-model", description = "lime: lasso (default, alpha 0.01) or linear_regression.")
    String interpretableModel;

    @Option(names = "--alpha", description = "lime: the Lasso's alpha (default 0.01).")
    Double alpha;

    @Option(names = "--kernel-width", description = "lime: width of the exponential similarity kernel (default 1.0).")
    Double kernelWidth;

    @Option(names = "--neuron", paramLabel = "I0,I1,...", split = ",", description = "neuron_* methods "
            + "(neuron_gradient, neuron_integrated_gradients, neuron_conductance, neuron_deeplift, neuron_deeplift_shap, "
            + "neuron_gradient_shap, neuron_guided_backprop, neuron_deconvolution, neuron_feature_ablation): the neuron's "
            + "index in the --layer's example shape (or one flat index).")
    int[] neuron;

    @Option(names = "--lrp-rule", paramLabel = "KEY=RULE,...", description = {"lrp, layer_lrp: rules per layer over "
            + "Captum's default (epsilon 1e-9 everywhere). KEY: an op type (Conv, Gemm, MatMul, MaxPool, AveragePool, "
            + "GlobalAveragePool, BatchNormalization, Add) or a node or value name ('kxai info --model' lists them); "
            + "RULE: epsilon[:EPS], gamma[:GAMMA][:zero_bias], alpha1_beta0[:zero_bias], identity. A bare word is a "
            + "composite to start from: captum, epsilon_plus, epsilon_gamma.",
            "e.g. --lrp-rule Conv=gamma:0.25,/6/Gemm=epsilon:1e-6"})
    String lrpRule;

    @Option(names = "--noise-tunnel", paramLabel = "TYPE", description = "Wrap the method in Captum's NoiseTunnel: "
            + "smoothgrad, smoothgrad_sq or vargrad over --nt-samples noisy copies of each example.")
    String noiseTunnel;

    @Option(names = "--nt-samples", description = "Noise tunnel: noisy samples per example (default 5).")
    Integer ntSamples;

    @Option(names = "--nt-samples-batch-size", description = "Noise tunnel: samples per example explained in one call "
            + "(default: all).")
    Integer ntSamplesBatchSize;

    @Option(names = "--stdevs", split = ",", description = "Noise tunnel (default 1.0) and gradient_shap (default 0.0): "
            + "the noise's standard deviation, one for all attributed inputs or one per input.")
    java.util.List<Double> stdevs;

    /** Adds the options given to a method's parameters (superpixel masks for the attributed inputs of {@code in}). */
    void addTo(Map<String, Object> params, Model m, dev.kxai.Inputs in) {
        paths.addTo(params);
        if (slidingWindow != null) {
            params.put("sliding_window_shapes", slidingWindow);
        }
        if (strides != null) {
            params.put("strides", strides);
        }
        Map<String, Tensor> masks = new java.util.LinkedHashMap<>();
        if (featureMasks != null) {
            for (String arg : featureMasks) {
                int eq = arg.indexOf('=');
                String name = eq > 0 ? arg.substring(0, eq) : m.graph().inputName();
                if (eq <= 0 && m.inputs().size() > 1) {
                    throw new InvalidInputException("--feature-mask " + arg + ": the model has inputs " + m.describeInputs()
                            + "; give NAME=FILE");
                }
                masks.put(name, NpyIO.read(Path.of(eq > 0 ? arg.substring(eq + 1) : arg)));
            }
        }
        if (superpixels != null) {
            for (String name : m.attributed(in)) {
                if (!masks.containsKey(name)) {
                    masks.put(name, dev.kxai.attr.perturbation.FeatureMasks.grid(
                            m.runner().plan().exampleShape(name), superpixels));
                }
            }
        }
        if (!masks.isEmpty()) {
            params.put("feature_mask", masks);
        }
        if (nSamples != null) {
            params.put("n_samples", nSamples);
        }
        params.put("seed", seed);
        if (perturbationsPerEval != null) {
            params.put("perturbations_per_eval", perturbationsPerEval);
        }
        if (samples != null) {
            params.put("samples", NpyIO.read(samples));
            if (sampleWeights != null) {
                params.put("weights", NpyIO.read(sampleWeights));
            }
        } else if (sampleWeights != null) {
            throw new InvalidInputException("--sample-weights needs --samples (the weights belong to given samples)");
        }
        if (interpretableModel != null) {
            params.put("interpretable_model", interpretableModel);
        }
        if (alpha != null) {
            params.put("alpha", alpha);
        }
        if (kernelWidth != null) {
            params.put("kernel_width", kernelWidth);
        }
        if (neuron != null) {
            params.put("neuron", neuron);
        }
        if (lrpRule != null) {
            params.put("rules", lrpRule);
        }
        if (noiseTunnel != null) {
            params.put("nt_type", noiseTunnel);
        }
        if (ntSamples != null) {
            params.put("nt_samples", ntSamples);
        }
        if (ntSamplesBatchSize != null) {
            params.put("nt_samples_batch_size", ntSamplesBatchSize);
        }
        if (stdevs != null) {
            params.put("stdevs", stdevs);
        }
    }
}
