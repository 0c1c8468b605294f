package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Soak under injected device faults on the emulator: {@link FaultSoakProbe} in a child JVM per
 * fault (the emulator reads its switches once per process), 8 threads on one shared CUDA model for
 * a few seconds (-Dkxai.faultsoak.seconds), with the N-th allocation, launch or host-device copy
 * failing, N drawn (seeded) from the middle of the run. Every request must return the CPU's result
 * (after an out-of-memory retry or a reported fallback to the CPU) or a typed error; none a wrong
 * number, an untyped exception or a hang; device memory back to its baseline after the model
 * closes (where the fault leaves a context to ask: a failed launch is sticky).
 */
class FaultSoakTest {
    private static final Path MODEL = TestData.reference("digits_cnn");

    @ParameterizedTest
    @ValueSource(strings = {"NONE", "ALLOC", "ALLOC_UNPOOLED", "LAUNCH", "COPY"})
    void everyRequestIsRightOrATypedError(String variant) throws Exception {
        double seconds = Double.parseDouble(System.getProperty("kxai.faultsoak.seconds", "4"));
        Random rnd = new Random(variant.hashCode() ^ Long.getLong("kxai.faultsoak.seed", 13L));
        // with the model's buffer pool a soak allocates ~70 times in all (the weights, then each kind of request's
        // first buffers, up to 8 requests at once); without it (ALLOC_UNPOOLED) every chunk allocates
        boolean pooled = !variant.endsWith("_UNPOOLED");
        String kind = variant.replace("_UNPOOLED", "");
        int n = switch (variant) {
            case "ALLOC" -> weightAllocs() + 1 + rnd.nextInt(40);
            case "ALLOC_UNPOOLED" -> 100 + rnd.nextInt(400);
            // the FP32 convolutions' barriers (a context switch per fiber per barrier on the emulator) leave
            // 13-20 requests in a 4 s soak on a busy machine, ~50 launches and ~13 copies each: N is drawn below that
            case "LAUNCH" -> 100 + rnd.nextInt(400);
            case "COPY" -> 30 + rnd.nextInt(100);
            default -> 0;
        };
        Map<String, String> r = fork(kind, n, seconds, pooled);
        String out = "KXAI_EMU_FAIL_" + kind + "=" + n + (pooled ? "" : ", no pool") + ":\n" + r.get("output");
        System.out.printf("fault soak %s=%d: requests %s, device allocations %s, ok %s, mismatches %s, typed errors %s, "
                + "untyped %s, ran on cpu %s, leaked device bytes %s, device after: %s%n", variant, n, r.get("requests"),
                r.get("device_allocations"), r.get("ok"),
                r.get("mismatches"), r.get("typed_errors"), r.get("untyped_errors"), r.get("ran_on_cpu"),
                r.get("leaked_device_bytes"), r.get("model_device_after"));
        assertEquals("ok", r.get("done"), out);
        assertEquals("0", r.get("mismatches"), out);
        assertEquals("0", r.get("untyped_errors"), out);
        long requests = Long.parseLong(r.get("requests"));
        assertTrue(requests > 0, out);
        assertEquals(requests, Long.parseLong(r.get("ok")) + Long.parseLong(r.get("typed_errors")), out);
        if (kind.equals("NONE")) {
            assertEquals("0", r.get("ran_on_cpu"), out);
            assertEquals("0", r.get("typed_errors"), out);
        } else {
            assertTrue(r.get("output").contains("injected:"), "the fault did not fire: " + out);
        }
        String leaked = r.get("leaked_device_bytes");
        assertTrue(leaked.equals("0") || kind.equals("LAUNCH") && leaked.startsWith("unknown"), out);
    }

    /** Device allocations made by loading the model (weights, batch-norm and folded parameters, Σ|w|), counted. */
    private static int weightAllocs() {
        dev.kxai.graph.Graph g = dev.kxai.onnx.OnnxImporter.load(MODEL.resolve("model.onnx"));
        long before = DeviceBuffer.allocations();
        new CudaOpSet(g, CudaTestKit.cuda() != null ? CudaRuntime.probe().runtime() : null).close();
        return (int) (DeviceBuffer.allocations() - before);
    }

    private static Map<String, String> fork(String kind, int n, double seconds, boolean pooled) throws Exception {
        Path tmp = Files.createTempDirectory("kxai-fault-soak");
        try {
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-Xmx512m", "--add-modules", "jdk.incubator.vector", "-Djava.io.tmpdir=" + tmp,
                    "-D" + BufferPool.MAX_PROPERTY + "=" + (pooled ? "" : "0"), "-cp",
                    System.getProperty("java.class.path"), FaultSoakProbe.class.getName(), MODEL.toString(),
                    Double.toString(seconds), "8"));
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            for (String k : new String[] {"ALLOC", "LAUNCH", "COPY"}) {
                pb.environment().remove("KXAI_EMU_FAIL_" + k);
            }
            if (!kind.equals("NONE")) {
                pb.environment().put("KXAI_EMU_FAIL_" + kind, Integer.toString(n));
            }
            Process p = pb.start();
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            Thread reader = new Thread(() -> {
                try (InputStream in = p.getInputStream()) {
                    in.transferTo(buf);
                } catch (java.io.IOException ignored) {
                    // the child died: its exit status says so
                }
            });
            reader.start();
            boolean exited = p.waitFor((long) seconds + 180, TimeUnit.SECONDS);
            if (!exited) {
                p.destroyForcibly();
            }
            reader.join(10_000);
            String text = buf.toString(StandardCharsets.UTF_8);
            assertTrue(exited, "the soak hung:\n" + text);
            assertEquals(0, p.exitValue(), text);
            Map<String, String> kv = new LinkedHashMap<>();
            for (String line : text.split("\n")) {
                int eq = line.indexOf('=');
                if (eq > 0 && line.substring(0, eq).matches("[a-z_]+")) {
                    kv.putIfAbsent(line.substring(0, eq), line.substring(eq + 1));
                }
            }
            kv.put("output", text);
            return kv;
        } finally {
            try (var walk = Files.walk(tmp)) {
                walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }
}
