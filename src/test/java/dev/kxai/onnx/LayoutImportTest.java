package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.intAttr;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.intsAttr;
import static dev.kxai.onnx.OnnxModels.oneNode;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** ReduceMean/ReduceSum and Unsqueeze with axes as attributes or (by opset) constant inputs; keepdims; refusals. */
class LayoutImportTest {
    private static OnnxMl.NodeProto.Builder node(String opType, String... inputs) {
        OnnxMl.NodeProto.Builder n = OnnxMl.NodeProto.newBuilder().setName("my_" + opType).setOpType(opType)
                .addOutput("output");
        for (String i : inputs) {
            n.addInput(i);
        }
        return n;
    }

    private static Tensor run(Graph g) {
        try (Model m = Model.of(g, new CpuBackend())) {
            return m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 2, 3, 6}));
        }
    }

    @Test
    void reductionsTakeAxesByOpset() {
        Graph mean = oneNode(13, node("ReduceMean", "input").addAttribute(intsAttr("axes", -1)).build());
        assertEquals(new Op.Reduce(Op.Reduce.Kind.MEAN, new int[] {-1}, true).kind(), ((Op.Reduce) mean.nodes().get(0).op()).kind());
        Tensor y = run(mean);
        assertArrayEquals(new int[] {1, 1}, y.shape(), "keepdims defaults to 1");
        assertEquals(3f, y.data()[0]);
        Graph sum = oneNode(13, node("ReduceSum", "input", "ax").addAttribute(intAttr("keepdims", 0)).build(),
                ints("ax", 1));
        Tensor s = run(sum);
        assertArrayEquals(new int[] {1}, s.shape());
        assertEquals(12f, s.data()[0]);
        Graph mean18 = oneNode(18, node("ReduceMean", "input", "ax").build(), ints("ax", 1));
        assertEquals(3f, run(mean18).data()[0]);
    }

    @Test
    void reducingTheBatchIsRefusedAndEmptyAxesCanBeANoop() {
        ModelException all = assertThrows(ModelException.class,
                () -> Model.of(oneNode(13, node("ReduceSum", "input").build()), new CpuBackend()));
        assertTrue(all.getMessage().contains("my_ReduceSum") && all.getMessage().contains("mix the examples"),
                all.getMessage());
        Graph noop = oneNode(13, node("ReduceSum", "input").addAttribute(intAttr("noop_with_empty_axes", 1)).build());
        assertTrue(noop.nodes().get(0).op() instanceof Op.Identity);
    }

    @Test
    void unsqueezeAxesAsAnInputFromOpset13() {
        Tensor y = run(oneNode(13, node("Unsqueeze", "input", "ax").build(), ints("ax", 1)));
        assertArrayEquals(new int[] {1, 1, 4}, y.shape());
        Tensor old = run(oneNode(11, node("Unsqueeze", "input").addAttribute(intsAttr("axes", 2)).build()));
        assertArrayEquals(new int[] {1, 4, 1}, old.shape());
    }
}
