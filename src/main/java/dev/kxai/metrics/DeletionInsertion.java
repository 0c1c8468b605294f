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
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Deletion and insertion curves (Petsiuk et al. 2018, RISE): the features of each example, over
 * every attributed input, are ordered by their attribution (MoRF: most relevant, i.e. largest
 * signed attribution, first; LeRF: least relevant first; ties by position), and changed in
 * {@code steps} equal parts: at point k (k = 0..steps) the first ⌊k·F/steps⌋ features of the order
 * (F features in all, a fraction ≈ k/steps) are
 * <ul>
 *   <li>deletion: replaced by the baseline (point 0 is x, point steps the baseline);</li>
 *   <li>insertion: revealed on the baseline (point 0 is the baseline, point steps is x).</li>
 * </ul>
 * The curve's y is the target's softmax probability (default) or its raw output; the AUC is the
 * trapezoid rule over the fraction axis [0, 1] (points 1/steps apart). With MoRF a faithful
 * attribution gives a low deletion AUC and a high insertion AUC. A random-order curve (a seeded
 * permutation per example) is computed beside it for comparison.
 *
 * <p>The rows are described compactly and built by the backend where it computes (on CUDA on
 * the device): per example a feature mask (a feature's group is the step bucket at which it
 * changes) and per point a {@link Perturbation.Coalition} rule whose take table keeps or replaces
 * whole buckets; (steps + 1) × batch rows per order, evaluated by {@link PerturbationLoop}.
 */
public final class DeletionInsertion {
    /** Which curve. */
    public enum Mode {
        DELETION, INSERTION;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The order features change in. */
    public enum Order {
        /** Most relevant first: largest attribution first. */
        MORF,
        /** Least relevant first: smallest attribution first. */
        LERF;

        public static Order parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "morf" -> MORF;
                case "lerf" -> LERF;
                default -> throw new InvalidInputException("unknown order '" + s + "'; known: morf (most relevant first), "
                        + "lerf (least relevant first)");
            };
        }
    }

    /** The default number of steps: 21 points. */
    public static final int DEFAULT_STEPS = 20;

    /**
     * The curves of a batch.
     *
     * @param curves       [batch][steps + 1]: y at each point
     * @param auc          per example, trapezoid over [0, 1]
     * @param randomCurves the same with a random order per example
     * @param randomAuc    their AUCs
     * @param probability  whether y is the target's softmax probability (else its raw output)
     */
    public record Curves(Mode mode, Order order, int steps, boolean probability, double[][] curves, double[] auc,
            double[][] randomCurves, double[] randomAuc, String device, String fallbackReason) {
        public double meanAuc() {
            return Stats.finiteMean(auc);
        }

        public double meanRandomAuc() {
            return Stats.finiteMean(randomAuc);
        }

        /** The mean curve over the batch. */
        public double[] meanCurve() {
            return mean(curves);
        }

        public double[] meanRandomCurve() {
            return mean(randomCurves);
        }

        private static double[] mean(double[][] c) {
            double[] m = new double[c[0].length];
            for (double[] row : c) {
                for (int k = 0; k < m.length; k++) {
                    m[k] += row[k] / c.length;
                }
            }
            return m;
        }

        public String describeDevice() {
            return fallbackReason == null ? device : device + " (fell back: " + fallbackReason + ")";
        }
    }

    private final Model model;
    private final Mode mode;
    private final Order order;
    private final int steps;
    private final boolean probability;
    private final List<Baseline> baselines;
    private final long seed;
    private final Integer internalBatchSize;

    private DeletionInsertion(Model model, Mode mode, Order order, int steps, boolean probability, List<Baseline> baselines,
            long seed, Integer internalBatchSize) {
        if (steps < 1) {
            throw new InvalidInputException(mode.label() + ": steps must be at least 1, got " + steps);
        }
        if (steps > Perturbation.MAX_ID) {
            throw new InvalidInputException(mode.label() + ": steps " + steps + " is above " + Perturbation.MAX_ID);
        }
        new ChunkPolicy(internalBatchSize);
        this.model = model;
        this.mode = mode;
        this.order = order;
        this.steps = steps;
        this.probability = probability;
        this.baselines = List.copyOf(baselines);
        this.seed = seed;
        this.internalBatchSize = internalBatchSize;
    }

    /** Deletion, MoRF, 20 steps, the target's probability, zero baselines, seed 0. */
    public static DeletionInsertion deletion(Model model) {
        return new DeletionInsertion(model, Mode.DELETION, Order.MORF, DEFAULT_STEPS, true, List.of(Baseline.zeros()), 0L,
                null);
    }

    /** Insertion, MoRF, 20 steps, the target's probability, zero baselines, seed 0. */
    public static DeletionInsertion insertion(Model model) {
        return deletion(model).mode(Mode.INSERTION);
    }

    public DeletionInsertion mode(Mode m) {
        return new DeletionInsertion(model, m, order, steps, probability, baselines, seed, internalBatchSize);
    }

    public DeletionInsertion order(Order o) {
        return new DeletionInsertion(model, mode, o, steps, probability, baselines, seed, internalBatchSize);
    }

    public DeletionInsertion steps(int n) {
        return new DeletionInsertion(model, mode, order, n, probability, baselines, seed, internalBatchSize);
    }

    /** y = the target's softmax probability (true, the default) or its raw output. */
    public DeletionInsertion probability(boolean on) {
        return new DeletionInsertion(model, mode, order, steps, on, baselines, seed, internalBatchSize);
    }

    /** What deleted features become and inserted ones start from: one for all attributed inputs, or one per input. */
    public DeletionInsertion baselines(Baseline... b) {
        return new DeletionInsertion(model, mode, order, steps, probability, List.of(b), seed, internalBatchSize);
    }

    /** The seed of the random-order curves. */
    public DeletionInsertion seed(long s) {
        return new DeletionInsertion(model, mode, order, steps, probability, baselines, s, internalBatchSize);
    }

    /** Rows per forward pass (default: the memory budget). */
    public DeletionInsertion internalBatchSize(Integer rows) {
        return new DeletionInsertion(model, mode, order, steps, probability, baselines, seed, rows);
    }

    /** The trapezoid rule over [0, 1] for points 1/(length − 1) apart. */
    public static double auc(double[] curve) {
        int steps = curve.length - 1;
        double s = 0;
        for (int k = 1; k <= steps; k++) {
            s += (curve[k - 1] + curve[k]) / 2;
        }
        return s / steps;
    }

    /**
     * bucket[j] for rank j of an order of {@code features}: the step (0-based: changed from point
     * bucket + 1 on) at which it changes, the smallest k ≥ 1 with j < ⌊k·F/steps⌋, minus one.
     */
    static int[] buckets(int features, int steps) {
        int[] b = new int[features];
        int k = 1;
        for (int j = 0; j < features; j++) {
            while (j >= (long) k * features / steps) {
                k++;
            }
            b[j] = k - 1;
        }
        return b;
    }

    /**
     * The curves of each example for its attributions.
     *
     * @param attributions by attributed input name (each of its input's shape)
     * @param targets      one target, or one per row
     */
    public Curves compute(Inputs in, Map<String, Tensor> attributions, int... targets) {
        AttributedInputs a = AttributedInputs.of(model, in, baselines, attributions, mode.label());
        int batch = a.batch;
        int[] t = model.targets(targets, batch);
        int[] bucket = buckets(a.features, steps);
        int[][] byAttribution = new int[batch][];
        int[][] byChance = new int[batch][];
        for (int r = 0; r < batch; r++) {
            byAttribution[r] = groups(rank(a.attributionRow(r), order), bucket);
            byChance[r] = groups(Stats.permutation(a.features, Stats.stream(seed, r)), bucket);
        }
        Perturbation ordered = perturbation(a, byAttribution);
        Perturbation random = perturbation(a, byChance);
        PerturbationLoop.Output y = probability ? PerturbationLoop.Output.TARGET_PROBABILITY : PerturbationLoop.Output.TARGET;
        ChunkPolicy policy = new ChunkPolicy(internalBatchSize);
        DevicePolicy.Ran<double[][]> ran = model.run(mode.label() + " curves", runner -> new double[][] {
            PerturbationLoop.evaluate(runner, ordered, t, policy, Progress.NONE, y),
            PerturbationLoop.evaluate(runner, random, t, policy, Progress.NONE, y)});
        double[][] curves = new double[batch][];
        double[][] randomCurves = new double[batch][];
        double[] auc = new double[batch];
        double[] randomAuc = new double[batch];
        for (int r = 0; r < batch; r++) {
            curves[r] = Arrays.copyOfRange(ran.value()[0], r * (steps + 1), (r + 1) * (steps + 1));
            randomCurves[r] = Arrays.copyOfRange(ran.value()[1], r * (steps + 1), (r + 1) * (steps + 1));
            auc[r] = auc(curves[r]);
            randomAuc[r] = auc(randomCurves[r]);
        }
        return new Curves(mode, order, steps, probability, curves, auc, randomCurves, randomAuc, ran.device(),
                ran.fallbackReason());
    }

    /** The features of a row in the order they change: by attribution, descending for MoRF, ties by position. */
    static int[] rank(double[] attribution, Order order) {
        Comparator<Integer> c = Comparator.comparingDouble(f -> attribution[f]);
        return IntStream.range(0, attribution.length).boxed()
                .sorted(order == Order.MORF ? c.reversed().thenComparingInt(f -> f) : c.thenComparingInt(f -> f))
                .mapToInt(Integer::intValue).toArray();
    }

    /** group[feature] = the bucket of its rank in {@code ranked}. */
    private static int[] groups(int[] ranked, int[] bucket) {
        int[] g = new int[ranked.length];
        for (int j = 0; j < ranked.length; j++) {
            g[ranked[j]] = bucket[j];
        }
        return g;
    }

    /**
     * Sample r·(steps + 1) + k is point k of row r: the buckets below k take the baseline
     * (deletion) or keep the row's values on the baseline (insertion).
     */
    private Perturbation perturbation(AttributedInputs a, int[][] groupOf) {
        int samples = a.batch * (steps + 1);
        int[] home = new int[samples];
        int[] take = new int[samples * steps];
        for (int r = 0; r < a.batch; r++) {
            for (int k = 0; k <= steps; k++) {
                int s = r * (steps + 1) + k;
                home[s] = r;
                for (int g = 0; g < steps; g++) {
                    boolean changed = g < k;
                    take[s * steps + g] = changed == (mode == Mode.DELETION) ? -1 : r;
                }
            }
        }
        Map<String, Perturbation.Rule> rules = new LinkedHashMap<>();
        a.masks(groupOf).forEach((name, mask) -> rules.put(name,
                new Perturbation.Coalition(a.baselines.get(name), mask, true, steps, take)));
        return new Perturbation(a.in.values(), home, rules);
    }
}
