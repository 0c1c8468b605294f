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
 * Heap is flat in n_steps: tinyvgg (2 examples of 3×64×64) at 50, 200 and 800 steps in a JVM
 * limited to 160 MiB, chunked at 32 rows. Without chunking 800 steps would hold 1600 rows of
 * activations and gradients (about 2.5 GB) and die of OutOfMemoryError; with it, each run's
 * peak stays under the heap limit and does not grow with the steps.
 */
class MemoryFlatTest {
    private static final Pattern LINE = Pattern.compile("steps=(\\d+) peak_mib=([0-9.]+) seconds=([0-9.]+)");

    @Test
    void heapDoesNotGrowWithSteps() throws Exception {
        Path dir = TestData.reference("tinyvgg");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = List.of(java, "-Xmx160m", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
                MemoryProbe.class.getName(), dir.toString(), "32", "50", "200", "800");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        List<double[]> runs = new ArrayList<>();
        StringBuilder all = new StringBuilder();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                all.append(line).append('\n');
                Matcher m = LINE.matcher(line);
                if (m.find()) {
                    runs.add(new double[] {Double.parseDouble(m.group(1)), Double.parseDouble(m.group(2))});
                    System.out.println("memory: " + line);
                }
            }
        }
        assertEquals(0, p.waitFor(), "probe JVM failed:\n" + all);
        assertEquals(3, runs.size(), all.toString());
        double at50 = runs.get(0)[1];
        double at800 = runs.get(2)[1];
        // 16x the steps; a linear footprint would be 16x the peak, a flat one about the same
        assertTrue(at800 < 1.5 * at50 + 16, "peak heap at 800 steps " + at800 + " MiB vs " + at50 + " MiB at 50");
    }
}
