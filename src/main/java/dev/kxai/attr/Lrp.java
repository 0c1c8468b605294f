package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.LrpRules;
import dev.kxai.backend.ModelRunner;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Captum 0.8.0's {@code LRP} and {@code LayerLRP} (Bach et al. 2015): the target output's value is
 * the relevance at the output, and one backward pass hands it down layer by layer, each layer node
 * by its {@link dev.kxai.backend.LrpRule} (by default Captum's epsilon rule at 1e-9 everywhere;
 * {@link LrpRules} assigns others by op type or node name, Zennit-style), Relu, Tanh and Dropout
 * passing it on unchanged ({@link ModelRunner#lrp}). {@code LRP} returns the relevance at the
 * inputs; {@code LayerLRP} at named values (a node's output, or the input of the layer that reads
 * it). The convergence delta is Captum's: F_t − Σ relevance per row (zero when the rules conserve
 * relevance: bias-free layers and ε → 0).
 */
public final class Lrp {
    private final Model model;
    private final LrpRules rules;
    private final List<String> layers;
    private final boolean returnConvergenceDelta;

    public Lrp(Model model) {
        this(model, LrpRules.captum(), List.of(), false);
    }

    private Lrp(Model model, LrpRules rules, List<String> layers, boolean delta) {
        rules.check(model.graph());
        for (String l : layers) {
            LayerIntegratedGradients.checkLayer(model, l, "layer_lrp");
        }
        this.model = model;
        this.rules = rules;
        this.layers = List.copyOf(layers);
        this.returnConvergenceDelta = delta;
    }

    /** Captum's {@code LayerLRP(model, layer)}: the relevance at each named value instead of the inputs. */
    public static Lrp layer(Model model, String... layers) {
        if (layers.length == 0) {
            throw new InvalidInputException("layer_lrp needs a layer: the name of a value a node computes (--layer NAME)");
        }
        return new Lrp(model, LrpRules.captum(), List.of(layers), false);
    }

    /** The rules per layer (Captum's defaults: epsilon 1e-9 on every layer). */
    public Lrp rules(LrpRules r) {
        return new Lrp(model, r, layers, returnConvergenceDelta);
    }

    /** Rules as the CLI writes them, over Captum's defaults ({@link LrpRules#parse}). */
    public Lrp rules(String spec) {
        return rules(LrpRules.parse(spec));
    }

    public Lrp returnConvergenceDelta(boolean on) {
        return new Lrp(model, rules, layers, on);
    }

    public Attribution attribute(Tensor x, int... targets) {
        return attribute(model.inputs(x), targets);
    }

    /** Relevance per attributed input (LRP) or per named layer (LayerLRP), by name. */
    public Attribution attribute(Inputs in, int... targets) {
        model.check(in);
        List<String> names = layers.isEmpty() ? model.attributed(in) : layers;
        int[] t = model.targets(targets, in.batch());
        DevicePolicy.Ran<Attribution> ran = model.run(layers.isEmpty() ? "lrp" : "layer lrp", r -> {
            ModelRunner.LrpResult res = r.lrp(in.values(), t, Set.copyOf(names), rules);
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : names) {
                by.put(n, res.relevance().get(n));
            }
            Tensor delta = null;
            if (returnConvergenceDelta) {
                // Captum's compute_convergence_delta: output − Σ relevance (the inputs together; one layer alone)
                float[] d = new float[t.length];
                for (int row = 0; row < t.length; row++) {
                    double sum = 0;
                    for (String n : layers.isEmpty() ? names : names.subList(0, 1)) {
                        Tensor a = by.get(n);
                        int per = a.rowSize();
                        for (int k = row * per; k < (row + 1) * per; k++) {
                            sum += a.data()[k];
                        }
                    }
                    d[row] = (float) (res.output()[row] - sum);
                }
                delta = new Tensor(new int[] {t.length}, d);
            }
            return Attribution.of(by, delta, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
