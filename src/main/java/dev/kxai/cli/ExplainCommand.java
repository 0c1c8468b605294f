package dev.kxai.cli;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Methods;
import dev.kxai.attr.Quadrature;
import dev.kxai.io.NpyIO;
import dev.kxai.report.AttributionImage;
import dev.kxai.report.AttributionSummary;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
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
    private static final String EXAMPLE = "/dev/kxai/examples/digits_cnn/";

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", paramLabel = "M.onnx", description = "ONNX model (default: bundled digits CNN).")
    Path modelFile;

    @Option(names = "--input", paramLabel = "[NAME=]X.npy", description = {"Batch to explain, .npy (default: bundled "
            + "digits). Repeat as NAME=FILE for a model with several inputs; float inputs are attributed, integer ones",
        "(token ids) are explained at a --layer that reads them."})
    java.util.List<String> inputArgs;

    @Option(names = "--additional", paramLabel = "NAME=X.npy", description = "An input given unchanged to every forward "
            + "pass and never attributed (Captum's additional_forward_args: a mask, a feature switch). Repeatable.")
    java.util.List<String> additionalArgs;

    @Option(names = "--layer", paramLabel = "NAME", description = "layer_integrated_gradients, layer_grad_cam, "
            + "layer_conductance: the value (a node's output) to attribute at; 'kxai info' lists them.")
    String layer;

    @Mixin
    AttributionOptions run = new AttributionOptions();

    @Mixin
    PerturbationOptions perturbation = new PerturbationOptions();




    @Option(names = "--baseline", paramLabel = "[NAME=]B",
            description = {"zeros (default), a number, or a .npy file (same shape as the input, or one example). With "
                + "several inputs: NAME=B per input (token ids: ids; zeros = id 0); one without a name applies to all."})
    java.util.List<String> baselineArgs;

    @Option(names = "--target", split = ",", description = "Target output index, one or one per row (default: predicted class).")
    int[] target;


    @Option(names = "--first-layer-saving", description = "Integrated Gradients: run the first Conv/Gemm twice per "
            + "example instead of n_steps times (faster; may differ from Captum at near-ties of max-pool/ReLU).")
    boolean firstLayerSaving;

    @Option(names = "--no-endpoint-reuse", description = "Integrated Gradients: compute F(x) and F(baseline) for the "
            + "convergence delta with an extra forward pass even when the rule evaluates alpha = 0 and 1 on the path.")
    boolean noEndpointReuse;

    @Option(names = "--no-abs", description = "Saliency: keep the gradient's sign.")
    boolean noAbs;


    @Option(names = "--out", defaultValue = "kxai-out", description = "Output folder (default: ./${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws IOException {
        PrintWriter w = spec.commandLine().getOut();
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new InvalidInputException("--out " + out + " exists and is not a folder");
        }
        Path model = modelFile != null ? modelFile : bundled("model.onnx");
        if ((modelFile == null) != (inputArgs == null)) {
            throw new InvalidInputException("give both --model and --input, or neither (for the bundled example)");
        }
        long t0 = System.nanoTime();
        Model m = Model.load(model, run.device);
        Inputs in = inputs(m, inputArgs != null ? inputArgs : java.util.List.of(bundled("input.npy").toString()));
        m.check(in);
        Tensor logits = m.forward(in);
        int[] predicted = m.predict(in);
        int batch = in.batch();
        int[] targets = m.targets(target != null ? target : predicted, batch);
        String methodName = Methods.entry(run.method).name();
        java.util.Map<String, Object> params = new java.util.HashMap<>(java.util.Map.of("n_steps", run.steps,
                "method", run.rule, "baselines", baselines(m, in), "return_convergence_delta", true,
                "progress", progress(), "affine_first_layer", firstLayerSaving, "reuse_endpoints", !noEndpointReuse,
                "abs", !noAbs));
        if (run.internalBatchSize != null) {
            params.put("internal_batch_size", run.internalBatchSize);
        }
        if (layer != null) {
            params.put("layer", layer);
        }
        perturbation.addTo(params, m, in);
        Attribution a = Methods.create(methodName, m, Methods.Params.of(params)).attribute(in, targets);
        double seconds = (System.nanoTime() - t0) / 1e9;

        java.util.Map<String, Tensor> byName = a.byInput().isEmpty()
                ? java.util.Map.of(m.graph().inputName(), a.attributions()) : a.byInput();
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
                modelFile == null ? "bundled digits CNN" : model, inputArgs == null ? "bundled digits" : in.toString(),
                batch, methodName, methodName.contains("integrated_gradients")
                        ? " (" + run.rule + ", " + run.steps + " steps, baseline " + (baselineArgs == null ? "zeros"
                                : String.join(" ", baselineArgs)) + (layer != null ? ", layer " + layer : "") + ")" : "",
                a.describeDevice(), seconds);
        int pngs = 0;
        int outs = logits.rowSize();
        for (int i = 0; i < batch; i++) {
            StringBuilder line = new StringBuilder(String.format("example %d: predicted %d (output %.3f), target %d%s",
                    i, predicted[i], logits.data()[i * outs + predicted[i]], targets[i], a.convergenceDelta() == null ? ""
                            : String.format(", delta %+.2e", a.convergenceDelta().data()[i])));
            for (java.util.Map.Entry<String, Tensor> e : byName.entrySet()) {
                Tensor at = e.getValue();
                Tensor x = in.get(e.getKey()); // null for a layer's attributions: no picture of the input then
                int per = at.rowSize();
                float[] row = java.util.Arrays.copyOfRange(at.data(), i * per, (i + 1) * per);
                int[] chw = chw(x != null ? x.shape() : at.shape());
                if (x != null) {
                    float[] img = java.util.Arrays.copyOfRange(x.data(), i * per, (i + 1) * per);
                    Path png = out.resolve(byName.size() == 1 ? String.format("example_%03d.png", i)
                            : String.format("example_%03d_%s.png", i, fileSafe(e.getKey())));
                    String caption = String.format("#%d predicted %d, target %d", i, predicted[i], targets[i]);
                    AttributionImage.writePng(png, img, row, chw[0], chw[1], chw[2], caption);
                    pngs++;
                }
                line.append(byName.size() == 1 ? "; " : "; " + e.getKey() + ": ")
                        .append(AttributionSummary.of(row, chw[0], chw[1], chw[2]).describe());
            }
            w.println(line);
        }
        w.printf("wrote %s and %d PNG(s) to %s%n", String.join(", ", written), pngs, out.toAbsolutePath());
        w.flush();
        return 0;
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

    /** --input / --additional as {@link Inputs}: FILE alone for a single-input model, NAME=FILE otherwise. */
    private Inputs inputs(Model m, java.util.List<String> given) {
        Inputs in = Inputs.empty();
        for (String arg : given) {
            String[] kv = named(arg, "--input");
            if (kv[0] == null) {
                if (given.size() > 1 || m.inputs().size() > 1) {
                    throw new InvalidInputException("--input " + arg + ": the model has inputs " + m.describeInputs()
                            + "; give each as --input NAME=FILE");
                }
                kv[0] = m.graph().inputName();
            }
            Tensor t = NpyIO.read(Path.of(kv[1]));
            m.checkInput(kv[0], t, "input " + kv[1]);
            in = in.and(kv[0], t);
        }
        for (String arg : additionalArgs != null ? additionalArgs : java.util.List.<String>of()) {
            String[] kv = named(arg, "--additional");
            if (kv[0] == null) {
                throw new InvalidInputException("--additional " + arg + ": give it as NAME=FILE");
            }
            Tensor t = NpyIO.read(Path.of(kv[1]));
            m.checkInput(kv[0], t, "input " + kv[1]);
            in = in.additional(kv[0], t);
        }
        return in;
    }

    /** {NAME, VALUE} of "NAME=VALUE", or {null, arg} when there is no name. */
    private static String[] named(String arg, String option) {
        int eq = arg.indexOf('=');
        if (eq < 0) {
            return new String[] {null, arg};
        }
        if (eq == 0 || eq == arg.length() - 1) {
            throw new InvalidInputException(option + " " + arg + ": expected NAME=VALUE");
        }
        return new String[] {arg.substring(0, eq), arg.substring(eq + 1)};
    }

    /**
     * --baseline as Captum's baselines: none (zeros), one for every input, or NAME=B per input
     * (those not named get zeros), in the order the method takes them (the attributed inputs, or
     * for a layer method every input that is not additional).
     */
    private java.util.List<Baseline> baselines(Model m, Inputs in) {
        if (baselineArgs == null || baselineArgs.isEmpty()) {
            return java.util.List.of(Baseline.zeros());
        }
        java.util.Map<String, Baseline> byName = new java.util.HashMap<>();
        Baseline all = null;
        for (String arg : baselineArgs) {
            String[] kv = named(arg, "--baseline");
            if (kv[0] == null) {
                if (all != null || baselineArgs.size() > 1) {
                    throw new InvalidInputException("--baseline " + arg + ": with several baselines name each: NAME=B");
                }
                all = parseBaseline(kv[1]);
            } else {
                if (in.get(kv[0]) == null || in.isAdditional(kv[0])) {
                    throw new InvalidInputException("--baseline " + arg + ": '" + kv[0] + "' is not an input given with "
                            + "--input (inputs: " + m.describeInputs() + ")");
                }
                byName.put(kv[0], parseBaseline(kv[1]));
            }
        }
        if (all != null) {
            return java.util.List.of(all);
        }
        java.util.List<String> order = new java.util.ArrayList<>();
        for (dev.kxai.graph.Graph.Input gi : m.inputs()) {
            boolean layerMethod = layer != null;
            if (!in.isAdditional(gi.name()) && (layerMethod || !gi.integer())) {
                order.add(gi.name());
            }
        }
        java.util.List<Baseline> out = new java.util.ArrayList<>();
        for (String name : order) {
            out.add(byName.getOrDefault(name, Baseline.zeros()));
        }
        return out;
    }

    private static Baseline parseBaseline(String b) {
        if (b.equals("zeros")) {
            return Baseline.zeros();
        }
        try {
            return Baseline.scalar(Float.parseFloat(b));
        } catch (NumberFormatException e) {
            Tensor t = NpyIO.read(Path.of(b));
            int bad = t.firstNonFinite();
            if (bad >= 0) {
                throw new InvalidInputException("baseline " + b + " holds a non-finite value " + t.data()[bad]
                        + " at flat index " + bad);
            }
            return Baseline.of(t);
        }
    }

    /** Progress on stderr for long integrations, only when a person is watching a terminal. */
    private dev.kxai.attr.Progress progress() {
        if (System.console() == null) {
            return dev.kxai.attr.Progress.NONE;
        }
        PrintWriter err = spec.commandLine().getErr();
        return (done, total) -> {
            err.printf("\rintegrating: %d/%d steps", done, total);
            if (done == total) {
                err.print("\r                                   \r");
            }
            err.flush();
        };
    }

    /** Copies a bundled example file out of the jar (the readers need a file). */
    private static Path bundled(String name) throws IOException {
        try (InputStream in = ExplainCommand.class.getResourceAsStream(EXAMPLE + name)) {
            if (in == null) {
                throw new KxaiException("bundled example " + name + " is missing from the jar");
            }
            Path dir = Files.createTempDirectory("kxai-example");
            dir.toFile().deleteOnExit();
            Path f = dir.resolve(name);
            Files.copy(in, f, StandardCopyOption.REPLACE_EXISTING);
            f.toFile().deleteOnExit();
            return f;
        }
    }
}
