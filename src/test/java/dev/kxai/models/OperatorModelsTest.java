package dev.kxai.models;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.testing.OperatorModelCheck;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Operators from other exporters and architectures (models/operators, see its make.py), on the CPU:
 * PyTorch's logits and autograd gradient, and the gradient against finite differences.
 */
class OperatorModelsTest {
    static List<String> cases() {
        return OperatorModelCheck.CASES;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void matchesPyTorchAndFiniteDifferences(String name) {
        Path dir = TestData.exported("operators/" + name);
        try (Model m = Model.of(OnnxImporter.load(dir.resolve("model.onnx")), new CpuBackend())) {
            OperatorModelCheck.check(m, dir, "cpu");
        }
    }
}
