package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Quadrature;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * CUDA graphs per chunk shape with validated replay ({@link ChunkGraphs}), on the emulator: Integrated
 * Gradients with graphs on equals graphs off bit for bit; N chunks of one shape give 1 capture and
 * N − 1 graph launches (the first chunk warms up eagerly), counted both by kxai and by the fake
 * driver; a chunk that departs from the captured operations (a download the captured chunk did not
 * have, an extra or different launch) falls back to eager work with the right result; a shorter last
 * chunk never replays the longer chunks' graph.
 */
class GraphsCudaTest {

    static <R> R withGraphs(boolean on, Supplier<R> work) {
        boolean before = ChunkGraphs.enabled;
        ChunkGraphs.enabled = on;
        try {
            return work.get();
        } finally {
            ChunkGraphs.enabled = before;
        }
    }

    private static Attribution ig(Model m, Tensor x, int[] t, Quadrature.Rule rule, int steps, int stepsPerChunk) {
        return new IntegratedGradients(m).nSteps(steps).method(rule).internalBatchSize(stepsPerChunk * x.dim(0))
                .attribute(x, t);
    }

    private record Run(Attribution a, ChunkGraphs.Stats stats, long[] driver) {
    }

    private static Run run(Path model, boolean graphs, Tensor x, int[] t, Quadrature.Rule rule, int steps, int perChunk) {
        return withGraphs(graphs, () -> {
            try (Model m = Model.load(model, "cuda")) {
                ChunkGraphs.Stats s0 = ChunkGraphs.stats();
                long[] d0 = EmuCounters.read();
                Attribution a = ig(m, x, t, rule, steps, perChunk);
                return new Run(a, ChunkGraphs.stats().minus(s0), EmuCounters.since(d0));
            }
        });
    }

    private static void sameBits(Attribution want, Attribution got, String what) {
        assertEquals("cuda", got.device(), what);
        assertArrayEquals(want.attributions().data(), got.attributions().data(), what + ": graphs on = off, bit for bit");
        if (want.convergenceDelta() != null) {
            assertArrayEquals(want.convergenceDelta().data(), got.convergenceDelta().data(), what + ": delta");
        }
    }

    private void nChunksOneCapture(String model, int rows) {
        CudaTestKit.cuda();
        Path dir = TestData.reference(model).resolve("model.onnx");
        Tensor x = NpyIO.read(TestData.reference(model).resolve("input.npy")).rows(0, rows);
        int[] t = new int[rows];
        for (int i = 0; i < rows; i++) {
            t[i] = (2 * i + 1) % 3;
        }
        int chunks = 5;
        Run off = run(dir, false, x, t, Quadrature.Rule.GAUSS_LEGENDRE, 2 * chunks, 2);
        Run on = run(dir, true, x, t, Quadrature.Rule.GAUSS_LEGENDRE, 2 * chunks, 2);
        String what = model + ", " + chunks + " chunks: " + on.stats() + "; driver: graph_captures="
                + on.driver()[EmuCounters.GRAPH_CAPTURES] + " graph_launches=" + on.driver()[EmuCounters.GRAPH_LAUNCHES] + " captured_nodes=" + on.driver()[EmuCounters.CAPTURED_NODES]
                + ", kernel launches on the stream " + on.driver()[EmuCounters.LAUNCHES_CREATED] + " (graphs off: "
                + off.driver()[EmuCounters.LAUNCHES_CREATED] + ")";
        System.out.println(what);
        assertEquals(new ChunkGraphs.Stats(0, 0, 0, 0), off.stats(), "graphs off: none");
        assertEquals(1, on.stats().captures(), what);
        assertEquals(chunks - 1, on.stats().launches(), what);
        assertEquals(0, on.stats().fallbacks(), what);
        assertEquals(1, on.driver()[EmuCounters.GRAPH_CAPTURES], "the driver saw one capture: " + what);
        assertEquals(chunks - 1, on.driver()[EmuCounters.GRAPH_LAUNCHES], "the driver saw N - 1 graph launches: " + what);
        assertEquals(off.driver()[EmuCounters.LAUNCHES_CREATED], on.driver()[EmuCounters.LAUNCHES_CREATED],
                "the graphs ran every kernel the eager path runs: " + what);
        assertEquals(0, on.driver()[EmuCounters.LAUNCHES_DEFAULT] + on.driver()[EmuCounters.ASYNC_PAGEABLE], what);
        sameBits(off.a(), on.a(), what);
    }

    @Test
    void tinyVggNChunksOneCaptureNMinusOneLaunchesBitForBit() {
        nChunksOneCapture("tinyvgg", 2);
    }

    @Test
    void digitsCnnNChunksOneCaptureNMinusOneLaunchesBitForBit() {
        nChunksOneCapture("digits_cnn", 3);
    }

    /**
     * riemann_trapezoid evaluates α = 0 in the first chunk and α = 1 in the last, each downloading the
     * endpoint outputs mid-chunk: the last chunk reaches that download (a boundary) before the captured
     * operations are all seen, so it falls back (the matched prefix issued eagerly); and 7 steps in
     * chunks of 2 end with a one-step chunk, another shape, which never replays the others' graph.
     */
    @Test
    void chunksThatDepartFromTheCaptureFallBackBitForBit() {
        CudaTestKit.cuda();
        Path dir = TestData.reference("tinyvgg").resolve("model.onnx");
        Tensor x = NpyIO.read(TestData.reference("tinyvgg").resolve("input.npy")).rows(0, 2);
        int[] t = {1, 2};
        Run off = run(dir, false, x, t, Quadrature.Rule.RIEMANN_TRAPEZOID, 8, 2);
        Run on = run(dir, true, x, t, Quadrature.Rule.RIEMANN_TRAPEZOID, 8, 2);
        String what = "trapezoid, 8 steps in 4 chunks: " + on.stats();
        System.out.println(what);
        // chunk 1 (α = 0) warms up, chunk 2 is captured and launched, chunk 3 replays, chunk 4 (α = 1) falls back
        assertEquals(new ChunkGraphs.Stats(1, 2, 1, on.stats().replayedOps()), on.stats(), what);
        sameBits(off.a(), on.a(), what);

        Run off7 = run(dir, false, x, t, Quadrature.Rule.GAUSS_LEGENDRE, 7, 2);
        Run on7 = run(dir, true, x, t, Quadrature.Rule.GAUSS_LEGENDRE, 7, 2);
        String what7 = "7 steps in chunks of at most 2: " + on7.stats();
        System.out.println(what7);
        // 2, 2, 2, 1: the two-step shape is captured once and launched twice; the one-step chunk runs eagerly
        assertEquals(new ChunkGraphs.Stats(1, 2, 0, on7.stats().replayedOps()), on7.stats(), what7);
        sameBits(off7.a(), on7.a(), what7);
    }

    /**
     * A second call on the same model replays the first call's graph (the pooled buffers and staging
     * slices are at the same addresses), with other inputs and targets: the chunk's host data reaches
     * the device through the staging slices, which the graph's memcpy nodes read at each launch.
     */
    @Test
    void aLaterCallWithOtherDataReplaysTheGraphBitForBit() {
        CudaTestKit.cuda();
        Path dir = TestData.reference("digits_cnn").resolve("model.onnx");
        Tensor all = NpyIO.read(TestData.reference("digits_cnn").resolve("input.npy"));
        Tensor x1 = all.rows(0, 2);
        Tensor x2 = all.rows(2, 4);
        int[] t1 = {0, 1};
        int[] t2 = {2, 0};
        Attribution[] want = withGraphs(false, () -> {
            try (Model m = Model.load(dir, "cuda")) {
                return new Attribution[] {ig(m, x1, t1, Quadrature.Rule.GAUSS_LEGENDRE, 8, 2),
                    ig(m, x2, t2, Quadrature.Rule.GAUSS_LEGENDRE, 8, 2)};
            }
        });
        withGraphs(true, () -> {
            try (Model m = Model.load(dir, "cuda")) {
                Attribution a = ig(m, x1, t1, Quadrature.Rule.GAUSS_LEGENDRE, 8, 2);
                ChunkGraphs.Stats s0 = ChunkGraphs.stats();
                Attribution b = ig(m, x2, t2, Quadrature.Rule.GAUSS_LEGENDRE, 8, 2);
                ChunkGraphs.Stats s = ChunkGraphs.stats().minus(s0);
                System.out.println("second call: " + s);
                assertEquals(new ChunkGraphs.Stats(0, 4, 0, s.replayedOps()), s, "every chunk of the second call replays");
                sameBits(want[0], a, "first call");
                sameBits(want[1], b, "second call, other inputs and targets");
            }
            return null;
        });
    }

    /**
     * The validation itself, on a hand-made chunk: replays of the same operations launch the graph
     * (new host data each time); one with an extra launch after the captured ones, and one whose very
     * first operation differs, fall back and still compute the right numbers.
     */
    @Test
    void replayIsValidatedOperationByOperation() {
        CudaTestKit.cuda();
        Path dir = TestData.reference("digits_cnn").resolve("model.onnx");
        withGraphs(true, () -> {
            try (Model m = Model.load(dir, "cuda")) {
                CudaOpSet ops = BufferPoolTest.opSet(m);
                ChunkGraphs.Stats s0 = ChunkGraphs.stats();
                for (int run = 0; run < 7; run++) {
                    int n = run == 5 ? 48 : 64; // run 5: other sizes from the first operation on
                    boolean extra = run == 4;   // run 4: one launch more than the captured chunk
                    float[] x = new float[n];
                    float[] y = new float[n];
                    for (int i = 0; i < n; i++) {
                        x[i] = run * 100 + i;
                        y[i] = 0.5f * i - run;
                    }
                    float[] got = ops.onDevice(() -> {
                        try (DeviceScope s = (DeviceScope) ops.arena()) {
                            Work.chunk(ops.graphs(), "hand-made", s);
                            DeviceBuffer bx = s.upload(x);
                            DeviceBuffer by = s.upload(y);
                            DeviceBuffer sum = s.floats(n);
                            sum.copyFrom(bx, n);
                            ops.kernels().addInplace(sum, by, n);
                            if (extra) {
                                ops.kernels().addInplace(sum, by, n);
                            }
                            return sum.download(n);
                        }
                    });
                    for (int i = 0; i < n; i++) {
                        assertEquals(x[i] + y[i] + (extra ? y[i] : 0), got[i], 0f, "run " + run + " element " + i);
                    }
                    ChunkGraphs.Stats s = ChunkGraphs.stats().minus(s0);
                    System.out.println("hand-made chunk, after run " + run + ": " + s);
                    // run 0 warms up, 1 captures + launches, 2 and 3 replay, 4 falls back (graph dropped),
                    // 5 captures again (48 elements under the same key), 6 (64 again) differs from that
                    // graph at its first operation and falls back
                    long[][] want = {{0, 0, 0}, {1, 1, 0}, {1, 2, 0}, {1, 3, 0}, {1, 3, 1}, {2, 4, 1}, {2, 4, 2}};
                    assertEquals(want[run][0], s.captures(), "captures after run " + run);
                    assertEquals(want[run][1], s.launches(), "launches after run " + run);
                    assertEquals(want[run][2], s.fallbacks(), "fallbacks after run " + run);
                }
            }
            return null;
        });
    }
}
