package dev.kxai.metrics;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.ChunkPolicy;
import dev.kxai.attr.Progress;
import dev.kxai.attr.perturbation.PerturbationLoop;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Captum's {@code infidelity} (Yeh et al. 2019): for perturbations I_k (k = 1..n_perturb_samples)
 * of each example, with a_k = Σ_f I_k,f · attr_f (over every attributed input) and
 * b_k = F_t(x) − F_t(x − I_k),
 * <pre>
 *   infidelity = (1/n) Σ_k (a_k − b_k)²                                   (normalize = false)
 *   infidelity = (1/n) Σ_k (β a_k − b_k)²,  β = Σ_k a_k b_k / Σ_k a_k²     (normalize = true)
 * </pre>
 * as Captum computes it (its {@code safe_div}: β = Σ a·b where Σ a² = 0). Captum's reduction is
 * per example, over its samples.
 *
 * <p>The perturbations come from a {@link PerturbFunction} given each example's copies and a
 * random stream of its own (seeded: the result depends on the seed, not on the chunking):
 * {@link #gaussian} (Captum's docstring example, N(0, 0.003²), is the default),
 * {@link #squareRemoval} or the caller's. The model sees the float rows x − I; I is then taken as
 * x − (x − I) of those rows (what the model saw; it differs from I by float rounding).
 *
 * <p>The (1 + n_perturb_samples) × batch forward rows (each example, then its perturbations) run as
 * batched passes through the runner, chunked by {@link ChunkPolicy} (internal_batch_size, Captum's
 * max_examples_per_batch in rows, or the memory budget). These rows are random noise, with no
 * compact description for the backend to build them from, so they are built on the host chunk by
 * chunk and uploaded.
 */
public final class Infidelity {
    /** The standard deviation of Captum's docstring example ({@code np.random.normal(0, 0.003, ...)}). */
    public static final double DEFAULT_NOISE_STD = 0.003;

    /** Captum's default n_perturb_samples. */
    public static final int DEFAULT_SAMPLES = 10;

    /**
     * Captum's {@code perturb_func}: the perturbations I of one example.
     */
    @FunctionalInterface
    public interface PerturbFunction {
        /**
         * @param copies    the example's n_perturb_samples copies by attributed input name, [n, ...] each
         * @param baselines the example's baseline, the same n copies
         * @param rng       the example's random stream
         * @return I by attributed input name, of the copies' shapes; the model sees x − I
         */
        Map<String, Tensor> perturbations(Map<String, Tensor> copies, Map<String, Tensor> baselines, SplittableRandom rng);
    }

    private final Model model;
    private final PerturbFunction perturb;
    private final int nPerturbSamples;
    private final boolean normalize;
    private final List<Baseline> baselines;
    private final long seed;
    private final Integer internalBatchSize;

    private Infidelity(Model model, PerturbFunction perturb, int nPerturbSamples, boolean normalize,
            List<Baseline> baselines, long seed, Integer internalBatchSize) {
        if (nPerturbSamples < 1) {
            throw new InvalidInputException("infidelity: n_perturb_samples must be at least 1, got " + nPerturbSamples);
        }
        new ChunkPolicy(internalBatchSize);
        this.model = model;
        this.perturb = perturb;
        this.nPerturbSamples = nPerturbSamples;
        this.normalize = normalize;
        this.baselines = List.copyOf(baselines);
        this.seed = seed;
        this.internalBatchSize = internalBatchSize;
    }

    /** Gaussian perturbations of σ = {@link #DEFAULT_NOISE_STD}, 10 samples, not normalized, zero baselines, seed 0. */
    public Infidelity(Model model) {
        this(model, gaussian(DEFAULT_NOISE_STD), DEFAULT_SAMPLES, false, List.of(Baseline.zeros()), 0L, null);
    }

    public Infidelity perturbation(PerturbFunction f) {
        return new Infidelity(model, f, nPerturbSamples, normalize, baselines, seed, internalBatchSize);
    }

    public Infidelity nPerturbSamples(int n) {
        return new Infidelity(model, perturb, n, normalize, baselines, seed, internalBatchSize);
    }

    /** Captum's {@code normalize}: rescale the attributions by the least-squares β before the square. */
    public Infidelity normalize(boolean on) {
        return new Infidelity(model, perturb, nPerturbSamples, on, baselines, seed, internalBatchSize);
    }

    /** Baselines (square removal reads them): one for all attributed inputs, or one per input. */
    public Infidelity baselines(Baseline... b) {
        return new Infidelity(model, perturb, nPerturbSamples, normalize, List.of(b), seed, internalBatchSize);
    }

    public Infidelity seed(long s) {
        return new Infidelity(model, perturb, nPerturbSamples, normalize, baselines, s, internalBatchSize);
    }

    /** Rows per forward pass (default: the memory budget). */
    public Infidelity internalBatchSize(Integer rows) {
        return new Infidelity(model, perturb, nPerturbSamples, normalize, baselines, seed, rows);
    }

    /** I ~ N(0, std²) on every value of every attributed input. */
    public static PerturbFunction gaussian(double std) {
        if (!(std > 0) || !Double.isFinite(std)) {
            throw new InvalidInputException("infidelity: the Gaussian noise's standard deviation must be > 0, got " + std);
        }
        return (copies, baselines, rng) -> AttributedInputs.eachValue(copies, x -> std * rng.nextGaussian());
    }

    /**
     * Square removal (Yeh et al.): per copy, a random side × side square of the example's last two
     * axes (H, W; over every leading axis, e.g. all channels) takes the baseline: I = x − baseline
     * inside, 0 outside. {@code side} ≤ 0 takes a quarter of the smaller of H and W (at least 1);
     * a side larger than the image is clipped to it. Inputs need at least two example axes.
     */
    public static PerturbFunction squareRemoval(int side) {
        return (copies, baselines, rng) -> {
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : copies.entrySet()) {
                Tensor x = e.getValue();
                if (x.rank() < 3) {
                    throw new InvalidInputException("infidelity: square removal needs inputs of at least two example axes "
                            + "(an image [C, H, W] or [H, W]); input '" + e.getKey() + "' is " + Shapes.str(x.shape())
                            .replaceFirst("^\\[\\d+", "[batch") + " (use Gaussian perturbations)");
                }
                int h = x.dim(-2);
                int w = x.dim(-1);
                int s = Math.min(Math.min(h, w), side > 0 ? side : Math.max(1, (int) Math.round(Math.min(h, w) / 4.0)));
                float[] xv = x.data();
                float[] bv = baselines.get(e.getKey()).data();
                float[] pert = new float[x.size()];
                int per = x.rowSize();
                int planes = per / (h * w);
                for (int k = 0; k < x.dim(0); k++) {
                    int top = rng.nextInt(h - s + 1);
                    int left = rng.nextInt(w - s + 1);
                    for (int c = 0; c < planes; c++) {
                        for (int i = top; i < top + s; i++) {
                            for (int j = left; j < left + s; j++) {
                                int at = k * per + (c * h + i) * w + j;
                                pert[at] = xv[at] - bv[at];
                            }
                        }
                    }
                }
                out.put(e.getKey(), new Tensor(x.shape(), pert));
            }
            return out;
        };
    }

    /**
     * The infidelity of each example's attributions.
     *
     * @param attributions by attributed input name (each of its input's shape), e.g. {@code Attribution.byInputOr}
     * @param targets      one target, or one per row
     */
    public Scores compute(Inputs in, Map<String, Tensor> attributions, int... targets) {
        AttributedInputs a = AttributedInputs.of(model, in, baselines, attributions, "infidelity");
        int batch = a.batch;
        int n = nPerturbSamples;
        int[] t = model.targets(targets, batch);
        int samples = batch + n * batch;
        double[] dot = new double[samples];
        Rows rows = new Rows(a, n, dot);
        DevicePolicy.Ran<double[]> ran = model.run("infidelity", runner -> PerturbationLoop.evaluate(runner, samples,
                s -> t[s < batch ? s : (s - batch) / n], (s0, s1) -> runner.evaluate(rows.chunk(s0, s1), Set.of())
                        .get(model.graph().outputName()), new ChunkPolicy(internalBatchSize), Progress.NONE,
                PerturbationLoop.Output.TARGET));
        double[] f = ran.value();
        double[] out = new double[batch];
        for (int r = 0; r < batch; r++) {
            double aa = 0;
            double ab = 0;
            double bb = 0;
            double err = 0;
            for (int k = 0; k < n; k++) {
                int s = batch + r * n + k;
                double ak = dot[s];
                double bk = f[r] - f[s];
                aa += ak * ak;
                ab += ak * bk;
                bb += bk * bk;
                err += (ak - bk) * (ak - bk);
            }
            if (normalize) {
                double beta = ab / (aa != 0 ? aa : 1.0); // Captum's safe_div
                err = beta * beta * aa - 2 * beta * ab + bb;
            }
            out[r] = err / n;
        }
        return new Scores("infidelity", out, ran.device(), ran.fallbackReason());
    }

    /**
     * The forward rows, built on the host a chunk at a time: sample s < batch is row s, sample
     * batch + r·n + k is x_r − I_{r,k}. Each example's perturbations are drawn once from its own
     * stream (kept for the next chunk, redrawn identically after an out-of-memory retry); the dot
     * products a go to {@code dot}.
     */
    private final class Rows {
        private final AttributedInputs a;
        private final int n;
        private final double[] dot;
        private int cachedRow = -1;
        private Map<String, float[]> cached;

        Rows(AttributedInputs a, int n, double[] dot) {
            this.a = a;
            this.n = n;
            this.dot = dot;
        }

        Map<String, Tensor> chunk(int s0, int s1) {
            Map<String, float[]> rows = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : a.in.values().entrySet()) {
                rows.put(e.getKey(), new float[(s1 - s0) * e.getValue().rowSize()]);
            }
            for (int s = s0; s < s1; s++) {
                int r = s < a.batch ? s : (s - a.batch) / n;
                for (Map.Entry<String, Tensor> e : a.in.values().entrySet()) {
                    int per = e.getValue().rowSize();
                    boolean perturbed = s >= a.batch && a.names.contains(e.getKey());
                    System.arraycopy(perturbed ? perturbed(r).get(e.getKey()) : e.getValue().data(),
                            (perturbed ? s - a.batch - r * n : r) * per, rows.get(e.getKey()), (s - s0) * per, per);
                }
            }
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Map.Entry<String, Tensor> e : a.in.values().entrySet()) {
                int[] shape = e.getValue().shape();
                shape[0] = s1 - s0;
                out.put(e.getKey(), new Tensor(shape, rows.get(e.getKey())));
            }
            return out;
        }

        /** Example r's n perturbed rows by attributed input ([n × row] each), and its dot products. */
        private Map<String, float[]> perturbed(int r) {
            if (r == cachedRow) {
                return cached;
            }
            Map<String, Tensor> copies = new LinkedHashMap<>();
            Map<String, Tensor> base = new LinkedHashMap<>();
            for (String name : a.names) {
                copies.put(name, AttributedInputs.copies(a.in.get(name), r, n));
                base.put(name, AttributedInputs.copies(a.baselines.get(name), r, n));
            }
            Map<String, Tensor> pert = perturb.perturbations(copies, base, Stats.stream(seed, r));
            AttributedInputs.checkPerturbed("infidelity", "perturbations", copies, pert, r);
            Map<String, float[]> rows = new LinkedHashMap<>();
            double[] sums = new double[n];
            for (String name : a.names) {
                float[] x = copies.get(name).data();
                float[] i = pert.get(name).data();
                float[] attr = a.attributions.get(name).data();
                int per = x.length / n;
                float[] xp = new float[x.length];
                for (int k = 0; k < n; k++) {
                    for (int f = 0; f < per; f++) {
                        int at = k * per + f;
                        xp[at] = x[at] - i[at];
                        // the perturbation the model sees: x − (x − I) of the float rows
                        sums[k] += (double) attr[r * per + f] * ((double) x[at] - xp[at]);
                    }
                }
                rows.put(name, xp);
            }
            for (int k = 0; k < n; k++) {
                dot[a.batch + r * n + k] = sums[k];
            }
            cachedRow = r;
            cached = rows;
            return rows;
        }
    }
}
