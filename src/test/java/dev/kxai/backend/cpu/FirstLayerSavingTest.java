package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Which models qualify for the first-layer saving (the input read by one affine node). */
class FirstLayerSavingTest {
    private static int firstNode(String model) {
        var g = OnnxImporter.load(TestData.reference(model).resolve("model.onnx"));
        return new CpuBackend().prepare(g).plan().affineFirstNode();
    }

    @Test
    void convAndGemmFirstLayersQualify() {
        assertEquals(0, firstNode("digits_cnn"), "Conv reads the input");
        assertEquals(0, firstNode("mlp_tabular"), "Gemm with a [N] bias reads the input");
        assertEquals(0, firstNode("tinyvgg"));
        assertTrue(firstNode("resnet_mini") >= 0);
    }

    /** x[B, 3] · W[3, 3] + C, then Relu and a second Gemm: the first Gemm qualifies iff C is a row bias. */
    private static int firstNodeWithBias(int... biasShape) {
        Tensor w = new Tensor(new int[] {3, 3}, new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
        Tensor c = new Tensor(biasShape, new float[] {0.1f, 0.2f, 0.3f});
        Tensor w2 = new Tensor(new int[] {3, 2}, new float[] {1, -1, 2, -2, 3, -3});
        Op.Gemm plain = new Op.Gemm(1f, 1f, false, false);
        List<Node> nodes = List.of(new Node("g1", "Gemm", plain, List.of("x", "w", "c"), "h"),
                new Node("r", "Relu", new Op.Relu(), List.of("h"), "a"),
                new Node("g2", "Gemm", plain, List.of("a", "w2"), "y"));
        Graph g = new Graph("test:gemm-bias", "x", new int[] {-1, 3}, "y", nodes, Map.of("w", w, "c", c, "w2", w2));
        return new CpuBackend().prepare(g).plan().affineFirstNode();
    }

    @Test
    void onlyARowBiasKeepsTheGemmAffineOverAPath() {
        assertEquals(0, firstNodeWithBias(3), "[N] bias");
        assertEquals(0, firstNodeWithBias(1, 3), "[1, N] bias");
        // [N, 1] is a column: it broadcasts to [M, N] only when M = N, so such a model does not even
        // load (the load runs it at batch 1); the saving never sees it
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.kxai.ModelException.class,
                () -> firstNodeWithBias(3, 1));
        assertTrue(e.getMessage().contains("node 'g1' (Gemm): C [3, 1] does not broadcast to [1, 3]"), e.getMessage());
    }
}
