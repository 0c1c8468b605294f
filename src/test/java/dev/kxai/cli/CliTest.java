package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The commands end to end, through the same entry point as the jar. */
class CliTest {
    static CliRun run(String... args) {
        return CliRun.of(args);
    }

    @Test
    void everyCommandTakesHelp() {
        for (String c : new String[] {"explain", "serve", "concepts", "metrics", "validate", "info", "bench"}) {
            CliRun r = run(c, "--help");
            assertEquals(0, r.status(), c + " --help: " + r.err());
            assertTrue(r.out().startsWith("Usage: kxai " + c), c + " --help printed: " + r.out());
        }
        CliRun steps = run("explain", "--help");
        assertTrue(steps.out().contains("--steps=<steps>") && steps.out().contains("--internal-batch-size"),
                "the shared attribution options are listed: " + steps.out());
    }

    @Test
    void explainWithNoArgumentsExplainsTheBundledDigits(@TempDir Path dir) throws Exception {
        CliRun r = run("explain", "--out", dir.toString());
        assertEquals(0, r.status(), r.err());
        Tensor attr = NpyIO.read(dir.resolve("attributions.npy"));
        assertArrayEquals(new int[] {10, 1, 8, 8}, attr.shape());
        assertArrayEquals(new int[] {10}, NpyIO.read(dir.resolve("deltas.npy")).shape());
        for (int i = 0; i < 10; i++) {
            BufferedImage png = ImageIO.read(dir.resolve(String.format("example_%03d.png", i)).toFile());
            assertTrue(png.getWidth() > 2 * png.getHeight() / 2, "two panels side by side");
        }
        // one summary line per image: predicted class, delta, where the mass sits
        Pattern line = Pattern.compile("example \\d: predicted \\d \\(output [-0-9.]+\\), target \\d, delta [-+0-9.e]+; mass .*");
        long lines = r.out().lines().filter(l -> line.matcher(l).matches()).count();
        assertEquals(10, lines, r.out());
        // the bundled digits are classified as the reference's labels say
        assertTrue(r.out().contains("example 2: predicted 2"), r.out());
    }

    @Test
    void exactRunsTheAllDoublePathAndRestoresTheDefault(@TempDir Path dir) throws Exception {
        // resnet_mini's wide layers run float sgemm with exact decisions by default; --exact runs them in double
        Path ref = TestData.reference("resnet_mini");
        String[] common = {"explain", "--model", ref.resolve("model.onnx").toString(), "--input",
            ref.resolve("input.npy").toString(), "--steps", "8", "--device", "cpu"};
        long before = dev.kxai.backend.cpu.CpuBackend.exactDecisionCounts()[0];
        CliRun exact = run(concat(common, "--exact", "--out", dir.resolve("exact").toString()));
        assertEquals(0, exact.status(), exact.err());
        assertEquals(before, dev.kxai.backend.cpu.CpuBackend.exactDecisionCounts()[0],
                "no float convolution output was tested under --exact");
        CliRun plain = run(concat(common, "--out", dir.resolve("float").toString()));
        assertEquals(0, plain.status(), plain.err());
        assertTrue(dev.kxai.backend.cpu.CpuBackend.exactDecisionCounts()[0] > before,
                "the default path is float again after --exact");
        float[] a = NpyIO.read(dir.resolve("exact/attributions.npy")).data();
        float[] b = NpyIO.read(dir.resolve("float/attributions.npy")).data();
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < a.length; i++) {
            diff += (a[i] - b[i]) * (double) (a[i] - b[i]);
            norm += a[i] * (double) a[i];
        }
        assertTrue(Math.sqrt(diff / norm) < 1e-4, "the two paths agree to float rounding: " + Math.sqrt(diff / norm));
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void explainAUsersModelWithSaliencyAndATarget(@TempDir Path dir) {
        Path ref = TestData.reference("mlp_tabular");
        CliRun r = run("explain", "--model", ref.resolve("model.onnx").toString(), "--input",
                ref.resolve("input.npy").toString(), "--method", "saliency", "--target", "2", "--out", dir.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(Files.exists(dir.resolve("attributions.npy")));
        assertTrue(!Files.exists(dir.resolve("deltas.npy")), "saliency has no delta");
        assertTrue(r.out().contains("target 2"), r.out());
    }

    @Test
    void validateClosesWithTheCountsLine() {
        CliRun r = run("validate", TestData.reference("mlp_tabular").toString(), "--device", "cpu");
        assertEquals(0, r.status(), r.out() + r.err());
        String[] lines = r.out().strip().split("\n");
        assertTrue(lines[lines.length - 1].matches("validate: \\d+ passed, 0 failed, \\d+ unsupported"),
                lines[lines.length - 1]);
        assertTrue(r.out().contains("mlp_tabular/logits"), "logits are checked");
        assertTrue(r.out().contains("unsupported"), "deeplift is reported as unsupported");
    }

    @Test
    void validateFailsWithStatus1WhenAReferenceDisagrees(@TempDir Path dir) throws Exception {
        Path src = TestData.reference("mlp_shapley");
        Path copy = dir.resolve("mlp_shapley");
        Files.createDirectories(copy);
        try (var files = Files.list(src)) {
            for (Path f : files.toList()) {
                Files.copy(f, copy.resolve(f.getFileName()));
            }
        }
        Tensor sal = NpyIO.read(copy.resolve("saliency_abs.npy"));
        sal.data()[0] += 1f; // corrupt one reference value
        NpyIO.write(copy.resolve("saliency_abs.npy"), sal);
        CliRun r = run("validate", dir.toString(), "--device", "cpu");
        assertEquals(1, r.status());
        assertTrue(r.out().contains("validate: ") && r.out().contains(" 1 failed"), r.out());
    }

    @Test
    void infoNamesTheBackendAndWhy() {
        CliRun r = run("info");
        assertEquals(0, r.status(), r.err());
        // cpu here, cuda where the run has the emulator (or a GPU) on its library path
        String chosen = dev.kxai.backend.Backends.select(null).name();
        assertTrue(r.out().contains("backend chosen: " + chosen), r.out());
        assertTrue(r.out().contains("blas: "), r.out());
        assertTrue(r.out().contains("cores: "), r.out());
    }
}
