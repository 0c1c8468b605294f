package dev.kxai.validate;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A manifest whose output entry is not called "logits" still has its forward pass checked, against that file. */
class OutputEntryTest {
    private static List<ReferenceValidator.CaseResult> run(Path dir, float shift) throws Exception {
        Path src = TestData.reference("mlp_tabular");
        Files.copy(src.resolve("model.onnx"), dir.resolve("model.onnx"));
        Files.copy(src.resolve("input.npy"), dir.resolve("input.npy"));
        Tensor logits = NpyIO.read(src.resolve("logits.npy"));
        float[] v = logits.data().clone();
        v[0] += shift;
        NpyIO.write(dir.resolve("scores.npy"), new Tensor(logits.shape(), v));
        Files.writeString(dir.resolve("manifest.json"), "{\"name\": \"other\", \"targets\": [0], "
                + "\"outputs\": {\"scores\": \"scores.npy\"}, \"cases\": []}");
        return new ReferenceValidator("cpu").runModel(dir.resolve("manifest.json"));
    }

    @Test
    void theFirstOutputEntryIsTheForwardReference(@TempDir Path a, @TempDir Path b) throws Exception {
        List<ReferenceValidator.CaseResult> good = run(a, 0f);
        assertEquals(1, good.size(), good.toString());
        assertEquals(ReferenceValidator.Status.PASS, good.get(0).status(), good.get(0).line());
        List<ReferenceValidator.CaseResult> off = run(b, 1f);
        assertEquals(ReferenceValidator.Status.FAIL, off.get(0).status(), off.get(0).line());
    }
}
