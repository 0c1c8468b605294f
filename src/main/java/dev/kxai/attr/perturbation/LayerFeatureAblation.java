package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Baseline;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.tensor.Tensor;
import java.util.Set;

/**
 * Captum's {@code LayerFeatureAblation} (attribute_to_layer_input=False): {@code FeatureAblation}
 * over a layer's output (a node's output value). The layer is evaluated at the batch once, then
 * each group of {@code layer_mask} (default: every element alone) is set to {@code layer_baselines}
 * (default 0; a scalar, the layer's shape, or one example broadcast) with the rest of the network
 * run from the layer (the model's inputs given unchanged to whatever else reads them), and every
 * element of the group gets F_t(x) − F_t(x with the group ablated at the layer). The attributions
 * have the layer's shape. The ablated rows are built where the model runs, as for feature ablation.
 */
public final class LayerFeatureAblation {
    private final Model model;
    private final String layer;
    private final Baseline layerBaseline;
    private final Tensor layerMask;
    private final Settings settings;

    public LayerFeatureAblation(Model model, String layer, Baseline layerBaseline, Tensor layerMask, Settings settings) {
        if (layer == null || !model.graph().valueNames().contains(layer)) {
            throw new InvalidInputException("layer_feature_ablation needs a layer: the name of a value a node computes "
                    + "(--layer NAME)" + (layer == null ? "" : "; no node computes '" + layer + "'"));
        }
        this.model = model;
        this.layer = layer;
        this.layerBaseline = layerBaseline == null ? Baseline.zeros() : layerBaseline;
        this.layerMask = layerMask;
        this.settings = settings;
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        int[] t = model.targets(targets, in.batch());
        DevicePolicy.Ran<Tensor> value = model.run("layer feature ablation",
                r -> r.evaluate(in.values(), Set.of(layer)).get(layer));
        FeatureGroups groups = FeatureGroups.forValue(layer, value.value(), layerBaseline, layerMask, in,
                "layer_feature_ablation");
        return FeatureAblation.run(model, groups, t, settings, "layer feature ablation", null);
    }
}
