package dev.kxai.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kxai bench} output formats and errors; never its timings. */
class BenchCommandTest {
    private static final Pattern CLOSING = Pattern.compile(
            "bench: median_s=[0-9.]+ attributions_per_s=[0-9.]+ gflop_per_s=[0-9.]+ peak_fraction=[0-9.]+");
    private static final Path MLP = TestData.reference("mlp_tabular");

    static CliRun run(String... args) {
        return CliRun.of(args);
    }

    private static String[] bench(String... extra) {
        String[] base = {"bench", "--model", MLP.resolve("model.onnx").toString(), "--input",
            MLP.resolve("input.npy").toString(), "--sgemm-size", "16", "--sgemm-seconds", "0.01"};
        String[] all = new String[base.length + extra.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(extra, 0, all, base.length, extra.length);
        return all;
    }

    @Test
    void oneRepeatClosesWithTheBenchLine() {
        CliRun r = run(bench("--repeats", "1", "--warmup", "0", "--device", "cpu"));
        assertEquals(0, r.status(), r.out() + r.err());
        String[] lines = r.out().strip().split("\n");
        assertTrue(CLOSING.matcher(lines[lines.length - 1]).matches(), lines[lines.length - 1]);
        assertEquals(1, r.out().lines().filter(l -> l.matches("repeat 1: [0-9.]+ s on cpu")).count(), r.out());
        assertEquals(1, r.out().lines().filter(l -> l.startsWith("repeat ")).count(), r.out());
        assertEquals(1, r.out().lines().filter(l -> l.startsWith("sgemm: 16x16x16, ")).count(), r.out());
        assertEquals(1, r.out().lines().filter(l -> l.startsWith("bench: ")).count(), r.out());
        // 50 gausslegendre steps on 16 rows: 800 forward+backward rows of 816 MACs each way
        double gflop = 2.0 * 2 * 816 * 800 / 1e9;
        assertTrue(r.out().contains(String.format(java.util.Locale.ROOT, "800 gradient rows + 0 forward rows = %.6f GFLOP",
                gflop)), r.out());
    }

    @Test
    void repeatsThreadsAndOutWriteTheIgAttributions(@TempDir Path dir) {
        CliRun r = run(bench("--repeats", "3", "--warmup", "1", "--threads", "1", "--steps", "16", "--delta",
                "--rule", "riemann_left", "--out", dir.toString()));
        assertEquals(0, r.status(), r.out() + r.err());
        for (int i = 1; i <= 3; i++) {
            assertTrue(r.out().contains("repeat " + i + ": "), r.out());
        }
        // riemann_left has α = 0 but not α = 1: the delta needs one forward over [x; baseline]
        assertTrue(r.out().contains("256 gradient rows + 32 forward rows"), r.out());
        Tensor got = NpyIO.read(dir.resolve("attributions.npy"));
        Tensor ref = NpyIO.read(MLP.resolve("ig_riemann_left_16.npy"));
        assertArrayEquals(ref.shape(), got.shape());
        float max = 0;
        for (float v : ref.data()) {
            max = Math.max(max, Math.abs(v));
        }
        for (int i = 0; i < ref.size(); i++) {
            assertEquals(ref.data()[i], got.data()[i], 1e-4 * max + 1e-6, "element " + i);
        }
    }

    private static final Path DIGITS = TestData.reference("digits_cnn");

    private static String[] occlusion(Path out, String... extra) {
        String[] base = {"bench", "--model", DIGITS.resolve("model.onnx").toString(), "--input",
            DIGITS.resolve("input.npy").toString(), "--sgemm-size", "16", "--sgemm-seconds", "0.01", "--method",
            "occlusion", "--sliding-window", "1,4,4", "--repeats", "2", "--warmup", "0", "--out", out.toString()};
        String[] all = new String[base.length + extra.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(extra, 0, all, base.length, extra.length);
        return all;
    }

    @Test
    void occlusionReportsItsForwardCalls(@TempDir Path dir) {
        Tensor x = NpyIO.read(DIGITS.resolve("input.npy"));
        int batch = x.dim(0);
        int windows = 5 * 5; // a 4x4 window at stride 1 over 8x8: 5 positions per axis
        int rows = (windows + 1) * batch; // the unperturbed rows are evaluated in the same loop
        // perturbations_per_eval 4: 4 x batch rows per forward call
        CliRun tuned = run(occlusion(dir.resolve("ppe4"), "--perturbations-per-eval", "4"));
        assertEquals(0, tuned.status(), tuned.out() + tuned.err());
        int perCall = 4 * batch;
        assertTrue(tuned.out().contains("passes: " + (rows + perCall - 1) / perCall + " forward calls per run, " + rows
                + " rows in all, at most " + perCall + " rows per call"), tuned.out());
        assertTrue(tuned.out().contains(rows + " forward rows"), tuned.out());
        assertEquals(2, tuned.out().lines().filter(l -> l.startsWith("repeat ")).count(), tuned.out());
        // the default: as many rows as a forward pass's working set fits in the budget, here all in one call
        CliRun whole = run(occlusion(dir.resolve("default"), "--strides", "1"));
        assertEquals(0, whole.status(), whole.out() + whole.err());
        assertTrue(whole.out().contains("passes: 1 forward calls per run, " + rows + " rows in all, at most " + rows
                + " rows per call"), whole.out());
        String[] lines = whole.out().strip().split("\n");
        assertTrue(CLOSING.matcher(lines[lines.length - 1]).matches(), lines[lines.length - 1]);
        Tensor a = NpyIO.read(dir.resolve("ppe4/attributions.npy"));
        Tensor b = NpyIO.read(dir.resolve("default/attributions.npy"));
        assertArrayEquals(x.shape(), a.shape());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(b.data()[i], a.data()[i], 1e-5f * (1 + Math.abs(b.data()[i])), "element " + i);
        }
    }

    @Test
    void userErrorsExitWithStatus2() {
        CliRun zero = run(bench("--repeats", "0"));
        assertEquals(2, zero.status());
        assertTrue(zero.err().startsWith("kxai: error: --repeats must be at least 1"), zero.err());
        CliRun threads = run(bench("--threads", "0"));
        assertEquals(2, threads.status());
        assertTrue(threads.err().contains("--threads"), threads.err());
        CliRun method = run(bench("--method", "no_such_method"));
        assertEquals(2, method.status());
        assertTrue(method.err().contains("unknown method 'no_such_method'"), method.err());
        CliRun missing = run("bench", "--model", MLP.resolve("nope.onnx").toString(), "--input",
                MLP.resolve("input.npy").toString());
        assertEquals(2, missing.status());
        assertTrue(missing.err().contains("nope.onnx"), missing.err());
    }

    @Test
    void sgemmRateCountsTwoFlopsPerMultiplyAdd() {
        SgemmRate.Rate rate = SgemmRate.measure(8, 0.0);
        assertTrue(rate.calls() >= 1);
        assertEquals(2.0 * 8 * 8 * 8 * rate.calls() / rate.seconds() / 1e9, rate.gflops(), 1e-9 * rate.gflops());
        assertEquals(2.0, Timings.median(new double[] {3, 1, 2}));
        assertEquals(2.5, Timings.median(new double[] {4, 1, 2, 3}));
    }
}
