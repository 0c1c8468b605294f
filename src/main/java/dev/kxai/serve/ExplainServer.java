package dev.kxai.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * {@code kxai serve}: models behind KServe's V1 data plane, every explanation through a
 * {@link BatchingExplainer} per model.
 * <ul>
 * <li>{@code POST /v1/models/NAME:explain}: JSON {@code {"instances": [...], "parameters": {"method": "ig",
 * "target": 3, "n_steps": 32, ...}}}, or an {@code .npy} body (Content-Type {@code application/x-npy}) with
 * the parameters in the query string; answers {@code {"explanations": [{"target", "attributions",
 * "convergence_delta"}], ...}}.</li>
 * <li>{@code POST /v1/models/NAME:predict}: {@code {"predictions": [[outputs], ...]}}.</li>
 * <li>A PNG or JPEG body ({@code Content-Type: image/png}, {@code image/jpeg}) for either, turned into
 * the input by the model's preprocessing spec ({@code dev.kxai.image.Preprocess}); parameters in
 * the query string.</li>
 * <li>{@code GET /v1/models/NAME} (ready), {@code GET /v1/models}, {@code /v2/health/live},
 * {@code /v2/health/ready}, {@code /metrics} (Prometheus text format).</li>
 * </ul>
 * Limits answer with a JSON error naming the field: body size 413, instances per request 413,
 * n_steps and any malformed field 400, a full queue 429, a deadline ({@code timeout_ms}, or the
 * server's) 504. {@link #close} stops taking connections, lets the requests in flight finish (up to
 * a grace period) and drains the queues.
 *
 * <p>HTTP from the JDK's own server ({@code jdk.httpserver}): maintained with the JDK, no dependency,
 * in every runtime kxai runs on (including a jlinked one), and enough for a handful of JSON routes;
 * requests are handled on a bounded pool so that the batcher, not the HTTP layer, decides the load.
 */
public final class ExplainServer implements AutoCloseable {
    /** Per-request limits. */
    public record Limits(long maxBodyBytes, int maxInstances, int maxSteps) {
        public Limits {
            if (maxBodyBytes < 1 || maxInstances < 1 || maxSteps < 1) {
                throw new InvalidInputException("server limits must be positive: body " + maxBodyBytes + " bytes, "
                        + maxInstances + " instances, " + maxSteps + " steps");
            }
        }

        /** 16 MiB, 64 instances, 1024 steps. */
        public static Limits defaults() {
            return new Limits(16L << 20, 64, 1024);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Map<String, Model> models;
    private final Map<String, dev.kxai.image.Preprocess> preprocess;
    private final Map<String, BatchingExplainer> explainers = new LinkedHashMap<>();
    private final Limits limits;
    private final HttpServer http;
    private final ExecutorService handlers;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Counter requests;
    private final Histogram latency;
    private final Histogram batchRows;
    private final Gauge queueDepth;
    private volatile boolean ready;
    private volatile boolean closing;
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();

    /**
     * @param models   by the name clients use in the URL (the caller keeps them; {@link #close} does not close them)
     * @param address  where to listen (port 0: any free port, see {@link #port})
     * @param threads  HTTP handler threads (requests waiting for their batch hold one each)
     */
    public ExplainServer(Map<String, Model> models, BatchingExplainer.Settings batching, Limits limits,
            InetSocketAddress address, int threads) throws IOException {
        this(models, Map.of(), batching, limits, address, threads);
    }

    /**
     * @param preprocess per model name, the spec that turns a PNG/JPEG body into the model's input
     *                   (models without one refuse image bodies with 415)
     */
    public ExplainServer(Map<String, Model> models, Map<String, dev.kxai.image.Preprocess> preprocess,
            BatchingExplainer.Settings batching, Limits limits, InetSocketAddress address, int threads)
            throws IOException {
        this.preprocess = Map.copyOf(preprocess);
        if (models == null || models.isEmpty()) {
            throw new InvalidInputException("serve: no models given (--model NAME=PATH.onnx)");
        }
        this.models = Map.copyOf(models);
        this.limits = limits;
        requests = Counter.builder().name("kxai_requests").help("HTTP requests by model, route and status code")
                .labelNames("model", "route", "code").register(registry);
        latency = Histogram.builder().name("kxai_request_duration_seconds").help("Time from a request's arrival to its answer")
                .labelNames("model", "route").classicOnly()
                .classicUpperBounds(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
                .register(registry);
        batchRows = Histogram.builder().name("kxai_batch_rows").help("Examples per batched attribution")
                .labelNames("model").classicOnly().classicUpperBounds(1, 2, 4, 8, 16, 32, 64, 128, 256).register(registry);
        queueDepth = Gauge.builder().name("kxai_queue_depth").help("Explanation requests waiting for a batch")
                .labelNames("model").register(registry);
        Gauge device = Gauge.builder().name("kxai_model_info").help("The models served and the device each runs on")
                .labelNames("model", "device").register(registry);
        for (Map.Entry<String, Model> e : this.models.entrySet()) {
            String name = e.getKey();
            device.labelValues(name, e.getValue().device()).set(1);
            explainers.put(name, new BatchingExplainer(e.getValue(), batching, new BatchingExplainer.Observer() {
                @Override
                public void queued(int depth) {
                    queueDepth.labelValues(name).set(depth);
                }

                @Override
                public void batch(int requests, int rows) {
                    batchRows.labelValues(name).observe(rows);
                    queueDepth.labelValues(name).set(explainers.get(name).queueDepth());
                }
            }));
        }
        handlers = Executors.newFixedThreadPool(Math.max(1, threads), r -> {
            Thread t = new Thread(r, "kxai-http");
            t.setDaemon(true);
            return t;
        });
        http = HttpServer.create(address, 256);
        http.setExecutor(handlers);
        http.createContext("/", this::handle);
    }

    public ExplainServer start() {
        http.start();
        ready = true;
        return this;
    }

    /** The port listened on. */
    public int port() {
        return http.getAddress().getPort();
    }

    public BatchingExplainer explainer(String model) {
        return explainers.get(model);
    }

    private void handle(HttpExchange ex) {
        inFlight.incrementAndGet();
        try {
            if (closing) {
                error(ex, 503, "server", "shutting down: no new requests");
                return;
            }
            serve(ex);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private void serve(HttpExchange ex) {
        long t0 = System.nanoTime();
        String path = ex.getRequestURI().getPath();
        String model = "";
        String route = "other";
        int code;
        try {
            if (path.equals("/v2/health/live")) {
                route = "live";
                code = send(ex, 200, JSON.createObjectNode().put("live", true));
            } else if (path.equals("/v2/health/ready")) {
                route = "ready";
                code = send(ex, ready ? 200 : 503, JSON.createObjectNode().put("ready", ready));
            } else if (path.equals("/metrics")) {
                route = "metrics";
                code = metrics(ex);
            } else if (path.equals("/v1/models") || path.equals("/v1/models/")) {
                route = "models";
                ObjectNode o = JSON.createObjectNode();
                ArrayNode names = o.putArray("models");
                models.keySet().stream().sorted().forEach(names::add);
                code = send(ex, 200, o);
            } else if (path.startsWith("/v1/models/")) {
                String rest = path.substring("/v1/models/".length());
                int colon = rest.lastIndexOf(':');
                model = colon < 0 ? rest : rest.substring(0, colon);
                String verb = colon < 0 ? "" : rest.substring(colon + 1);
                route = verb.isEmpty() ? "model" : verb;
                Model m = models.get(model);
                if (m == null) {
                    code = error(ex, 404, "model", "no model '" + model + "'; served: " + new java.util.TreeSet<>(models.keySet()));
                } else if (verb.isEmpty()) {
                    code = send(ex, 200, JSON.createObjectNode().put("name", model).put("ready", ready)
                            .put("device", m.device()).put("inputs", m.describeInputs()));
                } else if (!ex.getRequestMethod().equals("POST")) {
                    code = error(ex, 405, "method", verb + " takes POST, got " + ex.getRequestMethod());
                } else if (verb.equals("explain")) {
                    code = explain(ex, model, m);
                } else if (verb.equals("predict")) {
                    code = predict(ex, model, m);
                } else {
                    code = error(ex, 404, "verb", "unknown verb ':" + verb + "'; use :explain or :predict");
                }
            } else {
                code = error(ex, 404, "path", "no route " + path + "; routes: /v1/models/NAME[:explain|:predict], "
                        + "/v1/models, /v2/health/live, /v2/health/ready, /metrics");
            }
        } catch (RequestParser.BadRequest e) {
            code = error(ex, e.status, e.field, e.getMessage());
        } catch (QueueFullException e) {
            code = error(ex, 429, "queue", e.getMessage());
        } catch (DeadlineExceededException e) {
            code = error(ex, 504, "timeout_ms", e.getMessage());
        } catch (ServiceClosedException e) {
            code = error(ex, 503, "server", e.getMessage());
        } catch (InvalidInputException e) {
            code = error(ex, 400, "request", e.getMessage());
        } catch (KxaiException e) {
            code = error(ex, 500, "server", e.getMessage());
        } catch (IOException | RuntimeException e) {
            code = error(ex, 500, "server", "internal error, please report: " + e);
        }
        requests.labelValues(model, route, Integer.toString(code)).inc();
        latency.labelValues(model, route).observe((System.nanoTime() - t0) / 1e9);
    }

    /** Reads the body up to the limit (413 past it, before reading it all). */
    private byte[] body(HttpExchange ex) throws IOException {
        String declared = ex.getRequestHeaders().getFirst("Content-Length");
        if (declared != null) {
            long n;
            try {
                n = Long.parseLong(declared.trim());
            } catch (NumberFormatException e) {
                throw new RequestParser.BadRequest(400, "Content-Length", "not a number: " + declared);
            }
            if (n > limits.maxBodyBytes()) {
                throw new RequestParser.BadRequest(413, "body", "body of " + n + " bytes; the server takes at most "
                        + limits.maxBodyBytes());
            }
        }
        try (InputStream in = ex.getRequestBody()) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[1 << 16];
            long total = 0;
            for (int r; (r = in.read(buf)) > 0;) {
                total += r;
                if (total > limits.maxBodyBytes()) {
                    throw new RequestParser.BadRequest(413, "body", "body over " + limits.maxBodyBytes() + " bytes");
                }
                out.write(buf, 0, r);
            }
            return out.toByteArray();
        }
    }

    private static Map<String, JsonNode> query(HttpExchange ex) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        String q = ex.getRequestURI().getRawQuery();
        if (q == null || q.isEmpty()) {
            return out;
        }
        for (String kv : q.split("&")) {
            int eq = kv.indexOf('=');
            String k = URLDecoder.decode(eq < 0 ? kv : kv.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "true" : URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8);
            out.put(k, TextNode.valueOf(v));
        }
        return out;
    }

    private record Parsed(Inputs inputs, Map<String, JsonNode> parameters) {
    }

    private Parsed parse(HttpExchange ex, String name, Model m) throws IOException {
        byte[] body = body(ex);
        Map<String, JsonNode> params = query(ex);
        String type = ex.getRequestHeaders().getFirst("Content-Type");
        if (type != null && type.startsWith("image/")) {
            dev.kxai.image.Preprocess spec = preprocess.get(name);
            if (spec == null) {
                throw new RequestParser.BadRequest(415, "Content-Type", "model '" + name + "' has no preprocessing spec "
                        + "for image bodies: start kxai serve with --preprocess " + name + "=imagenet|SPEC.json, or put "
                        + name + ".preprocess.json beside the model; or send JSON instances or an .npy body");
            }
            Tensor x = spec.apply(dev.kxai.image.Images.decode(body, "the request's " + type + " body"));
            m.checkInput(m.graph().inputName(), x, "the request's image after " + spec.describe());
            return new Parsed(Inputs.of(m.graph().inputName(), x), params);
        }
        if (type != null && (type.startsWith("application/x-npy") || type.startsWith("application/octet-stream"))) {
            if (m.inputs().size() != 1) {
                throw new RequestParser.BadRequest(400, "body", "an .npy body carries one input; this model takes "
                        + m.describeInputs() + ": send JSON instances");
            }
            Tensor x = NpyIO.read(body, "the request's .npy body");
            if (x.rank() == 0 || x.dim(0) > limits.maxInstances()) {
                throw new RequestParser.BadRequest(x.rank() == 0 ? 400 : 413, "instances", x.rank() == 0
                        ? "the .npy body holds a scalar, not a batch" : x.dim(0) + " instances in one request; the server "
                        + "takes at most " + limits.maxInstances());
            }
            m.checkInput(m.graph().inputName(), x, "the request's .npy body");
            return new Parsed(Inputs.of(m.graph().inputName(), x), params);
        }
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new RequestParser.BadRequest(400, "body", "not JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new RequestParser.BadRequest(400, "body", "the body must be a JSON object with \"instances\"");
        }
        JsonNode p = root.get("parameters");
        if (p != null) {
            if (!p.isObject()) {
                throw new RequestParser.BadRequest(400, "parameters", "\"parameters\" must be an object");
            }
            p.fields().forEachRemaining(e -> params.put(e.getKey(), e.getValue()));
        }
        Inputs in = RequestParser.instances(m, root.get("instances"), limits.maxInstances());
        m.check(in);
        return new Parsed(in, params);
    }

    private int explain(HttpExchange ex, String name, Model m) throws IOException {
        Parsed req = parse(ex, name, m);
        String method = RequestParser.method(req.parameters().get("method"));
        Map<String, Object> params = RequestParser.parameters(req.parameters(), limits.maxSteps());
        if (method.equals("integrated_gradients") || method.equals("layer_integrated_gradients")) {
            params.putIfAbsent("return_convergence_delta", true);
        }
        int rows = req.inputs().batch();
        int[] targets = RequestParser.targets(req.parameters().get("target"), rows);
        Duration deadline = null;
        JsonNode t = req.parameters().get("timeout_ms");
        if (t != null) {
            long ms;
            try {
                ms = t.isNumber() ? t.asLong() : Long.parseLong(t.asText().trim());
            } catch (NumberFormatException e) {
                throw new RequestParser.BadRequest(400, "parameters.timeout_ms", "not an integer: " + t.asText());
            }
            if (ms < 1) {
                throw new RequestParser.BadRequest(400, "parameters.timeout_ms", "must be at least 1, got " + ms);
            }
            deadline = Duration.ofMillis(ms);
        }
        CompletableFuture<Attribution> f = explainers.get(name)
                .submit(new BatchingExplainer.Request(method, params, req.inputs(), targets, deadline));
        Attribution a = await(f);
        int[] used = targets == null ? m.predict(req.inputs()) : m.targets(targets, rows);
        ObjectNode o = JSON.createObjectNode().put("model", name).put("method", method).put("device", a.device());
        ArrayNode list = o.putArray("explanations");
        Map<String, Tensor> by = a.byInputOr(m.graph().inputName());
        for (int r = 0; r < rows; r++) {
            ObjectNode e = list.addObject();
            e.put("target", used[r]);
            if (by.size() == 1) {
                e.set("attributions", nested(by.values().iterator().next(), r));
            } else {
                ObjectNode each = e.putObject("attributions");
                for (Map.Entry<String, Tensor> kv : by.entrySet()) {
                    each.set(kv.getKey(), nested(kv.getValue(), r));
                }
            }
            if (a.convergenceDelta() != null) {
                e.put("convergence_delta", a.convergenceDelta().data()[r]);
            }
        }
        return send(ex, 200, o);
    }

    private static Attribution await(CompletableFuture<Attribution> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ServiceClosedException("interrupted while waiting for the batch");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new KxaiException("explanation failed: " + e.getCause(), e.getCause());
        }
    }

    private int predict(HttpExchange ex, String name, Model m) throws IOException {
        Parsed req = parse(ex, name, m);
        Tensor y = m.forward(req.inputs());
        ObjectNode o = JSON.createObjectNode();
        ArrayNode list = o.putArray("predictions");
        for (int r = 0; r < y.dim(0); r++) {
            list.add(nested(y, r));
        }
        return send(ex, 200, o);
    }

    /** Row r of a tensor as nested JSON arrays of its example shape. */
    static JsonNode nested(Tensor t, int r) {
        int[] s = t.shape();
        int per = t.rowSize();
        return nested(t.data(), r * per, s, 1);
    }

    private static JsonNode nested(float[] v, int off, int[] shape, int axis) {
        ArrayNode a = JSON.createArrayNode();
        if (axis == shape.length) {
            return JSON.getNodeFactory().numberNode(v[off]);
        }
        int stride = 1;
        for (int d = axis + 1; d < shape.length; d++) {
            stride *= shape[d];
        }
        for (int i = 0; i < shape[axis]; i++) {
            if (axis == shape.length - 1) {
                a.add(v[off + i]);
            } else {
                a.add(nested(v, off + i * stride, shape, axis + 1));
            }
        }
        return a;
    }

    private int metrics(HttpExchange ex) throws IOException {
        explainers.forEach((k, b) -> queueDepth.labelValues(k).set(b.queueDepth()));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrometheusTextFormatWriter.create().write(out, registry.scrape(),
                io.prometheus.metrics.config.EscapingScheme.UNDERSCORE_ESCAPING);
        byte[] b = out.toByteArray();
        ex.getResponseHeaders().set("Content-Type", PrometheusTextFormatWriter.CONTENT_TYPE);
        ex.sendResponseHeaders(200, b.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(b);
        }
        return 200;
    }

    private static int error(HttpExchange ex, int code, String field, String message) {
        ObjectNode o = JSON.createObjectNode();
        o.putObject("error").put("code", code).put("field", field).put("message", message);
        try {
            return send(ex, code, o);
        } catch (IOException e) {
            return code; // the client has gone
        }
    }

    private static int send(HttpExchange ex, int code, JsonNode body) throws IOException {
        byte[] b = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(code, b.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(b);
        }
        return code;
    }

    /**
     * Graceful shutdown: not ready, no new connections; requests in flight finish (up to
     * {@code grace}); queued explanations are drained. The models stay open (they are the caller's).
     */
    public void close(Duration grace) {
        ready = false;
        closing = true;
        // JDK 17's HttpServer.stop(delay) waits the whole delay even when nothing is in flight
        // (JDK-8304065, fixed in 21): wait for the requests in flight here, then stop at once
        long until = System.nanoTime() + grace.toNanos();
        while (inFlight.get() > 0 && System.nanoTime() < until) {
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        http.stop(0);
        explainers.values().forEach(BatchingExplainer::close);
        handlers.shutdown();
        try {
            if (!handlers.awaitTermination(grace.toMillis(), TimeUnit.MILLISECONDS)) {
                handlers.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        close(Duration.ofSeconds(5));
    }
}
