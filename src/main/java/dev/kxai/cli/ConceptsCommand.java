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
    "or every 0/1 corner (--corners), printing the output for each (task_on_grid.npy): interventions.",
    "TCAV (any model): --tcav-concept C --tcav-random R1 --tcav-random R2 ... scores the concept C (a .npy",
    "batch, or a folder of .npy files) against random sets at --layer for the --input examples' class",
    "--target: the fraction whose output rises along the concept's direction, and a t-test against random directions."})
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

    @Option(names = "--tcav-concept", paramLabel = "PATH", description = "TCAV: examples of the concept, a .npy batch or "
            + "a folder of .npy files (each one example or a batch).")
    Path tcavConcept;

    @Option(names = "--tcav-random", paramLabel = "PATH", description = "TCAV: a set of random counter-examples (as "
            + "--tcav-concept); repeat, at least twice.")
    java.util.List<Path> tcavRandom;

    @Option(names = "--target", defaultValue = "0", description = "TCAV: the class output scored (default: ${DEFAULT-VALUE}).")
    int target;

    @Option(names = "--device", description = "auto, cpu or cuda (default: KXAI_DEVICE, else auto).")
    String device;

    @Option(names = "--out", defaultValue = "kxai-out", description = "Output folder (default: ./${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws IOException {
        PrintWriter w = spec.commandLine().getOut();
        if (input == null && grid == null && !corners) {
            throw new InvalidInputException("nothing to do: give --input (concept values, or the examples TCAV scores), "
                    + "--grid or --corners (interventions)");
        }
        if (tcavConcept != null) {
            return tcav(w);
        }
        if (tcavRandom != null) {
            throw new InvalidInputException("--tcav-random needs --tcav-concept");
        }
        if (grid != null && corners) {
            throw new InvalidInputException("give --grid or --corners, not both");
        }
        BatchOptions.checkOut(out);
        try (Model m = Model.load(model, device, null,
                BatchOptions.freeDims(null, input == null ? null : java.util.List.of(input.toString()), null))) {
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

    /** TCAV at --layer: the concept against each random set, and random against random as the null. */
    private int tcav(PrintWriter w) throws IOException {
        if (input == null) {
            throw new InvalidInputException("--tcav-concept needs --input: the examples whose class --target is scored");
        }
        if (tcavRandom == null || tcavRandom.size() < 2) {
            throw new InvalidInputException("--tcav-concept needs at least two --tcav-random sets (the significance test "
                    + "compares concept directions with random ones), got " + (tcavRandom == null ? 0 : tcavRandom.size()));
        }
        try (Model m = Model.load(model, device, null,
                BatchOptions.freeDims(null, input == null ? null : java.util.List.of(input.toString()), null))) {
            dev.kxai.concepts.Tcav tcav = new dev.kxai.concepts.Tcav(m, layer);
            Tensor x = NpyIO.read(input);
            m.checkInput(m.graph().inputName(), x, "input " + input);
            Tensor concept = examples(m, tcavConcept);
            java.util.List<Tensor> randoms = new java.util.ArrayList<>();
            for (Path r : tcavRandom) {
                randoms.add(examples(m, r));
            }
            if (target < 0 || target >= m.runner().outputsPerExample()) {
                throw new InvalidInputException("--target " + target + " is not an output of the model (0 to "
                        + (m.runner().outputsPerExample() - 1) + ")");
            }
            dev.kxai.concepts.Tcav.Result r = tcav.score(concept, randoms, x, target);
            for (int i = 0; i < randoms.size(); i++) {
                w.printf(java.util.Locale.ROOT, "vs %s: TCAV score %.4f (random vs random %.4f)%n", tcavRandom.get(i),
                        r.conceptScores()[i], r.randomScores()[i]);
            }
            w.printf(java.util.Locale.ROOT, "concept %s, class %d at %s: mean TCAV score %.4f, p = %.3g (%s at 0.05)%n",
                    tcavConcept, target, layer, r.meanScore(), r.pValue(), r.significant(0.05) ? "significant"
                            : "not significant");
            w.flush();
        }
        return 0;
    }

    /** A .npy batch, or every .npy in a folder (sorted by name; one example or a batch each) stacked. */
    private static Tensor examples(Model m, Path p) {
        String in = m.graph().inputName();
        int[] ex = m.runner().plan().exampleShape(in);
        java.util.List<Path> files = new java.util.ArrayList<>();
        if (Files.isDirectory(p)) {
            try (var s = Files.list(p)) {
                s.filter(f -> f.toString().endsWith(".npy")).sorted().forEach(files::add);
            } catch (IOException e) {
                throw new InvalidInputException("cannot list " + p + ": " + e.getMessage());
            }
            if (files.isEmpty()) {
                throw new InvalidInputException("no .npy files in " + p);
            }
        } else {
            files.add(p);
        }
        java.util.List<float[]> rows = new java.util.ArrayList<>();
        int n = 0;
        for (Path f : files) {
            Tensor t = NpyIO.read(f);
            if (java.util.Arrays.equals(t.shape(), ex)) {
                t = new Tensor(dev.kxai.tensor.Shapes.withBatch(prepend(ex), 1), t.data());
            }
            m.checkInput(in, t, "examples " + f);
            rows.add(t.data());
            n += t.dim(0);
        }
        int per = 1;
        for (int d : ex) {
            per *= d;
        }
        float[] all = new float[n * per];
        int off = 0;
        for (float[] r : rows) {
            System.arraycopy(r, 0, all, off, r.length);
            off += r.length;
        }
        return new Tensor(dev.kxai.tensor.Shapes.withBatch(prepend(ex), n), all);
    }

    private static int[] prepend(int[] ex) {
        int[] s = new int[ex.length + 1];
        System.arraycopy(ex, 0, s, 1, ex.length);
        return s;
    }

    private static String vector(float[] v, int off, int n) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < n; i++) {
            sb.append(i == 0 ? "" : ", ").append(String.format(java.util.Locale.ROOT, "%.4f", v[off + i]));
        }
        return sb.append("]").toString();
    }
}
