package dev.kxai.validate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * FORMAT.md's float64 twin: a case that misses its float32 reference but meets the same tolerance
 * against the float64 one passes (saying so); one that misses both fails.
 */
class Float64ArbiterTest {
    private static Path caseFolder(Path dir, boolean f64Right) throws Exception {
        Path src = TestData.reference("mlp_tabular");
        for (String f : List.of("model.onnx", "input.npy", "logits.npy")) {
            Files.copy(src.resolve(f), dir.resolve(f));
        }
        Tensor good = NpyIO.read(src.resolve("input_x_gradient.npy"));
        float[] off = good.data().clone();
        off[0] += 0.01f * Math.max(1f, Math.abs(off[0])); // a float32 reference on the other side of a near-tie
        NpyIO.write(dir.resolve("ixg.npy"), new Tensor(good.shape(), off));
        NpyIO.write(dir.resolve("ixg_f64.npy"), f64Right ? good : new Tensor(good.shape(), off));
        String targets = new String(Files.readAllBytes(src.resolve("manifest.json")));
        int at = targets.indexOf("\"targets\"");
        String t = targets.substring(targets.indexOf('[', at), targets.indexOf(']', at) + 1);
        Files.writeString(dir.resolve("manifest.json"), "{\"name\": \"arbiter\", \"targets\": " + t + ", \"cases\": [{"
                + "\"id\": \"ixg\", \"method\": \"input_x_gradient\", \"params\": {}, \"attributions\": \"ixg.npy\", "
                + "\"attributions_f64\": \"ixg_f64.npy\"}]}");
        return dir.resolve("manifest.json");
    }

    @Test
    void theFloat64TwinDecidesANearTie(@TempDir Path dir) throws Exception {
        List<ReferenceValidator.CaseResult> r = new ReferenceValidator("cpu").runModel(caseFolder(dir, true));
        ReferenceValidator.CaseResult ixg = r.get(r.size() - 1);
        assertEquals(ReferenceValidator.Status.PASS, ixg.status(), ixg.line());
        assertTrue(ixg.detail().contains("vs float64"), ixg.line());
    }

    @Test
    void missingBothReferencesFails(@TempDir Path dir) throws Exception {
        List<ReferenceValidator.CaseResult> r = new ReferenceValidator("cpu").runModel(caseFolder(dir, false));
        ReferenceValidator.CaseResult ixg = r.get(r.size() - 1);
        assertEquals(ReferenceValidator.Status.FAIL, ixg.status(), ixg.line());
    }
}
