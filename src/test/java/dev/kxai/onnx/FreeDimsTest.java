package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Free input dimensions beyond the batch (Optimum's {@code [batch, sequence]}), fixed at load by name,
 * by INPUT:AXIS, or from the input files: the zoo's GPT-2 classifier, exported with both free.
 */
class FreeDimsTest {
    private static final Path GPT = TestData.exported("zoo").resolve("gpt_classifier");

    @Test
    void aFreeSequenceLengthIsRefusedNamingTheDimensionAndTheFix() {
        ModelException e = assertThrows(ModelException.class, () -> Model.load(GPT.resolve("model.onnx"), "cpu"));
        assertTrue(e.getMessage().contains("input 'input_0' has a free dimension 'sequence' at axis 1 [batch, sequence]"),
                e.getMessage());
        assertTrue(e.getMessage().contains("--dim sequence=SIZE"), e.getMessage());
    }

    @Test
    void aSizeByNameOrByInputAxisFixesEveryInputThatHasIt() {
        try (Model m = Model.load(GPT.resolve("model.onnx"), "cpu", null, FreeDims.of(Map.of("sequence", 16)))) {
            assertArrayEquals(new int[] {-1, 16}, m.inputs().get(0).shape());
            assertArrayEquals(new int[] {-1, 16}, m.inputs().get(1).shape());
            Tensor ids = NpyIO.read(GPT.resolve("input_0.npy"));
            Tensor mask = NpyIO.read(GPT.resolve("add_0.npy"));
            Tensor logits = m.forward(dev.kxai.Inputs.of("input_0", ids).and("add_0", mask));
            float[] want = NpyIO.read(GPT.resolve("logits.npy")).data();
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], logits.data()[i], 1e-5, "logit " + i);
            }
        }
        // a dimension with no name is fixed by INPUT:AXIS (here both inputs' axis 1 have the name; by axis works too)
        try (Model m = Model.load(GPT.resolve("model.onnx"), "cpu", null,
                FreeDims.of(Map.of("input_0:1", 16, "add_0:1", 16)))) {
            assertArrayEquals(new int[] {-1, 16}, m.inputs().get(1).shape());
        }
    }

    @Test
    void namesThatFitNoFreeDimensionAndDisagreeingInputsAreRefused() {
        ModelException typo = assertThrows(ModelException.class, () -> Model.load(GPT.resolve("model.onnx"), "cpu", null,
                FreeDims.of(Map.of("sequence", 16, "seq_len", 16))));
        assertTrue(typo.getMessage().contains("'seq_len' names no free dimension of the model's inputs (free dimensions"
                + " beyond the batch: sequence = add_0:1, sequence = input_0:1)"), typo.getMessage());
        ModelException batch = assertThrows(ModelException.class, () -> Model.load(GPT.resolve("model.onnx"), "cpu", null,
                FreeDims.of(Map.of("sequence", 16, "batch", 2))));
        assertTrue(batch.getMessage().contains("'batch' is the batch axis, which kxai keeps free"), batch.getMessage());
        ModelException disagree = assertThrows(ModelException.class, () -> Model.load(GPT.resolve("model.onnx"), "cpu",
                null, FreeDims.NONE.orFromInputs((input, axis) -> input.equals("input_0") ? 16 : 12)));
        assertTrue(disagree.getMessage().contains("the inputs disagree on dimension 'sequence': input_0:1 has 16,"
                + " add_0:1 has 12"), disagree.getMessage());
        assertThrows(InvalidInputException.class, () -> FreeDims.parse("sequence"));
        assertThrows(InvalidInputException.class, () -> FreeDims.parse("sequence=0"));
        assertEquals(Map.entry("input_ids:1", 128), FreeDims.parse("input_ids:1=128"));
    }

    @Test
    void theCommandLineTakesTheSizeFromTheInputFilesOrFromDim(@TempDir Path dir) {
        String[] common = {"explain", "--model", GPT.resolve("model.onnx").toString(), "--input",
            "input_0=" + GPT.resolve("input_0.npy"), "--additional", "add_0=" + GPT.resolve("add_0.npy"), "--method",
            "layer_integrated_gradients", "--layer", "/embedding/Gather_output_0", "--steps", "8", "--device", "cpu"};
        CliRun fromFiles = CliRun.of(concat(common, "--out", dir.resolve("a").toString()));
        assertEquals(0, fromFiles.status(), fromFiles.err());
        float[] want = NpyIO.read(GPT.resolve("layer_ig_embedding_gausslegendre_8.npy")).data();
        float[] got = NpyIO.read(dir.resolve("a/attributions.npy")).data();
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 1e-5, "attribution " + i);
        }
        CliRun wrong = CliRun.of(concat(common, "--dim", "sequence=12", "--out", dir.resolve("b").toString()));
        assertEquals(2, wrong.status(), wrong.err());
        assertTrue(wrong.err().contains("does not fit model input 'input_0' of shape [batch, 12]"), wrong.err());
        CliRun typo = CliRun.of(concat(common, "--dim", "seq=16", "--out", dir.resolve("c").toString()));
        assertEquals(2, typo.status(), typo.err());
        assertTrue(typo.err().contains("'seq' names no free dimension"), typo.err());
    }

    @Test
    void infoListsTheValuesOfAModelWithAFreeDimensionGivenItsSize() {
        CliRun info = CliRun.of("info", "--device", "cpu", "--model", GPT.resolve("model.onnx").toString(), "--dim",
                "sequence=16");
        assertEquals(0, info.status(), info.err());
        assertTrue(info.out().contains("inputs: input_0 [batch, 16]"), info.out());
        assertTrue(info.out().contains("/embedding/Gather_output_0 [1, 16, 32]"), info.out());
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
