package dev.kxai.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kxai serve}'s routes on loopback: explanations equal to {@code kxai explain}'s (JSON and
 * .npy bodies), each limit's status and the field it names, Prometheus text, and a graceful close.
 */
class ExplainServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path DIGITS = TestData.reference("digits_cnn");
    private static Model digits;
    private static Tensor x;
    private final HttpClient client = HttpClient.newHttpClient();

    @BeforeAll
    static void load() {
        digits = Model.load(DIGITS.resolve("model.onnx"), "cpu");
        x = NpyIO.read(DIGITS.resolve("input.npy"));
    }

    @AfterAll
    static void close() {
        digits.close();
    }

    private static ExplainServer server(BatchingExplainer.Settings s, ExplainServer.Limits l) throws Exception {
        return new ExplainServer(Map.of("digits", digits), s, l, new InetSocketAddress("127.0.0.1", 0), 16).start();
    }

    private HttpResponse<String> post(ExplainServer s, String path, String type, byte[] body) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path))
                .header("Content-Type", type).POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> get(ExplainServer s, String path) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static String instances(Tensor t, String parameters) {
        StringBuilder sb = new StringBuilder("{\"instances\": [");
        int per = t.rowSize();
        for (int r = 0; r < t.dim(0); r++) {
            sb.append(r == 0 ? "[" : ", [");
            for (int f = 0; f < per; f++) {
                sb.append(f == 0 ? "" : ",").append(t.data()[r * per + f]);
            }
            sb.append("]");
        }
        return sb.append("]").append(parameters == null ? "" : ", \"parameters\": " + parameters).append("}").toString();
    }

    private static float[] attributions(JsonNode answer) {
        JsonNode list = answer.get("explanations");
        java.util.List<Float> v = new java.util.ArrayList<>();
        for (JsonNode e : list) {
            flatten(e.get("attributions"), v);
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    private static void flatten(JsonNode n, java.util.List<Float> out) {
        if (n.isArray()) {
            n.forEach(c -> flatten(c, out));
        } else {
            out.add((float) n.asDouble());
        }
    }

    @Test
    void explainAnswersWhatKxaiExplainWritesInJsonAndNpy(@TempDir Path out) throws Exception {
        CliRun cli = CliRun.of("explain", "--device", "cpu", "--out", out.toString());
        assertEquals(0, cli.status(), cli.err());
        Tensor expected = NpyIO.read(out.resolve("attributions.npy"));
        try (ExplainServer s = server(BatchingExplainer.Settings.defaults(), ExplainServer.Limits.defaults())) {
            HttpResponse<String> r = post(s, "/v1/models/digits:explain", "application/json",
                    instances(x, null).getBytes());
            assertEquals(200, r.statusCode(), r.body());
            JsonNode a = JSON.readTree(r.body());
            assertEquals("integrated_gradients", a.get("method").asText());
            float[] got = attributions(a);
            assertEquals(expected.size(), got.length);
            for (int i = 0; i < got.length; i++) {
                // the server's dense layers accumulate in double (batch-invariant): equal to float rounding
                assertEquals(expected.data()[i], got[i], 1e-6 * Math.max(1, Math.abs(expected.data()[i])), "element " + i);
            }
            // and bit for bit the same request computed alone in this (batch-invariant) process
            Attribution alone = Methods.create("integrated_gradients", digits, Methods.Params.of(Map.of(
                    "return_convergence_delta", true))).attribute(digits.inputs(x), digits.predict(digits.inputs(x)));
            assertEquals(java.util.Arrays.toString(alone.attributions().data()), java.util.Arrays.toString(got));
            assertTrue(a.get("explanations").get(0).has("convergence_delta"));

            Path npy = out.resolve("x.npy");
            NpyIO.write(npy, x);
            HttpResponse<String> bin = post(s, "/v1/models/digits:explain?method=saliency&target=3",
                    "application/x-npy", Files.readAllBytes(npy));
            assertEquals(200, bin.statusCode(), bin.body());
            Attribution sal = Methods.create("saliency", digits, Methods.Params.of(Map.of())).attribute(digits.inputs(x),
                    new int[] {3});
            assertEquals(java.util.Arrays.toString(sal.attributions().data()),
                    java.util.Arrays.toString(attributions(JSON.readTree(bin.body()))));

            HttpResponse<String> p = post(s, "/v1/models/digits:predict", "application/json", instances(x, null).getBytes());
            assertEquals(200, p.statusCode());
            assertEquals(10, JSON.readTree(p.body()).get("predictions").size());
            assertEquals(200, get(s, "/v2/health/ready").statusCode());
            assertEquals(200, get(s, "/v2/health/live").statusCode());
            JsonNode m = JSON.readTree(get(s, "/v1/models/digits").body());
            assertTrue(m.get("ready").asBoolean());
            assertEquals(404, get(s, "/v1/models/nope").statusCode());
        }
    }

    @Test
    void anImageBodyIsPreprocessedWithTheModelsSpec() throws Exception {
        // an 8×8 grey PNG whose pixels are the first digit's values (0–16) scaled to 0–255
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(8, 8, java.awt.image.BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 8; y++) {
            for (int c = 0; c < 8; c++) {
                img.getRaster().setSample(c, y, 0, Math.round(x.data()[y * 8 + c] * 255 / 16f));
            }
        }
        java.io.ByteArrayOutputStream png = new java.io.ByteArrayOutputStream();
        javax.imageio.ImageIO.write(img, "png", png);
        dev.kxai.image.Preprocess spec = dev.kxai.image.Preprocess.fromJson("{\"channels\": 1, \"scale\": 1}", "test");
        try (ExplainServer s = new ExplainServer(Map.of("digits", digits), Map.of("digits", spec),
                BatchingExplainer.Settings.defaults(), ExplainServer.Limits.defaults(), new InetSocketAddress("127.0.0.1", 0),
                8).start()) {
            HttpResponse<String> r = post(s, "/v1/models/digits:explain?method=saliency&target=2", "image/png",
                    png.toByteArray());
            assertEquals(200, r.statusCode(), r.body());
            Tensor in = spec.apply(img);
            Attribution alone = Methods.create("saliency", digits, Methods.Params.of(Map.of())).attribute(digits.inputs(in),
                    new int[] {2});
            assertEquals(java.util.Arrays.toString(alone.attributions().data()),
                    java.util.Arrays.toString(attributions(JSON.readTree(r.body()))));
            assertError(post(s, "/v1/models/digits:explain", "image/png", "not a png".getBytes()), 400, "request");
        }
        try (ExplainServer s = server(BatchingExplainer.Settings.defaults(), ExplainServer.Limits.defaults())) {
            assertError(post(s, "/v1/models/digits:explain", "image/png", png.toByteArray()), 415, "Content-Type");
        }
    }

    private static void assertError(HttpResponse<String> r, int code, String field) throws Exception {
        assertEquals(code, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertEquals(field, e.get("field").asText(), r.body());
        assertTrue(e.get("message").asText().length() > 10, r.body());
    }

    @Test
    void limitsAnswer413_400_429_504NamingTheField() throws Exception {
        Tensor one = new Tensor(new int[] {1, 1, 8, 8}, java.util.Arrays.copyOf(x.data(), 64));
        try (ExplainServer s = server(BatchingExplainer.Settings.defaults(), new ExplainServer.Limits(3000, 3, 64))) {
            assertError(post(s, "/v1/models/digits:explain", "application/json",
                    (instances(one, null) + " ".repeat(3000)).getBytes()), 413, "body");
            assertError(post(s, "/v1/models/digits:explain", "application/json",
                    instances(new Tensor(new int[] {4, 1, 8, 8}, new float[256]), null).getBytes()), 413, "instances");
            assertError(post(s, "/v1/models/digits:explain", "application/json",
                    instances(one, "{\"n_steps\": 65}").getBytes()), 400, "parameters.n_steps");
            assertError(post(s, "/v1/models/digits:explain", "application/json",
                    instances(one, "{\"bogus\": 1}").getBytes()), 400, "parameters.bogus");
            assertError(post(s, "/v1/models/digits:explain", "application/json",
                    instances(one, "{\"method\": \"nope\"}").getBytes()), 400, "parameters.method");
            assertError(post(s, "/v1/models/digits:explain", "application/json", "{\"instances\": [[1, 2]]}".getBytes()),
                    400, "instances[0]");
            assertError(post(s, "/v1/models/digits:explain", "application/json", "not json".getBytes()), 400, "body");
        }
        // a long batching delay keeps the first request queued: a second finds the queue full, a short deadline expires
        try (ExplainServer s = server(BatchingExplainer.Settings.defaults().maxQueue(1).maxDelay(Duration.ofMillis(1500)),
                ExplainServer.Limits.defaults())) {
            CompletableFuture<HttpResponse<String>> first = client.sendAsync(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + s.port() + "/v1/models/digits:explain"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(instances(one, "{\"timeout_ms\": 100}"))).build(),
                    HttpResponse.BodyHandlers.ofString());
            long until = System.nanoTime() + 5_000_000_000L;
            while (s.explainer("digits").queueDepth() == 0 && System.nanoTime() < until) {
                Thread.sleep(2);
            }
            assertError(post(s, "/v1/models/digits:explain", "application/json", instances(one, null).getBytes()), 429,
                    "queue");
            assertError(first.get(), 504, "timeout_ms");
            String metrics = get(s, "/metrics").body();
            assertTrue(metrics.contains("kxai_requests_total{code=\"429\""), metrics);
            assertTrue(metrics.contains("kxai_requests_total{code=\"504\""), metrics);
            // Prometheus text format: every sample line is name{labels} value
            for (String line : metrics.split("\n")) {
                if (!line.isBlank() && !line.startsWith("#")) {
                    assertTrue(line.matches("[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[^}]*\\})? [-+0-9.eE]+|.* (NaN|[+-]Inf)"),
                            "not Prometheus text: " + line);
                }
            }
            assertTrue(metrics.contains("# TYPE kxai_request_duration_seconds histogram"), metrics);
        }
    }

    @Test
    void closeFinishesTheRequestsInFlight() throws Exception {
        ExplainServer s = server(BatchingExplainer.Settings.defaults().maxDelay(Duration.ofMillis(300)),
                ExplainServer.Limits.defaults());
        CompletableFuture<HttpResponse<String>> inFlight = client.sendAsync(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + s.port() + "/v1/models/digits:explain"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(instances(x, "{\"n_steps\": 100}"))).build(),
                HttpResponse.BodyHandlers.ofString());
        long until = System.nanoTime() + 5_000_000_000L;
        while (s.explainer("digits").queueDepth() == 0 && System.nanoTime() < until) {
            Thread.sleep(2);
        }
        s.close(Duration.ofSeconds(20));
        HttpResponse<String> r = inFlight.get();
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(10, JSON.readTree(r.body()).get("explanations").size());
    }
}
