package dev.kxai.cli;

import static dev.kxai.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kxai explain} on models with several inputs (numeric + one-hot + a row mask) and with
 * token ids (explained at the embedding): the numbers are the reference's, and bad input is
 * refused with exit 2 and the input and value named.
 */
class SeveralInputsCliTest {
    private static final Path TABULAR = TestData.reference("tabular_two_inputs");
    private static final Path TEXT = TestData.reference("text_tokens");

    private static String f(Path dir, String name) {
        return dir.resolve(name).toString();
    }

    private static double maxDiff(Tensor a, Tensor b) {
        assertArrayEquals(b.shape(), a.shape());
        double m = 0;
        for (int i = 0; i < a.size(); i++) {
            m = Math.max(m, Math.abs(a.data()[i] - b.data()[i]));
        }
        return m;
    }

    @Test
    void twoAttributedInputsAndAMaskGiveOneAttributionPerInput(@TempDir Path out) {
        CliRun r = run("explain", "--model", f(TABULAR, "model.onnx"), "--input", "input_0=" + f(TABULAR, "input_0.npy"),
                "--input", "input_1=" + f(TABULAR, "input_1.npy"), "--additional", "add_0=" + f(TABULAR, "add_0.npy"),
                "--baseline", "input_1=" + f(TABULAR, "baseline_input_1.npy"), "--steps", "32", "--target",
                "1,2,1,2,2,2,1,2,0,0,2,2,2,2,2,0", "--device", "cpu", "--out", out.toString());
        assertEquals(0, r.status(), r.err());
        Tensor a0 = NpyIO.read(out.resolve("attributions_input_0.npy"));
        Tensor a1 = NpyIO.read(out.resolve("attributions_input_1.npy"));
        assertTrue(maxDiff(a0, NpyIO.read(TABULAR.resolve("ig_gausslegendre_32_0.npy"))) < 1e-5);
        assertTrue(maxDiff(a1, NpyIO.read(TABULAR.resolve("ig_gausslegendre_32_1.npy"))) < 1e-5);
        assertTrue(maxDiff(NpyIO.read(out.resolve("deltas.npy")), NpyIO.read(TABULAR.resolve("ig_gausslegendre_32_delta.npy")))
                < 1e-5);
        // rows 3 and 11 are masked out by add_0: every attribution there is exactly 0
        for (int row : new int[] {3, 11}) {
            for (int j = 0; j < 6; j++) {
                assertTrue(a0.data()[row * 6 + j] == 0f, "row " + row + ": " + a0.data()[row * 6 + j]);
            }
        }
        assertTrue(Files.exists(out.resolve("example_000_input_1.png")));
    }

    @Test
    void tokenIdsAreExplainedAtTheEmbedding(@TempDir Path out) {
        CliRun r = run("explain", "--model", f(TEXT, "model.onnx"), "--input", "input_0=" + f(TEXT, "input_0.npy"),
                "--additional", "add_0=" + f(TEXT, "add_0.npy"), "--method", "layer_ig", "--layer",
                "/embedding/Gather_output_0", "--steps", "32", "--device", "cpu", "--out", out.toString());
        assertEquals(0, r.status(), r.err());
        Tensor a = NpyIO.read(out.resolve("attributions.npy"));
        assertTrue(maxDiff(a, NpyIO.read(TEXT.resolve("layer_ig_embedding_gausslegendre_32.npy"))) < 1e-5, r.out());
    }

    @Test
    void infoListsTheInputsAndTheValuesLayerMethodsTake() {
        CliRun r = run("info", "--device", "cpu", "--model", f(TEXT, "model.onnx"));
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("inputs: input_0 [batch, 12] (integer ids), add_0 [batch, 12]"), r.out());
        assertTrue(r.out().contains("-> /embedding/Gather_output_0 [1, 12, 16]"), r.out());
    }

    @Test
    void badInputIsRefusedNamingTheInputAndTheValue(@TempDir Path dir) throws Exception {
        // an input missing
        CliRun missing = run("explain", "--model", f(TABULAR, "model.onnx"), "--input",
                "input_0=" + f(TABULAR, "input_0.npy"), "--input", "input_1=" + f(TABULAR, "input_1.npy"),
                "--out", dir.toString());
        assertEquals(2, missing.status(), missing.err());
        assertTrue(missing.err().contains("input 'add_0' is missing"), missing.err());
        // one input without a name for a model with three
        CliRun unnamed = run("explain", "--model", f(TABULAR, "model.onnx"), "--input", f(TABULAR, "input_0.npy"),
                "--out", dir.toString());
        assertEquals(2, unnamed.status(), unnamed.err());
        assertTrue(unnamed.err().contains("NAME=FILE"), unnamed.err());
        // a baseline of the wrong shape
        Path wrong = dir.resolve("b.npy");
        NpyIO.write(wrong, Tensor.zeros(16, 4));
        CliRun base = run("explain", "--model", f(TABULAR, "model.onnx"), "--input", "input_0=" + f(TABULAR, "input_0.npy"),
                "--input", "input_1=" + f(TABULAR, "input_1.npy"), "--additional", "add_0=" + f(TABULAR, "add_0.npy"),
                "--baseline", "input_1=" + wrong, "--out", dir.toString());
        assertEquals(2, base.status(), base.err());
        assertTrue(base.err().contains("baseline of shape [16, 4]") && base.err().contains("[16, 5]"), base.err());
        // a token id outside the embedding's 50 rows
        Tensor ids = NpyIO.read(TEXT.resolve("input_0.npy"));
        float[] v = ids.data().clone();
        v[13] = 50;
        Path oov = dir.resolve("ids.npy");
        NpyIO.write(oov, new Tensor(ids.shape(), v));
        CliRun vocab = run("explain", "--model", f(TEXT, "model.onnx"), "--input", "input_0=" + oov, "--additional",
                "add_0=" + f(TEXT, "add_0.npy"), "--method", "layer_ig", "--layer", "/embedding/Gather_output_0",
                "--out", dir.toString());
        assertEquals(2, vocab.status(), vocab.err());
        assertTrue(vocab.err().contains("input 'input_0' holds id 50 at row 1, position 1"), vocab.err());
        // token ids cannot be attributed directly
        CliRun direct = run("explain", "--model", f(TEXT, "model.onnx"), "--input", "input_0=" + f(TEXT, "input_0.npy"),
                "--additional", "add_0=" + f(TEXT, "add_0.npy"), "--method", "saliency", "--out", dir.toString());
        assertEquals(2, direct.status(), direct.err());
        assertTrue(direct.err().contains("--layer"), direct.err());
    }
}
