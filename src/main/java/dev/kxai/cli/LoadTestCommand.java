package dev.kxai.cli;

import dev.kxai.Model;
import dev.kxai.io.NpyIO;
import dev.kxai.serve.LoadTest;
import dev.kxai.tensor.Tensor;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "loadtest", description = {
    "Load-tests kxai serve on loopback: starts the server in this process, then --clients concurrent clients send",
    "--requests mixed explanation requests (1-4 instances of --input, IG or saliency, random targets); every",
    "answer is compared bit for bit with the same request computed alone. Runs with batching on, then off,",
    "and prints lost and mismatched answers, requests per second and p50/p99 latency for each.",
    "With no --model/--input it uses the bundled digits CNN."})
final class LoadTestCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", paramLabel = "M.onnx", description = "ONNX model (default: the bundled digits CNN).")
    Path model;

    @Option(names = "--input", paramLabel = "X.npy", description = "Examples to draw instances from (default: the "
            + "bundled digits).")
    Path input;

    @Option(names = "--clients", defaultValue = "64", description = "Concurrent clients (default: ${DEFAULT-VALUE}).")
    int clients;

    @Option(names = "--requests", defaultValue = "10000", description = "Requests per run (default: ${DEFAULT-VALUE}).")
    int requests;

    @Option(names = "--steps", defaultValue = "16", description = "IG's n_steps in the requests (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--distinct", defaultValue = "200", description = "Different requests, each computed alone once for "
            + "the comparison (default: ${DEFAULT-VALUE}).")
    int distinct;

    @Option(names = "--max-instances", defaultValue = "4", description = "Instances per request, drawn from 1 to this "
            + "(default: ${DEFAULT-VALUE}).")
    int maxInstances;

    @Option(names = "--saliency-share", defaultValue = "0.25", description = "Share of requests asking for saliency "
            + "rather than IG (default: ${DEFAULT-VALUE}).")
    double saliencyShare;

    @Option(names = "--max-batch", defaultValue = "64", description = "Batching on: rows per batch (default: "
            + "${DEFAULT-VALUE}).")
    int maxBatch;

    @Option(names = "--max-delay-ms", defaultValue = "5", description = "Batching on: how long a request waits for "
            + "others (default: ${DEFAULT-VALUE}).")
    long maxDelayMs;

    @Option(names = "--batching", defaultValue = "both", description = "on, off or both (default: ${DEFAULT-VALUE}).")
    String batching;

    @Option(names = "--device", description = "auto, cpu or cuda (default: KXAI_DEVICE, else auto).")
    String device;

    @Override
    public Integer call() throws Exception {
        PrintWriter w = spec.commandLine().getOut();
        if (!List.of("on", "off", "both").contains(batching)) {
            throw new dev.kxai.InvalidInputException("--batching " + batching + ": on, off or both");
        }
        if ((model == null) != (input == null)) {
            throw new dev.kxai.InvalidInputException("give --model and --input together, or neither (the bundled digits)");
        }
        try (Model m = Model.load(model == null ? BatchOptions.bundledFile("model.onnx") : model, device)) {
            Tensor pool = NpyIO.read(input == null ? BatchOptions.bundledFile("input.npy") : input);
            m.checkBatch(pool, "input " + (input == null ? "(bundled)" : input));
            LoadTest.Options o = new LoadTest.Options(clients, requests, steps, distinct, maxInstances, saliencyShare,
                    dev.kxai.serve.BatchingExplainer.Settings.defaults().maxBatchRows(maxBatch)
                            .maxDelay(java.time.Duration.ofMillis(maxDelayMs)), !batching.equals("off"),
                    !batching.equals("on"), 7);
            List<LoadTest.Report> reports = LoadTest.run(m, pool, o, w);
            for (LoadTest.Report r : reports) {
                w.println(r.line());
            }
            if (reports.size() == 2) {
                w.printf(java.util.Locale.ROOT, "batching on / off: %.2fx the throughput%n",
                        reports.get(0).requestsPerSecond() / reports.get(1).requestsPerSecond());
            }
            w.flush();
            return reports.stream().allMatch(r -> r.lost() == 0 && r.mismatched() == 0) ? 0 : 1;
        }
    }
}
