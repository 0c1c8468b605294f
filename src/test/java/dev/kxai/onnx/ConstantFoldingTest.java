package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.intAttr;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.intsAttr;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.TestData;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Shape computations on constants are evaluated at load: PyTorch's ZeroPad2d export (a
 * ConstantOfShape → Concat → Reshape → Slice → Transpose → Reshape → Cast chain feeding Pad's pads)
 * leaves one Pad node with constant pads, and each folded operator follows ONNX's rules.
 */
class ConstantFoldingTest {
    @Test
    void torchsZeroPad2dChainFoldsIntoOnePad() {
        Graph g = OnnxImporter.load(TestData.reference("mobile_block").resolve("model.onnx"));
        Op.Pad pad = (Op.Pad) g.nodes().get(0).op();
        // ZeroPad2d((0, 1, 0, 1)): one column right, one row below
        assertArrayEquals(new int[] {0, 0, 0, 0, 0, 0, 1, 1}, pad.pads());
        assertEquals("constant", pad.mode());
        assertTrue(g.nodes().stream().noneMatch(n -> List.of("ConstantOfShape", "Slice", "Transpose", "Cast")
                .contains(n.opType())), "the whole chain folded");
    }

    private static OnnxMl.NodeProto.Builder node(String opType, String... inputs) {
        OnnxMl.NodeProto.Builder n = OnnxMl.NodeProto.newBuilder().setName("f").setOpType(opType).addOutput("folded");
        for (String i : inputs) {
            n.addInput(i);
        }
        return n;
    }

    /** Folds one node over initializers; the result is read back as a Reshape's constant target of an identity. */
    private static float[] fold(long opset, OnnxMl.NodeProto folded, OnnxMl.TensorProto... inits) {
        OnnxMl.NodeProto pad = OnnxMl.NodeProto.newBuilder().setName("p").setOpType("Pad").addInput("input")
                .addInput("folded").addOutput("output").build();
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("fold")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("input").setType(OnnxModels.TYPE))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("output").setType(OnnxModels.OUTPUT_TYPE))
                .addNode(folded).addNode(pad);
        for (OnnxMl.TensorProto t : inits) {
            g.addInitializer(t);
        }
        byte[] bytes = OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset))
                .setGraph(g).build().toByteArray();
        Op.Pad p = (Op.Pad) OnnxImporter.parse(bytes, "fold.onnx").nodes().get(0).op();
        float[] f = new float[p.pads().length];
        for (int i = 0; i < f.length; i++) {
            f[i] = p.pads()[i];
        }
        return f;
    }

    @Test
    void sliceWithNegativeStepAndInt64Bounds() {
        // [1, 2, 3, 4] reversed by starts -1, ends INT64_MIN+1, step -1
        assertArrayEquals(new float[] {4, 3, 2, 1}, fold(13, node("Slice", "d", "s", "e", "a", "st").build(),
                ints("d", 1, 2, 3, 4), ints("s", -1), ints("e", Long.MIN_VALUE + 1), ints("a", 0), ints("st", -1)));
        assertArrayEquals(new float[] {2, 3, 4, 0}, fold(13, node("Concat", "x", "z").addAttribute(OnnxMl.AttributeProto
                .newBuilder().setName("axis").setI(0).setType(OnnxMl.AttributeProto.AttributeType.INT)).build(),
                ints("x", 2, 3, 4), ints("z", 0)));
    }

    @Test
    void transposeGatherUnsqueezeAndCast() {
        // [[0, 1], [2, 3]] transposed, flattened by the Pad reading it: 0 2 1 3
        OnnxMl.NodeProto t = node("Transpose", "m").addAttribute(intsAttr("perm", 1, 0)).build();
        OnnxMl.TensorProto m = OnnxMl.TensorProto.newBuilder().setName("m").setDataType(7).addDims(2).addDims(2)
                .addInt64Data(0).addInt64Data(1).addInt64Data(2).addInt64Data(3).build();
        float[] got = fold(13, t, m);
        assertArrayEquals(new float[] {0, 2, 1, 3}, got);
        assertArrayEquals(new float[] {3, 1, 3, 1}, fold(13, node("Gather", "v", "i").build(), ints("v", 1, 2, 3),
                ints("i", 2, 0, 2, 0)));
        ModelException e = assertThrows(ModelException.class, () -> fold(13, node("Gather", "v", "i").build(),
                ints("v", 1, 2, 3), ints("i", 5, 0, 0, 0)));
        assertTrue(e.getMessage().contains("index 5") && e.getMessage().contains("fold.onnx"), e.getMessage());
    }
}
