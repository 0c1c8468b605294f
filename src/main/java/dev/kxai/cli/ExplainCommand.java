package dev.kxai.cli;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.io.NpyIO;
import dev.kxai.report.AttributionImage;
import dev.kxai.report.AttributionSummary;
import dev.kxai.report.Heatmap;
import dev.kxai.report.HtmlReport;
import dev.kxai.report.Png;
import dev.kxai.report.TopKBars;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "explain", description = {
    "Explains a batch: writes attributions.npy (and deltas.npy for Integrated Gradients), one PNG per",
    "example (input and attribution heat map side by side), and prints a summary.",
    "With no --model/--input it explains the bundled digits CNN on ten 8x8 digits."})
final class ExplainCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    BatchOptions batch = new BatchOptions();

    @Option(names = "--layer", paramLabel = "NAME", description = "layer_* methods (layer_integrated_gradients, "
            + "layer_grad_cam, layer_conductance, layer_deeplift, layer_gradient_shap, layer_feature_ablation, ...): the "
            + "value (a node's output) to attribute at; neuron_* methods: the layer of --neuron; activation_max: the layer "
            + "of --channel or --neuron; 'kxai info' lists them.")
    String layer;

    @Mixin
    AttributionOptions run = new AttributionOptions();

    @Mixin
    PerturbationOptions perturbation = new PerturbationOptions();

    @Mixin
    ActivationMaxOptions activationMax = new ActivationMaxOptions();

    @Option(names = "--out", defaultValue = "kxai-out", description = "Output folder (default: ./${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--report", paramLabel = "FILE.html", description = "Also write a self-contained HTML report: per "
            + "example the image, the signed and absolute overlays (or the top-k bar chart of a tabular model), the "
            + "prediction, the delta and the method's parameters; images embedded, no network needed to open it.")
    Path report;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "20", description = "Tabular inputs: the bar chart "
            + "(PNG and report) shows the K largest |attributions| (default: ${DEFAULT-VALUE}, at most 50).")
    int topK;

    @Option(names = "--feature-names", paramLabel = "FILE", description = "Tabular inputs: one feature name a line, "
            + "for the bar charts (default: feature 0, feature 1, ...).")
    Path featureNamesFile;

    @Option(names = "--overlay-alpha", paramLabel = "A", defaultValue = "0.7", description = "Overlays: the colour's "
            + "opacity at the largest attribution (0..1; default: ${DEFAULT-VALUE}).")
    double overlayAlpha;

    @Option(names = "--batch-invariant", description = "Dense layers (Gemm, MatMul) accumulated in double and rounded "
            + "once, so that each row's numbers do not depend on the rows computed with it (as kxai serve's batching and "
            + "kxai-spark's partitions); about twice the dense layers' cost. Off: float BLAS, whose rounding depends on "
            + "the batch's size.")
    boolean batchInvariant;

    @Override
    public Integer call() throws Exception {
        return AttributionOptions.withNumerics(run.exact, run.tf32, () -> {
            if (!batchInvariant) {
                return explain();
            }
            dev.kxai.backend.cpu.CpuBackend.batchInvariant(true);
            try {
                return explain();
            } finally {
                dev.kxai.backend.cpu.CpuBackend.batchInvariant(false);
            }
        });
    }

    private Integer explain() throws IOException {
        StartupTrace.mark("explain: command line parsed");
        PrintWriter w = spec.commandLine().getOut();
        BatchOptions.checkOut(out);
        if (report != null) {
            if (Files.isDirectory(report)) {
                throw new dev.kxai.InvalidInputException("--report " + report + " is a folder; give a file name (.html)");
            }
            BatchOptions.checkOut(report.toAbsolutePath().getParent());
        }
        if (topK < 1 || topK > TopKBars.MAX_K) {
            throw new dev.kxai.InvalidInputException("--top-k must be in 1.." + TopKBars.MAX_K + ", got " + topK);
        }
        if (!(overlayAlpha >= 0 && overlayAlpha <= 1)) {
            throw new dev.kxai.InvalidInputException("--overlay-alpha must be in [0, 1], got " + overlayAlpha);
        }
        String[] featureNames = null;
        if (featureNamesFile != null) {
            try {
                featureNames = Files.readAllLines(featureNamesFile).stream().map(String::strip).toArray(String[]::new);
            } catch (IOException e) {
                throw new dev.kxai.InvalidInputException("--feature-names " + featureNamesFile + ": cannot read: "
                        + e.getMessage(), e);
            }
        }
        long t0 = System.nanoTime();
        Model m = batch.load(run.device);
        StartupTrace.mark("explain: model loaded");
        Inputs in = batch.inputs(m, batch.progress(spec, "reading images", "images"));
        StartupTrace.mark("explain: inputs read");
        Tensor logits = m.forward(in);
        int[] predicted = m.predict(in);
        int n = in.batch();
        int[] targets = batch.targets(m, in, predicted);
        String methodName = Methods.entry(run.method).name();
        java.util.Map<String, Object> params = batch.params(run, perturbation, m, in, layer, batch.progress(spec));
        activationMax.addTo(params);
        params = BatchOptions.forMethod(spec, methodName, params);
        boolean optimised = methodName.equals("activation_max");
        StartupTrace.mark("explain: forward, targets, params");
        Attribution a = Methods.create(methodName, m, Methods.Params.of(params)).attribute(in, targets);
        double seconds = (System.nanoTime() - t0) / 1e9;
        StartupTrace.mark("explain: attributed");

        java.util.Map<String, Tensor> byName = a.byInputOr(m.graph().inputName());
        Files.createDirectories(out);
        java.util.List<String> written = new java.util.ArrayList<>();
        for (java.util.Map.Entry<String, Tensor> e : byName.entrySet()) {
            String file = byName.size() == 1 ? "attributions.npy" : "attributions_" + fileSafe(e.getKey()) + ".npy";
            NpyIO.write(out.resolve(file), e.getValue());
            written.add(file);
        }
        if (a.convergenceDelta() != null) {
            NpyIO.write(out.resolve("deltas.npy"), a.convergenceDelta());
            written.add("deltas.npy");
        }
        w.printf("kxai explain: %s on %s, %d example(s), method %s%s, ran on %s, %.2f s%n",
                batch.describeModel(), batch.describeInputs(in), n, methodName, methodName.contains("integrated_gradients")
                        ? " (" + run.rule + ", " + run.steps + " steps, baseline " + (batch.baselineArgs == null ? "zeros"
                                : String.join(" ", batch.baselineArgs)) + (layer != null ? ", layer " + layer : "") + ")" : "",
                a.describeDevice(), seconds);
        StartupTrace.mark("explain: .npy written");
        int pngs = 0;
        int outs = logits.rowSize();
        // activation maximisation: the model's output at the optimised inputs, beside the batch's
        Tensor reached = optimised ? m.forward(replaced(in, byName)) : null;
        HtmlReport html = report == null ? null : newReport(m, in, methodName, params, a, seconds);
        ProgressBar rendering = batch.progress(spec, "rendering", "examples");
        for (int i = 0; i < n; i++) {
            StringBuilder line = new StringBuilder(String.format("example %d: predicted %d (output %.3f), target %d%s",
                    i, predicted[i], logits.data()[i * outs + predicted[i]], targets[i], a.convergenceDelta() == null ? ""
                            : String.format(", delta %+.2e", a.convergenceDelta().data()[i])));
            if (reached != null) {
                line.append(String.format(", optimised input: output %d %.3f, predicted %d", targets[i],
                        reached.data()[i * outs + targets[i]], argmax(reached.data(), i * outs, outs)));
            }
            java.util.List<HtmlReport.Picture> pictures = new java.util.ArrayList<>();
            java.util.Map<String, String> facts = new java.util.LinkedHashMap<>();
            if (batch.imageFiles != null) {
                facts.put("image", batch.imageFiles.get(i).toString());
            }
            facts.put("prediction", String.format(java.util.Locale.ROOT, "class %d (output %.4g)", predicted[i],
                    logits.data()[i * outs + predicted[i]]));
            facts.put("target", String.format(java.util.Locale.ROOT, "%d (output %.4g)", targets[i],
                    logits.data()[i * outs + targets[i]]));
            if (a.convergenceDelta() != null) {
                facts.put("delta", String.format(java.util.Locale.ROOT, "%+.3e", a.convergenceDelta().data()[i]));
            }
            for (java.util.Map.Entry<String, Tensor> e : byName.entrySet()) {
                Tensor at = e.getValue();
                Tensor x = in.get(e.getKey()); // null for a layer's attributions: no picture of the input then
                int per = at.rowSize();
                float[] row = java.util.Arrays.copyOfRange(at.data(), i * per, (i + 1) * per);
                int[] chw = chw(x != null ? x.shape() : at.shape());
                String suffix = byName.size() == 1 ? "" : "_" + fileSafe(e.getKey());
                String label = byName.size() == 1 ? "" : e.getKey() + ": ";
                boolean tabular = chw[1] == 1;
                if (x != null && tabular && !optimised) {
                    if (featureNames != null && featureNames.length != per) {
                        throw new dev.kxai.InvalidInputException("--feature-names " + featureNamesFile + " has "
                                + featureNames.length + " names, input " + e.getKey() + " has " + per + " features");
                    }
                    // a row of features: a bounded bar chart of the largest, not a 1-pixel-high map
                    java.awt.image.BufferedImage bars = TopKBars.render(row, featureNames, topK, String.format(
                            "#%d %stop %d of %d features, target %d", i, label, Math.min(topK, per), per, targets[i]));
                    Png.write(out.resolve(String.format("example_%03d%s.png", i, suffix)), bars);
                    pngs++;
                    pictures.add(HtmlReport.Picture.of(label + "top " + Math.min(topK, per) + " |attributions|", bars));
                } else if (x != null) {
                    // activation maximisation's result is an input: shown as an image beside its signed values
                    float[] img = optimised ? row : java.util.Arrays.copyOfRange(x.data(), i * per, (i + 1) * per);
                    Path png = out.resolve(String.format("example_%03d%s.png", i, suffix));
                    String caption = optimised ? String.format("#%d maximises %s", i, objectiveName(targets[i]))
                            : String.format("#%d predicted %d, target %d", i, predicted[i], targets[i]);
                    AttributionImage.writePng(png, img, row, chw[0], chw[1], chw[2], caption);
                    pngs++;
                    boolean fromFile = batch.shownImages != null && !optimised;
                    if (fromFile || html != null) {
                        java.awt.image.BufferedImage base = fromFile ? batch.shownImages.get(i)
                                : Heatmap.imageOf(img, chw[0], chw[1], chw[2]);
                        java.awt.image.BufferedImage signed = Heatmap.render(base, row, chw[0], chw[1], chw[2],
                                Heatmap.Sign.SIGNED, overlayAlpha, "#" + i + " signed, target " + targets[i]);
                        if (fromFile) {
                            Png.write(out.resolve(String.format("overlay_%03d%s.png", i, suffix)), signed);
                            pngs++;
                        }
                        if (html != null) {
                            pictures.add(HtmlReport.Picture.of(label + (optimised ? "optimised input" : "input"),
                                    Heatmap.fitted(base)));
                            pictures.add(HtmlReport.Picture.of(label + "signed attribution (red +, blue \u2212)", signed));
                            pictures.add(HtmlReport.Picture.of(label + "|attribution|", Heatmap.render(base, row, chw[0],
                                    chw[1], chw[2], Heatmap.Sign.ABSOLUTE, overlayAlpha, "#" + i + " absolute")));
                        }
                    }
                }
                String summary = AttributionSummary.of(row, chw[0], chw[1], chw[2]).describe();
                line.append(byName.size() == 1 ? "; " : "; " + e.getKey() + ": ").append(summary);
                facts.put(label + "summary", summary);
            }
            rendering.clear();
            w.println(line);
            w.flush();
            if (html != null) {
                html.add(new HtmlReport.Example("Example " + i + (batch.imageFiles != null
                        ? ": " + batch.imageFiles.get(i).getFileName() : ""), pictures, facts));
            }
            rendering.stepsDone(i + 1, n);
            StartupTrace.mark("explain: example " + i + " rendered");
        }
        if (html != null) {
            html.write(report);
            w.printf("wrote report %s (%d example(s))%n", report.toAbsolutePath(), html.size());
        }
        w.printf("wrote %s and %d PNG(s) to %s%n", String.join(", ", written), pngs, out.toAbsolutePath());
        w.flush();
        return 0;
    }

    /** The report with the run's parameters at the top. */
    private HtmlReport newReport(Model m, Inputs in, String methodName, java.util.Map<String, Object> params,
            Attribution a, double seconds) {
        HtmlReport html = new HtmlReport("kxai explain: " + methodName);
        html.param("model", batch.describeModel()).param("inputs", batch.describeInputs(in)).param("method", methodName);
        if (batch.preprocess != null) {
            html.param("preprocessing", batch.preprocess.describe());
        }
        java.util.Map<String, Object> shown = new java.util.TreeMap<>();
        for (java.util.Map.Entry<String, Object> p : params.entrySet()) {
            Object v = p.getValue();
            // Captum's IG calls its quadrature rule "method": shown apart from the attribution method
            String key = p.getKey().equals("method") ? "method (integration rule)" : p.getKey();
            if (v instanceof Number || v instanceof String || v instanceof Boolean) {
                shown.put(key, v);
            } else if (v instanceof int[] iv) {
                shown.put(key, java.util.Arrays.toString(iv));
            }
        }
        shown.put("baselines", batch.baselineArgs == null ? "zeros" : String.join(" ", batch.baselineArgs));
        shown.put("target", batch.target == null ? "predicted class" : String.join(",", batch.target));
        for (java.util.Map.Entry<String, Object> p : shown.entrySet()) {
            html.param(p.getKey(), p.getValue());
        }
        html.param("ran on", a.describeDevice()).param("time", String.format(java.util.Locale.ROOT, "%.2f s", seconds))
                .param("kxai", Version.get());
        return html;
    }

    /** What activation maximisation maximised: the target, or a channel or neuron of --layer. */
    private String objectiveName(int target) {
        if (layer == null) {
            return "target " + target;
        }
        return layer + (activationMax.channel != null ? " channel " + activationMax.channel
                : " neuron " + java.util.Arrays.toString(perturbation.neuron));
    }

    /** The batch with the given inputs replaced (additional ones stay additional). */
    private static Inputs replaced(Inputs in, java.util.Map<String, Tensor> by) {
        Inputs out = Inputs.empty();
        for (java.util.Map.Entry<String, Tensor> e : in.values().entrySet()) {
            Tensor t = by.getOrDefault(e.getKey(), e.getValue());
            out = in.isAdditional(e.getKey()) ? out.additional(e.getKey(), t) : out.and(e.getKey(), t);
        }
        return out;
    }

    private static int argmax(float[] v, int o, int n) {
        int best = 0;
        for (int j = 1; j < n; j++) {
            if (v[o + j] > v[o + best]) {
                best = j;
            }
        }
        return best;
    }

    /** [c, h, w] for a picture of one example of an input of this shape. */
    private static int[] chw(int[] shape) {
        if (shape.length == 4) {
            return new int[] {shape[1], shape[2], shape[3]};
        }
        if (shape.length == 3) {
            return new int[] {1, shape[1], shape[2]};
        }
        int per = 1;
        for (int d = 1; d < shape.length; d++) {
            per *= shape[d];
        }
        return new int[] {1, 1, per};
    }

    private static String fileSafe(String name) {
        return name.replaceAll("[^A-Za-z0-9_.-]", "_").replaceAll("^[._]+", "");
    }
}
