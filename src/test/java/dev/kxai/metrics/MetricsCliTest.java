package dev.kxai.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.cli.Main;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code kxai metrics} end to end, in-process through the jar's entry point: its lines, its files, its errors. */
class MetricsCliTest {
    static CliRun run(String... args) {
        return CliRun.of(args);
    }

    private static String[] tabular(Path out, String... extra) {
        Path ref = TestData.reference("mlp_tabular");
        List<String> args = new ArrayList<>(List.of("metrics", "--model", ref.resolve("model.onnx").toString(), "--input",
                ref.resolve("input.npy").toString(), "--device", "cpu", "--out", out.toString()));
        args.addAll(List.of(extra));
        return args.toArray(String[]::new);
    }

    /** The value per example from lines "example i: target t, NAME v..." and the mean line's value. */
    private static double[] values(String out, String name, int batch) {
        Pattern p = Pattern.compile("example (\\d+): target \\d+, " + Pattern.quote(name) + " ([-0-9.e+naN]+).*");
        double[] v = new double[batch];
        int seen = 0;
        for (String line : out.split("\n")) {
            Matcher m = p.matcher(line.strip());
            if (m.matches()) {
                v[Integer.parseInt(m.group(1))] = Double.parseDouble(m.group(2));
                seen++;
            }
        }
        assertEquals(batch, seen, "one line per example:\n" + out);
        return v;
    }

    private static double meanLine(String out, String prefix) {
        for (String line : out.split("\n")) {
            if (line.startsWith(prefix)) {
                return Double.parseDouble(line.substring(prefix.length()).strip().split("[ ,]")[0]);
            }
        }
        throw new AssertionError("no line '" + prefix + "' in\n" + out);
    }

    @Test
    void deletionOnTheBundledDigitsWritesTheCurvesAndTheirPlot(@TempDir Path dir) throws Exception {
        CliRun r = run("metrics", "--metric", "deletion", "--curve-steps", "10", "--device", "cpu", "--out", dir.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().startsWith("kxai metrics: bundled digits CNN on bundled digits, 10 example(s), method "
                + "integrated_gradients, metric deletion (MORF order, 10 steps, y = probability of the target, seed 0), "
                + "attributions on cpu, curves on cpu"), r.out());
        double[] auc = values(r.out(), "deletion AUC", 10);
        double mean = meanLine(r.out(), "mean deletion AUC:");
        double random = Double.parseDouble(r.out().replaceAll("(?s).*mean deletion AUC: [^,]+, random order ([-0-9.e]+).*",
                "$1"));
        assertEquals(java.util.Arrays.stream(auc).average().orElseThrow(), mean, 1e-5);
        assertTrue(mean < random, "IG deletes faster than chance: " + mean + " vs " + random);
        Tensor curves = NpyIO.read(dir.resolve("deletion_curves.npy"));
        assertArrayEquals(new int[] {10, 11}, curves.shape());
        assertArrayEquals(new int[] {10, 11}, NpyIO.read(dir.resolve("deletion_random_curves.npy")).shape());
        Tensor aucs = NpyIO.read(dir.resolve("deletion_auc.npy"));
        for (int i = 0; i < 10; i++) {
            assertEquals(auc[i], aucs.data()[i], 1e-5 * Math.max(1, Math.abs(auc[i])));
            double[] row = new double[11];
            for (int k = 0; k < 11; k++) {
                row[k] = curves.data()[i * 11 + k];
            }
            assertEquals(aucs.data()[i], DeletionInsertion.auc(row), 1e-6, "the AUC is the written curve's");
        }
        BufferedImage png = ImageIO.read(dir.resolve("deletion.png").toFile());
        assertTrue(png.getWidth() >= 400 && png.getHeight() >= 300, png.getWidth() + "x" + png.getHeight());
        assertTrue(r.out().contains("wrote deletion_curves.npy, deletion_random_curves.npy, deletion_auc.npy, deletion.png"),
                r.out());
    }

    @Test
    void infidelityAndTheOtherScoresPrintOneValuePerExampleAndTheMean(@TempDir Path dir) {
        String[][] cases = {
            {"infidelity", "--method", "saliency", "--no-abs", "--n-perturb-samples", "5", "--noise-std", "0.01"},
            {"sensitivity", "--method", "saliency", "--n-perturb-samples", "3"},
            {"faithfulness_correlation", "--method", "ixg", "--n-runs", "20"},
            {"lime_fidelity", "--method", "kernel_shap", "--n-samples", "40", "--held-out", "20"},
            {"insertion", "--method", "saliency", "--order", "lerf", "--output", "raw"}};
        for (String[] c : cases) {
            String[] extra = new String[c.length + 1];
            extra[0] = "--metric";
            System.arraycopy(c, 0, extra, 1, c.length);
            Path out = dir.resolve(c[0]);
            CliRun r = run(tabular(out, extra));
            assertEquals(0, r.status(), c[0] + ": " + r.err());
            String name = c[0].equals("insertion") ? "insertion AUC" : c[0];
            double[] v = values(r.out(), name, 16);
            double mean = meanLine(r.out(), "mean " + name + ":");
            assertEquals(java.util.Arrays.stream(v).average().orElseThrow(), mean,
                    1e-5 * Math.max(1, Math.abs(mean)), c[0] + ":\n" + r.out());
            Tensor written = NpyIO.read(out.resolve(c[0].equals("insertion") ? "insertion_auc.npy" : c[0] + ".npy"));
            assertArrayEquals(new int[] {16}, written.shape(), c[0]);
            for (int i = 0; i < 16; i++) {
                assertEquals(v[i], written.data()[i], 1e-5 * Math.max(1, Math.abs(v[i])), c[0] + " example " + i);
                if (c[0].equals("lime_fidelity") || c[0].equals("faithfulness_correlation")) {
                    assertTrue(Double.isNaN(v[i]) || v[i] <= 1 + 1e-9, c[0] + " " + v[i]);
                }
            }
        }
    }

    @Test
    void errorsNameTheValueAtFault(@TempDir Path dir) {
        String[][] bad = {
            {"--metric", "bogus"}, {"--metric", "bogus"},
            {"--metric", "infidelity", "--perturbation", "square"}, {"square removal needs inputs", "'input'"},
            {"--metric", "deletion", "--order", "sideways"}, {"unknown order 'sideways'"},
            {"--metric", "deletion", "--output", "probable"}, {"--output probable"},
            {"--metric", "lime_fidelity", "--method", "ig"}, {"--metric lime_fidelity", "not ig"},
            {"--metric", "infidelity", "--n-perturb-samples", "0"}, {"n_perturb_samples must be at least 1, got 0"},
            {"--metric", "deletion", "--method", "layer_ig"}, {"layer_integrated_gradients attributes a layer"},
            {"--metric", "faithfulness_correlation", "--subset-fraction", "1.5"}, {"subset fraction must be in (0, 1), got 1.5"}};
        for (int i = 0; i < bad.length; i += 2) {
            CliRun r = run(tabular(dir.resolve("e" + i), bad[i]));
            assertEquals(2, r.status(), String.join(" ", bad[i]) + ": " + r.out() + r.err());
            for (String want : bad[i + 1]) {
                assertTrue(r.err().contains(want), String.join(" ", bad[i]) + " should name " + want + ": " + r.err());
            }
        }
        CliRun none = run("metrics");
        assertEquals(2, none.status());
        assertTrue(none.err().contains("Missing required option: '--metric=NAME'"), none.err());
    }

    @Test
    void everyOptionHasHelpText() {
        CommandLine metrics = Main.commandLine().getSubcommands().get("metrics");
        for (CommandLine.Model.OptionSpec o : metrics.getCommandSpec().options()) {
            String text = String.join(" ", o.description()).strip();
            assertTrue(!text.isEmpty(), o.longestName() + " has no help text");
        }
        CliRun r = run("metrics", "--help");
        assertEquals(0, r.status());
        for (String option : new String[] {"--metric", "--method", "--perturbation", "--n-perturb-samples", "--curve-steps",
            "--seed", "--out", "--order", "--output", "--baseline", "--target", "--steps", "--n-runs"}) {
            assertTrue(r.out().contains(option), option + " in\n" + r.out());
        }
        assertTrue(r.out().toLowerCase(Locale.ROOT).contains("faithfulness_correlation"), r.out());
    }
}
