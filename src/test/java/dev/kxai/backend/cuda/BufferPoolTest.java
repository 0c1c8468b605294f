package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Quadrature;
import dev.kxai.backend.GraphRunner;
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
 * The model's device buffer pool (on the emulator): Integrated Gradients on conv models in several
 * chunks allocates device memory in its first chunk only (cuMemAlloc counted by {@link DeviceBuffer}),
 * a second call of the same shapes allocates nothing, the results are bit for bit those without the
 * pool, concurrent requests on one model get their own buffers, and closing the model returns the
 * device to where it was.
 */
class BufferPoolTest {
    private static final int STEPS = 16;

    /** Device allocations and frees, and pinned host allocations (the staging buffers), of the process so far. */
    private static long[] counts() {
        return new long[] {DeviceBuffer.allocations(), DeviceBuffer.frees(), PinnedStaging.allocations()};
    }

    /** IG in chunks of {@code stepsPerChunk}; records the allocations and frees made during each chunk. */
    private static Attribution ig(Model m, Tensor x, int[] t, int steps, int stepsPerChunk, List<long[]> perChunk) {
        long[][] last = {counts()};
        return new IntegratedGradients(m).nSteps(steps).method(Quadrature.Rule.GAUSS_LEGENDRE)
                .internalBatchSize(stepsPerChunk * x.dim(0)).progress((done, total) -> {
                    long[] now = counts();
                    perChunk.add(new long[] {now[0] - last[0][0], now[1] - last[0][1], now[2] - last[0][2]});
                    last[0] = now;
                }).attribute(x, t);
    }

    private static Model load(Path dir, boolean pooled) {
        String before = System.getProperty(BufferPool.MAX_PROPERTY);
        System.setProperty(BufferPool.MAX_PROPERTY, pooled ? "" : "0");
        try {
            return Model.load(dir.resolve("model.onnx"), "cuda");
        } finally {
            if (before == null) {
                System.clearProperty(BufferPool.MAX_PROPERTY);
            } else {
                System.setProperty(BufferPool.MAX_PROPERTY, before);
            }
        }
    }

    private static String str(List<long[]> perChunk) {
        StringBuilder b = new StringBuilder();
        for (long[] c : perChunk) {
            b.append(" [").append(c[0]).append(" allocs, ").append(c[1]).append(" frees, ").append(c[2])
                    .append(" pinned]");
        }
        return b.toString();
    }

    private void allocatesInTheFirstChunkOnly(String model, int rows, int steps, int stepsPerChunk) {
        CudaTestKit.cuda();
        Path dir = TestData.reference(model);
        Tensor x = NpyIO.read(dir.resolve("input.npy")).rows(0, rows);
        int[] t = new int[rows];
        for (int i = 0; i < rows; i++) {
            t[i] = i % 3;
        }
        long freeBefore = CudaRuntime.probe().runtime().memInfo()[0];
        long[] before = counts();
        long pinnedFreesBefore = PinnedStaging.frees();
        Attribution plain;
        List<long[]> unpooled = new ArrayList<>();
        try (Model m = load(dir, false)) {
            plain = ig(m, x, t, steps, stepsPerChunk, unpooled);
        }
        List<long[]> first = new ArrayList<>();
        List<long[]> second = new ArrayList<>();
        Attribution a;
        Attribution b;
        try (Model m = load(dir, true)) {
            a = ig(m, x, t, steps, stepsPerChunk, first);
            b = ig(m, x, t, steps, stepsPerChunk, second);
            assertEquals("cuda", a.device());
            String what = model + " " + rows + " rows, " + steps + " steps in chunks of " + stepsPerChunk
                    + ": without the pool" + str(unpooled) + "; pooled, first call" + str(first) + ", second call"
                    + str(second);
            System.out.println(what);
            int chunks = (steps + stepsPerChunk - 1) / stepsPerChunk;
            assertEquals(chunks, first.size(), what);
            assertTrue(chunks >= 3, what);
            assertTrue(first.get(0)[0] > 0, what);
            assertTrue(unpooled.get(1)[0] > 0, "without the pool every chunk allocates: " + what);
            for (int c = 1; c < chunks; c++) {
                assertEquals(0, first.get(c)[0], "allocations in chunk " + c + " of the first call: " + what);
                assertEquals(0, first.get(c)[1], "frees in chunk " + c + " of the first call: " + what);
                assertEquals(0, first.get(c)[2], "pinned allocations in chunk " + c + " of the first call: " + what);
            }
            for (int c = 0; c < chunks; c++) {
                assertEquals(0, second.get(c)[0], "allocations in chunk " + c + " of a second call: " + what);
                assertEquals(0, second.get(c)[2], "pinned allocations in chunk " + c + " of a second call: " + what);
            }
        }
        assertArrayEquals(plain.attributions().data(), a.attributions().data(), "pooled = unpooled, bit for bit");
        assertArrayEquals(plain.attributions().data(), b.attributions().data(), "second call = unpooled, bit for bit");
        if (plain.convergenceDelta() != null) {
            assertArrayEquals(plain.convergenceDelta().data(), a.convergenceDelta().data());
        }
        long[] after = counts();
        assertEquals(after[0] - before[0], after[1] - before[1], "every allocation freed once the models closed");
        assertEquals(after[2] - before[2], PinnedStaging.frees() - pinnedFreesBefore,
                "every pinned staging buffer freed once the models closed");
        assertEquals(freeBefore, CudaRuntime.probe().runtime().memInfo()[0], "device memory back to where it was");
    }

    @Test
    void integratedGradientsOnAConvModelAllocatesInItsFirstChunkOnly() {
        allocatesInTheFirstChunkOnly("digits_cnn", 3, STEPS, 4);
    }

    /** 14 steps in chunks of at most 4: 4, 4, 3, 3 (equal chunks), the shorter ones in the longer ones' buffers. */
    @Test
    void unevenChunksReuseTheFirstChunksBuffers() {
        allocatesInTheFirstChunkOnly("digits_cnn", 2, 14, 4);
    }

    @Test
    void tinyVggAllocatesInItsFirstChunkOnly() {
        allocatesInTheFirstChunkOnly("tinyvgg", 2, 6, 2);
    }

    @Test
    void concurrentRequestsOnOneModelGetTheirOwnBuffers() throws Exception {
        CudaTestKit.cuda();
        Path dir = TestData.reference("digits_cnn");
        Tensor all = NpyIO.read(dir.resolve("input.npy"));
        long freeBefore = CudaRuntime.probe().runtime().memInfo()[0];
        try (Model m = load(dir, true)) {
            int kinds = 4;
            float[][] want = new float[kinds][];
            for (int k = 0; k < kinds; k++) {
                want[k] = ig(m, all.rows(0, k + 1), new int[k + 1], 8, 2, new ArrayList<>()).attributions().data();
            }
            ExecutorService ex = Executors.newFixedThreadPool(4);
            try {
                List<Future<float[]>> got = new ArrayList<>();
                for (int r = 0; r < 16; r++) {
                    int k = r % kinds;
                    got.add(ex.submit(() -> new IntegratedGradients(m).nSteps(8).method(Quadrature.Rule.GAUSS_LEGENDRE)
                            .internalBatchSize(2 * (k + 1)).attribute(all.rows(0, k + 1), new int[k + 1])
                            .attributions().data()));
                }
                for (int r = 0; r < got.size(); r++) {
                    assertArrayEquals(want[r % kinds], got.get(r).get(), "request " + r);
                }
            } finally {
                ex.shutdown();
            }
            CudaOpSet ops = opSet(m);
            assertEquals(0, ops.buffers().stats()[0], "nothing checked out once every request finished");
            assertTrue(ops.buffers().idleBytes() > 0);
        }
        assertEquals(freeBefore, CudaRuntime.probe().runtime().memInfo()[0], "the pool freed at close");
    }

    /**
     * Chunks are sized from the device's free memory (cuMemGetInfo) plus the model's idle pooled
     * buffers, less a margin, over what the device really takes per row: a default overhead before
     * the model's first chunk, then the bytes per row its chunks took (measured by the pool).
     */
    @Test
    void chunksAreSizedFromFreeDeviceMemoryAndTheMeasuredBytesPerRow() {
        CudaTestKit.cuda();
        Path dir = TestData.reference("tinyvgg");
        Tensor x = NpyIO.read(dir.resolve("input.npy")).rows(0, 2);
        try (Model m = load(dir, true)) {
            CudaOpSet ops = opSet(m);
            CudaRuntime rt = CudaRuntime.probe().runtime();
            assertEquals(CudaOpSet.DEFAULT_OVERHEAD, ops.overhead());
            long[] mem = rt.memInfo();
            long want = (long) ((mem[0] - CudaOpSet.marginBytes(mem[1])) / CudaOpSet.DEFAULT_OVERHEAD);
            assertEquals(want, m.runner().chunkBudgetBytes());
            assertTrue(want > 256L << 20, "more than the CPU's 256 MiB heap budget on a 4 GiB emulated device: " + want);

            ig(m, x, new int[2], 8, 4, new ArrayList<>());
            long perRow = ops.buffers().chunkBytesPerRow();
            long row = 3 * 64 * 64;
            double estimate = 4.0 * (m.runner().workingFloatsPerExample() + row);
            String what = "measured " + perRow + " bytes per row against the plan's estimate " + estimate;
            assertTrue(perRow > estimate && perRow < CudaOpSet.DEFAULT_OVERHEAD * estimate, what);
            assertEquals(CudaOpSet.MEASURED_HEADROOM * perRow / estimate, ops.overhead(), 1e-9, what);
            mem = rt.memInfo();
            long idle = ops.buffers().idleBytes();
            assertTrue(idle > 0);
            assertEquals((long) ((mem[0] + idle - CudaOpSet.marginBytes(mem[1])) / ops.overhead()),
                    m.runner().chunkBudgetBytes(), "the idle pooled buffers count as free for this model");
        }
    }

    static CudaOpSet opSet(Model m) {
        try {
            java.lang.reflect.Field f = GraphRunner.class.getDeclaredField("ops");
            f.setAccessible(true);
            return (CudaOpSet) f.get(m.runner());
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }
}
