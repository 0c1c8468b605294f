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
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(x, true, targets);
    }

    public Attribution attribute(Tensor x, boolean abs, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), abs, targets);
    }

    /** One gradient per attributed input (float inputs that are not additional), from one backward pass. */
    public Attribution attribute(Inputs in, boolean abs, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(in, abs, new int[][] {targets}).get(0);
    }

    /**
     * Several targets (each one for every row, or one per row) from one forward pass and one
     * backward per target set; Captum runs a full forward and backward for each.
     */
    public List<Attribution> attribute(Inputs in, boolean abs, int[][] targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        int[][] t = new int[targets.length][];
        for (int j = 0; j < t.length; j++) {
            t[j] = model.targets(targets[j], in.batch());
        }
        List<String> names = model.attributed(in);
        var ran = model.run("saliency", r -> r.gradients(in.values(), t, new HashSet<>(names)));
        List<Attribution> all = new java.util.ArrayList<>();
        for (Map<String, Tensor> g : ran.value()) {
            all.add(Attribution.of(gradients(in, names, g, abs), null, ran.device(), ran.fallbackReason()));
        }
        return all;
    }

    private static Map<String, Tensor> gradients(Inputs in, List<String> names, Map<String, Tensor> grads, boolean abs) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String name : names) {
            float[] g = grads.get(name).data().clone();
            if (abs) {
                for (int i = 0; i < g.length; i++) {
                    g[i] = Math.abs(g[i]);
                }
            }
            out.put(name, new Tensor(in.get(name).shape(), g));
        }
        return out;
    }
}
