package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The local half of the GPU kit (bench/gpu-kit.sh): a runtime jlinked from the modules listed in
 * bench/gpu-kit.modules runs kxai (info, and an IG benchmark on the CPU), so the kit the device
 * machine receives lacks no module the commands it runs need. Skipped only where the JDK has no
 * jlink (a JRE), with the reason printed.
 */
class GpuKitTest {
    private static String run(List<String> cmd, Path dir) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "timed out: " + cmd);
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + "\n" + out);
        return out;
    }

    @Test
    void theKitsRuntimeRunsKxai(@TempDir Path dir) throws Exception {
        Path jlink = Path.of(System.getProperty("java.home"), "bin", "jlink");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(jlink), "no jlink in " + System.getProperty(
                "java.home") + ": the GPU kit needs a JDK");
        Path root = Path.of("").toAbsolutePath();
        String modules = Files.readString(root.resolve("bench/gpu-kit.modules")).trim();
        Path runtime = dir.resolve("runtime");
        run(List.of(jlink.toString(), "--add-modules", modules, "--strip-debug", "--no-header-files", "--no-man-pages",
                "--output", runtime.toString()), dir);
        List<String> java = new ArrayList<>(List.of(runtime.resolve("bin/java").toString(), "--add-modules",
                "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), "dev.kxai.cli.Main"));
        List<String> info = new ArrayList<>(java);
        info.add("info");
        assertTrue(run(info, dir).contains("backend cpu: available"), "kxai info from the kit's runtime");
        Path d = TestData.reference("digits_cnn");
        List<String> bench = new ArrayList<>(java);
        bench.addAll(List.of("bench", "--model", d.resolve("model.onnx").toString(), "--input",
                d.resolve("input.npy").toString(), "--method", "ig", "--steps", "8", "--warmup", "0", "--repeats", "1",
                "--device", "cpu"));
        String out = run(bench, dir);
        assertTrue(out.contains("bench: median_s="), out);
    }
}
