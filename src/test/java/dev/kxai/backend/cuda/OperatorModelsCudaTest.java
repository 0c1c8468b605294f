package dev.kxai.backend.cuda;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.testing.OperatorModelCheck;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Operators from other exporters and architectures (models/operators), on CUDA (the emulator), with
 * no fallback to the CPU: PyTorch's logits and autograd gradient, and the gradient against finite
 * differences of the device's own forward pass.
 */
class OperatorModelsCudaTest {
    static List<String> cases() {
        return OperatorModelCheck.CASES;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void matchesPyTorchAndFiniteDifferences(String name) {
        Path dir = TestData.exported("operators/" + name);
        try (Model m = Model.of(OnnxImporter.load(dir.resolve("model.onnx")), CudaTestKit.cuda())) {
            OperatorModelCheck.check(m, dir, "cuda");
        }
    }
}
