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

    public DeepLift(Model model) {
        this(model, true, List.of(Baseline.zeros()), false, false);
    }

    private DeepLift(Model model, boolean multiplyByInputs, List<Baseline> baselines, boolean delta, boolean maxPoolRule) {
        this.model = model;
        this.multiplyByInputs = multiplyByInputs;
        this.baselines = baselines;
        this.returnConvergenceDelta = delta;
        this.maxPoolRule = maxPoolRule;
    }

    public DeepLift multiplyByInputs(boolean on) {
        return new DeepLift(model, on, baselines, returnConvergenceDelta, maxPoolRule);
    }

    /** The documented max-pool rule (complete) instead of the gradient Captum 0.8.0 takes through MaxPool. */
    public DeepLift maxPoolRule(boolean on) {
        return new DeepLift(model, multiplyByInputs, baselines, returnConvergenceDelta, on);
    }

    public DeepLift baselines(Baseline... b) {
        if (b.length == 0) {
            throw new InvalidInputException("no baseline given");
        }
        return new DeepLift(model, multiplyByInputs, List.of(b), returnConvergenceDelta, maxPoolRule);
    }

    public DeepLift returnConvergenceDelta(boolean on) {
        return new DeepLift(model, multiplyByInputs, baselines, on, maxPoolRule);
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
        Map<String, Tensor> base = Baseline.forInputs(baselines, names, in, "deeplift");
        Map<String, Tensor> reference = new HashMap<>(in.values());
        base.forEach((n, b) -> {
            model.checkBatch(b, "baseline of '" + n + "'");
            reference.put(n, b);
        });
        DevicePolicy.Ran<Attribution> ran = model.run("deeplift", r -> {
            ModelRunner.DeepLiftResult d = r.deepLift(in.values(), reference, t, Set.copyOf(names), maxPoolRule);
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : names) {
                float[] m = d.multipliers().get(n).data();
                float[] x = in.get(n).data();
                float[] b = base.get(n).data();
                float[] a = new float[m.length];
                for (int j = 0; j < a.length; j++) {
                    a[j] = multiplyByInputs ? m[j] * (x[j] - b[j]) : m[j];
                }
                by.put(n, new Tensor(in.get(n).shape(), a));
            }
            Tensor delta = returnConvergenceDelta
                    ? IntegratedGradients.convergenceDelta(by.values(), d.outputAtInput(), d.outputAtReference()) : null;
            return Attribution.of(by, delta, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
