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

    private GuidedBackprop(Model model, ModelRunner.ReluRule rule) {
        this.model = model;
        this.rule = rule;
    }

    public static GuidedBackprop guided(Model model) {
        return new GuidedBackprop(model, ModelRunner.ReluRule.GUIDED_BACKPROP);
    }

    public static GuidedBackprop deconvolution(Model model) {
        return new GuidedBackprop(model, ModelRunner.ReluRule.DECONVOLUTION);
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
        int[] t = model.targets(targets, in.batch());
        String what = rule == ModelRunner.ReluRule.GUIDED_BACKPROP ? "guided backprop" : "deconvolution";
        DevicePolicy.Ran<Attribution> ran = model.run(what, r -> {
            Map<String, Tensor> g = r.gradients(in.values(), t, Set.copyOf(names), rule);
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : names) {
                by.put(n, g.get(n));
            }
            return Attribution.of(by, null, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
