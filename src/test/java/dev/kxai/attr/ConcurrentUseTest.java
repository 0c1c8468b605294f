package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * A service shares one Model between request threads. The CPU backend parallelises inside each
 * call (images over the pool, per-thread scratch buffers), so concurrent calls interleave on the
 * same pool threads: every result must still be bit for bit the one computed alone.
 */
class ConcurrentUseTest {
    @Test
    void concurrentCallsOnOneModelGiveTheSequentialResults() throws Exception {
        for (String name : new String[] {"tinyvgg", "resnet_mini", "mlp_tabular"}) {
            Model model = Model.load(TestData.reference(name).resolve("model.onnx"), "cpu");
            Tensor x = NpyIO.read(TestData.reference(name).resolve("input.npy"));
            int outputs = model.runner().outputsPerExample();
            int tasks = 6;
            List<float[]> alone = new ArrayList<>();
            for (int t = 0; t < tasks; t++) {
                alone.add(attribute(model, x, t, outputs));
            }
            ExecutorService requests = Executors.newFixedThreadPool(4);
            ForkJoinPool ownPool = new ForkJoinPool(3);
            try {
                List<Future<float[]>> got = new ArrayList<>();
                for (int round = 0; round < 2; round++) {
                    for (int t = 0; t < tasks; t++) {
                        int task = t;
                        // half the requests run inside a caller's own ForkJoinPool (as `kxai bench --threads` does)
                        got.add(task % 2 == 0 ? requests.submit(() -> attribute(model, x, task, outputs))
                                : ownPool.submit(() -> attribute(model, x, task, outputs)));
                    }
                }
                for (int i = 0; i < got.size(); i++) {
                    assertArrayEquals(alone.get(i % tasks), got.get(i).get(), 0f,
                            name + ": request " + i + " differs from the same request run alone");
                }
            } finally {
                requests.shutdownNow();
                ownPool.shutdownNow();
            }
        }
    }

    /** Request t: its own target, step count and chunking, so concurrent requests differ. */
    private static float[] attribute(Model model, Tensor x, int t, int outputs) {
        return new IntegratedGradients(model).nSteps(8 + 3 * t).internalBatchSize(t % 3 == 0 ? null : 5 * (t + 1))
                .attribute(x, t % outputs).attributions().data();
    }
}
