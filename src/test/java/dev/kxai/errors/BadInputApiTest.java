package dev.kxai.errors;

import static dev.kxai.errors.ErrorFixtures.digitsInput;
import static dev.kxai.errors.ErrorFixtures.digitsModel;
import static dev.kxai.errors.ErrorFixtures.digitsWith;
import static dev.kxai.errors.ErrorFixtures.filled;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.UnsupportedOperatorException;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.InputXGradient;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Quadrature;
import dev.kxai.attr.Saliency;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every kind of bad input the issue lists, through the Java API: the right typed exception, and a
 * message naming the file, node, shape or value at fault.
 */
class BadInputApiTest {
    private static Model digits;
    private static Tensor x;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() {
        digits = Model.load(digitsModel(), "cpu");
        x = NpyIO.read(digitsInput());
    }

    @AfterAll
    static void close() {
        digits.close();
    }

    private static void assertMentions(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), () -> "message should mention '" + p + "': " + e.getMessage());
        }
    }

    // ---- model files ----

    @Test
    void missingModelFile() {
        Path missing = tmp.resolve("absent_model.onnx");
        ModelException e = assertThrows(ModelException.class, () -> Model.load(missing, "cpu"));
        assertMentions(e, "absent_model.onnx");
    }

    @Test
    void directoryAsModelFile() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("a_folder.onnx"));
        ModelException e = assertThrows(ModelException.class, () -> Model.load(dir, "cpu"));
        assertMentions(e, "a_folder.onnx");
    }

    @Test
    void unreadableModelFile() throws IOException {
        Path f = Files.copy(digitsModel(), tmp.resolve("locked.onnx"));
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("---------"));
        boolean root = "root".equals(System.getProperty("user.name")) || Files.isReadable(f);
        Assumptions.assumeFalse(root, "root reads chmod 000 files");
        ModelException e = assertThrows(ModelException.class, () -> Model.load(f, "cpu"));
        assertMentions(e, "locked.onnx");
    }

    @Test
    void textFileIsNotOnnx() throws IOException {
        Path f = ErrorFixtures.textModel(tmp);
        ModelException e = assertThrows(ModelException.class, () -> Model.load(f, "cpu"));
        assertMentions(e, f.toString(), "not an ONNX model");
    }

    @Test
    void emptyFileIsNotOnnx() throws IOException {
        Path f = Files.write(tmp.resolve("empty.onnx"), new byte[0]);
        ModelException e = assertThrows(ModelException.class, () -> Model.load(f, "cpu"));
        assertMentions(e, "empty.onnx", "not an ONNX model");
    }

    @Test
    void truncatedProtobuf() throws IOException {
        Path f = ErrorFixtures.truncatedModel(tmp);
        ModelException e = assertThrows(ModelException.class, () -> Model.load(f, "cpu"));
        assertMentions(e, "truncated.onnx", "truncated");
    }

    @Test
    void npyFileGivenAsModel() {
        ModelException e = assertThrows(ModelException.class, () -> Model.load(digitsInput(), "cpu"));
        assertMentions(e, "input.npy", "not an ONNX model");
    }

    // ---- operators ----

    @Test
    void fixtureWithSupportedOpLoadsAndRuns() throws IOException {
        // The same graph with Relu instead of NonMaxSuppression is valid: the NonMaxSuppression test fails for the operator only.
        Path f = Files.write(tmp.resolve("relu_model.onnx"), ErrorFixtures.modelWithOp("Relu", "my_relu"));
        try (Model m = Model.load(f, "cpu")) {
            assertEquals(3, m.outputs());
            assertEquals(2, m.forward(filled(2, 4)).dim(0));
        }
    }

    @Test
    void unsupportedOperatorNamesOpNodeAndSupportedOps() throws IOException {
        Path f = ErrorFixtures.unsupportedOpModel(tmp);
        UnsupportedOperatorException e = assertThrows(UnsupportedOperatorException.class, () -> Model.load(f, "cpu"));
        assertInstanceOf(ModelException.class, e);
        assertEquals("NonMaxSuppression", e.opType());
        assertEquals("my_nms", e.nodeName());
        assertMentions(e, "NonMaxSuppression", "my_nms", "supported");
        for (String op : OnnxImporter.SUPPORTED) {
            assertMentions(e, op);
        }
    }

    @Test
    void unsupportedOperatorNamesTheFile() throws IOException {
        Path f = ErrorFixtures.unsupportedOpModel(tmp);
        UnsupportedOperatorException e = assertThrows(UnsupportedOperatorException.class, () -> Model.load(f, "cpu"));
        assertMentions(e, "nms_model.onnx", "NonMaxSuppression", "my_nms");
    }

    @Test
    void unknownDevice() {
        KxaiException e = assertThrows(KxaiException.class, () -> Model.load(digitsModel(), "tpu"));
        assertMentions(e, "tpu", "auto", "cpu");
    }

    // ---- input files ----

    @Test
    void missingInputFile() {
        Path missing = tmp.resolve("absent_input.npy");
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> NpyIO.read(missing));
        assertMentions(e, "absent_input.npy");
    }

    @Test
    void inputFileThatIsNotNpy() {
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> NpyIO.read(digitsModel()));
        assertMentions(e, "model.onnx", ".npy");
    }

    // ---- shapes ----

    @Test
    void wrongInputShapeNamesBothShapes() {
        Tensor bad = NpyIO.read(ErrorFixtures.npy(tmp, "wrong.npy", filled(10, 1, 9, 9)));
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new Saliency(digits).attribute(bad, 0));
        assertMentions(e, "[10, 1, 9, 9]", "[batch, 1, 8, 8]", "model.onnx");
    }

    @Test
    void wrongRankOnTabularModel() {
        try (Model mlp = Model.load(ErrorFixtures.mlp().resolve("model.onnx"), "cpu")) {
            InvalidInputException e = assertThrows(InvalidInputException.class,
                    () -> new IntegratedGradients(mlp).attribute(filled(16, 2, 4), 0));
            assertMentions(e, "[16, 2, 4]", "[batch, 8]");
        }
    }

    @Test
    void emptyBatch() {
        Tensor empty = NpyIO.read(ErrorFixtures.npy(tmp, "empty.npy", Tensor.zeros(0, 1, 8, 8)));
        assertEquals(0, empty.dim(0));
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new IntegratedGradients(digits).attribute(empty, 0));
        assertMentions(e, "empty batch", "[0, 1, 8, 8]");
        assertThrows(InvalidInputException.class, () -> new Saliency(digits).attribute(empty, 0));
        assertThrows(InvalidInputException.class, () -> new InputXGradient(digits).attribute(empty, 0));
    }

    @Test
    void baselineOfWrongShape() {
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new IntegratedGradients(digits).baselines(Baseline.of(filled(3, 8, 8))).attribute(x, 0));
        assertMentions(e, "[3, 8, 8]", "[10, 1, 8, 8]");
    }

    // ---- non-finite values ----

    @Test
    void nanInInputNamesValueRowAndIndex() {
        int at = 3 * 64 + 17; // row 3
        Tensor bad = NpyIO.read(ErrorFixtures.npy(tmp, "nan.npy", digitsWith(at, Float.NaN)));
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new IntegratedGradients(digits).attribute(bad, 0));
        assertMentions(e, "NaN", "row 3", String.valueOf(at));
        assertThrows(InvalidInputException.class, () -> new Saliency(digits).attribute(bad, 0));
        assertThrows(InvalidInputException.class, () -> new InputXGradient(digits).attribute(bad, 0));
        assertThrows(InvalidInputException.class, () -> digits.forward(bad));
    }

    @Test
    void negativeInfinityInInput() {
        Tensor bad = digitsWith(640 - 1, Float.NEGATIVE_INFINITY);
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new Saliency(digits).attribute(bad, 0));
        assertMentions(e, "-Infinity", "row 9", "639");
    }

    @Test
    void infinityInBaselineFile() {
        Tensor base = NpyIO.read(ErrorFixtures.npy(tmp, "base_inf.npy", digitsWith(70, Float.POSITIVE_INFINITY)));
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new IntegratedGradients(digits).baselines(Baseline.of(base)).attribute(x, 0));
        assertMentions(e, "baseline", "Infinity", "70");
    }

    @Test
    void nanScalarBaseline() {
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> Baseline.scalar(Float.NaN));
        assertMentions(e, "baseline", "NaN");
    }

    // ---- targets ----

    @Test
    void targetEqualToOutputCount() {
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new IntegratedGradients(digits).attribute(x, 10));
        assertMentions(e, "target 10", "10 outputs", "0..9");
        assertThrows(InvalidInputException.class, () -> new Saliency(digits).attribute(x, 10));
        assertThrows(InvalidInputException.class, () -> new InputXGradient(digits).attribute(x, 10));
    }

    @Test
    void negativeTarget() {
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new Saliency(digits).attribute(x, -1));
        assertMentions(e, "target -1", "0..9");
    }

    @Test
    void perRowTargetOutOfRangeNamesRow() {
        int[] t = new int[10];
        t[6] = 12;
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new InputXGradient(digits).attribute(x, t));
        assertMentions(e, "target 12", "row 6");
    }

    @Test
    void targetCountNotMatchingBatch() {
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new Saliency(digits).attribute(x, 1, 2, 3));
        assertMentions(e, "3 targets", "10 rows");
    }

    // ---- n_steps ----

    @Test
    void zeroStepsGaussLegendre() {
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> new IntegratedGradients(digits)
                .method(Quadrature.Rule.GAUSS_LEGENDRE).nSteps(0).attribute(x, 0));
        assertMentions(e, "n_steps", "got 0");
    }

    @Test
    void oneStepRiemannTrapezoid() {
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> new IntegratedGradients(digits)
                .method(Quadrature.Rule.RIEMANN_TRAPEZOID).nSteps(1).attribute(x, 0));
        assertMentions(e, "n_steps", "riemann_trapezoid", "got 1");
    }

    @Test
    void oneStepGaussLegendreIsAllowed() {
        // the boundary: 1 step is valid for Gauss-Legendre (only Riemann rules need 2)
        assertEquals(640, new IntegratedGradients(digits).nSteps(1).attribute(x, 0).attributions().size());
    }

    @Test
    void unknownRuleListsKnownRules() {
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> Quadrature.Rule.parse("simpson"));
        assertMentions(e, "simpson", "riemann_left", "riemann_trapezoid", "gausslegendre");
    }

    @Test
    void zeroInternalBatchSize() {
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> new IntegratedGradients(digits).internalBatchSize(0));
        assertMentions(e, "internal_batch_size", "0");
    }
}
