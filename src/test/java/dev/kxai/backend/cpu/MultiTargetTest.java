package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.InputXGradient;
import dev.kxai.attr.Saliency;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Several targets from one forward pass: k targets cost one forward and k backward passes, counted
 * at the op set (every node's forward and backward call), and give each target's own gradients.
 */
class MultiTargetTest {
    private static final AtomicInteger FORWARDS = new AtomicInteger();
    private static final AtomicInteger BACKWARDS = new AtomicInteger();

    /** The CPU backend with its op set's forward and backward calls counted. */
    private static CountingOpSetBackend counting() {
        return new CountingOpSetBackend((method, args) -> {
            if (method.getName().equals("forward") || method.getName().equals("forwardFused")) {
                FORWARDS.incrementAndGet();
            } else if (method.getName().equals("backward")) {
                BACKWARDS.incrementAndGet();
            }
        });
    }

    @Test
    void kTargetsCostOneForwardAndKBackwards() {
        Path d = TestData.reference("mlp_tabular");
        Tensor x = NpyIO.read(d.resolve("input.npy"));
        try (Model m = Model.of(OnnxImporter.load(d.resolve("model.onnx")), counting())) {
            int nodes = m.graph().nodes().size();
            FORWARDS.set(0);
            BACKWARDS.set(0);
            new Saliency(m).attribute(m.inputs(x), false, new int[] {0}); // one target: the unit of cost
            int forwardOne = FORWARDS.get();
            int backwardOne = BACKWARDS.get();
            assertEquals(nodes, forwardOne, "one forward runs every node once");
            FORWARDS.set(0);
            BACKWARDS.set(0);
            List<Attribution> three = new Saliency(m).attribute(m.inputs(x), false, new int[][] {{0}, {1}, {2}});
            assertEquals(forwardOne, FORWARDS.get(), "three targets: still one forward");
            assertEquals(3 * backwardOne, BACKWARDS.get(), "three targets: three backwards");
            for (int t = 0; t < 3; t++) {
                assertArrayEquals(new Saliency(m).attribute(x, false, t).attributions().data(),
                        three.get(t).attributions().data(), "target " + t + " as alone");
            }
            List<Attribution> ixg = new InputXGradient(m).attribute(m.inputs(x), new int[][] {{2}, {1}});
            assertArrayEquals(new InputXGradient(m).attribute(x, 1).attributions().data(), ixg.get(1).attributions().data());
        }
    }

    @Test
    void integratedGradientsForKTargetsRunsThePathForwardOnce() {
        Path d = TestData.reference("digits_cnn");
        Tensor x = NpyIO.read(d.resolve("input.npy"));
        try (Model m = Model.of(OnnxImporter.load(d.resolve("model.onnx")), counting())) {
            dev.kxai.attr.IntegratedGradients ig = new dev.kxai.attr.IntegratedGradients(m).nSteps(12)
                    .internalBatchSize(40).returnConvergenceDelta(true);
            int[] perRow = m.predict(x);
            FORWARDS.set(0);
            BACKWARDS.set(0);
            Attribution one = ig.attribute(m.inputs(x), 4);
            int forwardOne = FORWARDS.get();
            int backwardOne = BACKWARDS.get();
            FORWARDS.set(0);
            BACKWARDS.set(0);
            List<Attribution> three = ig.attribute(m.inputs(x), new int[][] {{4}, perRow, {0}});
            // the path's forwards run once for all three; the delta's endpoint forward (gausslegendre) runs per set
            int endpointForward = m.graph().nodes().size();
            assertEquals(forwardOne + 2 * endpointForward, FORWARDS.get(), "three targets: one path forward");
            assertEquals(3 * backwardOne, BACKWARDS.get(), "three targets: three backwards per chunk");
            assertArrayEquals(one.attributions().data(), three.get(0).attributions().data(), "target 4 as alone");
            assertArrayEquals(one.convergenceDelta().data(), three.get(0).convergenceDelta().data());
            assertArrayEquals(ig.attribute(m.inputs(x), perRow).attributions().data(), three.get(1).attributions().data(),
                    "per-row targets as alone");
            assertArrayEquals(ig.attribute(m.inputs(x), 0).attributions().data(), three.get(2).attributions().data());
        }
    }
}
