package dev.kxai.cli;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.serve.BatchingExplainer;
import dev.kxai.serve.ExplainServer;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "serve", description = {
    "Serves models over HTTP with KServe's V1 data plane: POST /v1/models/NAME:explain (JSON instances or an",
    ".npy body; the method and its parameters in the request), :predict, GET /v1/models/NAME, /v2/health/live,",
    "/v2/health/ready and /metrics (Prometheus). Explanations of the same method and parameters are batched.",
    "Runs until interrupted (Ctrl-C, SIGTERM), then finishes the requests in flight."})
final class ServeCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "NAME=M.onnx", description = "A model and the name clients "
            + "use for it; repeat for several.")
    List<String> models;

    @Option(names = "--dim", paramLabel = "NAME=SIZE", description = "The size of a free input dimension beyond the batch "
            + "(an export's sequence_length; INPUT:AXIS for one with no name), for every --model that has it. Repeatable.")
    List<String> dims;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on (default: ${DEFAULT-VALUE}; "
            + "0.0.0.0 for every interface).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "Port (default: ${DEFAULT-VALUE}; 0: any free port).")
    int port;

    @Option(names = "--device", description = "auto, cpu or cuda (default: KXAI_DEVICE, else auto).")
    String device;

    @Option(names = "--max-batch", defaultValue = "64", description = "Examples per batched attribution (default: "
            + "${DEFAULT-VALUE}).")
    int maxBatch;

    @Option(names = "--max-delay-ms", defaultValue = "5", description = "How long a request waits for others to join its "
            + "batch (default: ${DEFAULT-VALUE}).")
    long maxDelayMs;

    @Option(names = "--max-queue", defaultValue = "1024", description = "Requests waiting per model before 429 (default: "
            + "${DEFAULT-VALUE}).")
    int maxQueue;

    @Option(names = "--timeout-ms", defaultValue = "30000", description = "Deadline of a request that sets no timeout_ms; "
            + "504 past it (default: ${DEFAULT-VALUE}).")
    long timeoutMs;

    @Option(names = "--max-body-bytes", defaultValue = "16777216", description = "Larger bodies get 413 (default: "
            + "${DEFAULT-VALUE}).")
    long maxBody;

    @Option(names = "--max-instances", defaultValue = "64", description = "Instances per request; more get 413 (default: "
            + "${DEFAULT-VALUE}).")
    int maxInstances;

    @Option(names = "--max-steps", defaultValue = "1024", description = "Largest n_steps a request may ask; more get 400 "
            + "(default: ${DEFAULT-VALUE}).")
    int maxSteps;

    @Option(names = "--threads", defaultValue = "64", description = "HTTP handler threads (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--preprocess", paramLabel = "NAME=SPEC", description = "Image bodies for model NAME: a preset "
            + "(imagenet, none) or a JSON spec (default: NAME's M.preprocess.json beside the model, if any).")
    List<String> preprocessSpecs;

    @Option(names = "--no-batching", description = "Explain each request on its own (for comparison).")
    boolean noBatching;

    /** --dim for every model; with several models a name need only fit one of them. */
    private dev.kxai.onnx.FreeDims freeDims() {
        Map<String, Integer> sizes = new LinkedHashMap<>();
        for (String d : dims != null ? dims : List.<String>of()) {
            Map.Entry<String, Integer> e = dev.kxai.onnx.FreeDims.parse(d);
            sizes.put(e.getKey(), e.getValue());
        }
        dev.kxai.onnx.FreeDims f = dev.kxai.onnx.FreeDims.of(sizes);
        return models.size() > 1 ? f.lenient() : f;
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter w = spec.commandLine().getOut();
        Map<String, Model> loaded = new LinkedHashMap<>();
        Map<String, dev.kxai.image.Preprocess> specs = new LinkedHashMap<>();
        try {
            for (String spec : models) {
                int eq = spec.indexOf('=');
                if (eq <= 0 || eq == spec.length() - 1) {
                    throw new InvalidInputException("--model " + spec + ": give NAME=PATH.onnx");
                }
                String name = spec.substring(0, eq);
                if (!name.matches("[A-Za-z0-9_.-]+")) {
                    throw new InvalidInputException("--model " + spec + ": the name may hold letters, digits, '_', '.' and "
                            + "'-' (it goes into the URL)");
                }
                if (loaded.containsKey(name)) {
                    throw new InvalidInputException("--model " + spec + ": the name '" + name + "' is given twice");
                }
                Path file = Path.of(spec.substring(eq + 1));
                loaded.put(name, Model.load(file, device, null, freeDims()));
                dev.kxai.image.Preprocess beside = dev.kxai.image.Preprocess.besideModel(file);
                if (beside != null) {
                    specs.put(name, beside);
                }
            }
            for (String p : preprocessSpecs != null ? preprocessSpecs : List.<String>of()) {
                int eq = p.indexOf('=');
                if (eq <= 0 || !loaded.containsKey(p.substring(0, eq))) {
                    throw new InvalidInputException("--preprocess " + p + ": give NAME=SPEC for a NAME given with --model "
                            + loaded.keySet());
                }
                specs.put(p.substring(0, eq), dev.kxai.image.Preprocess.parse(p.substring(eq + 1)));
            }
            BatchingExplainer.Settings s = BatchingExplainer.Settings.defaults().maxBatchRows(maxBatch)
                    .maxDelay(Duration.ofMillis(maxDelayMs)).maxQueue(maxQueue).deadline(Duration.ofMillis(timeoutMs));
            if (noBatching) {
                s = s.unbatched();
            }
            ExplainServer server = new ExplainServer(loaded, specs, s, new ExplainServer.Limits(maxBody, maxInstances,
                    maxSteps),
                    new InetSocketAddress(host, port), threads).start();
            CountDownLatch stopped = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                server.close(Duration.ofSeconds(10));
                stopped.countDown();
            }, "kxai-serve-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            StringBuilder sb = new StringBuilder();
            loaded.forEach((k, v) -> sb.append(sb.length() == 0 ? "" : ", ").append(k).append(" (").append(v.device())
                    .append(")"));
            w.printf("kxai serve: listening on http://%s:%d, models: %s; batching %s%n", host, server.port(), sb,
                    noBatching ? "off" : "up to " + maxBatch + " rows within " + maxDelayMs + " ms");
            w.flush();
            stopped.await(); // the JVM exits through the hook, which drains the server first
            return 0;
        } catch (Exception e) {
            loaded.values().forEach(Model::close); // a start-up error: nothing is served
            throw e;
        }
    }
}
