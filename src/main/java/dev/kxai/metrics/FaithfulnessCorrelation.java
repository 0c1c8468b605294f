package dev.kxai.metrics;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.ChunkPolicy;
import dev.kxai.attr.Progress;
import dev.kxai.attr.perturbation.PerturbationLoop;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.Perturbation;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Faithfulness correlation (Bhatt et al. 2020, as Quantus computes it): for {@code n_runs} random
 * subsets S of |S| features of an example (over every attributed input),
 * <pre>
 *   corr = Pearson( Σ_{f∈S} attr_f ,  F_t(x) − F_t(x with S set to the baseline) )   over the runs
 * </pre>
 * per example, in [−1, 1] (NaN where either side does not vary). Defaults: 100 runs (Quantus's
 * nr_runs), |S| = 20% of the features (Quantus's default of 224 features is an image size; a
 * fraction fits any input), the raw target output (Quantus's softmax = False), zero baselines.
 *
 * <p>Sampling: each run's subset is a uniformly random set of |S| features. The runs come in
 * groups of m = ⌊F/|S|⌋ that share one random permutation of the features, cut into m disjoint
 * blocks, so that a group is one feature mask per example (block ids) and each run one
 * {@link Perturbation.Single} ablation of one block: the backend builds the rows where it computes
 * from the batch, the masks and one integer per row. Runs within a group are disjoint rather than
 * independent, which leaves each subset's distribution (and so the estimate) as it is.
 */
public final class FaithfulnessCorrelation {
    public static final int DEFAULT_RUNS = 100;

    public static final double DEFAULT_SUBSET_FRACTION = 0.2;

    private final Model model;
    private final int nRuns;
    private final double subsetFraction;
    private final Integer subsetSize;
    private final boolean probability;
    private final List<Baseline> baselines;
    private final long seed;
    private final Integer internalBatchSize;

    private FaithfulnessCorrelation(Model model, int nRuns, double subsetFraction, Integer subsetSize, boolean probability,
            List<Baseline> baselines, long seed, Integer internalBatchSize) {
        if (nRuns < 2) {
            throw new InvalidInputException("faithfulness_correlation: n_runs must be at least 2 (a correlation), got "
                    + nRuns);
        }
        if (!(subsetFraction > 0 && subsetFraction < 1)) {
            throw new InvalidInputException("faithfulness_correlation: the subset fraction must be in (0, 1), got "
                    + subsetFraction);
        }
        new ChunkPolicy(internalBatchSize);
        this.model = model;
        this.nRuns = nRuns;
        this.subsetFraction = subsetFraction;
        this.subsetSize = subsetSize;
        this.probability = probability;
        this.baselines = List.copyOf(baselines);
        this.seed = seed;
        this.internalBatchSize = internalBatchSize;
    }

    /** 100 runs, subsets of 20% of the features, the raw target output, zero baselines, seed 0. */
    public FaithfulnessCorrelation(Model model) {
        this(model, DEFAULT_RUNS, DEFAULT_SUBSET_FRACTION, null, false, List.of(Baseline.zeros()), 0L, null);
    }

    public FaithfulnessCorrelation nRuns(int n) {
        return new FaithfulnessCorrelation(model, n, subsetFraction, subsetSize, probability, baselines, seed,
                internalBatchSize);
    }

    /** |S| as a fraction of the features (rounded, at least 1). */
    public FaithfulnessCorrelation subsetFraction(double f) {
        return new FaithfulnessCorrelation(model, nRuns, f, null, probability, baselines, seed, internalBatchSize);
    }

    /** |S| as a number of features (Quantus's subset_size); null goes back to the fraction. */
    public FaithfulnessCorrelation subsetSize(Integer n) {
        return new FaithfulnessCorrelation(model, nRuns, subsetFraction, n, probability, baselines, seed, internalBatchSize);
    }

    /** F = the target's softmax probability instead of its raw output. */
    public FaithfulnessCorrelation probability(boolean on) {
        return new FaithfulnessCorrelation(model, nRuns, subsetFraction, subsetSize, on, baselines, seed, internalBatchSize);
    }

    public FaithfulnessCorrelation baselines(Baseline... b) {
        return new FaithfulnessCorrelation(model, nRuns, subsetFraction, subsetSize, probability, List.of(b), seed,
                internalBatchSize);
    }

    public FaithfulnessCorrelation seed(long s) {
        return new FaithfulnessCorrelation(model, nRuns, subsetFraction, subsetSize, probability, baselines, s,
                internalBatchSize);
    }

    public FaithfulnessCorrelation internalBatchSize(Integer rows) {
        return new FaithfulnessCorrelation(model, nRuns, subsetFraction, subsetSize, probability, baselines, seed, rows);
    }

    /** The correlation of each example. */
    public Scores compute(Inputs in, Map<String, Tensor> attributions, int... targets) {
        AttributedInputs a = AttributedInputs.of(model, in, baselines, attributions, "faithfulness_correlation");
        int batch = a.batch;
        int[] t = model.targets(targets, batch);
        int features = a.features;
        int size = subsetSize != null ? subsetSize : (int) Math.max(1, Math.round(subsetFraction * features));
        if (size < 1 || size >= features) {
            throw new InvalidInputException("faithfulness_correlation: a subset of " + size + " features of "
                    + features + "; it needs 1 to " + (features - 1) + " (some features must stay)");
        }
        int blocks = features / size;
        int groups = (nRuns + blocks - 1) / blocks;
        double[][] attr = new double[batch][];
        for (int r = 0; r < batch; r++) {
            attr[r] = a.attributionRow(r);
        }
        PerturbationLoop.Output y = probability ? PerturbationLoop.Output.TARGET_PROBABILITY : PerturbationLoop.Output.TARGET;
        ChunkPolicy policy = new ChunkPolicy(internalBatchSize);
        // all state inside: the device policy reruns the whole work on the CPU after a device failure
        DevicePolicy.Ran<double[][][]> ran = model.run("faithfulness correlation", runner -> {
            double[][] attrSum = new double[batch][nRuns];
            double[][] delta = new double[batch][nRuns];
            SplittableRandom[] rng = new SplittableRandom[batch];
            for (int r = 0; r < batch; r++) {
                rng[r] = Stats.stream(seed, r);
            }
            double[] unperturbed = null;
            for (int g = 0; g < groups; g++) {
                int first = g * blocks;
                int runs = Math.min(blocks, nRuns - first);
                // per row: a permutation cut into blocks; the features after the last block form block `blocks` (kept)
                int[][] groupOf = new int[batch][features];
                for (int r = 0; r < batch; r++) {
                    int[] p = Stats.permutation(features, rng[r]);
                    for (int j = 0; j < features; j++) {
                        int b = Math.min(j / size, blocks);
                        groupOf[r][p[j]] = b;
                        if (b < runs) {
                            attrSum[r][first + b] += attr[r][p[j]];
                        }
                    }
                }
                int lead = g == 0 ? batch : 0; // F(x): the first group's leading samples ablate nothing
                int samples = lead + runs * batch;
                int[] home = new int[samples];
                int[] ablate = new int[samples];
                for (int s = 0; s < samples; s++) {
                    home[s] = s < lead ? s : (s - lead) % batch;
                    ablate[s] = s < lead ? -1 : (s - lead) / batch;
                }
                Map<String, Perturbation.Rule> rules = new LinkedHashMap<>();
                a.masks(groupOf).forEach((name, mask) -> rules.put(name,
                        new Perturbation.Single(a.baselines.get(name), mask, true, ablate)));
                double[] f = PerturbationLoop.evaluate(runner, new Perturbation(a.in.values(), home, rules), t, policy,
                        Progress.NONE, y);
                if (g == 0) {
                    unperturbed = java.util.Arrays.copyOf(f, batch);
                }
                for (int s = lead; s < samples; s++) {
                    int r = home[s];
                    delta[r][first + ablate[s]] = unperturbed[r] - f[s];
                }
            }
            return new double[][][] {attrSum, delta};
        });
        double[] out = new double[batch];
        for (int r = 0; r < batch; r++) {
            out[r] = Stats.pearson(ran.value()[0][r], ran.value()[1][r]);
        }
        return new Scores("faithfulness_correlation", out, ran.device(), ran.fallbackReason());
    }
}
