package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.attr;
import static dev.kxai.onnx.OnnxModels.oneNode;
import static dev.kxai.onnx.OnnxModels.scalar;
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
import dev.kxai.graph.Op.Unary.Kind;
import dev.kxai.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The unary family as exporters write it: Clip's bounds as attributes (before opset 11) or
 * optional constant inputs, the defaults of HardSigmoid, Elu and Selu, Gelu's approximate
 * attribute (opset 20), Dropout at inference as the identity.
 */
class UnaryImportTest {
    private static OnnxMl.NodeProto.Builder node(String opType, String... inputs) {
        OnnxMl.NodeProto.Builder n = OnnxMl.NodeProto.newBuilder().setName("my_" + opType).setOpType(opType)
                .addOutput("output");
        for (String i : inputs) {
            n.addInput(i);
        }
        return n;
    }

    private static OnnxMl.AttributeProto f(String name, float v) {
        return OnnxMl.AttributeProto.newBuilder().setName(name).setF(v).setType(OnnxMl.AttributeProto.AttributeType.FLOAT)
                .build();
    }

    private static Op op(Graph g) {
        return g.nodes().get(0).op();
    }

    private static float[] run(Graph g, float... x) {
        try (Model m = Model.of(g, new CpuBackend())) {
            return m.forward(new Tensor(new int[] {1, 4}, x)).data();
        }
    }

    @Test
    void clipBoundsFromInputsOrAttributes() {
        // opset 13: ReLU6 as torch exports it, min and max as initializers; the max alone (min omitted)
        Graph relu6 = oneNode(13, node("Clip", "input", "lo", "hi").build(), scalar("lo", 0f), scalar("hi", 6f));
        assertEquals(new Op.Unary(Kind.CLIP, 0f, 6f), op(relu6));
        assertEquals(List.of("input"), relu6.nodes().get(0).inputs());
        assertArrayEquals(new float[] {0, 3, 6, 0}, run(relu6, -1, 3, 7, 0));
        Graph maxOnly = oneNode(13, node("Clip", "input", "", "hi").build(), scalar("hi", 1f));
        assertArrayEquals(new float[] {-5, 1, 1, 0}, run(maxOnly, -5, 3, 7, 0));
        // opset 6: attributes
        Graph old = oneNode(6, node("Clip", "input").addAttribute(f("min", -1f)).addAttribute(f("max", 1f)).build());
        assertEquals(new Op.Unary(Kind.CLIP, -1f, 1f), op(old));
    }

    @Test
    void defaultsAndGelu() {
        assertEquals(new Op.Unary(Kind.HARD_SIGMOID, 0.2f, 0.5f), op(oneNode(13, node("HardSigmoid", "input").build())));
        assertEquals(new Op.Unary(Kind.ELU, 1f, 0f), op(oneNode(13, node("Elu", "input").build())));
        assertEquals(new Op.Unary(Kind.SELU, 1.67326319217681884765625f, 1.05070102214813232421875f),
                op(oneNode(13, node("Selu", "input").build())));
        assertEquals(new Op.Unary(Kind.GELU), op(oneNode(20, node("Gelu", "input").build())));
        assertEquals(new Op.Unary(Kind.GELU_TANH),
                op(oneNode(20, node("Gelu", "input").addAttribute(attr("approximate", "tanh")).build())));
        ModelException e = assertThrows(ModelException.class, () -> oneNode(20,
                node("Gelu", "input").addAttribute(attr("approximate", "fast")).build()));
        assertTrue(e.getMessage().contains("my_Gelu") && e.getMessage().contains("fast"), e.getMessage());
        Graph hs = oneNode(14, node("HardSwish", "input").build());
        assertArrayEquals(new float[] {0, 0, 0.6666667f, 4}, run(hs, -4, 0, 1, 4), 0f); // -0.0 at -4, as PyTorch
    }

    @Test
    void roundingSignReciprocalAndCastPerRequest() {
        assertArrayEquals(new float[] {-3, 2, 0, -1}, run(oneNode(13, node("Floor", "input").build()), -2.5f, 2.5f, 0.25f, -0.75f));
        assertArrayEquals(new float[] {-2, 3, 1, -0f}, run(oneNode(13, node("Ceil", "input").build()), -2.5f, 2.5f, 0.25f, -0.75f));
        // ONNX Round: half to even
        assertArrayEquals(new float[] {-2, 2, 0, -1}, run(oneNode(13, node("Round", "input").build()), -2.5f, 2.5f, 0.25f, -0.75f));
        assertArrayEquals(new float[] {-1, 1, 1, 0}, run(oneNode(13, node("Sign", "input").build()), -2.5f, 2.5f, 0.25f, 0f));
        assertArrayEquals(new float[] {-0.4f, 0.4f, 4, -2}, run(oneNode(13, node("Reciprocal", "input").build()), -2.5f, 2.5f,
                0.25f, -0.5f));
        // Cast of a value computed per request: to int64 truncates toward zero; to float16 computes in
        // float32 (the identity); to string is refused
        Graph cast = oneNode(13, node("Cast", "input").addAttribute(OnnxModels.intAttr("to", 7)).build());
        assertEquals(new Op.Unary(Kind.TRUNC), op(cast));
        assertArrayEquals(new float[] {-2, 2, 0, -0f}, run(cast, -2.5f, 2.5f, 0.25f, -0.75f));
        Graph toHalf = oneNode(13, node("Cast", "input").addAttribute(OnnxModels.intAttr("to", 10)).build());
        assertArrayEquals(new float[] {-2.5f, 2.5f, 0.1f, -0.75f}, run(toHalf, -2.5f, 2.5f, 0.1f, -0.75f));
        ModelException e = assertThrows(ModelException.class, () -> oneNode(13,
                node("Cast", "input").addAttribute(OnnxModels.intAttr("to", 8)).build()));
        assertTrue(e.getMessage().contains("element type string (8)"), e.getMessage());
    }

    @Test
    void dropoutIsTheIdentityAtInference() {
        Graph d = oneNode(13, node("Dropout", "input", "ratio").build(), scalar("ratio", 0.5f));
        assertTrue(op(d) instanceof Op.Identity);
        assertArrayEquals(new float[] {1, -2, 3, -4}, run(d, 1, -2, 3, -4));
        OnnxMl.TensorProto training = OnnxMl.TensorProto.newBuilder().setName("train")
                .setDataType(OnnxMl.TensorProto.DataType.BOOL_VALUE).addInt32Data(1).build();
        ModelException e = assertThrows(ModelException.class,
                () -> oneNode(13, node("Dropout", "input", "ratio", "train").build(), scalar("ratio", 0.5f), training));
        assertTrue(e.getMessage().contains("training_mode"), e.getMessage());
    }
}
