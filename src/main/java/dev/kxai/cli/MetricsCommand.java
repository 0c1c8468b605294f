package dev.kxai.cli;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Methods;
import dev.kxai.io.NpyIO;
import dev.kxai.metrics.DeletionInsertion;
import dev.kxai.metrics.FaithfulnessCorrelation;
import dev.kxai.metrics.Infidelity;
import dev.kxai.metrics.LimeFidelity;
import dev.kxai.metrics.Scores;
import dev.kxai.metrics.Sensitivity;
import dev.kxai.report.CurvePlot;
import dev.kxai.tensor.Tensor;
import java.awt.Color;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "metrics", description = {
    "Scores a method's attributions of a batch with a faithfulness metric, printing its value per example",
    "and the mean, and writing them to DIR/<metric>.npy:",
    "  infidelity                Captum's infidelity: mean over perturbations I of (sum I*attr - (F(x) - F(x - I)))^2",
    "  sensitivity               Captum's sensitivity_max: max over noisy x' of |expl(x') - expl(x)| / |expl(x)|",
    "  deletion, insertion       curves of the target's probability as features are deleted (inserted) in the",
    "                            attributions' order, their AUC and a random order's; writes the curves",
    "                            [batch, curve-steps + 1] as .npy and a PNG of the mean curves",
    "  faithfulness_correlation  Bhatt et al.: Pearson correlation of sum of attributions over random subsets",
    "                            with F(x) - F(x with the subset at the baseline)",
    "  lime_fidelity             LIME's weighted R^2 of its surrogate on held-out samples (--method lime|kernel_shap)",
    "With no --model/--input it scores the bundled digits CNN on ten 8x8 digits."})
final class MetricsCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    BatchOptions batch = new BatchOptions();

    @Mixin
    AttributionOptions run = new AttributionOptions();

    @Mixin
    PerturbationOptions perturbation = new PerturbationOptions();

    @Option(names = "--metric", required = true, paramLabel = "NAME", description = "infidelity, sensitivity, deletion, "
            + "insertion, faithfulness_correlation or lime_fidelity.")
    String metric;

    @Option(names = "--n-perturb-samples", defaultValue = "10", description = "infidelity, sensitivity: perturbations per "
            + "example (Captum's n_perturb_samples; default: ${DEFAULT-VALUE}).")
    int nPerturbSamples;

    @Option(names = "--perturbation", defaultValue = "gaussian", description = "infidelity: gaussian (I ~ N(0, "
            + "noise-std^2)) or square (a random square of the image set to the baseline; default: ${DEFAULT-VALUE}).")
    String perturbationKind;

    @Option(names = "--noise-std", defaultValue = "0.003", description = "infidelity: the Gaussian noise's standard "
            + "deviation (default: ${DEFAULT-VALUE}, Captum's docstring example).")
    double noiseStd;

    @Option(names = "--square-size", description = "infidelity: the removed square's side in pixels (default: a quarter "
            + "of the image's smaller side).")
    Integer squareSize;

    @Option(names = "--normalize", description = "infidelity: rescale the attributions by the least-squares factor "
            + "first (Captum's normalize=True).")
    boolean normalize;

    @Option(names = "--perturb-radius", defaultValue = "0.02", description = "sensitivity: the uniform noise's L-inf "
            + "radius (Captum's perturb_radius; default: ${DEFAULT-VALUE}).")
    double perturbRadius;

    @Option(names = "--norm", defaultValue = "fro", description = "sensitivity: fro or a number p, inf, -inf "
            + "(Captum's norm_ord; default: ${DEFAULT-VALUE}).")
    String norm;

    @Option(names = "--curve-steps", defaultValue = "20", description = "deletion, insertion: the curve's steps "
            + "(steps + 1 points, k/steps of the features changed at point k; default: ${DEFAULT-VALUE}). "
            + "--steps stays Integrated Gradients' n_steps.")
    int curveSteps;

    @Option(names = "--order", defaultValue = "morf", description = "deletion, insertion: morf (most relevant first) "
            + "or lerf (least relevant first; default: ${DEFAULT-VALUE}).")
    String order;

    @Option(names = "--output", description = "deletion, insertion, faithfulness_correlation: probability (the target's "
            + "softmax) or raw (its output); default: probability for the curves, raw for faithfulness_correlation.")
    String output;

    @Option(names = "--n-runs", defaultValue = "100", description = "faithfulness_correlation: random subsets per example "
            + "(default: ${DEFAULT-VALUE}).")
    int nRuns;

    @Option(names = "--subset-fraction", defaultValue = "0.2", description = "faithfulness_correlation: the subsets' size "
            + "as a fraction of the features (default: ${DEFAULT-VALUE}).")
    double subsetFraction;

    @Option(names = "--held-out", defaultValue = "50", description = "lime_fidelity: held-out samples per example "
            + "(default: ${DEFAULT-VALUE}).")
    int heldOut;

    @Option(names = "--out", defaultValue = "kxai-metrics", description = "Output folder (default: ./${DEFAULT-VALUE}).")
    Path out;

    private static final List<String> METRICS = List.of("infidelity", "sensitivity", "deletion", "insertion",
            "faithfulness_correlation", "lime_fidelity");

    @Override
    public Integer call() throws IOException {
        PrintWriter w = spec.commandLine().getOut();
        String which = metric.toLowerCase(Locale.ROOT);
        if (!METRICS.contains(which)) {
            throw new InvalidInputException("--metric " + metric + ": unknown; known: " + String.join(", ", METRICS));
        }
        // counts checked before the attributions are computed (they were refused only after them)
        for (Object[] c : new Object[][] {{"--n-perturb-samples", "n_perturb_samples", nPerturbSamples},
            {"--curve-steps", "curve_steps", curveSteps}, {"--n-runs", "n_runs", nRuns}}) {
            if ((int) c[2] < 1) {
                throw new InvalidInputException(c[0] + ": " + c[1] + " must be at least 1, got " + c[2]);
            }
            dev.kxai.attr.Limits.samples("metrics", (String) c[0], (int) c[2]);
        }
        BatchOptions.checkOut(out);
        boolean probability = output(which);
        long t0 = System.nanoTime();
        Model m = batch.load(run.device);
        Inputs in = batch.inputs(m);
        int[] targets = batch.targets(m, in, m.predict(in));
        String methodName = Methods.entry(run.method).name();
        if (methodName.startsWith("layer_")) {
            throw new InvalidInputException("--method " + run.method + ": the metrics score attributions of the model's "
                    + "inputs; " + methodName + " attributes a layer");
        }
        if (which.equals("lime_fidelity") && !methodName.equals("lime") && !methodName.equals("kernel_shap")) {
            throw new InvalidInputException("--metric lime_fidelity scores LIME's surrogate: give --method lime or "
                    + "kernel_shap, not " + run.method);
        }
        Map<String, Object> params = BatchOptions.forMethod(spec, methodName,
                batch.params(run, perturbation, m, in, null, batch.progress(spec)));
        Baseline[] baselines = batch.baselines(m, in, false).toArray(Baseline[]::new);
        Files.createDirectories(out);
        String head = String.format(Locale.ROOT, "kxai metrics: %s on %s, %d example(s), method %s, metric %s",
                batch.describeModel(), batch.describeInputs(in), in.batch(), methodName, which);
        if (which.equals("deletion") || which.equals("insertion")) {
            Attribution a = attribute(m, methodName, params, in, targets);
            DeletionInsertion.Curves c = DeletionInsertion.deletion(m).mode(DeletionInsertion.Mode.valueOf(
                    which.toUpperCase(Locale.ROOT))).order(DeletionInsertion.Order.parse(order)).steps(curveSteps)
                    .probability(probability).baselines(baselines).seed(perturbation.seed)
                    .internalBatchSize(run.internalBatchSize).compute(in, a.byInputOr(m.graph().inputName()), targets);
            w.printf(Locale.ROOT, "%s (%s order, %d steps, y = %s, seed %d), attributions on %s, curves on %s, %.2f s%n",
                    head, c.order().name(), c.steps(), yLabel(probability), perturbation.seed, a.describeDevice(),
                    c.describeDevice(), (System.nanoTime() - t0) / 1e9);
            curves(w, c, targets);
        } else {
            Scores s;
            String detail;
            String ran;
            if (which.equals("sensitivity")) {
                Methods.Method method = Methods.create(methodName, m, Methods.Params.of(params));
                s = new Sensitivity(m, method).perturbRadius(perturbRadius).nPerturbSamples(nPerturbSamples).normOrd(norm)
                        .seed(perturbation.seed).compute(in, targets);
                detail = String.format(Locale.ROOT, "uniform noise of radius %s, %d samples, norm %s, seed %d",
                        perturbRadius, nPerturbSamples, norm, perturbation.seed);
                ran = "explanations on " + s.describeDevice();
            } else if (which.equals("lime_fidelity")) {
                s = new LimeFidelity(Methods.linearSurrogate(methodName, m, Methods.Params.of(params))).heldOut(heldOut)
                        .seed(perturbation.seed).compute(in, targets);
                detail = String.format(Locale.ROOT, "%d held-out samples, seed %d", heldOut, perturbation.seed);
                ran = "ran on " + s.describeDevice();
            } else {
                Attribution a = attribute(m, methodName, params, in, targets);
                Map<String, Tensor> attr = a.byInputOr(m.graph().inputName());
                if (which.equals("infidelity")) {
                    s = new Infidelity(m).perturbation(infidelityPerturbation()).nPerturbSamples(nPerturbSamples)
                            .normalize(normalize).baselines(baselines).seed(perturbation.seed)
                            .internalBatchSize(run.internalBatchSize).compute(in, attr, targets);
                    detail = String.format(Locale.ROOT, "%s, %d samples%s, seed %d", perturbationKind.equals("square")
                            ? "square removal" + (squareSize != null ? " of side " + squareSize : "")
                            : "gaussian noise of std " + noiseStd, nPerturbSamples, normalize ? ", normalized" : "",
                            perturbation.seed);
                } else {
                    s = new FaithfulnessCorrelation(m).nRuns(nRuns).subsetFraction(subsetFraction).probability(probability)
                            .baselines(baselines).seed(perturbation.seed).internalBatchSize(run.internalBatchSize)
                            .compute(in, attr, targets);
                    detail = String.format(Locale.ROOT, "%d runs, subsets of %s of the features, F = %s, seed %d", nRuns,
                            subsetFraction, yLabel(probability), perturbation.seed);
                }
                ran = "attributions on " + a.describeDevice() + ", metric on " + s.describeDevice();
            }
            w.printf(Locale.ROOT, "%s (%s), %s, %.2f s%n", head, detail, ran, (System.nanoTime() - t0) / 1e9);
            scores(w, s, which, targets);
        }
        w.flush();
        return 0;
    }

    private static Attribution attribute(Model m, String methodName, Map<String, Object> params, Inputs in, int[] targets) {
        return Methods.create(methodName, m, Methods.Params.of(params)).attribute(in, targets);
    }

    /** --output: probability or raw; its default depends on the metric. */
    private boolean output(String which) {
        if (output == null) {
            return !which.equals("faithfulness_correlation");
        }
        return switch (output.toLowerCase(Locale.ROOT)) {
            case "probability" -> true;
            case "raw" -> false;
            default -> throw new InvalidInputException("--output " + output + ": probability or raw");
        };
    }

    private static String yLabel(boolean probability) {
        return probability ? "probability of the target" : "target output";
    }

    private Infidelity.PerturbFunction infidelityPerturbation() {
        return switch (perturbationKind.toLowerCase(Locale.ROOT)) {
            case "gaussian" -> Infidelity.gaussian(noiseStd);
            case "square" -> {
                if (squareSize != null && squareSize < 1) {
                    throw new InvalidInputException("--square-size " + squareSize + ": a side of at least 1 pixel");
                }
                yield Infidelity.squareRemoval(squareSize == null ? 0 : squareSize);
            }
            default -> throw new InvalidInputException("--perturbation " + perturbationKind + ": gaussian or square");
        };
    }

    private void scores(PrintWriter w, Scores s, String which, int[] targets) throws IOException {
        double[] v = s.values();
        int defined = 0;
        for (int i = 0; i < v.length; i++) {
            w.printf(Locale.ROOT, "example %d: target %d, %s %.6g%n", i, targets[i], which, v[i]);
            defined += Double.isFinite(v[i]) ? 1 : 0;
        }
        w.printf(Locale.ROOT, "mean %s: %.6g%s%n", which, s.mean(), defined == v.length ? ""
                : " (over the " + defined + " example(s) where it is defined)");
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        NpyIO.write(out.resolve(which + ".npy"), new Tensor(new int[] {v.length}, f));
        w.printf("wrote %s.npy to %s%n", which, out.toAbsolutePath());
    }

    private void curves(PrintWriter w, DeletionInsertion.Curves c, int[] targets) throws IOException {
        String mode = c.mode().label();
        for (int i = 0; i < c.auc().length; i++) {
            w.printf(Locale.ROOT, "example %d: target %d, %s AUC %.6g, random order %.6g%n", i, targets[i], mode, c.auc()[i],
                    c.randomAuc()[i]);
        }
        w.printf(Locale.ROOT, "mean %s AUC: %.6g, random order %.6g%n", mode, c.meanAuc(), c.meanRandomAuc());
        NpyIO.write(out.resolve(mode + "_curves.npy"), matrix(c.curves()));
        NpyIO.write(out.resolve(mode + "_random_curves.npy"), matrix(c.randomCurves()));
        NpyIO.write(out.resolve(mode + "_auc.npy"), matrix(new double[][] {c.auc()}).reshape(c.auc().length));
        String order = c.order() == DeletionInsertion.Order.MORF ? "most relevant first" : "least relevant first";
        CurvePlot.writePng(out.resolve(mode + ".png"), String.format(Locale.ROOT, "%s, mean of %d: AUC %.4f (random %.4f)",
                mode, c.auc().length, c.meanAuc(), c.meanRandomAuc()), "fraction of features " + (c.mode()
                        == DeletionInsertion.Mode.DELETION ? "deleted" : "inserted"), yLabel(c.probability()), List.of(
                new CurvePlot.Series("attribution order (" + order + ")", c.meanCurve(), new Color(0x1F77B4), false),
                new CurvePlot.Series("random order", c.meanRandomCurve(), Color.GRAY, true)));
        w.printf("wrote %s_curves.npy, %s_random_curves.npy, %s_auc.npy, %s.png to %s%n", mode, mode, mode, mode,
                out.toAbsolutePath());
    }

    private static Tensor matrix(double[][] rows) {
        int cols = rows[0].length;
        float[] f = new float[rows.length * cols];
        for (int r = 0; r < rows.length; r++) {
            for (int k = 0; k < cols; k++) {
                f[r * cols + k] = (float) rows[r][k];
            }
        }
        return new Tensor(new int[] {rows.length, cols}, f);
    }
}
