package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.tensor.Tensor;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Captum's {@code InputXGradient}: input ⊙ input gradient of the target output. */
public final class InputXGradient {
    private final Model model;

    public InputXGradient(Model model) {
        this.model = model;
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    /** One attribution per attributed input (float inputs that are not additional), from one backward pass. */
    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(in, new int[][] {targets}).get(0);
    }

    /** Several targets from one forward pass and one backward per target set (Captum: a full pass each). */
    public List<Attribution> attribute(Inputs in, int[][] targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        int[][] t = new int[targets.length][];
        for (int j = 0; j < t.length; j++) {
            t[j] = model.targets(targets[j], in.batch());
        }
        List<String> names = model.attributed(in);
        var ran = model.run("input_x_gradient", r -> r.gradients(in.values(), t, new HashSet<>(names)));
        List<Attribution> all = new java.util.ArrayList<>();
        for (Map<String, Tensor> g : ran.value()) {
            all.add(Attribution.of(times(in, names, g), null, ran.device(), ran.fallbackReason()));
        }
        return all;
    }

    private static Map<String, Tensor> times(Inputs in, List<String> names, Map<String, Tensor> grads) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String name : names) {
            float[] g = grads.get(name).data();
            float[] xd = in.get(name).data();
            float[] a = new float[g.length];
            for (int i = 0; i < a.length; i++) {
                a[i] = xd[i] * g[i];
            }
            out.put(name, new Tensor(in.get(name).shape(), a));
        }
        return out;
    }
}
