package dev.kxai.backend.cuda;

import dev.kxai.Inputs;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
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

/**
 * Child process of {@link FaultSoakTest}: one shared CUDA model (on the emulator, with whatever
 * KXAI_EMU_FAIL_* switch the parent set), THREADS threads of mixed methods and batch sizes for a
 * bounded time, each result compared with the CPU model's (relative 1e-5: device and CPU sum in
 * different orders). Prints key=value: requests, ok, mismatches, typed and untyped errors, calls
 * that ran on the CPU after a fallback, and device bytes still allocated after the model closed.
 *
 * <p>Usage: {@code FaultSoakProbe <model dir> <seconds> <threads>}
 */
public final class FaultSoakProbe {
    private FaultSoakProbe() {
    }

    record Kind(String method, Map<String, Object> params, int from, int to, int target) {
        Attribution run(Model m, Tensor x) {
            int[] t = new int[to - from];
            Arrays.fill(t, target);
            return Methods.create(method, m, Methods.Params.of(params)).attribute(
                    Inputs.of(m.graph().inputName(), x.rows(from, to)), t);
        }
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        double seconds = Double.parseDouble(args[1]);
        int threads = Integer.parseInt(args[2]);
        CudaRuntime.Probe probe = CudaRuntime.probe();
        out("probe", probe.runtime() != null ? "ok" : "none: " + probe.reason());
        if (probe.runtime() == null) {
            return;
        }
        long freeBefore = probe.runtime().memInfo()[0];
        Tensor x = NpyIO.read(dir.resolve("input.npy"));
        Model cpu = Model.load(dir.resolve("model.onnx"), "cpu");
        List<Kind> kinds = new ArrayList<>();
        int[][] spans = {{0, 1}, {2, 4}, {1, 6}, {0, 10}};
        int t = 0;
        for (int[] s : spans) {
            kinds.add(new Kind("integrated_gradients", Map.of("n_steps", 8), s[0], s[1], t++ % 10));
            kinds.add(new Kind("integrated_gradients", Map.of("n_steps", 12, "internal_batch_size", 10), s[0], s[1],
                    t++ % 10));
            kinds.add(new Kind("saliency", Map.of(), s[0], s[1], t++ % 10));
            kinds.add(new Kind("input_x_gradient", Map.of(), s[0], s[1], t++ % 10));
            kinds.add(new Kind("deeplift", Map.of(), s[0], s[1], t++ % 10));
        }
        List<float[]> expected = new ArrayList<>();
        for (Kind k : kinds) {
            expected.add(k.run(cpu, x).attributions().data());
        }
        AtomicLong requests = new AtomicLong();
        AtomicLong ok = new AtomicLong();
        AtomicLong mismatches = new AtomicLong();
        AtomicLong typed = new AtomicLong();
        AtomicLong untyped = new AtomicLong();
        AtomicLong onCpu = new AtomicLong();
        List<String> notes = java.util.Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try (Model cuda = Model.load(dir.resolve("model.onnx"), "cuda")) {
            out("loaded", cuda.device());
            long end = System.nanoTime() + (long) (seconds * 1e9);
            List<Future<?>> workers = new ArrayList<>();
            for (int w = 0; w < threads; w++) {
                SplittableRandom rnd = new SplittableRandom(77 + w);
                workers.add(pool.submit(() -> {
                    while (System.nanoTime() < end) {
                        int i = rnd.nextInt(kinds.size());
                        requests.incrementAndGet();
                        try {
                            Attribution a = kinds.get(i).run(cuda, x);
                            if (!a.device().equals("cuda")) {
                                onCpu.incrementAndGet();
                            }
                            double rel = rel(a.attributions().data(), expected.get(i));
                            if (rel > 1e-5) {
                                mismatches.incrementAndGet();
                                note(notes, "mismatch " + kinds.get(i) + " rel " + rel + " on " + a.device());
                            } else {
                                ok.incrementAndGet();
                            }
                        } catch (KxaiException e) {
                            typed.incrementAndGet();
                            note(notes, "typed " + e.getClass().getSimpleName() + ": " + e.getMessage());
                        } catch (Throwable e) {
                            untyped.incrementAndGet();
                            note(notes, "untyped " + e);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : workers) {
                f.get((long) seconds + 240, TimeUnit.SECONDS);
            }
            out("model_device_after", cuda.device());
        }
        pool.shutdown();
        cpu.close();
        out("device_allocations", String.valueOf(DeviceBuffer.allocations()));
        out("requests", requests.toString());
        out("ok", ok.toString());
        out("mismatches", mismatches.toString());
        out("typed_errors", typed.toString());
        out("untyped_errors", untyped.toString());
        out("ran_on_cpu", onCpu.toString());
        try {
            out("leaked_device_bytes", String.valueOf(freeBefore - probe.runtime().memInfo()[0]));
        } catch (RuntimeException e) { // a sticky error (launch failure) leaves no context to ask
            out("leaked_device_bytes", "unknown: " + e.getMessage().replace('\n', ' '));
        }
        for (String n : notes) {
            out("note", n.replace('\n', ' '));
        }
        out("done", "ok");
    }

    private static void note(List<String> notes, String s) {
        if (notes.size() < 8) {
            notes.add(s);
        }
    }

    private static double rel(float[] a, float[] b) {
        if (a.length != b.length) {
            return Double.POSITIVE_INFINITY;
        }
        double d = 0;
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs((double) a[i] - b[i]));
            m = Math.max(m, Math.abs(b[i]));
        }
        return d / Math.max(1e-30, m);
    }

    private static void out(String key, String value) {
        System.out.println(key + "=" + value);
        System.out.flush();
    }
}
