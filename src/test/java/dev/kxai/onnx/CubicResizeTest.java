package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Resize cubic lowered to two weight matrices ({@link CubicResize}): its forward is checked against
 * ONNX Runtime in OnnxRuntimeConformanceTest and ONNX's node tests; here its gradient (a cubic resize
 * followed by a Tanh, so that the gradient depends on the input) against central finite differences.
 */
class CubicResizeTest {
    @Test
    void theGradientMatchesFiniteDifferences() {
        OnnxMl.NodeProto resize = OnnxModels.n("Resize", "big", "x4", "", "sc")
                .addAttribute(OnnxModels.attr("mode", "cubic")).build();
        List<OnnxMl.NodeProto> nodes = List.of(OnnxModels.n("Reshape", "x4", "input", "shape").build(), resize,
                OnnxModels.n("Tanh", "t", "big").build(), OnnxModels.n("Flatten", "output", "t").build());
        var g = OnnxModels.graph(13, nodes, OnnxModels.ints("shape", -1, 1, 2, 2),
                OnnxModels.floats("sc", new int[] {4}, 1, 1, 2.5f, 1.5f));
        SplittableRandom r = new SplittableRandom(3);
        float[] x = new float[4];
        for (int i = 0; i < 4; i++) {
            x[i] = (float) (r.nextDouble() * 2 - 1);
        }
        try (Model m = Model.of(g, new CpuBackend())) {
            int outputs = m.outputs();
            assertEquals(15, outputs); // 5 × 3
            for (int t = 0; t < outputs; t++) {
                float[] grad = Methods.create("saliency", m, Methods.Params.of(Map.of("abs", false)))
                        .attribute(Inputs.of("input", new Tensor(new int[] {1, 4}, x)), new int[] {t}).attributions().data();
                for (int i = 0; i < 4; i++) {
                    float h = 1e-3f;
                    float[] up = x.clone();
                    float[] down = x.clone();
                    up[i] += h;
                    down[i] -= h;
                    double fd = (m.forward(new Tensor(new int[] {1, 4}, up)).data()[t]
                            - m.forward(new Tensor(new int[] {1, 4}, down)).data()[t]) / (2.0 * h);
                    assertEquals(fd, grad[i], 2e-3, "output " + t + ", input " + i);
                }
            }
        }
    }
}
