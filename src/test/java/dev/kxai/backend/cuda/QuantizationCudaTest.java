package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.attr.Methods;
import dev.kxai.backend.Backends;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.onnx.OnnxRuntimeConformanceTest;
import dev.kxai.tensor.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A QDQ model on the device: Integrated Gradients through the fake quantisation's straight-through
 * estimator (Op.StraightThrough) gives the CPU's attributions, computed on CUDA.
 */
class QuantizationCudaTest {
    @Test
    void integratedGradientsThroughQdqPairsEqualsTheCpus() {
        OnnxRuntimeConformanceTest.Case c = OnnxRuntimeConformanceTest.cases().stream()
                .filter(k -> k.name().equals("qdq matmul")).findFirst().orElseThrow();
        byte[] bytes = OnnxRuntimeConformanceTest.bytes(c);
        Tensor x = new Tensor(new int[] {2, 4}, new float[] {0.3f, -0.2f, 0.5f, 0.1f, 7f, -1f, 2f, -0.05f});
        Map<String, Object> p = Map.of("n_steps", 16);
        float[] cpu;
        try (Model m = Model.of(OnnxImporter.parse(bytes, "qdq.onnx"), new CpuBackend())) {
            cpu = Methods.create("integrated_gradients", m, Methods.Params.of(p)).attribute(Inputs.of("input", x),
                    new int[] {1, 2}).attributions().data();
        }
        try (Model m = Model.of(OnnxImporter.parse(bytes, "qdq.onnx"), Backends.select("cuda"))) {
            float[] gpu = Methods.create("integrated_gradients", m, Methods.Params.of(p)).attribute(Inputs.of("input", x),
                    new int[] {1, 2}).attributions().data();
            assertEquals("cuda", m.device());
            assertArrayEquals(cpu, gpu, 1e-6f);
        }
        float nonzero = 0;
        for (float v : cpu) {
            nonzero += Math.abs(v);
        }
        org.junit.jupiter.api.Assertions.assertTrue(nonzero > 0, "the straight-through gradient reaches the input");
    }
}
