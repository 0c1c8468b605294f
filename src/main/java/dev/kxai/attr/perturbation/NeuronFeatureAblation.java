package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.tensor.Tensor;

/**
 * Captum's {@code NeuronFeatureAblation}: {@code FeatureAblation} of the inputs (the same
 * {@code baselines}, {@code feature_mask}, {@code perturbations_per_eval}) whose forward function is
 * one neuron of {@code layer} (flat index in its example) instead of the target output:
 * attributions = n(x) − n(x with the group ablated), input-shaped. The target is not used. The
 * ablated rows are built where the model runs; each pass reads the layer, not the output.
 */
public final class NeuronFeatureAblation {
    private final Model model;
    private final String layer;
    private final int neuron;
    private final Settings settings;

    public NeuronFeatureAblation(Model model, String layer, int neuron, Settings settings) {
        if (layer == null || !model.graph().valueNames().contains(layer)) {
            throw new InvalidInputException("neuron_feature_ablation needs a layer: the name of a value a node computes "
                    + "(--layer NAME)" + (layer == null ? "" : "; no node computes '" + layer + "'"));
        }
        int per = (int) dev.kxai.tensor.Shapes.size(model.runner().plan().shape(layer, 1));
        if (neuron < 0 || neuron >= per) {
            throw new InvalidInputException("neuron_feature_ablation: neuron " + neuron + " is outside '" + layer + "' of "
                    + per + " elements per example");
        }
        this.model = model;
        this.layer = layer;
        this.neuron = neuron;
        this.settings = settings;
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        FeatureGroups groups = FeatureGroups.of(model, in, settings.baselines(), settings.featureMasks(), false,
                "neuron_feature_ablation");
        int[] n = new int[in.batch()];
        java.util.Arrays.fill(n, neuron);
        return FeatureAblation.run(model, groups, n, settings, "neuron feature ablation", null, layer);
    }
}
