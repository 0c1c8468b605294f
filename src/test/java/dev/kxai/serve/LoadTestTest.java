package dev.kxai.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The load test at small scale (the full one is {@code kxai loadtest}, see bench/RESULTS.md): 16
 * concurrent clients, mixed requests, every answer bit for bit the lone one, none lost, with
 * batching on and off. Throughput is printed, not asserted (a shared 2-core machine).
 */
class LoadTestTest {
    @Test
    void concurrentClientsGetEveryAnswerBitForBit() throws Exception {
        Path d = TestData.reference("digits_cnn");
        try (Model m = Model.load(d.resolve("model.onnx"), "cpu")) {
            LoadTest.Options o = new LoadTest.Options(16, 300, 8, 40, 4, 0.25, BatchingExplainer.Settings.defaults(), true,
                    true, 11);
            List<LoadTest.Report> reports = LoadTest.run(m, NpyIO.read(d.resolve("input.npy")), o, null);
            assertEquals(2, reports.size());
            for (LoadTest.Report r : reports) {
                System.out.println("load test: " + r.line());
                assertEquals(0, r.lost(), r.line());
                assertEquals(0, r.mismatched(), r.line());
                assertEquals(300, r.requests());
            }
            assertTrue(reports.get(0).batches() < reports.get(0).requests(), "batching on coalesced requests: "
                    + reports.get(0).line());
            assertEquals(300, reports.get(1).batches(), "batching off: one batch per request");
        }
    }

    @Test
    void theCommandRunsOnTheBundledModel() {
        CliRun r = CliRun.of("loadtest", "--clients", "4", "--requests", "40", "--distinct", "8", "--steps", "4",
                "--device", "cpu");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("batching on") && r.out().contains("batching off") && r.out().contains("lost 0")
                && r.out().contains("mismatched 0"), r.out());
    }
}
