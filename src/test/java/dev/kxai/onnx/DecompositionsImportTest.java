package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.floats;
import static dev.kxai.onnx.OnnxModels.graph;
import static dev.kxai.onnx.OnnxModels.intAttr;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.n;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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

/** LayerNormalization (opset 17) and Split, run as compositions of kxai's own operators. */
class DecompositionsImportTest {
    @Test
    void layerNormalizationThenSplit() {
        Graph g = graph(17, List.of(
                n("LayerNormalization", "ln", "input", "scale", "bias").addAttribute(intAttr("axis", -1)).build(),
                n("Split", "first", "ln", "sizes").addOutput("output").addAttribute(intAttr("axis", 1)).build()),
                floats("scale", new int[] {4}, 1, 2, 1, 1), floats("bias", new int[] {4}, 0, 0, 1, 0), ints("sizes", 1, 3));
        try (Model m = Model.of(g, new CpuBackend())) {
            Tensor y = m.forward(new Tensor(new int[] {2, 4}, new float[] {1, 2, 3, 6, 0, 0, 0, 4}));
            assertArrayEquals(new int[] {2, 3}, y.shape());
            double sd = Math.sqrt(3.5 + 1e-5); // row 0: mean 3, variance (4 + 1 + 0 + 9) / 4
            double[] want0 = {2 * (2 - 3) / sd, (3 - 3) / sd + 1, (6 - 3) / sd};
            double sd1 = Math.sqrt(3 + 1e-5); // row 1: mean 1, variance (1 + 1 + 1 + 9) / 4
            double[] want1 = {2 * (0 - 1) / sd1, (0 - 1) / sd1 + 1, (4 - 1) / sd1};
            for (int j = 0; j < 3; j++) {
                assertEquals(want0[j], y.data()[j], 1e-6, "row 0, column " + j);
                assertEquals(want1[j], y.data()[3 + j], 1e-6, "row 1, column " + j);
            }
        }
    }

    /** A GRU in the form PyTorch never exports (linear_before_reset 0, layout 1), against the ONNX formulas by hand. */
    @Test
    void gruWithTheResetGateBeforeTheLinearMap() {
        float[] w = {0.7f, -0.4f, 1.1f};
        float[] r = {0.3f, 0.9f, -0.6f};
        float[] b = {0.1f, -0.2f, 0.05f, 0.2f, 0.3f, -0.1f};
        Graph g = graph(14, List.of(
                n("Unsqueeze", "seq", "input", "axis2").build(),
                n("GRU", "all", "seq", "W", "R", "B").addOutput("last").addAttribute(intAttr("hidden_size", 1))
                        .addAttribute(intAttr("layout", 1)).build(),
                n("Flatten", "output", "last").addAttribute(intAttr("axis", 1)).build()),
                ints("axis2", 2), floats("W", new int[] {1, 3, 1}, w), floats("R", new int[] {1, 3, 1}, r),
                floats("B", new int[] {1, 6}, b));
        float[] x = {0.5f, -1f, 2f, 0.25f, -0.3f, 0.8f, 0f, 1.5f};
        try (Model m = Model.of(g, new CpuBackend())) {
            Tensor y = m.forward(new Tensor(new int[] {2, 4}, x));
            for (int row = 0; row < 2; row++) {
                double h = 0;
                for (int t = 0; t < 4; t++) {
                    double v = x[row * 4 + t];
                    double z = 1 / (1 + Math.exp(-(w[0] * v + b[0] + b[3] + r[0] * h)));
                    double rg = 1 / (1 + Math.exp(-(w[1] * v + b[1] + b[4] + r[1] * h)));
                    double cand = Math.tanh(w[2] * v + b[2] + b[5] + r[2] * (rg * h));
                    h = (1 - z) * cand + z * h;
                }
                assertEquals(h, y.data()[row], 1e-6, "row " + row);
            }
        }
        ModelException peephole = assertThrows(ModelException.class, () -> graph(13, List.of(
                n("Unsqueeze", "seq", "input", "axis2").build(),
                n("LSTM", "output", "seq", "W", "R", "", "lens").addAttribute(intAttr("hidden_size", 1)).build()),
                ints("axis2", 2), floats("W", new int[] {1, 4, 1}, 1, 1, 1, 1), floats("R", new int[] {1, 4, 1}, 1, 1, 1, 1),
                ints("lens", 4, 4)));
        assertTrue(peephole.getMessage().contains("sequence lengths"), peephole.getMessage());
    }

    @Test
    void whereMasksPerRequest() {
        // GPT-2's causal masking: Where(constant mask, scores, large negative)
        OnnxMl.TensorProto mask = OnnxMl.TensorProto.newBuilder().setName("mask").setDataType(
                OnnxMl.TensorProto.DataType.BOOL_VALUE).addDims(4).addInt32Data(1).addInt32Data(0).addInt32Data(1)
                .addInt32Data(1).build();
        Graph g = graph(13, List.of(n("Where", "output", "mask", "input", "fill").build()), mask,
                floats("fill", new int[0], -1e9f));
        assertTrue(g.nodes().get(0).op() instanceof dev.kxai.graph.Op.Where);
        try (Model m = Model.of(g, new CpuBackend())) {
            Tensor y = m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 2, 3, 4}));
            assertArrayEquals(new float[] {1, -1e9f, 3, 4}, y.data());
        }
    }

    @Test
    void masksComputedPerRequest() {
        // DistilBERT's masking: scores.masked_fill(mask == 0, -1e9), and Not / Cast to bool
        Graph g = graph(13, List.of(
                n("Equal", "is_pad", "input", "zero").build(),
                n("Not", "kept", "is_pad").build(),
                n("Cast", "kept_bool", "kept").addAttribute(intAttr("to", 9)).build(),
                n("Where", "output", "kept_bool", "input", "fill").build()),
                floats("zero", new int[0], 0f), floats("fill", new int[0], -1e9f));
        try (Model m = Model.of(g, new CpuBackend())) {
            Tensor y = m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 0, 3, 0}));
            assertArrayEquals(new float[] {1, -1e9f, 3, -1e9f}, y.data());
        }
    }

    @Test
    void equalPartsWithoutSizesAndRefusals() {
        Graph g = graph(13, List.of(n("Split", "a", "input").addOutput("output").addAttribute(intAttr("axis", 1)).build()));
        try (Model m = Model.of(g, new CpuBackend())) {
            Tensor y = m.forward(new Tensor(new int[] {1, 4}, new float[] {1, 2, 3, 4}));
            assertArrayEquals(new float[] {3, 4}, y.data());
        }
        ModelException batch = assertThrows(ModelException.class, () -> graph(17, List.of(
                n("LayerNormalization", "output", "input", "scale").addAttribute(intAttr("axis", 0)).build()),
                floats("scale", new int[] {4}, 1, 1, 1, 1)));
        assertTrue(batch.getMessage().contains("output_node") && batch.getMessage().contains("batch axis"),
                batch.getMessage());
        ModelException sizes = assertThrows(ModelException.class, () -> graph(13, List.of(
                n("Split", "a", "input", "sizes").addOutput("output").addAttribute(intAttr("axis", 1)).build()),
                ints("sizes", 1, 2)));
        assertTrue(sizes.getMessage().contains("do not split axis 1"), sizes.getMessage());
    }
}
