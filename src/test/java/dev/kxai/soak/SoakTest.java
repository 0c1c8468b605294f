package dev.kxai.soak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Inputs;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Soak: one shared CPU model (digits_cnn), 32 threads, mixed methods, parameters and batch sizes
 * (1 to 10 rows, from different offsets) for a bounded time; every result compared bit for bit
 * with the same request run alone before the soak, with {@link CpuBackend#batchInvariant} held on
 * (a row's result then does not depend on the rows computed with it). At the end: no mismatch, no
 * error, live heap back near its baseline. {@code -Dkxai.soak.seconds=N} sets the time (15 s in
 * {@code mvn verify}); {@code bench/soak.sh SECONDS} runs it longer.
 */
class SoakTest {
    private static final int THREADS = 32;

    /** One kind of request: a method, its parameters, rows [from, to) and a target per row. */
    record Kind(String method, Map<String, Object> params, int from, int to, int target) {
        Attribution run(Model m, Tensor x) {
            Tensor rows = x.rows(from, to);
            int[] targets = new int[to - from];
            Arrays.fill(targets, target);
            return Methods.create(method, m, Methods.Params.of(params)).attribute(Inputs.of(m.graph().inputName(), rows),
                    targets);
        }

        @Override
        public String toString() {
            return method + params + " rows " + from + ".." + to + " target " + target;
        }
    }

    private static List<Kind> kinds() {
        List<Map<String, Object>> ig = List.of(Map.of("n_steps", 8), Map.of("n_steps", 16, "internal_batch_size", 24),
                Map.of("n_steps", 5, "method", "riemann_trapezoid"));
        List<Kind> out = new ArrayList<>();
        int[][] spans = {{0, 1}, {3, 4}, {0, 2}, {5, 8}, {2, 7}, {0, 10}};
        int t = 0;
        for (int[] s : spans) {
            for (Map<String, Object> p : ig) {
                out.add(new Kind("integrated_gradients", p, s[0], s[1], t++ % 10));
            }
            out.add(new Kind("saliency", Map.of(), s[0], s[1], t++ % 10));
            out.add(new Kind("input_x_gradient", Map.of(), s[0], s[1], t++ % 10));
            out.add(new Kind("deeplift", Map.of(), s[0], s[1], t++ % 10));
            out.add(new Kind("guided_backprop", Map.of(), s[0], s[1], t++ % 10));
            out.add(new Kind("occlusion", Map.of("sliding_window_shapes", new int[] {1, 3, 3}, "strides", new int[] {1, 2, 2}),
                    s[0], s[1], t++ % 10));
            out.add(new Kind("noise_tunnel_ig", Map.of(), s[0], s[1], t++ % 10));
        }
        out.removeIf(k -> k.method.equals("noise_tunnel_ig"));
        for (int[] s : spans) {
            out.add(new Kind("saliency", Map.of("nt_type", "smoothgrad", "nt_samples", 3, "seed", 7L), s[0], s[1],
                    t++ % 10));
        }
        return out;
    }

    private static long liveHeap() {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    @Test
    void thirtyTwoThreadsOnOneModelMatchTheSequentialResultsBitForBit() throws Exception {
        double seconds = Double.parseDouble(System.getProperty("kxai.soak.seconds", "15"));
        Model model = Model.load(TestData.reference("digits_cnn").resolve("model.onnx"), "cpu");
        Tensor x = NpyIO.read(TestData.reference("digits_cnn").resolve("input.npy"));
        List<Kind> kinds = kinds();
        CpuBackend.batchInvariant(true);
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<float[]> expected = new ArrayList<>();
            for (Kind k : kinds) {
                expected.add(k.run(model, x).attributions().data());
            }
            long baseline = liveHeap();
            AtomicLong requests = new AtomicLong();
            AtomicLong mismatches = new AtomicLong();
            AtomicLong typedErrors = new AtomicLong();
            List<String> problems = java.util.Collections.synchronizedList(new ArrayList<>());
            long end = System.nanoTime() + (long) (seconds * 1e9);
            List<Future<?>> workers = new ArrayList<>();
            for (int w = 0; w < THREADS; w++) {
                SplittableRandom rnd = new SplittableRandom(1000 + w);
                workers.add(pool.submit(() -> {
                    while (System.nanoTime() < end) {
                        int i = rnd.nextInt(kinds.size());
                        try {
                            float[] got = kinds.get(i).run(model, x).attributions().data();
                            if (!Arrays.equals(got, expected.get(i))) {
                                mismatches.incrementAndGet();
                                if (problems.size() < 5) {
                                    problems.add("mismatch: " + kinds.get(i));
                                }
                            }
                        } catch (KxaiException e) {
                            typedErrors.incrementAndGet();
                            if (problems.size() < 5) {
                                problems.add(kinds.get(i) + ": " + e);
                            }
                        }
                        requests.incrementAndGet();
                    }
                    return null;
                }));
            }
            for (Future<?> f : workers) {
                f.get((long) seconds + 300, TimeUnit.SECONDS); // an untyped exception or a hang fails here
            }
            long after = liveHeap();
            System.out.printf("soak: %d requests, %d threads, %.0f s, %d kinds, mismatches %d, errors %d, "
                    + "live heap %.1f MiB before, %.1f MiB after%n", requests.get(), THREADS, seconds, kinds.size(),
                    mismatches.get(), typedErrors.get(), baseline / 1048576.0, after / 1048576.0);
            assertEquals(0, mismatches.get(), problems.toString());
            assertEquals(0, typedErrors.get(), problems.toString());
            assertTrue(requests.get() >= THREADS, "too few requests: " + requests.get());
            assertTrue(after < baseline + (64L << 20), "live heap grew from " + baseline + " to " + after + " bytes");
        } finally {
            pool.shutdownNow();
            CpuBackend.batchInvariant(false);
            model.close();
        }
    }
}
