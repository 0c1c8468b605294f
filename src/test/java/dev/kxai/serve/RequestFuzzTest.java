package dev.kxai.serve;

import com.code_intelligence.jazzer.api.BugDetectors;
import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kxai.Model;
import dev.kxai.TestData;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Coverage-guided fuzz target (Jazzer) for {@code kxai serve}'s request decoding, end to end through
 * {@link ExplainServer}'s public API on loopback (a 6-feature tabular model): the fuzzer's bytes
 * choose the route, the Content-Type, the query string and the body, either raw bytes or JSON built
 * from the KServe V1 shape (nested instances, known and unknown parameters with odd values). Every
 * answer must be a JSON error with a 4xx status (or 429/503/504) or a 200; never a 500, never
 * "internal error", never a request that does not return within 20 s (45 s in the fuzz run of {@code mvn verify},
 * {@code -Dkxai.fuzz.request.timeout}; the server's own request timeout is 15 s).
 */
class RequestFuzzTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<Integer> ALLOWED = Set.of(200, 400, 404, 405, 413, 415, 429, 503, 504);
    private static final List<String> KEYS = List.of("method", "target", "timeout_ms", "n_steps", "rule", "baselines",
            "abs", "multiply_by_inputs", "return_convergence_delta", "layer", "neuron", "n_samples", "seed", "stdevs",
            "nt_type", "nt_samples", "sliding_window_shapes", "strides", "perturbations_per_eval", "fraction",
            "alphas", "max_pool_rule", "bogus");
    private static final List<String> METHODS = List.of("integrated_gradients", "saliency", "input_x_gradient",
            "deeplift", "occlusion", "feature_ablation", "shapley_value_sampling", "kernel_shap", "lime",
            "layer_integrated_gradients", "noise_tunnel", "gradient_shap", "guided_backprop", "nope");
    /** Seconds a request may take before it counts as a hang: 20, longer inside mvn verify (a loaded machine). */
    private static final long REQUEST_TIMEOUT_S = Long.getLong("kxai.fuzz.request.timeout", 20);
    private static Model model;
    private static ExplainServer server;
    private static HttpClient client;

    @BeforeAll
    static void start() throws Exception {
        model = Model.load(TestData.reference("mlp_shapley").resolve("model.onnx"), "cpu");
        server = new ExplainServer(Map.of("m", model), new BatchingExplainer.Settings(64, Duration.ZERO, 64, Duration.ofSeconds(15), 1, true),
                new ExplainServer.Limits(1 << 16, 4, 8), new InetSocketAddress("127.0.0.1", 0), 8).start();
        client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    }

    private static boolean allowed;

    /** Jazzer's SSRF detector would flag the loopback connection to our own server (its hooks exist once fuzzing runs). */
    private static void allowLoopback() {
        if (!allowed) {
            try {
                BugDetectors.allowNetworkConnections();
            } catch (IllegalStateException notFuzzing) {
                // regression mode without the sanitizers: nothing to allow
            }
            allowed = true;
        }
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close(Duration.ofMillis(100));
        }
        if (model != null) {
            model.close();
        }
    }

    private static Object scalar(FuzzedDataProvider d) {
        return switch (d.consumeInt(0, 7)) {
            case 0 -> d.consumeInt(-2, 9);
            case 1 -> d.consumeLong();
            case 2 -> d.consumeDouble();
            case 3 -> d.consumeBoolean();
            case 4 -> d.consumeString(8);
            case 5 -> d.pickValue(METHODS);
            case 6 -> null;
            default -> d.pickValue(new double[] {Double.NaN, 1e308, -0.0, 1e-320, 2147483648.0});
        };
    }

    /** A nested array of numbers (or the odd string/null) of a fuzzed shape. */
    private static Object array(FuzzedDataProvider d, int depth) {
        int n = d.consumeInt(0, depth == 0 ? 5 : 7);
        Object[] out = new Object[n];
        for (int i = 0; i < n; i++) {
            out[i] = depth < 3 && d.consumeInt(0, 3) == 0 ? array(d, depth + 1)
                    : d.consumeInt(0, 9) == 0 ? scalar(d) : (Object) (double) d.consumeFloat();
        }
        return out;
    }

    private static byte[] jsonBody(FuzzedDataProvider d) throws Exception {
        java.util.LinkedHashMap<String, Object> root = new java.util.LinkedHashMap<>();
        if (d.consumeInt(0, 7) != 0) {
            root.put("instances", d.consumeBoolean() ? array(d, 0) : scalar(d));
        }
        if (d.consumeBoolean()) {
            java.util.LinkedHashMap<String, Object> p = new java.util.LinkedHashMap<>();
            int k = d.consumeInt(0, 5);
            for (int i = 0; i < k; i++) {
                p.put(d.pickValue(KEYS), d.consumeInt(0, 3) == 0 ? array(d, 1) : scalar(d));
            }
            root.put("parameters", d.consumeInt(0, 9) == 0 ? scalar(d) : p);
        }
        return JSON.writeValueAsBytes(root);
    }

    @FuzzTest(maxDuration = "30s")
    @Timeout(value = 10, unit = TimeUnit.SECONDS) // per input while fuzzing (libFuzzer -timeout): a hang is a finding
    void request(FuzzedDataProvider d) throws Exception {
        allowLoopback();
        String path = d.pickValue(new String[] {"/v1/models/m:explain", "/v1/models/m:predict", "/v1/models/m",
                "/v1/models/m:explain", "/v1/models/x:explain", "/v1/models/m:" + URLEncoder.encode(d.consumeString(4), StandardCharsets.UTF_8)});
        StringBuilder q = new StringBuilder();
        int nq = d.consumeInt(0, 3);
        for (int i = 0; i < nq; i++) {
            q.append(i == 0 ? "?" : "&").append(d.pickValue(KEYS)).append('=')
                    .append(URLEncoder.encode(String.valueOf(scalar(d)), StandardCharsets.UTF_8));
        }
        String type = d.pickValue(new String[] {"application/json", "application/x-npy", "application/octet-stream",
                "image/png", "text/plain"});
        byte[] body = d.consumeBoolean() ? jsonBody(d) : d.consumeRemainingAsBytes();
        HttpRequest.Builder r = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path + q))
                .timeout(Duration.ofSeconds(REQUEST_TIMEOUT_S)).header("Content-Type", type);
        dev.kxai.io.FuzzChecks.withDeadline(() -> {
            HttpResponse<String> a;
            try {
                a = client.send(r.POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
                        HttpResponse.BodyHandlers.ofString());
            } catch (java.net.http.HttpTimeoutException e) {
                throw new AssertionError("no answer within " + REQUEST_TIMEOUT_S + " s to " + path + q + " (" + type + ", " + body.length
                        + " bytes): " + new String(body, 0, Math.min(body.length, 300), StandardCharsets.UTF_8));
            }
            if (!ALLOWED.contains(a.statusCode()) || a.body().contains("internal error")) {
                throw new AssertionError("status " + a.statusCode() + " for " + path + q + " (" + type + "): "
                        + a.body() + "\nrequest: " + new String(body, 0, Math.min(body.length, 500), StandardCharsets.UTF_8));
            }
            JsonNode answer = JSON.readTree(a.body()); // always JSON
            if (a.statusCode() != 200 && !answer.has("error")) {
                throw new AssertionError("error without an \"error\" field: " + a.body());
            }
        });
    }
}
