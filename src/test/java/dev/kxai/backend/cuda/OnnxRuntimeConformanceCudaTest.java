package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.backend.Backends;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.onnx.OnnxRuntimeConformanceTest;
import dev.kxai.tensor.Tensor;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * {@link OnnxRuntimeConformanceTest}'s operator forms on the CUDA backend (the emulator in CI): each
 * forward pass equals ONNX Runtime's, computed on the device (a fallback to the CPU fails the case).
 */
class OnnxRuntimeConformanceCudaTest {
    @TestFactory
    Stream<DynamicTest> cudaForwardMatchesOnnxRuntime() {
        return OnnxRuntimeConformanceTest.cases().stream().map(c -> DynamicTest.dynamicTest(c.name() + " (opset "
                + c.opset() + ")", () -> {
                    byte[] model = OnnxRuntimeConformanceTest.bytes(c);
                    Tensor x = OnnxRuntimeConformanceTest.input(c);
                    Object[] ort = OnnxRuntimeConformanceTest.onnxRuntime(model, x);
                    try (Model m = Model.of(OnnxImporter.parse(model, c.name() + ".onnx"), Backends.select("cuda"))) {
                        Tensor y = m.forward(x);
                        assertEquals("cuda", m.device(), c.name() + " did not run on the device");
                        OnnxRuntimeConformanceTest.compare(c.name() + " on cuda", y, ort);
                    }
                }));
    }
}
