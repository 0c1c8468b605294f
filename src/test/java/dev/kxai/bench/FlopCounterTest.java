package dev.kxai.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.TestData;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** MAC counts against hand computations from the models' shapes. */
class FlopCounterTest {
    private static dev.kxai.exec.ExecutionPlan plan(Graph g) {
        return new dev.kxai.backend.cpu.CpuBackend().prepare(g).plan();
    }

    private static Graph load(String model) {
        return OnnxImporter.load(TestData.reference(model).resolve("model.onnx"));
    }

    private static Node node(Graph g, String opType, int index) {
        return g.nodes().stream().filter(n -> n.opType().equals(opType)).skip(index).findFirst().orElseThrow();
    }

    @Test
    void digitsCnnByHand() {
        Graph g = load("digits_cnn");
        assertArrayEquals(new int[] {-1, 1, 8, 8}, g.inputShape());
        // conv 1 -> 8 (3x3, pad 1, stride 1: 8x8 stays 8x8), relu, conv 8 -> 16 (same), relu,
        // maxpool 2 (8x8 -> 4x4), flatten (16*4*4 = 256), gemm 256 -> 10
        Node c1 = node(g, "Conv", 0);
        Node c2 = node(g, "Conv", 1);
        Node fc = node(g, "Gemm", 0);
        int[] w1 = g.constants().get(c1.inputs().get(1)).shape();
        int[] w2 = g.constants().get(c2.inputs().get(1)).shape();
        int[] wf = g.constants().get(fc.inputs().get(1)).shape();
        assertArrayEquals(new int[] {8, 1, 3, 3}, w1);
        assertArrayEquals(new int[] {16, 8, 3, 3}, w2);
        assertArrayEquals(new int[] {10, 256}, wf); // transB = 1
        assertArrayEquals(new int[] {1, 1, 1, 1}, ((Op.Conv) c1.op()).pads());
        // N·M·OH·OW·(C/g)·kh·kw with N = 1
        long conv1 = 1L * w1[0] * 8 * 8 * w1[1] * w1[2] * w1[3]; // 8·64·9 = 4,608
        long conv2 = 1L * w2[0] * 8 * 8 * w2[1] * w2[2] * w2[3]; // 16·64·72 = 73,728
        long gemm = 1L * wf[0] * wf[1]; // M·N·K = 1·10·256 = 2,560
        assertEquals(80_896, conv1 + conv2 + gemm);

        FlopCounter.Count c = FlopCounter.count(plan(g));
        assertEquals(conv1 + conv2 + gemm, c.forwardMacs());
        // every node's input depends on the model input; the first conv's input gradient is the attribution
        assertEquals(conv1 + conv2 + gemm, c.backwardMacs());
        assertEquals(3, c.nodes().size());
        assertEquals(conv2, c.nodes().get(1).forwardMacs());
        assertArrayEquals(new int[] {1, 16, 8, 8}, c.nodes().get(1).outputShape());
        assertArrayEquals(new int[] {1, 16, 4, 4}, plan(g).shape(node(g, "MaxPool", 0).output(), 1));
        // IG with 50 steps on 10 digits: 500 gradient rows, 2 flops per MAC
        assertEquals(2.0 * 2 * 80_896 * 500, c.flops(500, 0));
        // first-layer saving on conv1: it runs forward for 2 rows per digit and backward once
        assertEquals(2.0 * (2 * (conv2 + gemm) * 500 + conv1 * 2 * 10 + conv1 * 10),
                c.flops(500, 0, c1.name(), 10));
        assertEquals(c.flops(500, 0), c.flops(500, 0, null, 10), "no saving: the plain count");
    }

    @Test
    void gemmOnlyMlpTabular() {
        FlopCounter.Count c = FlopCounter.count(plan(load("mlp_tabular")));
        long expected = 8 * 32 + 32 * 16 + 16 * 3; // Linear(8,32), Linear(32,16), Linear(16,3): 816
        assertEquals(expected, c.forwardMacs());
        assertEquals(expected, c.backwardMacs());
        assertEquals(List.of(256L, 512L, 48L), c.nodes().stream().map(FlopCounter.NodeCount::forwardMacs).toList());
        assertEquals(2.0 * (2 * 816 * 16 * 50 + 816 * 32), c.flops(16 * 50, 32), "gradient rows plus a delta forward");
    }

    @Test
    void constantsDeadBranchesAndTwoDependentOperands() {
        Map<String, Tensor> consts = Map.of(
                "shape", new Tensor(new int[] {3}, new float[] {0, 3, 2}),
                "wc1", Tensor.zeros(2, 3), "wc2", Tensor.zeros(3, 2),
                "wd", Tensor.zeros(6, 7), "wo", Tensor.zeros(4, 5));
        List<Node> nodes = List.of(
                new Node("r", "Reshape", new Op.Reshape(false), List.of("x", "shape"), "r"), // [1,3,2]
                new Node("mm", "MatMul", new Op.MatMul(), List.of("x", "r"), "m"), // [1,2,3]x[1,3,2]: 12 MACs
                new Node("f", "Flatten", new Op.Flatten(1), List.of("m"), "f"), // [1,4]
                new Node("const", "Gemm", new Op.Gemm(1, 1, false, false), List.of("wc1", "wc2"), "c"), // weights only
                new Node("fx", "Flatten", new Op.Flatten(1), List.of("x"), "fx"), // [1,6]
                new Node("dead", "Gemm", new Op.Gemm(1, 1, false, false), List.of("fx", "wd"), "d"), // 42, unused
                new Node("out", "Gemm", new Op.Gemm(1, 1, false, false), List.of("f", "wo"), "y")); // 20
        Graph g = new Graph("synthetic", "x", new int[] {-1, 2, 3}, "y", nodes, consts);
        FlopCounter.Count c = FlopCounter.count(plan(g));
        assertEquals(12 + 42 + 20, c.forwardMacs());
        assertEquals(2 * 12 + 20, c.backwardMacs(), "both MatMul operands need a gradient; the dead branch none");
        assertArrayEquals(new int[] {1, 5}, plan(g).shape("y", 1));
    }
}
