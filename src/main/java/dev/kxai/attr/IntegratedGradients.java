package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.PathGradients;
import dev.kxai.backend.PathInputs;
import dev.kxai.backend.PathOps;
import dev.kxai.tensor.Tensor;

/**
 * Captum's {@code IntegratedGradients}: (x − b) ⊙ Σ_k w_k ∇F_t(b + α_k (x − b)), with Captum's
 * parameter names and defaults ({@code n_steps} 50, {@code method} gausslegendre, zero
 * baseline, {@code multiply_by_inputs} true). Unlike Captum, steps always run in chunks that fit
 * a memory budget (or {@code internal_batch_size}; {@link ChunkPolicy}), so memory does not grow
 * with n_steps: this class owns the loop over chunks ({@link PathLoop}), the backend runs each
 * chunk where the path lives. Immutable: the {@code with}-style setters return a new instance.
 */
public final class IntegratedGradients {

    private final Model model;
    private final boolean multiplyByInputs;
    private final int nSteps;
    private final Quadrature.Rule method;
    private final java.util.List<Baseline> baseline;
    private final Integer internalBatchSize;
    private final boolean returnConvergenceDelta;
    private final Progress progress;
    private final boolean affineFirstLayer;
    private final boolean reuseEndpoints;
    /** User-given α's and weights ({@link #alphas}), or null for {@code method} with {@code n_steps}. */
    private final Quadrature custom;

    public IntegratedGradients(Model model) {
        this(model, true);
    }

    public IntegratedGradients(Model model, boolean multiplyByInputs) {
        this(model, multiplyByInputs, 50, Quadrature.Rule.GAUSS_LEGENDRE, java.util.List.of(Baseline.zeros()), null, false,
                Progress.NONE, false, true, null);
    }

    private IntegratedGradients(Model model, boolean multiplyByInputs, int nSteps, Quadrature.Rule method,
            java.util.List<Baseline> baseline, Integer internalBatchSize, boolean returnConvergenceDelta, Progress progress,
            boolean affineFirstLayer, boolean reuseEndpoints, Quadrature custom) {
        this.model = model;
        this.multiplyByInputs = multiplyByInputs;
        this.nSteps = nSteps;
        this.method = method;
        this.baseline = baseline;
        this.internalBatchSize = internalBatchSize;
        this.returnConvergenceDelta = returnConvergenceDelta;
        this.progress = progress;
        this.affineFirstLayer = affineFirstLayer;
        this.reuseEndpoints = reuseEndpoints;
        this.custom = custom;
    }

    public IntegratedGradients nSteps(int n) {
        return new IntegratedGradients(model, multiplyByInputs, n, method, baseline, internalBatchSize,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints, custom);
    }

    /**
     * Integrated gradients over user-given, possibly non-uniform points α_k ∈ [0, 1] with weights
     * w_k (Σ_k w_k ∇F(b + α_k(x − b)) ⊙ (x − b)): dense where the output changes fast, e.g. near
     * the saturation that Miglani et al. ("Investigating Saturation Effects in Integrated Gradients",
     * 2020) and Kapishnikov et al. point to. Weights null: each α's share of [0, 1] up to the
     * midpoints between neighbours ({@link Quadrature#custom}). Replaces {@code method} and
     * {@code n_steps}.
     */
    public IntegratedGradients alphas(double[] alphas, double[] weights) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, internalBatchSize,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints, Quadrature.custom(alphas, weights));
    }

    public IntegratedGradients method(Quadrature.Rule rule) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, rule, baseline, internalBatchSize,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints, custom);
    }

    /**
     * Captum's {@code baselines}: one per attributed input, in the model's input order, or one for
     * all of them.
     */
    public IntegratedGradients baselines(Baseline... perInput) {
        if (perInput.length == 0) {
            throw new InvalidInputException("no baseline given");
        }
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, java.util.List.of(perInput),
                internalBatchSize, returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints, custom);
    }

    /** Rows (steps × examples) per forward/backward pass, as in Captum; null = memory budget. */
    public IntegratedGradients internalBatchSize(Integer rows) {
        new ChunkPolicy(rows); // refuses rows < 1 now, not at the first call
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, rows,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints, custom);
    }

    public IntegratedGradients returnConvergenceDelta(boolean on) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, internalBatchSize, on,
                progress, affineFirstLayer, reuseEndpoints, custom);
    }

    public IntegratedGradients progress(Progress p) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, internalBatchSize,
                returnConvergenceDelta, p, affineFirstLayer, reuseEndpoints, custom);
    }

    /**
     * The first-layer saving (default off): when the input feeds one Conv/Gemm with constant
     * weights, that layer runs twice per example instead of n_steps times, and its transpose once.
     * Equal to the plain path in exact arithmetic, but not in float: the plain path (and Captum)
     * rounds each path point b + α(x − b) before the layer, the saving does not, and where a later
     * max-pool or ReLU sits within an ulp of a tie the two can pick different branches. On the
     * tinyvgg reference this moves 2 of 77 cases past 1e-4, so the default stays Captum's order.
     */
    public IntegratedGradients affineFirstLayer(boolean on) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, internalBatchSize,
                returnConvergenceDelta, progress, on, reuseEndpoints, custom);
    }

    /**
     * Endpoint reuse (default on, the second saving in ARCHITECTURE.md): the convergence delta needs F_t(x) and
     * F_t(b); when the rule evaluates both α = 0 and α = 1 on the path (riemann_trapezoid) they are
     * taken from the path and no extra forward pass runs. Other rules, or reuse off: one extra
     * forward pass over [x; b], as Captum does (off is for comparison). The two agree to float
     * rounding: the path's α = 1 row is b + 1·(x − b), which can differ from x in the last bit
     * when b ≠ 0 (and with the first-layer saving the endpoints come from the layer's double
     * outputs).
     */
    public IntegratedGradients reuseEndpoints(boolean on) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, internalBatchSize,
                returnConvergenceDelta, progress, affineFirstLayer, on, custom);
    }

    /** Steps per chunk for a batch on the model's backend ({@link ChunkPolicy}). */
    public int stepsPerChunk(int batch) {
        return new ChunkPolicy(internalBatchSize).stepsPerChunk(model.runner(), batch, nSteps);
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    /**
     * Every attributed input (float, not additional) on one path from its baseline, the same α
     * for all; additional and integer inputs are given unchanged at every step. The delta sums
     * the attributions of all inputs.
     */
    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(in, new int[][] {targets}).get(0);
    }

    /**
     * Several targets (each one for every row, or one per row) along one path: each chunk runs one
     * forward pass and one backward per target set, where Captum runs the whole path per target.
     * One attribution per set, each equal to the single-target call's.
     */
    public java.util.List<Attribution> attribute(Inputs in, int[][] targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        if (targets.length == 0) {
            throw new InvalidInputException("no target sets given");
        }
        model.check(in);
        java.util.List<String> names = model.attributed(in);
        Quadrature q = custom != null ? custom : Quadrature.of(method, nSteps);
        int[][] ts = new int[targets.length][];
        for (int j = 0; j < ts.length; j++) {
            dev.kxai.Args.notNull(targets[j], "targets[" + j + "]");
            ts[j] = model.targets(targets[j], in.batch());
        }
        java.util.List<Tensor> xs = new java.util.ArrayList<>();
        java.util.List<Tensor> bases = new java.util.ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            xs.add(in.get(names.get(i)));
            bases.add(baselineFor(i, names).expand(in.get(names.get(i))));
        }
        java.util.Map<String, Tensor> fixed = new java.util.LinkedHashMap<>(in.values());
        names.forEach(fixed::remove);
        PathInputs spec = new PathInputs(names, xs, bases, fixed);
        ChunkPolicy chunks = new ChunkPolicy(internalBatchSize);
        // the whole computation on one runner, so that a fallback reruns all of it on the CPU
        DevicePolicy.Ran<java.util.List<Attribution>> ran = model.run("integrated gradients", runner -> {
            java.util.List<PathGradients.Result> rs = PathLoop.integrate(runner, spec, q.alphasF(), q.weightsF(), ts,
                    chunks, progress, affineFirstLayer);
            java.util.List<Attribution> out = new java.util.ArrayList<>();
            for (int j = 0; j < rs.size(); j++) {
                PathGradients.Result r = rs.get(j);
                java.util.Map<String, Tensor> byInput = new java.util.LinkedHashMap<>();
                for (int i = 0; i < names.size(); i++) {
                    float[] attr = PathOps.finish(r.gradientSums().get(i).data(), xs.get(i).data(), bases.get(i).data(),
                            multiplyByInputs);
                    byInput.put(names.get(i), new Tensor(xs.get(i).shape(), attr));
                }
                Tensor delta = null;
                if (returnConvergenceDelta) {
                    double[][] ends = reuseEndpoints && r.outputAtBase() != null && r.outputAtInput() != null
                            ? new double[][] {r.outputAtInput(), r.outputAtBase()} : endpoints(runner, spec, ts[j]);
                    delta = convergenceDelta(byInput.values(), ends[0], ends[1]);
                }
                out.add(Attribution.of(byInput, delta, runner.device(), null));
            }
            return out;
        });
        java.util.List<Attribution> all = new java.util.ArrayList<>();
        for (Attribution a : ran.value()) {
            all.add(a.ranOn(ran.device(), ran.fallbackReason()));
        }
        return all;
    }

    private Baseline baselineFor(int i, java.util.List<String> names) {
        if (baseline.size() == 1) {
            return baseline.get(0);
        }
        if (baseline.size() != names.size()) {
            throw new InvalidInputException(baseline.size() + " baselines for " + names.size()
                    + " attributed inputs " + names + "; give one per input, in this order, or one for all");
        }
        return baseline.get(i);
    }

    /**
     * F_t(x) and F_t(b) per row from one forward pass over [x; b] (additional inputs repeated):
     * for rules that do not evaluate α = 0 and 1, or with endpoint reuse off.
     */
    static double[][] endpoints(dev.kxai.backend.ModelRunner runner, PathInputs spec, int[] t) {
        int batch = spec.batch();
        java.util.Map<String, Tensor> given = new java.util.HashMap<>();
        for (int i = 0; i < spec.names().size(); i++) {
            given.put(spec.names().get(i), rows(spec.inputs().get(i), spec.baselines().get(i)));
        }
        spec.fixed().forEach((k, v) -> given.put(k, rows(v, v)));
        Tensor y = runner.evaluate(given, java.util.Set.of()).get(runner.graph().outputName());
        int outs = y.rowSize();
        double[] atInput = new double[batch];
        double[] atBase = new double[batch];
        for (int i = 0; i < batch; i++) {
            atInput[i] = y.data()[i * outs + t[i]];
            atBase[i] = y.data()[(batch + i) * outs + t[i]];
        }
        return new double[][] {atInput, atBase};
    }

    /** [a; b] along the batch axis. */
    static Tensor rows(Tensor a, Tensor b) {
        float[] both = new float[a.size() + b.size()];
        System.arraycopy(a.data(), 0, both, 0, a.size());
        System.arraycopy(b.data(), 0, both, a.size(), b.size());
        int[] s = a.shape();
        s[0] += b.dim(0);
        return new Tensor(s, both);
    }

    /** Σ attr (over every attributed input) − (F_t(x_i) − F_t(b_i)) per row. */
    static Tensor convergenceDelta(java.util.Collection<Tensor> attributions, double[] atInput, double[] atBase) {
        int batch = atInput.length;
        double[] sums = new double[batch];
        for (Tensor a : attributions) {
            double[] s = PathOps.rowSums(a.data(), batch, a.rowSize());
            for (int i = 0; i < batch; i++) {
                sums[i] += s[i];
            }
        }
        float[] d = new float[batch];
        for (int i = 0; i < batch; i++) {
            d[i] = (float) (sums[i] - (atInput[i] - atBase[i]));
        }
        return new Tensor(new int[] {batch}, d);
    }
}
