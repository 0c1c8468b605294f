package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.attr;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.oneNode;
import static dev.kxai.onnx.OnnxModels.scalar;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Pad as exporters write it: attributes before opset 11 (pads, value), constant inputs from 11
 * (pads, constant_value; axes from 18). The importer folds them into the op and keeps only the
 * data input; a pads input computed at run time, or an unknown mode, is refused with the node named.
 */
class PadImportTest {
    private static OnnxMl.NodeProto.Builder pad(String... inputs) {
        OnnxMl.NodeProto.Builder n = OnnxMl.NodeProto.newBuilder().setName("my_pad").setOpType("Pad").addOutput("output");
        for (String i : inputs) {
            n.addInput(i);
        }
        return n;
    }

    @Test
    void opset11InputsAreFoldedIntoTheOp() {
        Graph g = oneNode(13, pad("input", "pads", "cv").addAttribute(attr("mode", "constant")).build(),
                ints("pads", 0, 1, 0, 2), scalar("cv", 7f));
        Op.Pad op = (Op.Pad) g.nodes().get(0).op();
        assertEquals("constant", op.mode());
        assertArrayEquals(new int[] {0, 1, 0, 2}, op.pads());
        assertEquals(7f, op.value());
        assertNull(op.axes());
        assertEquals(List.of("input"), g.nodes().get(0).inputs(), "only the data input remains");
        try (Model m = Model.of(g, new dev.kxai.backend.cpu.CpuBackend())) {
            Tensor y = m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 2, 3, 4}));
            assertArrayEquals(new float[] {7, 1, 2, 3, 4, 7, 7}, y.data());
            assertEquals(7, m.outputs());
        }
    }

    @Test
    void axesAndAnOmittedConstantValue() {
        Graph g = oneNode(18, pad("input", "pads", "", "axes").addAttribute(attr("mode", "edge")).build(),
                ints("pads", 2, 1), ints("axes", -1));
        Op.Pad op = (Op.Pad) g.nodes().get(0).op();
        assertArrayEquals(new int[] {-1}, op.axes());
        assertArrayEquals(new int[] {0, 2, 0, 1}, op.forRank(2));
        try (Model m = Model.of(g, new dev.kxai.backend.cpu.CpuBackend())) {
            assertArrayEquals(new float[] {1, 1, 1, 2, 3, 4, 4},
                    m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 2, 3, 4})).data());
        }
    }

    @Test
    void beforeOpset11PadsAndValueAreAttributes() {
        OnnxMl.NodeProto n = pad("input").addAttribute(attr("mode", "reflect"))
                .addAttribute(OnnxMl.AttributeProto.newBuilder().setName("pads").addInts(0).addInts(2).addInts(0)
                        .addInts(1).setType(OnnxMl.AttributeProto.AttributeType.INTS)).build();
        Graph g = oneNode(10, n);
        try (Model m = Model.of(g, new dev.kxai.backend.cpu.CpuBackend())) {
            assertArrayEquals(new float[] {3, 2, 1, 2, 3, 4, 3},
                    m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 2, 3, 4})).data());
        }
    }

    @Test
    void refusalsNameTheNode() {
        ModelException computed = assertThrows(ModelException.class, () -> oneNode(13,
                pad("input", "input").build()));
        assertTrue(computed.getMessage().contains("my_pad") && computed.getMessage().contains("constant"),
                computed.getMessage());
        ModelException mode = assertThrows(ModelException.class, () -> oneNode(13,
                pad("input", "pads").addAttribute(attr("mode", "mirror")).build(), ints("pads", 0, 1, 0, 1)));
        assertTrue(mode.getMessage().contains("my_pad") && mode.getMessage().contains("mirror"), mode.getMessage());
        ModelException tooWide = assertThrows(ModelException.class, () -> Model.of(oneNode(13,
                pad("input", "pads").addAttribute(attr("mode", "reflect")).build(), ints("pads", 0, 4, 0, 0)),
                new dev.kxai.backend.cpu.CpuBackend()));
        assertTrue(tooWide.getMessage().contains("my_pad") && tooWide.getMessage().contains("smaller than"),
                tooWide.getMessage());
        ModelException rank = assertThrows(ModelException.class, () -> Model.of(oneNode(13,
                pad("input", "pads").build(), ints("pads", 1, 1)), new dev.kxai.backend.cpu.CpuBackend()));
        assertTrue(rank.getMessage().contains("rank 2"), rank.getMessage());
        assertTrue(InvalidInputException.class.isInstance(rank.getCause()), "the shape rule's own error is the cause");
    }
}
