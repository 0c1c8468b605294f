package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.LayerIntegratedGradients;
import dev.kxai.graph.Node;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * LayerIntegratedGradients runs the layer's prefix at the path's two ends, not at every step as
 * Captum does (its hook replaces the layer's output, but the prefix still runs n_steps times):
 * counted per node at the op set. Also measures, on the resnet_mini CNN, what running the prefix
 * at every step would add (printed for the notes, not asserted: a shared machine).
 */
class LayerIgPrefixTest {
    private static final Map<String, AtomicInteger> RUNS = new ConcurrentHashMap<>();

    /** The CPU backend with each node's forward executions counted. */
    private static CountingOpSetBackend counting() {
        return new CountingOpSetBackend((method, args) -> {
            if (method.getName().equals("forward") && args != null && args.length > 1 && args[1] instanceof Node n) {
                RUNS.computeIfAbsent(n.name(), k -> new AtomicInteger()).incrementAndGet();
            }
        });
    }

    private static final String LAYER = "/blocks/blocks.1/relu2/Relu_output_0";

    @Test
    void thePrefixRunsTwiceNotNStepsTimes() {
        Path d = TestData.reference("resnet_mini");
        Tensor x = NpyIO.read(d.resolve("input.npy"));
        try (Model m = Model.of(OnnxImporter.load(d.resolve("model.onnx")), counting())) {
            RUNS.clear();
            new LayerIntegratedGradients(m, LAYER).nSteps(50).internalBatchSize(8).attribute(m.inputs(x), 0);
            // the stem conv is in the prefix; the head (GlobalAveragePool) after the layer runs on the path
            assertEquals(2, RUNS.get("/stem/stem.0/Conv").get(), "prefix runs: at x and at the baseline");
            assertEquals(2, RUNS.get("/blocks/blocks.1/relu2/Relu").get(), "the layer itself: at the two ends only");
            int pathCalls = RUNS.get("/pool/GlobalAveragePool").get();
            assertTrue(pathCalls >= 50 * x.dim(0) / 8, "the suffix runs on every chunk of the path: " + pathCalls);
        }
    }

    @Test
    void measuresWhatThePrefixAtEveryStepWouldCost() {
        Path d = TestData.reference("resnet_mini");
        Tensor x = NpyIO.read(d.resolve("input.npy"));
        try (Model m = Model.load(d.resolve("model.onnx"), "cpu")) {
            int steps = 50;
            LayerIntegratedGradients lig = new LayerIntegratedGradients(m, LAYER).nSteps(steps);
            // the prefix over every path row, as Captum evaluates it: the layer's value for steps × batch rows
            int per = x.rowSize();
            float[] rows = new float[steps * x.size()];
            for (int s = 0; s < steps; s++) {
                for (int i = 0; i < x.size(); i++) {
                    rows[s * x.size() + i] = x.data()[i] * (s + 0.5f) / steps;
                }
            }
            int[] shape = x.shape();
            shape[0] = steps * x.dim(0);
            Tensor path = new Tensor(shape, rows);
            double best = Double.MAX_VALUE;
            double bestPrefix = Double.MAX_VALUE;
            for (int rep = 0; rep < 5; rep++) {
                long t0 = System.nanoTime();
                lig.attribute(m.inputs(x), 0);
                long t1 = System.nanoTime();
                m.run("prefix", r -> r.evaluate(m.inputs(path).values(), Set.of(LAYER)));
                long t2 = System.nanoTime();
                best = Math.min(best, (t1 - t0) / 1e6);
                bestPrefix = Math.min(bestPrefix, (t2 - t1) / 1e6);
            }
            System.out.printf(java.util.Locale.ROOT, "layer IG on resnet_mini at %s, %d steps, batch %d: %.1f ms; the prefix "
                    + "at every step would add %.1f ms (a whole forward to the layer's consumers excluded): %.2fx%n",
                    LAYER, steps, x.dim(0), best, bestPrefix, (best + bestPrefix) / best);
            assertTrue(per > 0);
        }
    }
}
