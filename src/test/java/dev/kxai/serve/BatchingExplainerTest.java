package dev.kxai.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The batcher against the same requests run alone: bit for bit under concurrent load on the
 * digits CNN, and its limits (a full queue, deadlines, cancellation, draining on close).
 */
class BatchingExplainerTest {
    private static Model digits;
    private static Tensor x;

    @BeforeAll
    static void load() {
        Path d = TestData.reference("digits_cnn");
        digits = Model.load(d.resolve("model.onnx"), "cpu");
        x = NpyIO.read(d.resolve("input.npy"));
    }

    @AfterAll
    static void close() {
        digits.close();
    }

    private static Tensor rows(int from, int n) {
        int per = x.rowSize();
        int[] s = x.shape();
        s[0] = n;
        float[] v = new float[n * per];
        for (int r = 0; r < n; r++) {
            System.arraycopy(x.data(), ((from + r) % x.dim(0)) * per, v, r * per, per);
        }
        return new Tensor(s, v);
    }

    private static BatchingExplainer.Request request(String method, Map<String, Object> params, Tensor in, int[] t) {
        return new BatchingExplainer.Request(method, params, Inputs.of(digits.graph().inputName(), in), t, null);
    }

    @Test
    void concurrentRequestsGetTheirLoneAnswersBitForBit() throws Exception {
        Map<String, Object> ig = Map.of("n_steps", 8, "return_convergence_delta", true);
        Random r = new Random(5);
        int clients = 12;
        int each = 15;
        List<BatchingExplainer.Request> all = new ArrayList<>();
        for (int i = 0; i < clients * each; i++) {
            int n = 1 + r.nextInt(3);
            int[] t = new int[n];
            for (int j = 0; j < n; j++) {
                t[j] = r.nextInt(10);
            }
            String method = i % 3 == 0 ? "saliency" : "integrated_gradients";
            all.add(request(method, method.equals("saliency") ? Map.of() : ig, rows(r.nextInt(10), n), t));
        }
        BatchingExplainer b = new BatchingExplainer(digits, BatchingExplainer.Settings.defaults()
                .maxDelay(Duration.ofMillis(20)).maxBatchRows(32));
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Future<List<Attribution>>> answers = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int c0 = c;
            answers.add(pool.submit(() -> {
                List<CompletableFuture<Attribution>> mine = new ArrayList<>();
                for (int k = 0; k < each; k++) {
                    mine.add(b.submit(all.get(c0 * each + k)));
                }
                List<Attribution> got = new ArrayList<>();
                for (CompletableFuture<Attribution> f : mine) {
                    got.add(f.get());
                }
                return got;
            }));
        }
        int mismatched = 0;
        for (int c = 0; c < clients; c++) {
            List<Attribution> got = answers.get(c).get();
            for (int k = 0; k < each; k++) {
                BatchingExplainer.Request q = all.get(c * each + k);
                Attribution alone = Methods.create(q.method(), digits, Methods.Params.of(q.params()))
                        .attribute(q.inputs(), q.targets());
                Attribution a = got.get(k);
                assertArrayEquals(alone.attributions().shape(), a.attributions().shape());
                if (!Arrays.equals(alone.attributions().data(), a.attributions().data())
                        || (alone.convergenceDelta() != null
                        && !Arrays.equals(alone.convergenceDelta().data(), a.convergenceDelta().data()))) {
                    mismatched++;
                }
            }
        }
        pool.shutdown();
        b.close();
        BatchingExplainer.Stats s = b.stats();
        assertEquals(0, mismatched, "requests whose batched answer differs from the lone one");
        assertEquals(clients * each, s.completed());
        assertEquals(0, s.failed() + s.rejected() + s.timedOut());
        assertTrue(s.batches() < s.completed() / 2, "requests were coalesced: " + s);
    }

    @Test
    void aFullQueueRefusesAndDrainsOnClose() throws Exception {
        // a long delay keeps the first requests queued while the batch waits to fill
        BatchingExplainer b = new BatchingExplainer(digits, BatchingExplainer.Settings.defaults().maxQueue(2)
                .maxDelay(Duration.ofMillis(400)).maxBatchRows(64));
        CompletableFuture<Attribution> f1 = b.submit(request("saliency", Map.of(), rows(0, 1), new int[] {1}));
        CompletableFuture<Attribution> f2 = b.submit(request("saliency", Map.of(), rows(1, 1), new int[] {2}));
        QueueFullException full = assertThrows(QueueFullException.class,
                () -> b.submit(request("saliency", Map.of(), rows(2, 1), new int[] {3})));
        assertTrue(full.getMessage().contains("max 2"), full.getMessage());
        b.close(); // does not wait out the delay's remainder... but finishes both
        assertTrue(f1.isDone() && f2.isDone());
        assertEquals(1, f1.get().attributions().dim(0));
        assertEquals(1, b.stats().rejected());
        assertThrows(ServiceClosedException.class, () -> b.submit(request("saliency", Map.of(), rows(0, 1), null)));
    }

    @Test
    void deadlinesAndCancellation() throws Exception {
        BatchingExplainer b = new BatchingExplainer(digits, BatchingExplainer.Settings.defaults()
                .maxDelay(Duration.ofMillis(300)));
        CompletableFuture<Attribution> late = b.submit(new BatchingExplainer.Request("saliency", Map.of(),
                Inputs.of(digits.graph().inputName(), rows(0, 1)), null, Duration.ofMillis(20)));
        CompletableFuture<Attribution> dropped = b.submit(request("saliency", Map.of(), rows(1, 1), null));
        dropped.cancel(true);
        ExecutionException e = assertThrows(ExecutionException.class, late::get);
        assertInstanceOf(DeadlineExceededException.class, e.getCause());
        b.close();
        assertEquals(1, b.stats().timedOut());
        assertEquals(0, b.stats().completed(), "neither the late nor the cancelled request was computed");
    }

    @Test
    void samplingMethodsAreNeverJoinedAndBadRequestsFailAtSubmit() throws Exception {
        BatchingExplainer b = new BatchingExplainer(digits, BatchingExplainer.Settings.defaults()
                .maxDelay(Duration.ofMillis(50)));
        Map<String, Object> ks = Map.of("n_samples", 20, "seed", 3L);
        List<CompletableFuture<Attribution>> fs = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            fs.add(b.submit(request("kernel_shap", ks, rows(i, 1), new int[] {i})));
        }
        for (int i = 0; i < 4; i++) {
            Attribution alone = Methods.create("kernel_shap", digits, Methods.Params.of(ks))
                    .attribute(Inputs.of(digits.graph().inputName(), rows(i, 1)), new int[] {i});
            assertArrayEquals(alone.attributions().data(), fs.get(i).get().attributions().data(), 0f);
        }
        assertEquals(4, b.stats().batches(), "one batch per sampling request");
        assertThrows(dev.kxai.InvalidInputException.class, () -> b.submit(request("no_such_method", Map.of(),
                rows(0, 1), null)));
        assertThrows(dev.kxai.InvalidInputException.class, () -> b.submit(request("saliency", Map.of(),
                new Tensor(new int[] {1, 3}, new float[3]), null)));
        b.close();
    }
}
