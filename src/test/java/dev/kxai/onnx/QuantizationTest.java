package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * QDQ models (ONNX Runtime's quantize_static format): int8 weights behind a DequantizeLinear, activations
 * through QuantizeLinear → DequantizeLinear pairs, per tensor and per channel. The forward pass against
 * ONNX Runtime; the gradient is the straight-through estimator (1 inside the grid's range, 0 where clamped).
 */
class QuantizationTest {
    private static OnnxMl.TensorProto int8(String name, int[] dims, int... v) {
        OnnxMl.TensorProto.Builder t = OnnxMl.TensorProto.newBuilder().setName(name)
                .setDataType(OnnxMl.TensorProto.DataType.INT8_VALUE);
        for (int d : dims) {
            t.addDims(d);
        }
        for (int x : v) {
            t.addInt32Data(x);
        }
        return t.build();
    }

    private static OnnxMl.TensorProto uint8(String name, int v) {
        return OnnxMl.TensorProto.newBuilder().setName(name).setDataType(OnnxMl.TensorProto.DataType.UINT8_VALUE)
                .addInt32Data(v).build();
    }

    private static OnnxMl.NodeProto.Builder n(String op, String out, String... in) {
        return OnnxModels.n(op, out, in);
    }

    /**
     * input [batch, 4] → Q/DQ (uint8, scale 0.05, zero point 128) → MatMul with int8 weights [4, 3] dequantized
     * per column (axis 1) → Q/DQ (int8, per tensor) → output.
     */
    static OnnxRuntimeConformanceTest.Case qdqCase() {
        List<OnnxMl.NodeProto> nodes = new ArrayList<>();
        nodes.add(n("QuantizeLinear", "xq", "input", "xs", "xz").build());
        nodes.add(n("DequantizeLinear", "xd", "xq", "xs", "xz").build());
        nodes.add(n("DequantizeLinear", "w", "wq", "ws", "wz").addAttribute(OnnxModels.intAttr("axis", 1)).build());
        nodes.add(n("MatMul", "y", "xd", "w").build());
        nodes.add(n("QuantizeLinear", "yq", "y", "ys", "yz").build());
        nodes.add(OnnxMl.NodeProto.newBuilder().setName("output_node").setOpType("DequantizeLinear").addInput("yq")
                .addInput("ys").addInput("yz").addOutput("output").build());
        List<OnnxMl.TensorProto> inits = List.of(OnnxModels.floats("xs", new int[0], 0.05f), uint8("xz", 128),
                int8("wq", new int[] {4, 3}, 12, -7, 100, -128, 3, 55, 0, 127, -40, 9, -9, 1),
                OnnxModels.floats("ws", new int[] {3}, 0.01f, 0.02f, 0.005f), int8("wz", new int[] {3}, 0, 0, 0),
                OnnxModels.floats("ys", new int[0], 0.03f), int8("yz", new int[0], -3));
        return new OnnxRuntimeConformanceTest.Case("qdq matmul", 13, new int[] {2, 4}, false, nodes, inits);
    }

    @Test
    void theForwardPassIsOnnxRuntimes() throws Exception {
        OnnxRuntimeConformanceTest.Case c = qdqCase();
        byte[] model = OnnxRuntimeConformanceTest.bytes(c);
        float[] x = {-3, -1.2f, 0.013f, 0.4f, 2.2f, 6.5f, -7.1f, 1.0f}; // some beyond the uint8 grid [-6.4, 6.35]
        Tensor in = new Tensor(new int[] {2, 4}, x);
        Object[] ort = OnnxRuntimeConformanceTest.onnxRuntime(model, in);
        try (Model m = Model.of(OnnxImporter.parse(model, "qdq.onnx"), new CpuBackend())) {
            OnnxRuntimeConformanceTest.compare("qdq", m.forward(in), ort);
        }
    }

    @Test
    void theGradientIsTheStraightThroughEstimator() {
        // y = DQ(Q(x)) alone: gradient 1 inside the grid's range [(0 - 128)·0.05, (255 - 128)·0.05], 0 outside
        List<OnnxMl.NodeProto> nodes = List.of(n("QuantizeLinear", "xq", "input", "xs", "xz").build(),
                OnnxMl.NodeProto.newBuilder().setName("output_node").setOpType("DequantizeLinear").addInput("xq")
                        .addInput("xs").addInput("xz").addOutput("output").build());
        var g = OnnxModels.graph(13, nodes, OnnxModels.floats("xs", new int[0], 0.05f), uint8("xz", 128));
        try (Model m = Model.of(g, new CpuBackend())) {
            float[] x = {-7f, 0.12f, 6.3f, 6.4f};
            Tensor y = m.forward(new Tensor(new int[] {1, 4}, x));
            assertArrayEquals(new float[] {-6.4f, 0.1f, 6.3f, 6.35f}, y.data(), 1e-6f);
            for (int t = 0; t < 4; t++) {
                float[] grad = Methods.create("saliency", m, Methods.Params.of(Map.of("abs", false)))
                        .attribute(Inputs.of("input", new Tensor(new int[] {1, 4}, x)), new int[] {t}).attributions().data();
                float[] want = new float[4];
                want[t] = t == 0 || t == 3 ? 0 : 1;
                assertArrayEquals(want, grad, "target " + t);
            }
        }
    }

    @Test
    void anIntegerOperatorReadingAQuantizedValueIsRefused() {
        List<OnnxMl.NodeProto> nodes = List.of(n("QuantizeLinear", "xq", "input", "xs", "xz").build(),
                n("Cast", "output", "xq").addAttribute(OnnxModels.intAttr("to", 1)).build());
        ModelException e = assertThrows(ModelException.class, () -> OnnxModels.graph(13, nodes,
                OnnxModels.floats("xs", new int[0], 0.05f), uint8("xz", 128)));
        assertTrue(e.getMessage().contains("the integer output of QuantizeLinear 'xq_node'"), e.getMessage());
    }

    @Test
    void integratedGradientsRunsOnAQdqModel() {
        OnnxRuntimeConformanceTest.Case c = qdqCase();
        try (Model m = Model.of(OnnxImporter.parse(OnnxRuntimeConformanceTest.bytes(c), "qdq.onnx"), new CpuBackend())) {
            var a = Methods.create("integrated_gradients", m, Methods.Params.of(Map.of("n_steps", 16)))
                    .attribute(Inputs.of("input", new Tensor(new int[] {1, 4}, new float[] {0.3f, -0.2f, 0.5f, 0.1f})),
                            new int[] {1});
            assertEquals(4, a.attributions().size());
        }
    }
}
