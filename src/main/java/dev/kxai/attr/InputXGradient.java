package dev.kxai.attr;

import dev.kxai.Model;
import dev.kxai.tensor.Tensor;

/** Captum's {@code InputXGradient}: input ⊙ input gradient of the target output. */
public final class InputXGradient {
    private final Model model;

    public InputXGradient(Model model) {
        this.model = model;
    }

    public Attribution attribute(Tensor x, int... targets) {
        model.checkBatch(x, "input");
        int[] t = model.targets(targets, x.dim(0));
        var ran = model.run("input_x_gradient", r -> r.gradient(x, t).inputGradient());
        float[] g = ran.value().data();
        float[] out = new float[g.length];
        float[] xd = x.data();
        for (int i = 0; i < out.length; i++) {
            out[i] = xd[i] * g[i];
        }
        return new Attribution(new Tensor(x.shape(), out), null, ran.device(), ran.fallbackReason());
    }
}
