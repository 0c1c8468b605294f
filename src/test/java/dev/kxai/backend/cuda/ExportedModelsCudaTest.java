package dev.kxai.backend.cuda;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.testing.ExportedModelCheck;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Models exported from PyTorch, on CUDA (the emulator), against PyTorch's logits and autograd gradients. */
class ExportedModelsCudaTest {
    @ParameterizedTest
    @ValueSource(strings = {"layernorm_gelu", "recurrent", "resize"})
    void matchesPyTorch(String name) {
        Path dir = TestData.exported(name);
        try (Model m = Model.of(OnnxImporter.load(dir.resolve("model.onnx")), CudaTestKit.cuda())) {
            ExportedModelCheck.check(m, dir, "cuda");
        }
    }

    /**
     * The zoo's tiny BERT (three int64 inputs, opset 17) and GPT-2 classifier (free sequence length, the
     * last token picked per row) like reference cases: "not run on cuda" fails them.
     */
    @org.junit.jupiter.api.Test
    void zooTokenModelsPassOnCuda() {
        dev.kxai.validate.ReferenceValidator.Summary s = new dev.kxai.validate.ReferenceValidator("cuda")
                .run(TestData.exported("zoo"), r -> { });
        org.junit.jupiter.api.Assertions.assertEquals(4, s.passed(), s.line());
        org.junit.jupiter.api.Assertions.assertEquals(0, s.failed(), s.line());
    }
}
