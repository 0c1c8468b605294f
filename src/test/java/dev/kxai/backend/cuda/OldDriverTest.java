package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The jar's kernels on the oldest driver JCuda 12.0 supports: the emulator reports CUDA 12.0
 * (KXAI_EMU_DRIVER_VERSION=12000) and, as that driver does, refuses PTX newer than ISA 8.0 with
 * CUDA_ERROR_UNSUPPORTED_PTX_VERSION. The switch is read once per process, so each case runs in
 * its own JVM (same java and classpath, the cuda-emulator run's environment plus the switch), as
 * {@link FaultInjectionTest} does. Emulator results say nothing about GPU speed.
 */
class OldDriverTest {
    private static final String DRIVER_12_0 = "KXAI_EMU_DRIVER_VERSION=12000";

    @Test
    void theKernelsLoadOnACuda12_0DriverAndIntegratedGradientsMatchesTheCpu() throws Exception {
        String out = run(List.of(FaultProbe.class.getName(), TestData.reference("digits_cnn").toString()), null, DRIVER_12_0);
        Map<String, String> kv = keyValues(out);
        assertEquals("ok", kv.get("probe"), out);
        assertEquals("ok", kv.get("done"), out);
        for (int call = 1; call <= 2; call++) {
            assertEquals("cuda", kv.get("ig" + call + "_device"), out);
            String rel = kv.get("ig" + call + "_rel_diff");
            assertNotNull(rel, out);
            assertTrue(Double.parseDouble(rel) <= 1e-6, "IG call " + call + " differs from the CPU by " + rel + ":\n" + out);
        }
    }

    @Test
    void kxaiInfoNamesTheDriverAndTheKernelsIsa() throws Exception {
        String out = run(List.of("dev.kxai.cli.Main", "info", "--device", "cuda"), null, DRIVER_12_0);
        assertTrue(out.contains("backend cuda: available - device 0: "), out);
        assertTrue(out.contains("driver 12.0 (kernels: PTX ISA 8.0)"), out);
        assertTrue(out.contains("backend chosen: cuda"), out);
    }

    /** Every PTX module of the jar declares ISA 8.0 at most: what CUDA 12.0 drivers JIT-compile. */
    @Test
    void theJarsPtxDeclaresIsa8_0() throws IOException {
        for (String m : CudaRuntime.MODULES) {
            byte[] ptx = jarPtx(m);
            assertEquals("8.0", PtxIsa.declared(ptx), "kernels/" + m + ".cu");
        }
    }

    /**
     * PTX declaring ISA 8.1 (the jar's, its .version line raised) on a 12.0 driver: refused by the
     * driver, so the backend is unavailable and says why, naming both versions; `kxai info` prints
     * it, and asking for cuda is an error with that reason, never a crash.
     */
    @Test
    void newerPtxIsRefusedByA12_0DriverWithAReasonNamingBothVersions() throws Exception {
        Path dir = Files.createTempDirectory("kxai-ptx-8.1");
        Path kernels = Files.createDirectories(dir.resolve("dev/kxai/kernels"));
        for (String m : CudaRuntime.MODULES) {
            String text = new String(jarPtx(m), StandardCharsets.US_ASCII).replaceFirst("(?m)^\\.version \\d+\\.\\d+", ".version 8.1");
            Files.writeString(kernels.resolve(m + ".ptx"), text, StandardCharsets.US_ASCII);
        }
        String out = run(List.of("dev.kxai.cli.Main", "info", "--device", "cuda"), dir, DRIVER_12_0, 2);
        String expected = "backend cuda: unavailable - the CUDA driver 12.0 (cuDriverGetVersion 12000) refused the PTX of "
                + "kernels/path.cu: it declares PTX ISA 8.1, and this driver JIT-compiles PTX ISA up to 8.0 "
                + "(CUDA_ERROR_UNSUPPORTED_PTX_VERSION); update the NVIDIA driver to one for CUDA 12.1 or newer";
        assertTrue(out.contains(expected), out);
        assertTrue(out.contains("backend chosen: none"), out);
        // the emulator's own diagnostic, as a real driver's JIT log would say
        assertTrue(out.contains("PTX ISA 8.1 is newer than driver 12000 can compile: it JITs PTX ISA up to 8.0"), out);
    }

    @Test
    void theReasonTableFollowsThePtxIsaReleaseHistory() {
        assertEquals("8.0", PtxIsa.newestFor(12000));
        assertEquals("8.5", PtxIsa.newestFor(12060));
        assertEquals("8.6", PtxIsa.newestFor(12070));
        assertEquals("8.8", PtxIsa.newestFor(12090));
        assertEquals("9.0", PtxIsa.newestFor(13000));
        assertEquals("13.0", PtxIsa.firstCudaFor("9.0"));
        assertEquals("12.2", PtxIsa.driver(12020));
    }

    private static byte[] jarPtx(String module) throws IOException {
        try (InputStream in = CudaRuntime.class.getResourceAsStream("/dev/kxai/kernels/" + module + ".ptx")) {
            assertNotNull(in, "no PTX for kernels/" + module + ".cu on the classpath (built without nvcc?)");
            return in.readAllBytes();
        }
    }

    private static String run(List<String> mainAndArgs, Path classpathFirst, String env) throws Exception {
        return run(mainAndArgs, classpathFirst, env, 0);
    }

    /** Runs a main class in a fresh JVM with one more environment entry; returns stdout + stderr. */
    private static String run(List<String> mainAndArgs, Path classpathFirst, String env, int expectedExit) throws Exception {
        Path tmp = Files.createTempDirectory("kxai-old-driver");
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx512m");
        cmd.add("-Djava.io.tmpdir=" + tmp);
        cmd.add("-cp");
        String cp = System.getProperty("java.class.path");
        cmd.add(classpathFirst == null ? cp : classpathFirst + File.pathSeparator + cp);
        cmd.addAll(mainAndArgs);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        int eq = env.indexOf('=');
        pb.environment().put(env.substring(0, eq), env.substring(eq + 1));
        pb.environment().remove("KXAI_EMU_FAIL_ALLOC");
        pb.environment().remove("KXAI_EMU_FAIL_LAUNCH");
        pb.environment().remove("KXAI_DEVICE");
        Process p = pb.start();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (InputStream in = p.getInputStream()) {
            in.transferTo(buf);
        }
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child JVM did not finish");
        String text = buf.toString(StandardCharsets.UTF_8);
        assertEquals(expectedExit, p.exitValue(), "exit status of " + mainAndArgs + ":\n" + text);
        return text;
    }

    private static Map<String, String> keyValues(String text) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0 && line.substring(0, eq).matches("[a-z0-9_]+")) {
                kv.putIfAbsent(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return kv;
    }
}
