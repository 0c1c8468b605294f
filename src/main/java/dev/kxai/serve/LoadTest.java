package dev.kxai.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.tensor.Tensor;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A load test of {@code kxai serve} on loopback: {@code clients} concurrent clients send mixed
 * requests (1 to 4 instances drawn from a pool of examples, IG or saliency, random targets) until
 * {@code requests} have been answered; every answer is compared bit for bit with the same request
 * computed alone, in this process, before the run. Reports lost (non-200) and mismatched answers,
 * throughput and latency percentiles, with batching on and off on the same requests.
 */
public final class LoadTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One run's figures. */
    public record Report(String mode, int clients, int requests, int lost, int mismatched, double seconds,
            double requestsPerSecond, double p50Millis, double p99Millis, long batches) {
        public String line() {
            return String.format(Locale.ROOT, "%-12s %7d clients %7d requests  lost %d  mismatched %d  %8.1f req/s  "
                    + "p50 %7.1f ms  p99 %7.1f ms  %d batches (%.1f requests per batch)", mode, clients, requests, lost,
                    mismatched, requestsPerSecond, p50Millis, p99Millis, batches, batches == 0 ? 0.0 : (double) requests
                    / batches);
        }
    }

    private record Call(String body, float[] expected) {
    }

    private LoadTest() {
    }

    /**
     * What to run.
     *
     * @param clients       concurrent clients
     * @param requests      requests per run
     * @param steps         IG's n_steps in the requests
     * @param distinct      different requests prepared (each computed alone once); the run cycles through them
     * @param maxInstances  instances per request drawn from 1 … this
     * @param saliencyShare share of the requests that ask for saliency instead of IG
     * @param batching      the batcher's settings for the "on" run (its queue and deadline are set here)
     * @param on            run with batching
     * @param off           run without
     */
    public record Options(int clients, int requests, int steps, int distinct, int maxInstances, double saliencyShare,
            BatchingExplainer.Settings batching, boolean on, boolean off, long seed) {
        public Options {
            if (clients < 1 || requests < 1 || distinct < 1 || steps < 1 || maxInstances < 1) {
                throw new InvalidInputException("loadtest: clients, requests, steps, distinct requests and instances must "
                        + "be at least 1");
            }
        }

        /** 64 clients, 10,000 requests, IG 16 steps, 200 distinct, 1–4 instances, a quarter saliency, 64 rows / 5 ms. */
        public static Options defaults() {
            return new Options(64, 10_000, 16, 200, 4, 0.25, BatchingExplainer.Settings.defaults(), true, true, 7);
        }
    }

    /** Runs with batching on and/or off on the same requests (pool: examples of the model's single input). */
    public static List<Report> run(Model model, Tensor pool, Options o, java.io.PrintWriter progress) throws Exception {
        if (model.inputs().size() != 1) {
            throw new InvalidInputException("loadtest: takes single-input models; this one has " + model.describeInputs());
        }
        List<Report> out = new ArrayList<>();
        for (boolean batching : new boolean[] {true, false}) {
            if (batching ? !o.on() : !o.off()) {
                continue;
            }
            BatchingExplainer.Settings s = o.batching().maxQueue(Math.max(1024, 4 * o.clients()))
                    .deadline(Duration.ofMinutes(5));
            if (!batching) {
                s = s.unbatched();
            }
            try (ExplainServer server = new ExplainServer(Map.of("m", model), s, ExplainServer.Limits.defaults(),
                    new InetSocketAddress("127.0.0.1", 0), o.clients() + 4).start()) {
                // the server's explainer holds the batch-invariant mode: the lone answers are computed under it
                List<Call> calls = prepare(model, pool, o);
                out.add(drive(server, batching ? "batching on" : "batching off", calls, o.clients(), o.requests(),
                        progress));
            }
        }
        return out;
    }

    private static List<Call> prepare(Model model, Tensor pool, Options o) {
        Random r = new Random(o.seed());
        int steps = o.steps();
        int maxInstances = o.maxInstances();
        double saliencyShare = o.saliencyShare();
        int distinct = o.distinct();
        int per = pool.rowSize();
        int outputs = model.outputs();
        List<Call> calls = new ArrayList<>();
        for (int i = 0; i < distinct; i++) {
            int n = maxInstances == 1 ? 1 : 1 + r.nextInt(maxInstances);
            int[] shape = pool.shape();
            shape[0] = n;
            float[] v = new float[n * per];
            for (int k = 0; k < n; k++) {
                System.arraycopy(pool.data(), r.nextInt(pool.dim(0)) * per, v, k * per, per);
            }
            Tensor x = new Tensor(shape, v);
            int target = r.nextInt(outputs);
            boolean ig = r.nextDouble() >= saliencyShare;
            String method = ig ? "integrated_gradients" : "saliency";
            Map<String, Object> params = ig ? Map.of("n_steps", steps, "return_convergence_delta", true) : Map.of();
            Attribution a = Methods.create(method, model, Methods.Params.of(params))
                    .attribute(Inputs.of(model.graph().inputName(), x), new int[] {target});
            StringBuilder sb = new StringBuilder("{\"instances\": [");
            for (int k = 0; k < n; k++) {
                sb.append(k == 0 ? "[" : ", [");
                for (int f = 0; f < per; f++) {
                    sb.append(f == 0 ? "" : ",").append(v[k * per + f]);
                }
                sb.append(']');
            }
            sb.append("], \"parameters\": {\"method\": \"").append(method).append("\", \"target\": ").append(target);
            if (ig) {
                sb.append(", \"n_steps\": ").append(steps);
            }
            calls.add(new Call(sb.append("}}").toString(), a.attributions().data()));
        }
        return calls;
    }

    private static Report drive(ExplainServer server, String mode, List<Call> calls, int clients, int requests,
            java.io.PrintWriter progress) throws Exception {
        ExecutorService io = Executors.newFixedThreadPool(4, r -> {
            Thread t = new Thread(r, "kxai-loadtest-io");
            t.setDaemon(true);
            return t;
        });
        HttpClient http = HttpClient.newBuilder().executor(io).build();
        URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/models/m:explain");
        AtomicInteger next = new AtomicInteger();
        AtomicInteger lost = new AtomicInteger();
        AtomicInteger mismatched = new AtomicInteger();
        long[] latencies = new long[requests];
        long batches0 = server.explainer("m").stats().batches();
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        long t0 = System.nanoTime();
        List<Future<?>> running = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            running.add(pool.submit(() -> {
                for (int i; (i = next.getAndIncrement()) < requests;) {
                    Call call = calls.get(i % calls.size());
                    long s = System.nanoTime();
                    try {
                        HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).header("Content-Type",
                                "application/json").POST(HttpRequest.BodyPublishers.ofString(call.body())).build(),
                                HttpResponse.BodyHandlers.ofString());
                        latencies[i] = System.nanoTime() - s;
                        if (r.statusCode() != 200) {
                            lost.incrementAndGet();
                            continue;
                        }
                        if (!Arrays.equals(call.expected(), values(JSON.readTree(r.body())))) {
                            mismatched.incrementAndGet();
                        }
                    } catch (Exception e) {
                        latencies[i] = System.nanoTime() - s;
                        lost.incrementAndGet();
                    }
                    if (progress != null && (i + 1) % Math.max(1, requests / 10) == 0) {
                        progress.printf(Locale.ROOT, "  %s: %d/%d requests%n", mode, i + 1, requests);
                        progress.flush();
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : running) {
            f.get();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        pool.shutdown();
        io.shutdown();
        long[] sorted = latencies.clone();
        Arrays.sort(sorted);
        return new Report(mode, clients, requests, lost.get(), mismatched.get(), seconds, requests / seconds,
                sorted[(int) Math.min(requests - 1, Math.floor(0.50 * requests))] / 1e6,
                sorted[(int) Math.min(requests - 1, Math.floor(0.99 * requests))] / 1e6,
                server.explainer("m").stats().batches() - batches0);
    }

    private static float[] values(JsonNode answer) {
        List<Float> v = new ArrayList<>();
        for (JsonNode e : answer.get("explanations")) {
            flatten(e.get("attributions"), v);
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    private static void flatten(JsonNode n, List<Float> out) {
        if (n.isArray()) {
            n.forEach(c -> flatten(c, out));
        } else {
            out.add((float) n.asDouble());
        }
    }
}
