package dev.kxai.cli;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.io.NpyIO;
import dev.kxai.report.AttributionImage;
import dev.kxai.report.AttributionSummary;
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

    @Option(names = "--layer", paramLabel = "NAME", description = "layer_integrated_gradients, layer_grad_cam, "
            + "layer_conductance: the value (a node's output) to attribute at; activation_max: the layer of --channel or "
            + "--neuron; 'kxai info' lists them.")
    String layer;

    @Mixin
    AttributionOptions run = new AttributionOptions();

    @Mixin
    PerturbationOptions perturbation = new PerturbationOptions();

    @Mixin
    ActivationMaxOptions activationMax = new ActivationMaxOptions();

    @Option(names = "--out", defaultValue = "kxai-out", description = "Output folder (default: ./${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws IOException {
        PrintWriter w = spec.commandLine().getOut();
        BatchOptions.checkOut(out);
        long t0 = System.nanoTime();
        Model m = batch.load(run.device);
        Inputs in = batch.inputs(m);
        Tensor logits = m.forward(in);
        int[] predicted = m.predict(in);
        int n = in.batch();
        int[] targets = batch.targets(m, in, predicted);
        String methodName = Methods.entry(run.method).name();
        java.util.Map<String, Object> params = batch.params(run, perturbation, m, in, layer, BatchOptions.progress(spec));
        activationMax.addTo(params);
        boolean optimised = methodName.equals("activation_max");
        Attribution a = Methods.create(methodName, m, Methods.Params.of(params)).attribute(in, targets);
        double seconds = (System.nanoTime() - t0) / 1e9;

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
        int pngs = 0;
        int outs = logits.rowSize();
        // activation maximisation: the model's output at the optimised inputs, beside the batch's
        Tensor reached = optimised ? m.forward(replaced(in, byName)) : null;
        for (int i = 0; i < n; i++) {
            StringBuilder line = new StringBuilder(String.format("example %d: predicted %d (output %.3f), target %d%s",
                    i, predicted[i], logits.data()[i * outs + predicted[i]], targets[i], a.convergenceDelta() == null ? ""
                            : String.format(", delta %+.2e", a.convergenceDelta().data()[i])));
            if (reached != null) {
                line.append(String.format(", optimised input: output %d %.3f, predicted %d", targets[i],
                        reached.data()[i * outs + targets[i]], argmax(reached.data(), i * outs, outs)));
            }
            for (java.util.Map.Entry<String, Tensor> e : byName.entrySet()) {
                Tensor at = e.getValue();
                Tensor x = in.get(e.getKey()); // null for a layer's attributions: no picture of the input then
                int per = at.rowSize();
                float[] row = java.util.Arrays.copyOfRange(at.data(), i * per, (i + 1) * per);
                int[] chw = chw(x != null ? x.shape() : at.shape());
                if (x != null) {
                    // activation maximisation's result is an input: shown as an image beside its signed values
                    float[] img = optimised ? row : java.util.Arrays.copyOfRange(x.data(), i * per, (i + 1) * per);
                    Path png = out.resolve(byName.size() == 1 ? String.format("example_%03d.png", i)
                            : String.format("example_%03d_%s.png", i, fileSafe(e.getKey())));
                    String caption = optimised ? String.format("#%d maximises %s", i, objectiveName(targets[i]))
                            : String.format("#%d predicted %d, target %d", i, predicted[i], targets[i]);
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
