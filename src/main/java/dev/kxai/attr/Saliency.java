package dev.kxai.attr;

import dev.kxai.Model;
import dev.kxai.tensor.Tensor;

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
        model.checkBatch(x, "input");
        int[] t = model.targets(targets, x.dim(0));
        var ran = model.run("saliency", r -> r.gradient(x, t).inputGradient());
        float[] g = ran.value().data().clone();
        if (abs) {
            for (int i = 0; i < g.length; i++) {
                g[i] = Math.abs(g[i]);
            }
        }
        return new Attribution(new Tensor(x.shape(), g), null, ran.device(), ran.fallbackReason());
    }
}
