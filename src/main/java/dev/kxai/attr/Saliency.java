package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.tensor.Tensor;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Captum's {@code Saliency}: the input gradient of the target output, absolute by default. */
public final class Saliency {
    private final Model model;

    public Saliency(Model model) {
        this.model = model;
    }

    public Attribution attribute(Tensor x, int... targets) {
        return attribute(x, true, targets);
    }

    public Attribution attribute(Tensor x, boolean abs, int... targets) {
        return attribute(model.inputs(x), abs, targets);
    }

    /** One gradient per attributed input (float inputs that are not additional), from one backward pass. */
    public Attribution attribute(Inputs in, boolean abs, int... targets) {
        model.check(in);
        int[] t = model.targets(targets, in.batch());
        List<String> names = model.attributed(in);
        var ran = model.run("saliency", r -> r.gradients(in.values(), t, new HashSet<>(names)));
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String name : names) {
            float[] g = ran.value().get(name).data().clone();
            if (abs) {
                for (int i = 0; i < g.length; i++) {
                    g[i] = Math.abs(g[i]);
                }
            }
            out.put(name, new Tensor(in.get(name).shape(), g));
        }
        return Attribution.of(out, null, ran.device(), ran.fallbackReason());
    }
}
