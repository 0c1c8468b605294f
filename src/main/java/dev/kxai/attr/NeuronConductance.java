package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.PathOps;
import dev.kxai.tensor.Tensor;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Captum's {@code NeuronConductance} (Dhamdhere et al. 2018): the conductance of each input feature
 * through one neuron n of {@code layer} to the target output,
 * (x − b) ⊙ Σ_k w_k · ∂F_t/∂n(x_k) · ∂n/∂x(x_k) over the straight path x_k = b + α_k (x − b) at the
 * quadrature's n_steps alphas (Captum's default rule here is {@code riemann_trapezoid}, not IG's
 * Gauss–Legendre). Summed over the inputs it is the neuron's share of layer conductance: where the
 * layer is affine in the input (∂n/∂x constant) exactly (n(x) − n(b)) · Σ_k w_k ∂F_t/∂n(x_k). Each
 * chunk of steps runs two backward passes (the target's to the layer, the neuron's to the inputs), as
 * Captum's {@code compute_layer_gradients_and_eval} with a neuron selector does.
 */
public final class NeuronConductance {
    private final Model model;
    private final String layer;
    private final int neuron;
    private final int nSteps;
    private final Quadrature.Rule method;
    private final List<Baseline> baselines;
    private final Integer internalBatchSize;
    private final boolean multiplyByInputs;

    public NeuronConductance(Model model, String layer, int neuron, int nSteps, Quadrature.Rule method,
            List<Baseline> baselines, Integer internalBatchSize, boolean multiplyByInputs) {
        LayerIntegratedGradients.checkLayer(model, layer, "neuron_conductance");
        if (nSteps < 1) {
            throw new InvalidInputException("neuron_conductance: n_steps must be at least 1, got " + nSteps);
        }
        Quadrature.checkSteps("neuron_conductance", nSteps);
        this.model = model;
        this.layer = layer;
        this.neuron = neuron;
        this.nSteps = nSteps;
        this.method = method;
        this.baselines = List.copyOf(baselines);
        this.internalBatchSize = internalBatchSize;
        this.multiplyByInputs = multiplyByInputs;
        new ChunkPolicy(internalBatchSize);
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
        int[] t = model.targets(targets, batch);
        Quadrature q = Quadrature.of(method, nSteps);
        float[] alphas = q.alphasF();
        float[] weights = q.weightsF();
        Map<String, Tensor> base = Baseline.forInputs(baselines, names, in, "neuron_conductance");
        DevicePolicy.Ran<Attribution> ran = model.run("neuron conductance", r -> {
            int steps = alphas.length;
            int chunk = new ChunkPolicy(internalBatchSize).stepsPerChunk(r, batch, steps);
            Map<String, double[]> sums = new LinkedHashMap<>();
            for (int k0 = 0; k0 < steps; k0 += chunk) {
                int k1 = Math.min(steps, k0 + chunk);
                Map<String, Tensor> given = LayerConductance.pathRows(in, names, base, alphas, k0, k1);
                int rows = (k1 - k0) * batch;
                int[] rowTargets = new int[rows];
                int[] rowNeurons = new int[rows];
                for (int j = 0; j < rows; j++) {
                    rowTargets[j] = t[j % batch];
                    rowNeurons[j] = neuron;
                }
                Tensor toLayer = r.gradients(given, rowTargets, Set.of(layer)).get(layer);
                if (neuron < 0 || neuron >= toLayer.rowSize()) {
                    throw new InvalidInputException("neuron " + neuron + " is outside '" + layer + "' of "
                            + toLayer.rowSize() + " elements per example");
                }
                Map<String, Tensor> toInputs = r.neuronGradients(given, layer, rowNeurons, new HashSet<>(names));
                int perLayer = toLayer.rowSize();
                for (String n : names) {
                    float[] gi = toInputs.get(n).data();
                    int per = in.get(n).rowSize();
                    double[] s = sums.computeIfAbsent(n, key -> new double[batch * per]);
                    for (int k = k0; k < k1; k++) {
                        for (int i = 0; i < batch; i++) {
                            int row = (k - k0) * batch + i;
                            // Captum: input_grad * mid_grad (float32), then × step size, summed over the steps
                            float mid = toLayer.data()[row * perLayer + neuron];
                            for (int f = 0; f < per; f++) {
                                s[i * per + f] += weights[k] * (gi[row * per + f] * mid);
                            }
                        }
                    }
                }
            }
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : names) {
                double[] s = sums.get(n);
                float[] a = new float[s.length];
                for (int e = 0; e < a.length; e++) {
                    a[e] = (float) s[e];
                }
                by.put(n, new Tensor(in.get(n).shape(), PathOps.finish(a, in.get(n).data(), base.get(n).data(),
                        multiplyByInputs)));
            }
            return Attribution.of(by, null, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
