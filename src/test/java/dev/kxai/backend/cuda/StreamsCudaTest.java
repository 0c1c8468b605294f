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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Work on a stream of its own with pinned staging ({@link Work}, {@link PinnedStaging}), on the
 * emulator: the fake driver counts where launches, copies, memsets and cuBLAS calls went and whether
 * async copies read pinned memory (EmuCounters). Integrated Gradients with streams puts nothing on the
 * legacy default stream and copies only from pinned memory, and its result is bit for bit the legacy
 * path's ({@code kxai.cuda.streams=false}); concurrent requests on one model each get their lone
 * answer bit for bit.
 */
class StreamsCudaTest {

    private static Attribution ig(Model m, Tensor x, int[] t, int steps, int stepsPerChunk) {
        return new IntegratedGradients(m).nSteps(steps).method(Quadrature.Rule.GAUSS_LEGENDRE)
                .internalBatchSize(stepsPerChunk * x.dim(0)).attribute(x, t);
    }

    private static Attribution igTrapezoid(Model m, Tensor x, int[] t, int steps, int stepsPerChunk) {
        // riemann_trapezoid evaluates α = 0 and 1: the endpoints are downloaded mid-chunk (gatherTargets)
        return new IntegratedGradients(m).nSteps(steps).method(Quadrature.Rule.RIEMANN_TRAPEZOID)
                .internalBatchSize(stepsPerChunk * x.dim(0)).attribute(x, t);
    }

    /** Runs {@code work} with streams on or off (the model loaded in the same mode). */
    private static <R> R withStreams(boolean on, java.util.function.Supplier<R> work) {
        boolean before = Work.enabled;
        Work.enabled = on;
        try {
            return work.get();
        } finally {
            Work.enabled = before;
        }
    }

    private void streamedEqualsLegacy(String model, int rows) {
        CudaTestKit.cuda();
        Path dir = TestData.reference(model);
        Tensor x = NpyIO.read(dir.resolve("input.npy")).rows(0, rows);
        int[] t = new int[rows];
        for (int i = 0; i < rows; i++) {
            t[i] = (i + 1) % 3;
        }
        long[] legacyCounts = EmuCounters.read();
        Attribution[] legacy = withStreams(false, () -> {
            try (Model m = Model.load(dir.resolve("model.onnx"), "cuda")) {
                return new Attribution[] {ig(m, x, t, 8, 2), igTrapezoid(m, x, t, 7, 3)};
            }
        });
        long[] legacyDelta = EmuCounters.since(legacyCounts);
        System.out.println(model + " legacy path: " + EmuCounters.describe(legacyDelta));
        assertTrue(legacyDelta[EmuCounters.LAUNCHES_DEFAULT] > 0 && legacyDelta[EmuCounters.SYNC_HOST_COPIES] > 0,
                "the counters see the legacy path's default-stream work: " + EmuCounters.describe(legacyDelta));

        withStreams(true, () -> {
            try (Model m = Model.load(dir.resolve("model.onnx"), "cuda")) {
                long[] before = EmuCounters.read();
                Attribution a = ig(m, x, t, 8, 2);
                Attribution b = igTrapezoid(m, x, t, 7, 3);
                long[] d = EmuCounters.since(before);
                String what = model + " on streams: " + EmuCounters.describe(d);
                System.out.println(what);
                assertEquals("cuda", a.device());
                assertEquals(0, d[EmuCounters.LAUNCHES_DEFAULT], what);
                assertEquals(0, d[EmuCounters.OPS_DEFAULT], what);
                assertEquals(0, d[EmuCounters.CUBLAS_DEFAULT], what);
                assertEquals(0, d[EmuCounters.SYNC_HOST_COPIES], what);
                assertEquals(0, d[EmuCounters.ASYNC_PAGEABLE], "every async copy from pinned memory: " + what);
                assertTrue(d[EmuCounters.LAUNCHES_CREATED] > 0 && d[EmuCounters.ASYNC_PINNED] > 0
                        && d[EmuCounters.CUBLAS_CREATED] > 0, what);
                assertArrayEquals(legacy[0].attributions().data(), a.attributions().data(), "streams = legacy, bit for bit");
                assertDelta(legacy[0], a);
                assertArrayEquals(legacy[1].attributions().data(), b.attributions().data(),
                        "trapezoid (endpoints downloaded mid-chunk): streams = legacy, bit for bit");
                assertDelta(legacy[1], b);
                int lanes = CudaRuntime.probe().runtime().lanesCreated();
                ig(m, x, t, 8, 2);
                assertEquals(lanes, CudaRuntime.probe().runtime().lanesCreated(), "a later call reuses the streams");
            }
            return null;
        });
    }

    private static void assertDelta(Attribution want, Attribution got) {
        if (want.convergenceDelta() != null) {
            assertArrayEquals(want.convergenceDelta().data(), got.convergenceDelta().data(), "convergence delta");
        }
    }

    @Test
    void integratedGradientsOnTinyVggRunsOnAStreamFromPinnedMemoryBitForBit() {
        streamedEqualsLegacy("tinyvgg", 2);
    }

    @Test
    void integratedGradientsOnDigitsCnnRunsOnAStreamFromPinnedMemoryBitForBit() {
        streamedEqualsLegacy("digits_cnn", 3);
    }

    /** Several threads on one model, each request on a stream: each gets its lone answer, bit for bit. */
    @Test
    void concurrentRequestsOnOneModelGetTheirLoneAnswers() throws Exception {
        CudaTestKit.cuda();
        Path dir = TestData.reference("digits_cnn");
        Tensor all = NpyIO.read(dir.resolve("input.npy"));
        withStreams(true, () -> {
            try (Model m = Model.load(dir.resolve("model.onnx"), "cuda")) {
                int kinds = 4;
                float[][] want = new float[kinds][];
                for (int k = 0; k < kinds; k++) {
                    want[k] = ig(m, all.rows(k, k + 1 + k % 2), target(k), 6, 2).attributions().data();
                }
                long[] before = EmuCounters.read();
                ExecutorService ex = Executors.newFixedThreadPool(4);
                try {
                    List<Future<float[]>> got = new ArrayList<>();
                    for (int r = 0; r < 12; r++) {
                        int k = r % kinds;
                        got.add(ex.submit(() -> ig(m, all.rows(k, k + 1 + k % 2), target(k), 6, 2).attributions().data()));
                    }
                    for (int r = 0; r < got.size(); r++) {
                        assertArrayEquals(want[r % kinds], got.get(r).get(), "request " + r);
                    }
                } finally {
                    ex.shutdown();
                }
                long[] d = EmuCounters.since(before);
                String what = "12 concurrent requests: " + EmuCounters.describe(d);
                System.out.println(what);
                assertEquals(0, d[EmuCounters.LAUNCHES_DEFAULT] + d[EmuCounters.OPS_DEFAULT] + d[EmuCounters.CUBLAS_DEFAULT],
                        what);
                assertEquals(0, d[EmuCounters.ASYNC_PAGEABLE], what);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
            return null;
        });
    }

    private static int[] target(int k) {
        int[] t = new int[1 + k % 2];
        for (int i = 0; i < t.length; i++) {
            t[i] = (k + i) % 3;
        }
        return t;
    }
}
