package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Captum's {@code GradientShap} (Lundberg and Lee 2017): for each example, {@code n_samples}
 * draws of a baseline row from the given distribution, an α ~ U(0, 1) and Gaussian noise
 * N(0, stdevs²) on the input; the gradient at b + α(x̃ − b) times (x̃ − b)
 * ({@code multiply_by_inputs}), averaged over the draws. In expectation over α this is Integrated
 * Gradients from each baseline, averaged over the baselines. All n_samples × batch gradient rows
 * run in chunks of the memory budget ({@link ChunkPolicy}). Seeded (Captum draws from numpy and
 * torch), the same on every backend.
 */
public final class GradientShap {
    private final Model model;
    private final int samples;
    private final List<Double> stdevs;
    private final boolean multiplyByInputs;
    private final long seed;
    private final Integer internalBatchSize;
    /** LayerGradientShap's / NeuronGradientShap's layer, or null: the inputs. */
    private final String layer;
    /** NeuronGradientShap's neuron (flat index in the layer's example), or null. */
    private final Integer neuron;
    private final boolean returnConvergenceDelta;
    private final String name;

    public GradientShap(Model model, int samples, List<Double> stdevs, boolean multiplyByInputs, long seed,
            Integer internalBatchSize) {
        this(model, samples, stdevs, multiplyByInputs, seed, internalBatchSize, null, null, false, "gradient_shap");
    }

    private GradientShap(Model model, int samples, List<Double> stdevs, boolean multiplyByInputs, long seed,
            Integer internalBatchSize, String layer, Integer neuron, boolean returnConvergenceDelta, String what) {
        if (samples < 1) {
            throw new InvalidInputException(what + ": n_samples must be at least 1, got " + samples);
        }
        Limits.samples(what, "n_samples", samples);
        if (layer != null) {
            LayerIntegratedGradients.checkLayer(model, layer, what);
        }
        this.model = model;
        this.samples = samples;
        this.stdevs = List.copyOf(stdevs);
        this.multiplyByInputs = multiplyByInputs;
        this.seed = seed;
        this.internalBatchSize = internalBatchSize;
        this.layer = layer;
        this.neuron = neuron;
        this.returnConvergenceDelta = returnConvergenceDelta;
        this.name = what;
        new ChunkPolicy(internalBatchSize);
    }

    /**
     * Captum's {@code LayerGradientShap} (its {@code LayerInputBaselineXGradient} under a smoothgrad
     * {@code NoiseTunnel} drawing baselines): the same draws as {@code gradient_shap} with the same
     * seed (baseline row, α, noise), the gradient of the target at {@code layer} at
     * b + α(x̃ − b) times layer(x̃) − layer(b) ({@code multiply_by_inputs}), averaged over the
     * draws; the layer's shape. The convergence delta is per draw (batch · n_samples, example-major,
     * as Captum's): Σ attributions of the draw − (F(x̃) − F(b)).
     */
    public static GradientShap layer(Model model, String layer, int samples, List<Double> stdevs,
            boolean multiplyByInputs, long seed, Integer internalBatchSize, boolean returnConvergenceDelta) {
        return new GradientShap(model, samples, stdevs, multiplyByInputs, seed, internalBatchSize, layer, null,
                returnConvergenceDelta, "layer_gradient_shap");
    }

    /**
     * Captum's {@code NeuronGradientShap}: {@code gradient_shap}'s draws with the gradient of one
     * neuron of {@code layer} (Captum's {@code construct_neuron_grad_fn}) instead of the target's;
     * the target is not used.
     */
    public static GradientShap neuron(Model model, String layer, int neuron, int samples, List<Double> stdevs,
            boolean multiplyByInputs, long seed, Integer internalBatchSize) {
        return new GradientShap(model, samples, stdevs, multiplyByInputs, seed, internalBatchSize, layer, neuron, false,
                "neuron_gradient_shap");
    }

    /**
     * @param distributions per attributed input (in the model's order), baseline rows [K, ...example] to draw from
     */
    public Attribution attribute(Inputs in, List<Tensor> distributions, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(distributions, "distributions");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        List<String> names = model.attributed(in);
        if (distributions.size() != names.size()) {
            throw new InvalidInputException(name + ": " + distributions.size() + " baseline distributions for "
                    + names.size() + " attributed inputs " + names);
        }
        if (stdevs.size() != 1 && stdevs.size() != names.size()) {
            throw new InvalidInputException(name + ": " + stdevs.size() + " stdevs for " + names.size() + " inputs");
        }
        int batch = in.batch();
        int[] t = neuron != null ? new int[batch] : model.targets(targets, batch); // a neuron needs no target
        int rows = batch * samples;
        int kRows = distributions.get(0).dim(0);
        for (int i = 0; i < names.size(); i++) {
            Tensor d = distributions.get(i);
            Tensor x = in.get(names.get(i));
            if (d.rank() != x.rank() || d.rowSize() != x.rowSize() || d.dim(0) != kRows) {
                throw new InvalidInputException(name + ": baselines of '" + names.get(i) + "' have shape "
                        + Shapes.str(d.shape()) + "; they need [K, ...] with the example shape of " + Shapes.str(x.shape())
                        + " and the same K for every input");
            }
        }
        SplittableRandom rng = new SplittableRandom(seed);
        int[] pick = new int[rows];
        float[] alpha = new float[rows];
        for (int r = 0; r < rows; r++) {
            pick[r] = rng.nextInt(kRows);
            alpha[r] = (float) rng.nextDouble();
        }
        // x̃ and b per row (example i's samples at rows i·n …), and the scaled points
        Map<String, Tensor> noisy = new LinkedHashMap<>();
        Map<String, Tensor> points = new LinkedHashMap<>();
        Map<String, float[]> base = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i);
            Tensor xt = NoiseTunnel.repeated(in.get(n), samples, stdevs.get(stdevs.size() == 1 ? 0 : i), rng);
            int per = xt.rowSize();
            float[] b = new float[xt.size()];
            float[] p = new float[xt.size()];
            float[] dist = distributions.get(i).data();
            for (int r = 0; r < rows; r++) {
                for (int f = 0; f < per; f++) {
                    float bv = dist[pick[r] * per + f];
                    b[r * per + f] = bv;
                    p[r * per + f] = bv + alpha[r] * (xt.data()[r * per + f] - bv);
                }
            }
            noisy.put(n, xt);
            points.put(n, new Tensor(xt.shape(), p));
            base.put(n, b);
        }
        Map<String, Tensor> fixed = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : in.values().entrySet()) {
            if (!names.contains(e.getKey())) {
                fixed.put(e.getKey(), NoiseTunnel.repeated(e.getValue(), samples, 0, rng));
            }
        }
        int[] rt = new int[rows];
        for (int r = 0; r < rows; r++) {
            rt[r] = t[r / samples];
        }
        String what = layer == null ? "gradient shap" : neuron == null ? "layer gradient shap" : "neuron gradient shap";
        boolean atLayer = layer != null && neuron == null;
        List<String> outs = atLayer ? List.of(layer) : names;
        DevicePolicy.Ran<Attribution> ran = model.run(what, runner -> {
            int chunk = new ChunkPolicy(internalBatchSize).stepsPerChunk(runner, 1, rows);
            Map<String, double[]> sums = new LinkedHashMap<>();
            Map<String, int[]> shapes = new LinkedHashMap<>();
            float[] delta = returnConvergenceDelta ? new float[rows] : null;
            for (int start = 0; start < rows; start += chunk) {
                int r0 = start;
                int r1 = Math.min(rows, r0 + chunk);
                Map<String, Tensor> given = new java.util.HashMap<>();
                points.forEach((k, v) -> given.put(k, slice(v, r0, r1)));
                fixed.forEach((k, v) -> given.put(k, slice(v, r0, r1)));
                Map<String, Tensor> g;
                Map<String, float[]> from = new java.util.HashMap<>(); // x̃ (or layer(x̃)) per output
                Map<String, float[]> to = new java.util.HashMap<>(); // b (or layer(b))
                Map<String, Integer> offset = new java.util.HashMap<>(); // row offset of from/to in their arrays
                if (atLayer) {
                    g = runner.gradients(given, java.util.Arrays.copyOfRange(rt, r0, r1), Set.of(layer));
                    Map<String, Tensor> atX = new java.util.HashMap<>();
                    Map<String, Tensor> atB = new java.util.HashMap<>();
                    fixed.forEach((k, v) -> {
                        atX.put(k, slice(v, r0, r1));
                        atB.put(k, slice(v, r0, r1));
                    });
                    for (String n : names) {
                        atX.put(n, slice(noisy.get(n), r0, r1));
                        Tensor nt = noisy.get(n);
                        int per = nt.rowSize();
                        int[] sh = nt.shape();
                        sh[0] = r1 - r0;
                        atB.put(n, new Tensor(sh, java.util.Arrays.copyOfRange(base.get(n), r0 * per, r1 * per)));
                    }
                    Map<String, Tensor> ex = runner.evaluate(atX, Set.of(layer));
                    Map<String, Tensor> eb = runner.evaluate(atB, Set.of(layer));
                    from.put(layer, ex.get(layer).data());
                    to.put(layer, eb.get(layer).data());
                    offset.put(layer, r0);
                    if (delta != null) {
                        String o = model.graph().outputName();
                        float[] fx = ex.get(o).data();
                        float[] fb = eb.get(o).data();
                        int op = ex.get(o).rowSize();
                        for (int r = r0; r < r1; r++) {
                            delta[r] = -(fx[(r - r0) * op + rt[r]] - fb[(r - r0) * op + rt[r]]);
                        }
                    }
                } else {
                    if (neuron != null) {
                        int[] nr = new int[r1 - r0];
                        java.util.Arrays.fill(nr, neuron);
                        g = runner.neuronGradients(given, layer, nr, new HashSet<>(names));
                    } else {
                        g = runner.gradients(given, java.util.Arrays.copyOfRange(rt, r0, r1), new HashSet<>(names));
                    }
                    for (String n : names) {
                        from.put(n, noisy.get(n).data());
                        to.put(n, base.get(n));
                        offset.put(n, 0);
                    }
                }
                for (String n : outs) {
                    Tensor gt = g.get(n);
                    float[] gv = gt.data();
                    float[] xv = from.get(n);
                    float[] bv = to.get(n);
                    int off = offset.get(n);
                    int per = gt.rowSize();
                    if (!shapes.containsKey(n)) {
                        int[] sh = gt.shape();
                        sh[0] = batch;
                        shapes.put(n, sh);
                    }
                    double[] s = sums.computeIfAbsent(n, k -> new double[batch * per]);
                    for (int r = r0; r < r1; r++) {
                        double rowSum = 0;
                        for (int f = 0; f < per; f++) {
                            int e = (r - off) * per + f;
                            float v = multiplyByInputs ? gv[(r - r0) * per + f] * (xv[e] - bv[e]) : gv[(r - r0) * per + f];
                            s[(r / samples) * per + f] += v;
                            rowSum += v;
                        }
                        if (delta != null) {
                            delta[r] += (float) rowSum;
                        }
                    }
                }
            }
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (String n : outs) {
                double[] s = sums.get(n);
                float[] a = new float[s.length];
                for (int j = 0; j < a.length; j++) {
                    a[j] = (float) (s[j] / samples);
                }
                by.put(n, new Tensor(atLayer ? shapes.get(n) : in.get(n).shape(), a));
            }
            return Attribution.of(by, delta == null ? null : new Tensor(new int[] {rows}, delta), runner.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    private static Tensor slice(Tensor t, int r0, int r1) {
        int per = t.rowSize();
        int[] s = t.shape();
        s[0] = r1 - r0;
        return new Tensor(s, java.util.Arrays.copyOfRange(t.data(), r0 * per, r1 * per));
    }
}
