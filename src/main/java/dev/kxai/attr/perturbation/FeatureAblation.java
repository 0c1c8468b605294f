package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.Perturbation;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Captum's {@code FeatureAblation}: each feature group of each attributed input is set to its
 * baseline alone, and every feature of the group gets F_t(x) − F_t(x with the group ablated).
 * Groups are numbered per input ({@code feature_mask}; default one per scalar). All ablations of
 * the batch, and the unperturbed rows, run as batched forward passes.
 */
public final class FeatureAblation {
    private final Model model;
    private final Settings settings;

    public FeatureAblation(Model model) {
        this(model, Settings.defaults());
    }

    public FeatureAblation(Model model, Settings settings) {
        this.model = model;
        this.settings = settings;
    }

    public FeatureAblation settings(Settings s) {
        return new FeatureAblation(model, s);
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        FeatureGroups groups = FeatureGroups.of(model, in, settings.baselines(), settings.featureMasks(), false,
                "feature_ablation");
        int[] t = model.targets(targets, in.batch());
        return run(model, groups, t, settings, "feature ablation", null);
    }

    /**
     * The ablation loop, shared with {@link FeaturePermutation}: one unperturbed sample per row,
     * then one per (input, row, group present in the row); {@code replacement} (by input) replaces
     * the baseline where not null.
     */
    static Attribution run(Model model, FeatureGroups groups, int[] t, Settings settings, String what,
            Map<String, Tensor> replacement) {
        return run(model, groups, t, settings, what, replacement, null);
    }

    /**
     * As {@link #run(Model, FeatureGroups, int[], Settings, String, Map)}; with {@code atValue} (a
     * layer) the samples are reduced to {@code atValue}'s flat element {@code t[row]} (a neuron)
     * instead of the model output's target.
     */
    static Attribution run(Model model, FeatureGroups groups, int[] t, Settings settings, String what,
            Map<String, Tensor> replacement, String atValue) {
        int batch = groups.batch();
        List<int[]> samples = new ArrayList<>(); // {home, input, group}
        for (int r = 0; r < batch; r++) {
            samples.add(new int[] {r, -1, -1});
        }
        for (int i = 0; i < groups.inputs.size(); i++) {
            FeatureGroups.Input gi = groups.inputs.get(i);
            boolean[][] present = gi.present(batch, gi.groups());
            for (int r = 0; r < batch; r++) {
                for (int g = 0; g < gi.groups(); g++) {
                    if (present[r][g]) {
                        samples.add(new int[] {r, i, g});
                    }
                }
            }
        }
        int n = samples.size();
        int[] home = new int[n];
        Map<String, Perturbation.Rule> rules = new LinkedHashMap<>();
        for (int i = 0; i < groups.inputs.size(); i++) {
            FeatureGroups.Input gi = groups.inputs.get(i);
            int[] group = new int[n];
            for (int s = 0; s < n; s++) {
                int[] d = samples.get(s);
                home[s] = d[0];
                group[s] = d[1] == i ? d[2] : -1;
            }
            Tensor base = replacement != null ? replacement.get(gi.name()) : gi.baseline();
            rules.put(gi.name(), new Perturbation.Single(base, gi.mask(), gi.perRow(), group));
        }
        Perturbation p = new Perturbation(groups.all.values(), home, rules);
        DevicePolicy.Ran<Attribution> ran = model.run(what, runner -> {
            double[] f = atValue == null ? PerturbationLoop.evaluate(runner, p, t, settings.chunks(batch),
                    settings.progress(), PerturbationLoop.Output.TARGET)
                    : PerturbationLoop.evaluate(runner, p.samples(), s -> t[p.home()[s]],
                            (s0, s1) -> runner.evaluatePerturbed(p, s0, s1, atValue), settings.chunks(batch),
                            settings.progress(), PerturbationLoop.Output.TARGET);
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (int i = 0; i < groups.inputs.size(); i++) {
                FeatureGroups.Input gi = groups.inputs.get(i);
                double[][] value = new double[batch][gi.groups()];
                for (int s = batch; s < n; s++) {
                    int[] d = samples.get(s);
                    if (d[1] == i) {
                        // Captum's eval_diff: a float32 difference of float32 outputs (double then one rounding is the same)
                        value[d[0]][d[2]] = (float) (f[d[0]] - f[s]);
                    }
                }
                by.put(gi.name(), gi.spread(value));
            }
            return Attribution.of(by, null, runner.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
