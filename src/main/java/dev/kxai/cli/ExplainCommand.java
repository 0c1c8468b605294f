package dev.kxai.cli;

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

    @Option(names = "--input", paramLabel = "X.npy", description = "Batch to explain, float32 .npy (default: bundled digits).")
    Path inputFile;

    @Mixin
    AttributionOptions run = new AttributionOptions();




    @Option(names = "--baseline", defaultValue = "zeros",
            description = "zeros, a number, or a .npy file (same shape as the input, or one example).")
    String baseline;

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
        Path input = inputFile != null ? inputFile : bundled("input.npy");
        if ((modelFile == null) != (inputFile == null)) {
            throw new InvalidInputException("give both --model and --input, or neither (for the bundled example)");
        }
        long t0 = System.nanoTime();
        Model m = Model.load(model, run.device);
        Tensor x = NpyIO.read(input);
        m.checkBatch(x, "input " + input);
        int[] predicted = m.predict(x);
        Tensor logits = m.forward(x);
        int[] targets = m.targets(target != null ? target : predicted, x.dim(0));
        String methodName = Methods.entry(run.method).name();
        java.util.Map<String, Object> params = new java.util.HashMap<>(java.util.Map.of("n_steps", run.steps,
                "method", run.rule, "baselines", parseBaseline(baseline), "return_convergence_delta", true,
                "progress", progress(), "affine_first_layer", firstLayerSaving, "reuse_endpoints", !noEndpointReuse,
                "abs", !noAbs));
        if (run.internalBatchSize != null) {
            params.put("internal_batch_size", run.internalBatchSize);
        }
        Attribution a = Methods.create(methodName, m, Methods.Params.of(params)).attribute(x, targets);
        double seconds = (System.nanoTime() - t0) / 1e9;

        Files.createDirectories(out);
        NpyIO.write(out.resolve("attributions.npy"), a.attributions());
        if (a.convergenceDelta() != null) {
            NpyIO.write(out.resolve("deltas.npy"), a.convergenceDelta());
        }
        int[] shape = x.shape();
        int c;
        int h;
        int wd;
        if (shape.length == 4) {
            c = shape[1];
            h = shape[2];
            wd = shape[3];
        } else if (shape.length == 3) {
            c = 1;
            h = shape[1];
            wd = shape[2];
        } else {
            c = 1;
            h = 1;
            wd = x.rowSize();
        }
        w.printf("kxai explain: %s on %s, %d example(s), method %s%s, ran on %s, %.2f s%n",
                modelFile == null ? "bundled digits CNN" : model, inputFile == null ? "bundled digits" : input,
                x.dim(0), methodName, methodName.equals("integrated_gradients")
                        ? " (" + run.rule + ", " + run.steps + " steps, baseline " + baseline + ")" : "",
                a.describeDevice(), seconds);
        int per = x.rowSize();
        int outs = logits.rowSize();
        for (int i = 0; i < x.dim(0); i++) {
            float[] img = java.util.Arrays.copyOfRange(x.data(), i * per, (i + 1) * per);
            float[] at = java.util.Arrays.copyOfRange(a.attributions().data(), i * per, (i + 1) * per);
            Path png = out.resolve(String.format("example_%03d.png", i));
            String caption = String.format("#%d predicted %d, target %d", i, predicted[i], targets[i]);
            AttributionImage.writePng(png, img, at, c, h, wd, caption);
            AttributionSummary s = AttributionSummary.of(at, c, h, wd);
            w.printf("example %d: predicted %d (output %.3f), target %d%s; %s%n", i, predicted[i],
                    logits.data()[i * outs + predicted[i]], targets[i],
                    a.convergenceDelta() == null ? "" : String.format(", delta %+.2e", a.convergenceDelta().data()[i]),
                    s.describe());
        }
        w.printf("wrote %s/attributions.npy%s and %d PNG(s) to %s%n", out, a.convergenceDelta() == null ? ""
                : ", deltas.npy", x.dim(0), out.toAbsolutePath());
        w.flush();
        return 0;
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
