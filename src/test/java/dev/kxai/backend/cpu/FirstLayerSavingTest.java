package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.onnx.OnnxImporter;
import org.junit.jupiter.api.Test;

/** Which models qualify for the first-layer saving (the input read by one affine node). */
class FirstLayerSavingTest {
    private static int firstNode(String model) {
        var g = OnnxImporter.load(TestData.reference(model).resolve("model.onnx"));
        return ((CpuModelRunner) new CpuBackend().prepare(g)).affineFirstNode();
    }

    @Test
    void convAndGemmFirstLayersQualify() {
        assertEquals(0, firstNode("digits_cnn"), "Conv reads the input");
        assertEquals(0, firstNode("mlp_tabular"), "Gemm with a [N] bias reads the input");
        assertEquals(0, firstNode("tinyvgg"));
        assertTrue(firstNode("resnet_mini") >= 0);
    }
}
