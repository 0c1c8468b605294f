package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.graph;
import static dev.kxai.onnx.OnnxModels.intAttr;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.n;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The rewrites of {@link IndexLowerings} on hand-checked values: ONNX's tie rules (TopK: the lower
 * index first; ArgMax: the first, or the last with select_last_index), negative indices, an index
 * computed out of range (0), and the refusals (the batch axis, shapes) with the node named. Their
 * gradients are checked against PyTorch in OperatorModelsTest / OperatorModelsCudaTest.
 */
class IndexLoweringsTest {
    private static final float[] TIES = {2, 5, 5, 1};

    private static float[] run(Graph g, float... x) {
        try (Model m = Model.of(g, new CpuBackend())) {
            return m.forward(new Tensor(new int[] {1, x.length}, x)).data();
        }
    }

    private static OnnxMl.NodeProto topK(String values, String indices, int largest) {
        return OnnxMl.NodeProto.newBuilder().setOpType("TopK").setName("output_node").addInput("input").addInput("k")
                .addOutput(values).addOutput(indices).addAttribute(intAttr("largest", largest)).build();
    }

    @Test
    void topKBreaksTiesByLowerIndexAndGivesIndices() {
        assertArrayEquals(new float[] {5, 5}, run(graph(13, List.of(topK("output", "at", 1)), ints("k", 2)), TIES));
        assertArrayEquals(new float[] {1, 2}, run(graph(13, List.of(topK("v", "output", 1)), ints("k", 2)), TIES));
        assertArrayEquals(new float[] {1, 2, 5}, run(graph(13, List.of(topK("output", "at", 0)), ints("k", 3)), TIES));
        assertArrayEquals(new float[] {3, 0, 1}, run(graph(13, List.of(topK("v", "output", 0)), ints("k", 3)), TIES));
        // -inf values (log 0) are selected as themselves
        OnnxMl.NodeProto smallest = OnnxMl.NodeProto.newBuilder(topK("output", "at", 0)).setInput(0, "logs").build();
        assertArrayEquals(new float[] {Float.NEGATIVE_INFINITY, 0}, run(graph(13, List.of(n("Log", "logs", "input").build(),
                smallest), ints("k", 2)), 3, 0, 1, 7));
    }

    @Test
    void argExtremesAndHardmaxFollowOnnxTieRules() {
        assertArrayEquals(new float[] {1}, run(graph(13, List.of(n("ArgMax", "output", "input")
                .addAttribute(intAttr("axis", 1)).build())), TIES));
        assertArrayEquals(new float[] {2}, run(graph(13, List.of(n("ArgMax", "output", "input")
                .addAttribute(intAttr("axis", -1)).addAttribute(intAttr("select_last_index", 1)).build())), TIES));
        assertArrayEquals(new float[] {3}, run(graph(13, List.of(n("ArgMin", "output", "input")
                .addAttribute(intAttr("axis", 1)).addAttribute(intAttr("keepdims", 0)).build())), TIES));
        assertArrayEquals(new float[] {0, 1, 0, 0}, run(graph(13, List.of(n("Hardmax", "output", "input").build())),
                TIES));
        assertArrayEquals(new float[] {0, 1, 0, 0}, run(graph(11, List.of(n("Hardmax", "output", "input").build())),
                TIES));
    }

    @Test
    void computedIndicesWrapNegativesAndReadZeroOutOfRange() {
        // indices = floor(x) = {-1, 3, 0, 5}: -1 is the last element, 5 is out of range (0)
        float[] x = {-1, 3, 0, 5};
        float[] want = {5, 5, -1, 0};
        assertArrayEquals(want, run(graph(13, List.of(n("Floor", "idx", "input").build(),
                n("GatherElements", "output", "input", "idx").addAttribute(intAttr("axis", 1)).build())), x));
        assertArrayEquals(want, run(graph(13, List.of(n("Floor", "idx", "input").build(),
                n("Unsqueeze", "idx3", "idx", "ax").build(),
                n("GatherND", "output", "input", "idx3").addAttribute(intAttr("batch_dims", 1)).build()),
                ints("ax", 2)), x));
    }

    private static void refused(String[] want, Runnable load) {
        ModelException e = assertThrows(ModelException.class, load::run);
        for (String w : want) {
            assertTrue(e.getMessage().contains(w), "'" + w + "' in: " + e.getMessage());
        }
    }

    @Test
    void theBatchAxisAndBadShapesAreRefusedWithTheNodeNamed() {
        // ArgMax's default axis is 0, the batch: it would mix examples
        refused(new String[] {"'output_node'", "(ArgMax)", "axis 0", "grows with the batch"},
                () -> graph(13, List.of(n("ArgMax", "output", "input").build())));
        refused(new String[] {"'output_node'", "(TopK)", "axis 0"}, () -> graph(13, List.of(n("TopK", "output", "input", "k")
                .addAttribute(intAttr("axis", 0)).build()), ints("k", 1)));
        refused(new String[] {"'output_node'", "(TopK)", "K = 5"}, () -> graph(13, List.of(n("TopK", "output", "input",
                "k").build()), ints("k", 5)));
        refused(new String[] {"'output_node'", "(Hardmax)", "grows with the batch"}, () -> graph(11, List.of(
                n("Hardmax", "output", "input").addAttribute(intAttr("axis", 0)).build())));
        refused(new String[] {"'output_node'", "(GatherElements)", "differ in rank"}, () -> graph(13, List.of(
                n("GatherElements", "output", "input", "idx").addAttribute(intAttr("axis", 1)).build()), ints("idx", 0)));
        refused(new String[] {"'output_node'", "(GatherND)", "batch_dims = 2"}, () -> graph(13, List.of(
                n("GatherND", "output", "input", "idx").addAttribute(intAttr("batch_dims", 2)).build()), ints("idx", 0)));
        refused(new String[] {"'output_node'", "(GatherND)", "mix examples"}, () -> graph(13, List.of(
                n("GatherND", "output", "input", "idx").build()), ints("idx", 0)));
        // constant indices cannot follow the batch: their batch dim is fixed
        refused(new String[] {"'output_node'", "(GatherND)", "must both grow with the batch"}, () -> graph(13, List.of(
                n("GatherND", "output", "input", "pairs").addAttribute(intAttr("batch_dims", 1)).build()),
                OnnxMl.TensorProto.newBuilder(ints("pairs", -1, 0)).clearDims().addDims(1).addDims(2).addDims(1).build()));
    }
}
