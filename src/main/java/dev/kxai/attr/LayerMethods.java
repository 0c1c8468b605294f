package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.PathOps;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Captum's smaller layer and neuron methods at a named value (a node's output), each a few passes
 * of the backend's evaluate / gradient primitives:
 * <ul>
 *   <li>{@code LayerActivation}: the layer's value;</li>
 *   <li>{@code LayerGradientXActivation}: ∂F_t/∂layer ⊙ layer ({@code multiply_by_inputs}, else the gradient);</li>
 *   <li>{@code InternalInfluence}: Σ_k w_k ∂F_t/∂layer(b + α_k (x − b)), the IG quadrature over the
 *       input path, no multiplication;</li>
 *   <li>{@code NeuronGradient}: ∂layer[neuron]/∂x for one neuron (flat index in the layer's example);</li>
 *   <li>{@code NeuronIntegratedGradients}: (x − b) ⊙ Σ_k w_k ∂layer[neuron]/∂x(b + α_k (x − b)).</li>
 * </ul>
 * Path methods run their steps in chunks ({@link ChunkPolicy}), the path rows built on the host.
 */
public final class LayerMethods {
    private LayerMethods() {
    }

    /** {@code LayerActivation}. */
    public static Attribution activation(Model m, String layer, Inputs in) {
        LayerIntegratedGradients.checkLayer(m, layer, "layer_activation");
        m.check(in);
        DevicePolicy.Ran<Tensor> ran = m.run("layer activation", r -> r.evaluate(in.values(), Set.of(layer)).get(layer));
        return Attribution.of(Map.of(layer, ran.value()), null, ran.device(), ran.fallbackReason());
    }

    /** {@code LayerGradientXActivation}. */
    public static Attribution gradientXActivation(Model m, String layer, boolean multiplyByInputs, Inputs in,
            int... targets) {
        LayerIntegratedGradients.checkLayer(m, layer, "layer_gradient_x_activation");
        m.check(in);
        int[] t = m.targets(targets, in.batch());
        DevicePolicy.Ran<Tensor> ran = m.run("layer gradient x activation", r -> {
            Tensor g = r.gradients(in.values(), t, Set.of(layer)).get(layer);
            if (!multiplyByInputs) {
                return g;
            }
            Tensor a = r.evaluate(in.values(), Set.of(layer)).get(layer);
            float[] out = new float[g.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = g.data()[i] * a.data()[i];
            }
            return new Tensor(g.shape(), out);
        });
        return Attribution.of(Map.of(layer, ran.value()), null, ran.device(), ran.fallbackReason());
    }

    /** {@code InternalInfluence}. */
    public static Attribution internalInfluence(Model m, String layer, int nSteps, Quadrature.Rule rule,
            List<Baseline> baselines, Integer internalBatchSize, Inputs in, int... targets) {
        LayerIntegratedGradients.checkLayer(m, layer, "internal_influence");
        return path(m, "internal influence", in, baselines, Quadrature.of(rule, nSteps), internalBatchSize, targets,
                layer, null, false);
    }

    /** {@code NeuronGradient}: the gradient of {@code layer}'s element {@code neuron} (flat, per example). */
    public static Attribution neuronGradient(Model m, String layer, int neuron, Inputs in) {
        LayerIntegratedGradients.checkLayer(m, layer, "neuron_gradient");
        m.check(in);
        List<String> names = m.attributed(in);
        int[] per = new int[in.batch()];
        java.util.Arrays.fill(per, neuron);
        DevicePolicy.Ran<Map<String, Tensor>> ran = m.run("neuron gradient",
                r -> r.neuronGradients(in.values(), layer, per, new HashSet<>(names)));
        Map<String, Tensor> by = new LinkedHashMap<>();
        names.forEach(n -> by.put(n, ran.value().get(n)));
        return Attribution.of(by, null, ran.device(), ran.fallbackReason());
    }

    /** {@code NeuronIntegratedGradients}. */
    public static Attribution neuronIntegratedGradients(Model m, String layer, int neuron, int nSteps,
            Quadrature.Rule rule, List<Baseline> baselines, Integer internalBatchSize, boolean multiplyByInputs, Inputs in) {
        LayerIntegratedGradients.checkLayer(m, layer, "neuron_integrated_gradients");
        return path(m, "neuron integrated gradients", in, baselines, Quadrature.of(rule, nSteps), internalBatchSize,
                null, layer, neuron, multiplyByInputs);
    }

    /**
     * Σ_k w_k ∂(target)/∂(wrt) over the input path: the target is the model output (targets) and
     * wrt the layer, or the layer's neuron and wrt the attributed inputs.
     */
    private static Attribution path(Model m, String what, Inputs in, List<Baseline> baselines, Quadrature q,
            Integer internalBatchSize, int[] targets, String layer, Integer neuron, boolean multiplyByInputs) {
        m.check(in);
        List<String> names = m.attributed(in);
        int batch = in.batch();
        int[] t = neuron == null ? m.targets(targets, batch) : null;
        Map<String, Tensor> base = Baseline.forInputs(baselines, names, in, what);
        float[] alphas = q.alphasF();
        float[] weights = q.weightsF();
        List<String> outs = neuron == null ? List.of(layer) : names;
        DevicePolicy.Ran<Map<String, Tensor>> ran = m.run(what, r -> {
            int steps = alphas.length;
            int chunk = new ChunkPolicy(internalBatchSize).stepsPerChunk(r, batch, steps);
            Map<String, double[]> sums = new LinkedHashMap<>();
            Map<String, int[]> shapes = new HashMap<>();
            for (int k0 = 0; k0 < steps; k0 += chunk) {
                int k1 = Math.min(steps, k0 + chunk);
                Map<String, Tensor> given = LayerConductance.pathRows(in, names, base, alphas, k0, k1);
                int rows = (k1 - k0) * batch;
                Map<String, Tensor> g;
                if (neuron == null) {
                    int[] rt = new int[rows];
                    for (int j = 0; j < rows; j++) {
                        rt[j] = t[j % batch];
                    }
                    g = r.gradients(given, rt, Set.of(layer));
                } else {
                    int[] nr = new int[rows];
                    java.util.Arrays.fill(nr, neuron);
                    g = r.neuronGradients(given, layer, nr, new HashSet<>(names));
                }
                for (String o : outs) {
                    Tensor gt = g.get(o);
                    int per = gt.rowSize();
                    double[] s = sums.computeIfAbsent(o, k -> new double[batch * per]);
                    if (!shapes.containsKey(o)) {
                        int[] sh = gt.shape();
                        sh[0] = batch;
                        shapes.put(o, sh);
                    }
                    for (int k = k0; k < k1; k++) {
                        for (int e = 0; e < batch * per; e++) {
                            s[e] += weights[k] * gt.data()[(k - k0) * batch * per + e];
                        }
                    }
                }
            }
            Map<String, Tensor> res = new LinkedHashMap<>();
            for (String o : outs) {
                double[] s = sums.get(o);
                float[] a = new float[s.length];
                for (int e = 0; e < a.length; e++) {
                    a[e] = (float) s[e];
                }
                if (neuron != null && multiplyByInputs) {
                    a = PathOps.finish(a, in.get(o).data(), base.get(o).data(), true);
                }
                res.put(o, new Tensor(shapes.get(o), a));
            }
            return res;
        });
        return Attribution.of(ran.value(), null, ran.device(), ran.fallbackReason());
    }

    /** A neuron given as coordinates in the layer's example shape, or one flat index. */
    public static int flatNeuron(Model m, String layer, int[] coordinates) {
        int[] shape = m.runner().plan().shape(layer, 1);
        int[] example = java.util.Arrays.copyOfRange(shape, 1, shape.length);
        if (coordinates.length == 1) {
            return coordinates[0];
        }
        if (coordinates.length != example.length) {
            throw new InvalidInputException("neuron " + java.util.Arrays.toString(coordinates) + " does not index '" + layer
                    + "' of example shape " + Shapes.str(example));
        }
        int flat = 0;
        for (int d = 0; d < example.length; d++) {
            if (coordinates[d] < 0 || coordinates[d] >= example[d]) {
                throw new InvalidInputException("neuron " + java.util.Arrays.toString(coordinates) + " is outside '" + layer
                        + "' of example shape " + Shapes.str(example));
            }
            flat = flat * example[d] + coordinates[d];
        }
        return flat;
    }
}
