package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Captum's {@code DeepLiftShap}: DeepLift from every row of a baseline distribution, averaged
 * (Lundberg and Lee 2017). Every (example, baseline) pair runs in one DeepLift call over
 * batch × K rows, examples repeated K times in a row as Captum expands them; the convergence delta
 * is per pair (Captum's shape, batch·K), and Σ attributions = F(x) − mean_k F(b_k) per example.
 */
public final class DeepLiftShap {
    private final Model model;
    private final boolean multiplyByInputs;
    private final boolean maxPoolRule;
    private final String layer;
    private final Integer neuron;

    public DeepLiftShap(Model model, boolean multiplyByInputs, boolean maxPoolRule) {
        this(model, multiplyByInputs, maxPoolRule, null, null);
    }

    private DeepLiftShap(Model model, boolean multiplyByInputs, boolean maxPoolRule, String layer, Integer neuron) {
        this.model = model;
        this.multiplyByInputs = multiplyByInputs;
        this.maxPoolRule = maxPoolRule;
        this.layer = layer;
        this.neuron = neuron;
    }

    /**
     * Captum's {@code LayerDeepLiftShap}: {@link DeepLift#layer} from every baseline row, averaged
     * (attributions of the layer's shape; the delta per (example, baseline) pair).
     */
    public static DeepLiftShap layer(Model model, String layer, boolean multiplyByInputs, boolean maxPoolRule) {
        LayerIntegratedGradients.checkLayer(model, layer, "layer_deeplift_shap");
        return new DeepLiftShap(model, multiplyByInputs, maxPoolRule, layer, null);
    }

    /** Captum's {@code NeuronDeepLiftShap}: {@link DeepLift#neuron} from every baseline row, averaged. */
    public static DeepLiftShap neuron(Model model, String layer, int neuron, boolean multiplyByInputs,
            boolean maxPoolRule) {
        LayerIntegratedGradients.checkLayer(model, layer, "neuron_deeplift_shap");
        return new DeepLiftShap(model, multiplyByInputs, maxPoolRule, layer, neuron);
    }

    /** @param distributions per attributed input, baseline rows [K, ...example] (the same K for all) */
    public Attribution attribute(Inputs in, List<Tensor> distributions, boolean returnConvergenceDelta, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(distributions, "distributions");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        List<String> names = model.attributed(in);
        if (distributions.size() != names.size()) {
            throw new InvalidInputException("deeplift_shap: " + distributions.size() + " baseline distributions for "
                    + names.size() + " attributed inputs " + names);
        }
        int k = distributions.get(0).dim(0);
        int batch = in.batch();
        int[] t = neuron != null ? new int[batch] : model.targets(targets, batch); // a neuron needs no target
        Inputs expanded = Inputs.empty();
        Map<String, Tensor> bases = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : in.values().entrySet()) {
            Tensor rep = NoiseTunnel.repeated(e.getValue(), k, 0, null);
            expanded = in.isAdditional(e.getKey()) ? expanded.additional(e.getKey(), rep) : expanded.and(e.getKey(), rep);
            int i = names.indexOf(e.getKey());
            if (i >= 0) {
                Tensor d = distributions.get(i);
                if (d.dim(0) != k || d.rowSize() != e.getValue().rowSize()) {
                    throw new InvalidInputException("deeplift_shap: baselines of '" + e.getKey() + "' must be [" + k
                            + ", ...its example shape]");
                }
                float[] tiled = new float[rep.size()];
                int per = d.rowSize();
                for (int r = 0; r < batch * k; r++) {
                    System.arraycopy(d.data(), (r % k) * per, tiled, r * per, per);
                }
                bases.put(e.getKey(), new Tensor(rep.shape(), tiled));
            }
        }
        Baseline[] b = names.stream().map(n -> Baseline.of(bases.get(n))).toArray(Baseline[]::new);
        int[] rt = new int[batch * k];
        for (int r = 0; r < rt.length; r++) {
            rt[r] = t[r / k];
        }
        DeepLift dl = layer == null ? new DeepLift(model)
                : neuron == null ? DeepLift.layer(model, layer) : DeepLift.neuron(model, layer, neuron);
        Attribution pairs = dl.baselines(b).multiplyByInputs(multiplyByInputs).maxPoolRule(maxPoolRule)
                .returnConvergenceDelta(returnConvergenceDelta).attribute(expanded, rt);
        Map<String, Tensor> mean = new LinkedHashMap<>();
        for (String n : pairs.byInput().keySet()) {
            Tensor a = pairs.byInput().get(n);
            int per = a.rowSize();
            float[] m = new float[batch * per];
            for (int i = 0; i < batch; i++) {
                for (int f = 0; f < per; f++) {
                    double s = 0;
                    for (int j = 0; j < k; j++) {
                        s += a.data()[(i * k + j) * per + f];
                    }
                    m[i * per + f] = (float) (s / k);
                }
            }
            int[] shape = a.shape();
            shape[0] = batch;
            mean.put(n, new Tensor(shape, m));
        }
        return new Attribution(mean.values().iterator().next(), pairs.convergenceDelta(), pairs.device(),
                pairs.fallbackReason(), mean);
    }
}
