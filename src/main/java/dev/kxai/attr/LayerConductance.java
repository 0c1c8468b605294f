package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.PathOps;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Captum's {@code LayerConductance} (Dhamdhere et al. 2018) at a named value: along the straight
 * path from the baselines to the inputs at the n_steps + 1 alphas of the rule (Captum evaluates
 * {@code alphas(n_steps + 1)}; the quadrature weights are not used), Σ_k ∂F/∂layer(x_k) ⊙
 * (layer(x_{k+1}) − layer(x_k)). Steps run in chunks ({@link ChunkPolicy}); the last step of a chunk
 * is carried to the next.
 */
public final class LayerConductance {
    private final Model model;
    private final String layer;
    private final int nSteps;
    private final Quadrature.Rule method;
    private final List<Baseline> baselines;
    private final Integer internalBatchSize;

    public LayerConductance(Model model, String layer, int nSteps, Quadrature.Rule method, List<Baseline> baselines,
            Integer internalBatchSize) {
        LayerIntegratedGradients.checkLayer(model, layer, "layer_conductance");
        if (nSteps < 1) {
            throw new InvalidInputException("layer_conductance: n_steps must be at least 1, got " + nSteps);
        }
        Quadrature.checkSteps("layer_conductance", nSteps + 1L);
        this.model = model;
        this.layer = layer;
        this.nSteps = nSteps;
        this.method = method;
        this.baselines = List.copyOf(baselines);
        this.internalBatchSize = internalBatchSize;
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
        float[] alphas = Quadrature.of(method, nSteps + 1).alphasF();
        Map<String, Tensor> base = Baseline.forInputs(baselines, names, in, "layer_conductance");
        DevicePolicy.Ran<Attribution> ran = model.run("layer conductance", r -> {
            int steps = alphas.length;
            int chunk = new ChunkPolicy(internalBatchSize).stepsPerChunk(r, batch, steps);
            double[] sum = null;
            float[] previous = null; // the layer at the last step of the previous chunk
            float[] previousGrad = null;
            int[] layerShape = null;
            for (int k0 = 0; k0 < steps; k0 += chunk) {
                int k1 = Math.min(steps, k0 + chunk);
                Map<String, Tensor> given = pathRows(in, names, base, alphas, k0, k1);
                int[] rowTargets = new int[(k1 - k0) * batch];
                for (int j = 0; j < rowTargets.length; j++) {
                    rowTargets[j] = t[j % batch];
                }
                Tensor act = r.evaluate(given, Set.of(layer)).get(layer);
                Tensor grad = r.gradients(given, rowTargets, Set.of(layer)).get(layer);
                int plane = act.size() / (k1 - k0);
                if (sum == null) {
                    sum = new double[plane];
                    layerShape = act.shape();
                    layerShape[0] = batch;
                }
                for (int k = k0; k < k1; k++) {
                    int off = (k - k0) * plane;
                    float[] a = act.data();
                    float[] g = grad.data();
                    if (previous != null) {
                        for (int e = 0; e < plane; e++) {
                            sum[e] += previousGrad[e] * (a[off + e] - previous[e]); // Captum's float32 diff and product
                        }
                    }
                    previous = java.util.Arrays.copyOfRange(a, off, off + plane);
                    previousGrad = java.util.Arrays.copyOfRange(g, off, off + plane);
                }
            }
            float[] out = new float[sum.length];
            for (int e = 0; e < out.length; e++) {
                out[e] = (float) sum[e];
            }
            return Attribution.of(Map.of(layer, new Tensor(layerShape, out)), null, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    /** Path rows of steps [k0, k1) (step-major) for the attributed inputs, the others repeated. */
    static Map<String, Tensor> pathRows(Inputs in, List<String> names, Map<String, Tensor> base, float[] alphas, int k0,
            int k1) {
        Map<String, Tensor> given = new HashMap<>();
        for (Map.Entry<String, Tensor> e : in.values().entrySet()) {
            Tensor x = e.getValue();
            Tensor b = names.contains(e.getKey()) ? base.get(e.getKey()) : x; // b + α(b − b) = b: a fixed input repeated
            int[] s = x.shape();
            s[0] = (k1 - k0) * x.dim(0);
            float[] rows = new float[s[0] * x.rowSize()];
            PathOps.interpolate(rows, x.data(), b.data(), alphas, k0, k1, x.dim(0), x.rowSize());
            given.put(e.getKey(), new Tensor(s, rows));
        }
        return given;
    }

}
