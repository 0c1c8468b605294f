package dev.kxai.cli;

import dev.kxai.InvalidInputException;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.attr.Quadrature;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.bench.FlopCounter;
import dev.kxai.bench.SgemmRate;
import dev.kxai.bench.Timings;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "bench", description = {
    "Times an attribution: loads the model once, runs the method --warmup times",
    "untimed and --repeats times timed (one line per repeat), measures the",
    "machine's sgemm rate once, and closes with one line:",
    "  bench: median_s=... attributions_per_s=... gflop_per_s=... peak_fraction=...",
    "gflop_per_s counts 2 x the Conv/Gemm/MatMul multiply-adds of the forward and",
    "input-gradient passes (see bench/README.md); peak_fraction is gflop_per_s",
    "divided by the sgemm GFLOP/s. The perturbation methods (occlusion, ...) take",
    "explain's options (--sliding-window, --strides, --perturbations-per-eval, ...)",
    "and count forward rows only; every method that runs in chunks reports its",
    "passes per run (batched model calls) and rows per pass."})
final class BenchCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "M.onnx", description = "ONNX model.")
    Path modelFile;

    @Option(names = "--input", required = true, paramLabel = "X.npy", description = "Batch to explain, float32 .npy.")
    Path inputFile;

    @Mixin
    AttributionOptions run = new AttributionOptions();

    @Mixin
    PerturbationOptions perturbation = new PerturbationOptions();

    @Option(names = "--repeats", defaultValue = "5", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--warmup", defaultValue = "1", description = "Untimed runs first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--threads", description = "Parallelism of the CPU backend (a ForkJoinPool of N threads; "
            + "default: the common pool). OpenBLAS threads follow OPENBLAS_NUM_THREADS.")
    Integer threads;


    @Option(names = "--first-layer-saving", description = "Run the first Conv/Gemm twice per example instead of "
            + "n_steps times (see IntegratedGradients.affineFirstLayer; default: off, Captum's order).")
    boolean firstLayerSaving;

    @Option(names = "--no-endpoint-reuse", description = "With --delta: F(x) and F(baseline) from an extra forward "
            + "pass over both, even when the rule evaluates alpha = 0 and 1 on the path (see "
            + "IntegratedGradients.reuseEndpoints; default: reuse).")
    boolean noEndpointReuse;

    @Option(names = "--delta", description = "Also compute the convergence delta (Captum's default: off).")
    boolean delta;

    @Option(names = "--out", paramLabel = "DIR", description = "Write the last repeat's attributions to DIR/attributions.npy.")
    Path out;

    @Option(names = "--progress", paramLabel = "MODE", description = "auto (default: a bar on a terminal, plain lines "
            + "otherwise), bar, lines or off: warm-up and timed runs, on stderr.")
    String progressMode;

    @Option(names = "--gpu", paramLabel = "NAME", defaultValue = "H200", description = "With --device cuda: the GPU "
            + "whose roofline the cost model's table uses (H100, H200, A100, L4, RTX4090; default: ${DEFAULT-VALUE}).")
    String gpu;

    @Option(names = "--sgemm-size", hidden = true, defaultValue = "1024", description = "Side of the sgemm measured.")
    int sgemmSize;

    @Option(names = "--sgemm-seconds", hidden = true, defaultValue = "0.5", description = "Minimum sgemm timing.")
    double sgemmSeconds;

    @Override
    public Integer call() throws Exception {
        return AttributionOptions.withNumerics(run.exact, run.tf32, this::bench);
    }

    private Integer bench() throws Exception {
        PrintWriter w = spec.commandLine().getOut();
        if (repeats < 1) {
            throw new InvalidInputException("--repeats must be at least 1, got " + repeats);
        }
        if (warmup < 0) {
            throw new InvalidInputException("--warmup must be at least 0, got " + warmup);
        }
        if (threads != null && threads < 1) {
            throw new InvalidInputException("--threads must be at least 1, got " + threads);
        }
        if (sgemmSize < 1) {
            throw new InvalidInputException("--sgemm-size must be at least 1, got " + sgemmSize);
        }
        BatchOptions.checkOut(out);
        dev.kxai.bench.Roofline.Gpu roofline;
        try {
            roofline = dev.kxai.bench.Roofline.gpu(gpu);
        } catch (IllegalArgumentException e) {
            throw new InvalidInputException("--gpu: " + e.getMessage());
        }
        String m = Methods.entry(run.method).name();
        boolean ig = m.equals("integrated_gradients");
        boolean forwardOnly = PERTURBATION.contains(m);
        Quadrature q = ig ? Quadrature.of(Quadrature.Rule.parse(run.rule), run.steps) : null;

        long t0 = System.nanoTime();
        Model model = Model.load(modelFile, run.device, null,
                BatchOptions.freeDims(null, java.util.List.of(inputFile.toString()), null));
        Tensor x = NpyIO.read(inputFile);
        model.checkBatch(x, "input " + inputFile);
        double loadSeconds = (System.nanoTime() - t0) / 1e9;
        int batch = x.dim(0);
        FlopCounter.Count count = FlopCounter.count(model.runner().plan());
        long gradientRows = ig ? (long) run.steps * batch : forwardOnly ? 0 : batch;
        long forwardRows = ig && delta && (noEndpointReuse || !evaluatesBothEnds(q)) ? 2L * batch : 0;
        // with the first-layer saving the node it applies to runs for 2 rows per example, not per step
        String savedNode = ig && firstLayerSaving ? model.runner().affineFirstLayerNode() : null;
        double flopsPerRun = count.flops(gradientRows, forwardRows, savedNode, batch);

        w.printf(Locale.ROOT, "kxai bench: %s on %s %s, %s, backend %s, threads %s, loaded in %.2f s%n", modelFile,
                inputFile, Shapes.str(x.shape()), ig ? "ig (" + q.rule().captumName() + ", " + run.steps + " steps"
                        + (delta ? ", with delta" : "") + ")" : m, model.backend().name(),
                threads == null ? "common pool (" + ForkJoinPool.getCommonPoolParallelism() + ")" : threads, loadSeconds);
        if (!forwardOnly) {
            printWork(w, count, gradientRows, forwardRows, flopsPerRun);
        } else {
            dev.kxai.backend.ModelRunner r = model.runner();
            long row = java.util.Arrays.stream(r.exampleShape()).asLongStream().reduce(1, (p, d) -> p * d);
            w.printf(Locale.ROOT, "chunks: budget %d MiB; per row %d floats forward-only peak (+ %d the row), "
                    + "%d floats forward+backward working set: %d or %d rows per call by the budget%n",
                    r.chunkBudgetBytes() >> 20, r.forwardFloatsPerExample(), row, r.workingFloatsPerExample(),
                    new dev.kxai.attr.ChunkPolicy(null).rowsPerForwardChunk(r, Integer.MAX_VALUE),
                    new dev.kxai.attr.ChunkPolicy(null).stepsPerChunk(r, 1, Integer.MAX_VALUE));
        }
        if (ig && firstLayerSaving) {
            w.println(savedNode != null ? "first-layer saving: node '" + savedNode + "' runs at the endpoints only"
                    + " (counted for 2 rows per example forward, 1 backward)"
                    : "first-layer saving: does not apply to this model (no single affine first layer); plain path");
        }
        if (threads != null && System.getenv("OPENBLAS_NUM_THREADS") == null) {
            w.println("note: --threads sets kxai's own parallelism; OpenBLAS's threads follow OPENBLAS_NUM_THREADS,"
                    + " which is unset (OpenBLAS then uses every core)");
        }
        w.flush();

        double[] times = new double[repeats];
        java.util.List<String> fellBack = new java.util.ArrayList<>();
        ProgressBar progress = ProgressBar.of(spec.commandLine().getErr(), "bench", "runs", progressMode);
        Passes passes = new Passes();
        Attribution last = inPool(() -> {
            // the default target (the predicted class), computed outside the timed runs
            int[] targets = model.predict(x);
            w.println("targets: " + java.util.Arrays.toString(targets));
            Supplier<Attribution> once = attribution(model, x, ig, m, q, targets, passes);
            for (int i = 0; i < warmup; i++) {
                once.get();
                progress.stepsDone(i + 1, warmup + repeats);
            }
            Attribution a = null;
            for (int i = 0; i < repeats; i++) {
                passes.reset();
                dev.kxai.backend.cuda.KernelCosts.reset(); // the cost model counts the last timed run
                long s = System.nanoTime();
                a = once.get();
                times[i] = (System.nanoTime() - s) / 1e9;
                if (a.fallbackReason() != null) {
                    fellBack.add(a.fallbackReason());
                }
                progress.clear();
                w.printf(Locale.ROOT, "repeat %d: %.3f s on %s%n", i + 1, times[i], a.device());
                w.flush();
                progress.stepsDone(warmup + i + 1, warmup + repeats);
            }
            return a;
        });
        if (passes.calls > 0 && forwardOnly) {
            w.printf(Locale.ROOT, "passes: %d forward calls per run, %d rows in all, at most %d rows per call%n",
                    passes.calls, passes.rows, passes.maxRows);
        } else if (passes.calls > 0) {
            w.printf(Locale.ROOT, "passes: %d per run, at most %d path steps of the batch per pass%n", passes.calls,
                    passes.maxRows);
        } else {
            w.println("passes: not reported by " + m);
        }
        long[] decisions = dev.kxai.backend.cpu.CpuBackend.exactDecisionCounts();
        if (decisions[0] > 0) {
            w.printf(Locale.ROOT, "exact decisions: %d tested on float convolution outputs, %d recomputed in double "
                    + "(%.4f%%)%n", decisions[0], decisions[1], 100.0 * decisions[1] / decisions[0]);
        }
        if (forwardOnly) {
            // a perturbation method runs forward passes only, over the rows its loop evaluated
            forwardRows = passes.rows;
            flopsPerRun = count.flops(0, forwardRows);
            printWork(w, count, gradientRows, forwardRows, flopsPerRun);
        }
        if (model.backend().name().equals("cuda") && fellBack.isEmpty()) {
            w.print(dev.kxai.bench.Roofline.report(dev.kxai.backend.cuda.KernelCosts.snapshot().values(), roofline));
        }
        if (!fellBack.isEmpty()) {
            w.println("warning: " + fellBack.size() + " of " + repeats + " timed runs fell back to the CPU, not run on "
                    + model.runner().backend().name() + ": " + fellBack.get(0));
        }
        if (out != null) {
            Files.createDirectories(out);
            NpyIO.write(out.resolve("attributions.npy"), last.attributions());
            w.println("wrote " + out.resolve("attributions.npy"));
        }

        // with a single-threaded OpenBLAS (as ./kxai runs it) the peak is one sgemm stream per thread
        int streams = "1".equals(System.getenv("OPENBLAS_NUM_THREADS"))
                ? (threads != null ? threads : ForkJoinPool.getCommonPoolParallelism()) : 1;
        SgemmRate.Rate rate = SgemmRate.measure(sgemmSize, sgemmSeconds, streams);
        w.printf(Locale.ROOT, "sgemm: %dx%dx%d, %d calls in %.2f s on %d stream%s: %.3f GFLOP/s (%s, %s)%n", rate.size(),
                rate.size(), rate.size(), rate.calls(), rate.seconds(), rate.streams(), rate.streams() == 1 ? "" : "s",
                rate.gflops(), rate.implementation(), CpuBackend.openBlasThreads());

        double median = Math.max(Timings.median(times), 1e-9);
        double gflops = flopsPerRun / median / 1e9;
        w.printf(Locale.ROOT, "bench: median_s=%.6f attributions_per_s=%.3f gflop_per_s=%.3f peak_fraction=%.4f%n",
                median, batch / median, gflops, rate.gflops() > 0 ? gflops / rate.gflops() : 0.0);
        w.flush();
        model.close();
        return 0;
    }

    /** The methods that only run forward passes over perturbed rows. */
    private static final java.util.Set<String> PERTURBATION = java.util.Set.of("occlusion", "feature_ablation",
            "feature_permutation", "shapley_values", "shapley_value_sampling", "kernel_shap", "lime");

    private static void printWork(PrintWriter w, FlopCounter.Count count, long gradientRows, long forwardRows,
            double flopsPerRun) {
        w.printf(Locale.ROOT, "work: %.3f MMAC forward + %.3f MMAC backward per row; %d gradient rows + %d forward rows"
                + " = %.6f GFLOP per run%n", count.forwardMacs() / 1e6, count.backwardMacs() / 1e6, gradientRows,
                forwardRows, flopsPerRun / 1e9);
    }

    /**
     * The batched model calls of one run, counted from the method's progress reports: the chunk
     * loops (path methods, the perturbation loop) report once after each pass, with the rows done.
     */
    static final class Passes implements dev.kxai.attr.Progress {
        int calls;
        long rows;
        int maxRows;
        private int lastDone;

        void reset() {
            calls = 0;
            rows = 0;
            maxRows = 0;
            lastDone = 0;
        }

        @Override
        public void stepsDone(int done, int total) {
            int n = done - lastDone;
            lastDone = done == total ? 0 : done; // a method may run several loops
            calls++;
            rows += n;
            maxRows = Math.max(maxRows, n);
        }
    }

    private Supplier<Attribution> attribution(Model model, Tensor x, boolean ig, String m, Quadrature q,
            int[] targets, dev.kxai.attr.Progress progress) {
        java.util.Map<String, Object> params = new java.util.HashMap<>(java.util.Map.of("abs", true,
                "return_convergence_delta", delta, "affine_first_layer", firstLayerSaving,
                "reuse_endpoints", !noEndpointReuse));
        if (ig) {
            params.put("n_steps", run.steps);
            params.put("method", q.rule().captumName());
        }
        if (run.internalBatchSize != null) {
            params.put("internal_batch_size", run.internalBatchSize);
        }
        dev.kxai.Inputs in = model.inputs(x);
        perturbation.addTo(params, model, in);
        params.put("progress", progress);
        Methods.Method method = Methods.create(m, model, Methods.Params.of(BatchOptions.forMethod(spec, m, params)));
        return () -> method.attribute(in, targets);
    }

    /** Whether the rule samples α = 0 and α = 1, so the delta needs no extra forward pass (with endpoint reuse). */
    private static boolean evaluatesBothEnds(Quadrature q) {
        boolean zero = false;
        boolean one = false;
        for (float a : q.alphasF()) {
            zero |= a == 0f;
            one |= a == 1f;
        }
        return zero && one;
    }

    /**
     * Runs the work in a ForkJoinPool of --threads threads: the CPU backend's parallel streams,
     * started from inside that pool, run on it instead of the common pool.
     */
    private <T> T inPool(Callable<T> work) throws Exception {
        if (threads == null) {
            return work.call();
        }
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            return pool.submit(work).get();
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof KxaiException k) {
                throw k;
            }
            if (c instanceof RuntimeException r) {
                throw r;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw (Exception) c;
        } finally {
            pool.shutdown();
        }
    }
}
