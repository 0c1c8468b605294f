package dev.kxai.attr;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathGradients;
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
    private final Baseline baseline;
    private final Integer internalBatchSize;
    private final boolean returnConvergenceDelta;
    private final Progress progress;
    private final boolean affineFirstLayer;
    private final boolean reuseEndpoints;

    public IntegratedGradients(Model model) {
        this(model, true);
    }

    public IntegratedGradients(Model model, boolean multiplyByInputs) {
        this(model, multiplyByInputs, 50, Quadrature.Rule.GAUSS_LEGENDRE, Baseline.zeros(), null, false,
                Progress.NONE, false, true);
    }

    private IntegratedGradients(Model model, boolean multiplyByInputs, int nSteps, Quadrature.Rule method,
            Baseline baseline, Integer internalBatchSize, boolean returnConvergenceDelta, Progress progress,
            boolean affineFirstLayer, boolean reuseEndpoints) {
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
    }

    public IntegratedGradients nSteps(int n) {
        return new IntegratedGradients(model, multiplyByInputs, n, method, baseline, internalBatchSize,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints);
    }

    public IntegratedGradients method(Quadrature.Rule rule) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, rule, baseline, internalBatchSize,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints);
    }

    public IntegratedGradients baselines(Baseline b) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, b, internalBatchSize,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints);
    }

    /** Rows (steps × examples) per forward/backward pass, as in Captum; null = memory budget. */
    public IntegratedGradients internalBatchSize(Integer rows) {
        new ChunkPolicy(rows); // refuses rows < 1 now, not at the first call
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, rows,
                returnConvergenceDelta, progress, affineFirstLayer, reuseEndpoints);
    }

    public IntegratedGradients returnConvergenceDelta(boolean on) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, internalBatchSize, on,
                progress, affineFirstLayer, reuseEndpoints);
    }

    public IntegratedGradients progress(Progress p) {
        return new IntegratedGradients(model, multiplyByInputs, nSteps, method, baseline, internalBatchSize,
                returnConvergenceDelta, p, affineFirstLayer, reuseEndpoints);
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
                returnConvergenceDelta, progress, on, reuseEndpoints);
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
                returnConvergenceDelta, progress, affineFirstLayer, on);
    }

    /** Steps per chunk for a batch on the model's backend ({@link ChunkPolicy}). */
    public int stepsPerChunk(int batch) {
        return new ChunkPolicy(internalBatchSize).stepsPerChunk(model.runner(), batch, nSteps);
    }

    public Attribution attribute(Tensor x, int... targets) {
        model.checkBatch(x, "input");
        Quadrature q = Quadrature.of(method, nSteps);
        int[] t = model.targets(targets, x.dim(0));
        Tensor base = baseline.expand(x);
        ChunkPolicy chunks = new ChunkPolicy(internalBatchSize);
        // the whole computation on one runner, so that a fallback reruns all of it on the CPU
        DevicePolicy.Ran<Attribution> ran = model.run("integrated gradients", runner -> {
            PathGradients.Result r = PathLoop.integrate(runner, x, base, q.alphasF(), q.weightsF(), t, chunks, progress,
                    affineFirstLayer);
            float[] attr = PathOps.finish(r.gradientSum().data(), x.data(), base.data(), multiplyByInputs);
            Tensor attributions = new Tensor(x.shape(), attr);
            Tensor delta = null;
            if (returnConvergenceDelta) {
                delta = convergenceDelta(runner, attributions, x, base, t, r.outputAtBase(), r.outputAtInput());
            }
            return new Attribution(attributions, delta, runner.device(), null);
        });
        Attribution a = ran.value();
        return new Attribution(a.attributions(), a.convergenceDelta(), ran.device(), ran.fallbackReason());
    }

    /**
     * Σ attr_i − (F_t(x_i) − F_t(b_i)) per row. The endpoint outputs come from the path when the
     * rule evaluated α = 0 and 1 and endpoint reuse is on, else from one forward pass over [x; b]
     * (one extra 2-row forward per example).
     */
    private Tensor convergenceDelta(ModelRunner runner, Tensor attr, Tensor x, Tensor base, int[] t, double[] atBase,
            double[] atInput) {
        int batch = x.dim(0);
        int per = x.rowSize();
        if (!reuseEndpoints || atBase == null || atInput == null) {
            float[] both = new float[2 * x.size()];
            System.arraycopy(x.data(), 0, both, 0, x.size());
            System.arraycopy(base.data(), 0, both, x.size(), x.size());
            int[] s = x.shape();
            s[0] = 2 * batch;
            Tensor y = runner.forward(new Tensor(s, both));
            int outs = y.rowSize();
            atInput = new double[batch];
            atBase = new double[batch];
            for (int i = 0; i < batch; i++) {
                atInput[i] = y.data()[i * outs + t[i]];
                atBase[i] = y.data()[(batch + i) * outs + t[i]];
            }
        }
        double[] sums = PathOps.rowSums(attr.data(), batch, per);
        float[] d = new float[batch];
        for (int i = 0; i < batch; i++) {
            d[i] = (float) (sums[i] - (atInput[i] - atBase[i]));
        }
        return new Tensor(new int[] {batch}, d);
    }
}
