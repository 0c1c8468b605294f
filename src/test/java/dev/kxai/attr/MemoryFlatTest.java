package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Heap is flat in n_steps: tinyvgg (2 examples of 3×64×64) chunked at 32 rows runs at 50, 200
 * and 800 steps in a JVM limited to 96 MiB. The limit discriminates: the same JVM cannot run
 * 200 steps unchunked (400 rows of activations and gradients at once, as Captum does by
 * default), so a footprint that grew with the steps would fail here. The live heap of each run
 * is printed for the record; GC sampling makes it too noisy for a ratio assertion.
 */
class MemoryFlatTest {
    private static final String HEAP = "-Xmx96m";
    private static final Pattern RUN = Pattern.compile("steps=(\\d+) peak_mib=([0-9.]+)");

    private static List<String> probe(String rows, String... steps) throws Exception {
        Path dir = TestData.reference("tinyvgg");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, HEAP, "-XX:+UseSerialGC", "-cp",
                System.getProperty("java.class.path"), MemoryProbe.class.getName(), dir.toString(), rows));
        cmd.addAll(List.of(steps));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        List<String> lines = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                lines.add(line);
            }
        }
        assertEquals(0, p.waitFor(), "probe JVM failed:\n" + String.join("\n", lines));
        return lines.stream().filter(l -> l.startsWith("steps=")).toList();
    }

    @Test
    void chunkedRunsFitASmallHeapAtEveryStepCount() throws Exception {
        List<String> runs = probe("32", "50", "200", "800");
        runs.forEach(l -> System.out.println("memory (" + HEAP + ", 32-row chunks): " + l));
        assertEquals(3, runs.size(), String.valueOf(runs));
        for (String l : runs) {
            Matcher m = RUN.matcher(l);
            assertTrue(m.find(), "run did not complete within " + HEAP + ": " + l);
            assertTrue(Double.parseDouble(m.group(2)) < 96, l);
        }
    }

    @Test
    void theHeapLimitIsTooSmallForAnUnchunkedRun() throws Exception {
        List<String> runs = probe("0", "200");
        runs.forEach(l -> System.out.println("memory (" + HEAP + ", unchunked): " + l));
        assertEquals(List.of("steps=200 out_of_memory"), runs);
    }
}
