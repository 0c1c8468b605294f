package dev.kxai.cli;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.concepts.ConceptBottleneck;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "concepts", description = {
    "A concept bottleneck model through its concept layer: prints the concept values of each example of",
    "--input (concepts.npy), and runs the model's tail from concept vectors you set, --grid G.npy [K, concepts]",
    "or every 0/1 corner (--corners), printing the output for each (task_on_grid.npy): interventions."})
final class ConceptsCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "M.onnx", description = "ONNX model.")
    Path model;

    @Option(names = "--layer", required = true, paramLabel = "NAME", description = "The concept layer: a value a node "
            + "computes ('kxai info --model' lists them).")
    String layer;

    @Option(names = "--input", paramLabel = "X.npy", description = "A batch whose concept values to print (single-input "
            + "models).")
    Path input;

    @Option(names = "--grid", paramLabel = "G.npy", description = "Concept vectors [K, ...concepts] to run the tail from.")
    Path grid;

    @Option(names = "--corners", description = "Every 0/1 corner of the concept space as the grid (at most 16 concepts).")
    boolean corners;

    @Option(names = "--device", description = "auto, cpu or cuda (default: KXAI_DEVICE, else auto).")
    String device;

    @Option(names = "--out", defaultValue = "kxai-out", description = "Output folder (default: ./${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws IOException {
        PrintWriter w = spec.commandLine().getOut();
        if (input == null && grid == null && !corners) {
            throw new InvalidInputException("nothing to do: give --input (concept values), --grid or --corners (interventions)");
        }
        if (grid != null && corners) {
            throw new InvalidInputException("give --grid or --corners, not both");
        }
        BatchOptions.checkOut(out);
        try (Model m = Model.load(model, device)) {
            ConceptBottleneck cb = new ConceptBottleneck(m, layer);
            Files.createDirectories(out);
            if (input != null) {
                Tensor x = NpyIO.read(input);
                m.checkInput(m.graph().inputName(), x, "input " + input);
                Tensor c = cb.concepts(m.inputs(x));
                NpyIO.write(out.resolve("concepts.npy"), c);
                int per = c.rowSize();
                for (int r = 0; r < c.dim(0); r++) {
                    w.printf("example %d: concepts %s%n", r, vector(c.data(), r * per, per));
                }
            }
            if (grid != null || corners) {
                Tensor g = corners ? cb.corners() : NpyIO.read(grid);
                Tensor y = cb.intervene(g, Map.of());
                NpyIO.write(out.resolve("task_on_grid.npy"), y);
                int per = g.rowSize();
                int outs = y.rowSize();
                for (int k = 0; k < g.dim(0); k++) {
                    w.printf("concepts %s -> output %s%n", vector(g.data(), k * per, per), vector(y.data(), k * outs, outs));
                }
            }
            w.printf("wrote %s%s to %s%n", input != null ? "concepts.npy" : "", grid != null || corners
                    ? (input != null ? ", " : "") + "task_on_grid.npy" : "", out.toAbsolutePath());
            w.flush();
        }
        return 0;
    }

    private static String vector(float[] v, int off, int n) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < n; i++) {
            sb.append(i == 0 ? "" : ", ").append(String.format(java.util.Locale.ROOT, "%.4f", v[off + i]));
        }
        return sb.append("]").toString();
    }
}
