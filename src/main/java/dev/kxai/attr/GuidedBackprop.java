package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.ModelRunner;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Captum's {@code GuidedBackprop} and {@code Deconvolution}: the gradient of the target with every
 * Relu node's backward replaced, guided backprop by relu of the ordinary input gradient (only
 * positive gradients through active units), deconvolution by relu of the arriving gradient (the
 * unit's own activation ignored). Captum hooks {@code nn.ReLU} modules; every ONNX Relu node is one.
 * Other activations keep their gradients, as in Captum.
 */
public final class GuidedBackprop {
    private final Model model;
    private final ModelRunner.ReluRule rule;
    /** NeuronGuidedBackprop / NeuronDeconvolution: the layer and the neuron (flat index), or null. */
    private final String layer;
    private final int neuron;

    private GuidedBackprop(Model model, ModelRunner.ReluRule rule, String layer, int neuron) {
        this.model = model;
        this.rule = rule;
        this.layer = layer;
        this.neuron = neuron;
    }

    public static GuidedBackprop guided(Model model) {
        return new GuidedBackprop(model, ModelRunner.ReluRule.GUIDED_BACKPROP, null, -1);
    }

    public static GuidedBackprop deconvolution(Model model) {
        return new GuidedBackprop(model, ModelRunner.ReluRule.DECONVOLUTION, null, -1);
    }

    /**
     * Captum's {@code NeuronGuidedBackprop}: the guided-backprop gradient of one element of
     * {@code layer} (a node's output; flat index in its example) with respect to the inputs; the
     * target is not used. Every Relu node on the way back from the neuron, the one computing the
     * layer included, takes the guided rule (Captum's hooks on every {@code nn.ReLU}).
     */
    public static GuidedBackprop neuronGuided(Model model, String layer, int neuron) {
        LayerIntegratedGradients.checkLayer(model, layer, "neuron_guided_backprop");
        return new GuidedBackprop(model, ModelRunner.ReluRule.GUIDED_BACKPROP, layer, neuron);
    }

    /** Captum's {@code NeuronDeconvolution}: as {@link #neuronGuided} with the deconvolution rule. */
    public static GuidedBackprop neuronDeconvolution(Model model, String layer, int neuron) {
        LayerIntegratedGradients.checkLayer(model, layer, "neuron_deconvolution");
        return new GuidedBackprop(model, ModelRunner.ReluRule.DECONVOLUTION, layer, neuron);
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
        List<String> names = model.attributed(in);
        int[] t = layer != null ? null : model.targets(targets, in.batch());
        String what = (layer != null ? "neuron " : "")
                + (rule == ModelRunner.ReluRule.GUIDED_BACKPROP ? "guided backprop" : "deconvolution");
        int[] per = new int[in.batch()];
        java.util.Arrays.fill(per, neuron);
        DevicePolicy.Ran<Attribution> ran = model.run(what, r -> {
            Map<String, Tensor> g = layer != null ? r.neuronGradients(in.values(), layer, per, Set.copyOf(names), rule)
                    : r.gradients(in.values(), t, Set.copyOf(names), rule);
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : names) {
                by.put(n, g.get(n));
            }
            return Attribution.of(by, null, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
