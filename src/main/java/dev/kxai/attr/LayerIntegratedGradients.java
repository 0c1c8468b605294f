package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathGradients;
import dev.kxai.backend.PathInputs;
import dev.kxai.backend.PathOps;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Captum's {@code LayerIntegratedGradients} at a named value (the output of a node): the path runs
 * in that value's space, from its value at the baseline inputs to its value at the inputs, while
 * the rest of the model still sees the real inputs (Captum's forward hook). This is how token ids
 * are explained: at the output of the embedding that reads them. The layer's prefix runs twice per
 * example (at the inputs and at the baselines), not n_steps times as in Captum. Baselines are in
 * input space (token ids for integer inputs: zeros = id 0); additional inputs get none. The
 * convergence delta is Σ attributions − (F(inputs) − F(baselines)), both full forward passes.
 * Immutable; the setters return a new instance.
 */
public final class LayerIntegratedGradients {
    private final Model model;
    private final String layer;
    private final boolean multiplyByInputs;
    private final int nSteps;
    private final Quadrature.Rule method;
    private final List<Baseline> baselines;
    private final Integer internalBatchSize;
    private final boolean returnConvergenceDelta;
    private final Progress progress;

    public LayerIntegratedGradients(Model model, String layer) {
        this(model, layer, true, 50, Quadrature.Rule.GAUSS_LEGENDRE, List.of(Baseline.zeros()), null, false,
                Progress.NONE);
    }

    /** A layer method's layer: a value some node computes, else an error listing some. */
    static void checkLayer(Model model, String layer, String method) {
        Graph g = model.graph();
        if (layer == null) {
            throw new InvalidInputException(method + " needs a layer: the name of a value a node computes (--layer NAME)");
        }
        if (!g.valueNames().contains(layer)) {
            List<String> some = g.nodes().stream().map(n -> n.output()).limit(8).toList();
            throw new InvalidInputException("no value '" + layer + "' computed by a node of " + g.source()
                    + " (layer methods take a node's output; some: " + some + (g.nodes().size() > 8 ? ", ..." : "")
                    + "; 'kxai info' lists them all)");
        }
    }

    private LayerIntegratedGradients(Model model, String layer, boolean multiplyByInputs, int nSteps,
            Quadrature.Rule method, List<Baseline> baselines, Integer internalBatchSize, boolean returnConvergenceDelta,
            Progress progress) {
        checkLayer(model, layer, "layer_integrated_gradients");
        this.model = model;
        this.layer = layer;
        this.multiplyByInputs = multiplyByInputs;
        this.nSteps = nSteps;
        this.method = method;
        this.baselines = baselines;
        this.internalBatchSize = internalBatchSize;
        this.returnConvergenceDelta = returnConvergenceDelta;
        this.progress = progress;
    }

    public LayerIntegratedGradients multiplyByInputs(boolean on) {
        return new LayerIntegratedGradients(model, layer, on, nSteps, method, baselines, internalBatchSize,
                returnConvergenceDelta, progress);
    }

    public LayerIntegratedGradients nSteps(int n) {
        return new LayerIntegratedGradients(model, layer, multiplyByInputs, n, method, baselines, internalBatchSize,
                returnConvergenceDelta, progress);
    }

    public LayerIntegratedGradients method(Quadrature.Rule rule) {
        return new LayerIntegratedGradients(model, layer, multiplyByInputs, nSteps, rule, baselines, internalBatchSize,
                returnConvergenceDelta, progress);
    }

    /** Baselines in input space: one per input that is not additional (model order), or one for all. */
    public LayerIntegratedGradients baselines(Baseline... perInput) {
        if (perInput.length == 0) {
            throw new InvalidInputException("no baseline given");
        }
        return new LayerIntegratedGradients(model, layer, multiplyByInputs, nSteps, method, List.of(perInput),
                internalBatchSize, returnConvergenceDelta, progress);
    }

    public LayerIntegratedGradients internalBatchSize(Integer rows) {
        new ChunkPolicy(rows);
        return new LayerIntegratedGradients(model, layer, multiplyByInputs, nSteps, method, baselines, rows,
                returnConvergenceDelta, progress);
    }

    public LayerIntegratedGradients returnConvergenceDelta(boolean on) {
        return new LayerIntegratedGradients(model, layer, multiplyByInputs, nSteps, method, baselines,
                internalBatchSize, on, progress);
    }

    public LayerIntegratedGradients progress(Progress p) {
        return new LayerIntegratedGradients(model, layer, multiplyByInputs, nSteps, method, baselines,
                internalBatchSize, returnConvergenceDelta, p);
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
        int[] t = model.targets(targets, in.batch());
        Inputs base = baselineInputs(in);
        model.check(base);
        int batch = in.batch();
        checkBatchFirst(model.runner().plan(), batch);
        Quadrature q = Quadrature.of(method, nSteps);
        ChunkPolicy chunks = new ChunkPolicy(internalBatchSize);
        DevicePolicy.Ran<Attribution> ran = model.run("layer integrated gradients", runner -> {
            Map<String, Tensor> atX = runner.evaluate(in.values(), Set.of(layer));
            Map<String, Tensor> atB = runner.evaluate(base.values(), Set.of(layer));
            Tensor lx = atX.get(layer);
            Tensor lb = atB.get(layer);
            // the rest of the graph reads the real inputs at every step, as under Captum's hook
            PathInputs spec = new PathInputs(List.of(layer), List.of(lx), List.of(lb), in.values());
            PathGradients.Result r = PathLoop.integrate(runner, spec, q.alphasF(), q.weightsF(), t, chunks, progress,
                    false);
            Tensor attr = new Tensor(lx.shape(), PathOps.finish(r.gradientSum().data(), lx.data(), lb.data(),
                    multiplyByInputs));
            Tensor delta = null;
            if (returnConvergenceDelta) {
                String out = runner.graph().outputName();
                delta = IntegratedGradients.convergenceDelta(List.of(attr), targeted(atX.get(out), t),
                        targeted(atB.get(out), t));
            }
            Map<String, Tensor> byLayer = new LinkedHashMap<>();
            byLayer.put(layer, attr);
            return Attribution.of(byLayer, delta, runner.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    private static double[] targeted(Tensor y, int[] t) {
        int outs = y.rowSize();
        double[] v = new double[t.length];
        for (int i = 0; i < t.length; i++) {
            v[i] = y.data()[i * outs + t[i]];
        }
        return v;
    }

    /** The inputs with every non-additional one replaced by its baseline. */
    private Inputs baselineInputs(Inputs in) {
        List<String> pathInputs = new ArrayList<>();
        for (Graph.Input gi : model.inputs()) {
            if (!in.isAdditional(gi.name())) {
                pathInputs.add(gi.name());
            }
        }
        if (baselines.size() != 1 && baselines.size() != pathInputs.size()) {
            throw new InvalidInputException(baselines.size() + " baselines for " + pathInputs.size() + " inputs "
                    + pathInputs + "; give one per input, in this order, or one for all");
        }
        Inputs base = Inputs.empty();
        for (Graph.Input gi : model.inputs()) {
            String name = gi.name();
            Tensor v = in.get(name);
            if (pathInputs.contains(name)) {
                v = baselines.get(baselines.size() == 1 ? 0 : pathInputs.indexOf(name)).expand(v);
            }
            base = in.isAdditional(name) ? base.additional(name, v) : base.and(name, v);
        }
        return base;
    }

    /** The path's rows are step-major over the layer's first axis: it must be the batch axis. */
    private void checkBatchFirst(ExecutionPlan plan, int batch) {
        int[] one = plan.shape(layer, 1);
        int[] two = plan.shape(layer, 2);
        for (int d = 1; d < one.length; d++) {
            if (one[d] != two[d]) {
                throw new InvalidInputException("layer '" + layer + "' has shape " + Shapes.str(one) + " at batch 1 and "
                        + Shapes.str(two) + " at batch 2: kxai runs layer methods at values whose first axis is the batch");
            }
        }
        if (one.length == 0 || one[0] != 1) {
            throw new InvalidInputException("layer '" + layer + "' has shape " + Shapes.str(one)
                    + " at batch 1: kxai runs layer methods at values whose first axis is the batch");
        }
    }
}
