package dev.kxai.models;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.testing.ExportedModelCheck;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Models exported from PyTorch, on the CPU, against PyTorch's logits and autograd gradients. */
class ExportedModelsTest {
    @ParameterizedTest
    @ValueSource(strings = {"layernorm_gelu", "recurrent", "resize"})
    void matchesPyTorch(String name) {
        Path dir = TestData.exported(name);
        try (Model m = Model.of(OnnxImporter.load(dir.resolve("model.onnx")), new CpuBackend())) {
            ExportedModelCheck.check(m, dir, "cpu");
        }
    }
}
