package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.floats;
import static dev.kxai.onnx.OnnxModels.graph;
import static dev.kxai.onnx.OnnxModels.intAttr;
import static dev.kxai.onnx.OnnxModels.intScalar;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.n;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Shape computations on activations as exporters write them (PyTorch's {@code x.size(0)} in a
 * {@code view} and an {@code expand}): evaluated at load for every batch size, so the graph keeps
 * only the real work, and the results are right at batch sizes other than the ones evaluated.
 */
class ShapeFoldingImportTest {
    /**
     * input [B, 4] → view(B, 2, 2) → cat(cls.expand(B, -1, -1), ·, dim 1) [B, 3, 2] → [:, 1:3] →
     * [:, 0] = input[:, 0:2], with every shape from Shape → Gather → Unsqueeze → Concat.
     */
    private static Graph viewExpandSliceGather() {
        return graph(13, List.of(
                n("Shape", "shape", "input").build(),
                n("Gather", "b", "shape", "zero").addAttribute(intAttr("axis", 0)).build(),
                n("Unsqueeze", "b1", "b", "axes0").build(),
                n("Concat", "view_shape", "b1", "two", "two").addAttribute(intAttr("axis", 0)).build(),
                n("Reshape", "viewed", "input", "view_shape").build(),
                // expand(B, -1, -1) as PyTorch exports it: -1 replaced by 1 through Equal/Where
                n("Concat", "expand_spec", "b1", "minus1", "minus1").addAttribute(intAttr("axis", 0)).build(),
                n("Shape", "spec_len", "expand_spec").build(),
                n("ConstantOfShape", "ones", "spec_len").addAttribute(OnnxMl.AttributeProto.newBuilder().setName("value")
                        .setType(OnnxMl.AttributeProto.AttributeType.TENSOR).setT(ints("v", 1))).build(),
                n("Mul", "minus_ones", "ones", "minus1").build(),
                n("Equal", "is_keep", "expand_spec", "minus_ones").build(),
                n("Where", "expand_to", "is_keep", "ones", "expand_spec").build(),
                n("Expand", "cls_b", "cls", "expand_to").build(),
                n("Concat", "tokens", "cls_b", "viewed").addAttribute(intAttr("axis", 1)).build(),
                n("Slice", "patches", "tokens", "one", "three", "one").build(),
                n("Gather", "output", "patches", "zero").addAttribute(intAttr("axis", 1)).build()),
                intScalar("zero", 0), ints("axes0", 0), ints("two", 2), ints("minus1", -1), ints("one", 1),
                ints("three", 3), floats("cls", new int[] {1, 1, 2}, 7f, 8f));
    }

    @Test
    void shapeComputationsAreFoldedAndRightAtEveryBatchSize() {
        Graph g = viewExpandSliceGather();
        List<String> ops = g.nodes().stream().map(Node::opType).toList();
        assertEquals(List.of("Reshape", "Expand", "Concat", "Slice", "Gather"), ops,
                "Shape, Gather on shapes, Unsqueeze, Concat of shapes, Equal, Where, ConstantOfShape are gone");
        assertTrue(g.nodes().get(3).op() instanceof Op.Select && g.nodes().get(4).op() instanceof Op.Select);
        assertFalse(g.perRow().isEmpty(), "the view and expand targets depend on the batch");
        try (Model m = Model.of(g, new CpuBackend())) {
            for (int batch : new int[] {1, 2, 5}) {
                float[] x = new float[batch * 4];
                for (int i = 0; i < x.length; i++) {
                    x[i] = i + 1;
                }
                Tensor y = m.forward(new Tensor(new int[] {batch, 4}, x));
                assertArrayEquals(new int[] {batch, 2}, y.shape(), "batch " + batch);
                for (int r = 0; r < batch; r++) {
                    assertEquals(x[4 * r], y.data()[2 * r], "batch " + batch + " row " + r);
                    assertEquals(x[4 * r + 1], y.data()[2 * r + 1], "batch " + batch + " row " + r);
                }
            }
        }
    }

    @Test
    void constantOfShapeFromTheBatchRunsPerRequest() {
        // torch.cat([x, torch.full((x.size(0), 3), 2.)], 1): an LSTM's zero state is written the same way
        Graph g = graph(13, List.of(
                n("Shape", "shape", "input").build(),
                n("Gather", "b", "shape", "zero").addAttribute(intAttr("axis", 0)).build(),
                n("Unsqueeze", "b1", "b", "axes0").build(),
                n("Concat", "fill_shape", "b1", "three").addAttribute(intAttr("axis", 0)).build(),
                n("ConstantOfShape", "twos", "fill_shape").addAttribute(OnnxMl.AttributeProto.newBuilder()
                        .setName("value").setType(OnnxMl.AttributeProto.AttributeType.TENSOR)
                        .setT(floats("v", new int[] {1}, 2f))).build(),
                n("Concat", "output", "input", "twos").addAttribute(intAttr("axis", 1)).build()),
                intScalar("zero", 0), ints("axes0", 0), ints("three", 3));
        assertTrue(g.nodes().stream().anyMatch(x -> x.op() instanceof Op.ConstantOfShape));
        try (Model m = Model.of(g, new CpuBackend())) {
            for (int batch : new int[] {1, 3}) {
                Tensor y = m.forward(new Tensor(new int[] {batch, 4}, new float[batch * 4]));
                assertArrayEquals(new int[] {batch, 7}, y.shape());
                assertEquals(2f, y.data()[y.size() - 1]);
                assertEquals(0f, y.data()[y.size() - 4]);
            }
        }
    }

    @Test
    void aBatchDependentValueUsedAsDataIsRefusedWithTheNodeNamed() {
        ModelException e = assertThrows(ModelException.class, () -> graph(13, List.of(
                n("Shape", "shape", "input").build(),
                n("Gather", "b", "shape", "zero").addAttribute(intAttr("axis", 0)).build(),
                n("Cast", "bf", "b").addAttribute(intAttr("to", 1)).build(),
                n("Mul", "output", "input", "bf").build()),
                intScalar("zero", 0)));
        assertTrue(e.getMessage().contains("output_node") && e.getMessage().contains("computed from the batch size"),
                e.getMessage());
    }

    @Test
    void integerDivisionOfShapesTruncates() {
        // ((4 + 2) / 4) · 3 = 3 in int64 (4.5 in float): the width of a qkv split computed from a shape
        Graph g = graph(13, List.of(
                n("Shape", "shape", "input").build(),
                n("Gather", "w", "shape", "one_s").addAttribute(intAttr("axis", 0)).build(),
                n("Add", "w2", "w", "two_s").build(),
                n("Div", "q", "w2", "four_s").build(),
                n("Mul", "q3", "q", "three_s").build(),
                n("Unsqueeze", "end", "q3", "axes0").build(),
                n("Slice", "output", "input", "zero", "end", "one").build()),
                intScalar("one_s", 1), intScalar("two_s", 2), intScalar("four_s", 4), intScalar("three_s", 3),
                ints("axes0", 0),
                ints("zero", 0), ints("one", 1));
        try (Model m = Model.of(g, new CpuBackend())) {
            Tensor y = m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 2, 3, 4}));
            assertArrayEquals(new int[] {1, 3}, y.shape());
        }
    }
}
