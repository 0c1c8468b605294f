package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.ModelRunner;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Captum's {@code DeepLift} with the rescale rule (Shrikumar et al. 2017): one forward pass over the
 * inputs and their baselines together, then one backward in which every ReLU, LeakyRelu, Sigmoid,
 * Tanh, Elu and Softplus multiplies by Δout/Δin instead of its derivative ({@link ModelRunner#deepLift});
 * MaxPool keeps its gradient, as Captum 0.8.0 computes it (its reference on a max-pooling CNN matches
 * only that, and misses completeness there by up to 2.9), or with {@link #maxPoolRule} takes the
 * max-pool rule Captum documents, which is complete; attributions = multipliers ⊙ (x − baseline)
 * ({@code multiply_by_inputs}, default true), and the convergence delta
 * Σ attributions − (F(x) − F(baseline)). One forward and one backward instead of IG's n_steps.
 */
public final class DeepLift {
    private final Model model;
    private final boolean multiplyByInputs;
    private final List<Baseline> baselines;
    private final boolean returnConvergenceDelta;
    private final boolean maxPoolRule;
    /** Captum's LayerDeepLift / NeuronDeepLift layer (a node's output), or null: the inputs. */
    private final String layer;
    /** NeuronDeepLift's neuron (flat index in the layer's example), or null: LayerDeepLift. */
    private final Integer neuron;

    public DeepLift(Model model) {
        this(model, true, List.of(Baseline.zeros()), false, false, null, null);
    }

    private DeepLift(Model model, boolean multiplyByInputs, List<Baseline> baselines, boolean delta, boolean maxPoolRule,
            String layer, Integer neuron) {
        this.model = model;
        this.multiplyByInputs = multiplyByInputs;
        this.baselines = baselines;
        this.returnConvergenceDelta = delta;
        this.maxPoolRule = maxPoolRule;
        this.layer = layer;
        this.neuron = neuron;
    }

    /**
     * Captum's {@code LayerDeepLift} at {@code layer} (a node's output; Captum's default
     * {@code attribute_to_layer_input=False}): the multipliers of the target at the layer under the
     * rescale rule, times layer(x) − layer(baseline) ({@code multiply_by_inputs}); the attributions
     * have the layer's shape and the convergence delta is Σ attributions − (F(x) − F(baseline)).
     */
    public static DeepLift layer(Model model, String layer) {
        LayerIntegratedGradients.checkLayer(model, layer, "layer_deeplift");
        return new DeepLift(model, true, List.of(Baseline.zeros()), false, false, layer, null);
    }

    /**
     * Captum's {@code NeuronDeepLift}: the rescale rule's multipliers of one neuron of {@code layer}
     * (flat index in its example; the target is not used) at the inputs, times (x − baseline).
     * Captum returns no convergence delta here; {@link #returnConvergenceDelta} gives
     * Σ attributions − (neuron(x) − neuron(baseline)).
     */
    public static DeepLift neuron(Model model, String layer, int neuron) {
        LayerIntegratedGradients.checkLayer(model, layer, "neuron_deeplift");
        return new DeepLift(model, true, List.of(Baseline.zeros()), false, false, layer, neuron);
    }

    public DeepLift multiplyByInputs(boolean on) {
        return new DeepLift(model, on, baselines, returnConvergenceDelta, maxPoolRule, layer, neuron);
    }

    /** The documented max-pool rule (complete) instead of the gradient Captum 0.8.0 takes through MaxPool. */
    public DeepLift maxPoolRule(boolean on) {
        return new DeepLift(model, multiplyByInputs, baselines, returnConvergenceDelta, on, layer, neuron);
    }

    public DeepLift baselines(Baseline... b) {
        if (b.length == 0) {
            throw new InvalidInputException("no baseline given");
        }
        return new DeepLift(model, multiplyByInputs, List.of(b), returnConvergenceDelta, maxPoolRule, layer, neuron);
    }

    public DeepLift returnConvergenceDelta(boolean on) {
        return new DeepLift(model, multiplyByInputs, baselines, on, maxPoolRule, layer, neuron);
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
        int batch = in.batch();
        int[] seedAt;
        if (neuron == null) {
            seedAt = model.targets(targets, batch);
        } else {
            seedAt = new int[batch];
            java.util.Arrays.fill(seedAt, neuron);
        }
        String what = layer == null ? "deeplift" : neuron == null ? "layer_deeplift" : "neuron_deeplift";
        Map<String, Tensor> base = Baseline.forInputs(baselines, names, in, what);
        Map<String, Tensor> reference = new HashMap<>(in.values());
        base.forEach((n, b) -> {
            model.checkBatch(b, "baseline of '" + n + "'");
            reference.put(n, b);
        });
        boolean atLayer = layer != null && neuron == null;
        Set<String> wrt = atLayer ? Set.of(layer) : Set.copyOf(names);
        String seedValue = neuron == null ? model.graph().outputName() : layer;
        DevicePolicy.Ran<Attribution> ran = model.run(what.replace('_', ' '), r -> {
            ModelRunner.DeepLiftResult d = r.deepLift(in.values(), reference, seedValue, seedAt, wrt, maxPoolRule);
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : atLayer ? List.of(layer) : names) {
                Tensor mt = d.multipliers().get(n);
                float[] m = mt.data();
                float[] x = atLayer ? d.valuesAtInput().get(n).data() : in.get(n).data();
                float[] b = atLayer ? d.valuesAtReference().get(n).data() : base.get(n).data();
                float[] a = new float[m.length];
                for (int j = 0; j < a.length; j++) {
                    a[j] = multiplyByInputs ? m[j] * (x[j] - b[j]) : m[j];
                }
                by.put(n, new Tensor(atLayer ? mt.shape() : in.get(n).shape(), a));
            }
            Tensor delta = returnConvergenceDelta
                    ? IntegratedGradients.convergenceDelta(by.values(), d.outputAtInput(), d.outputAtReference()) : null;
            return Attribution.of(by, delta, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
