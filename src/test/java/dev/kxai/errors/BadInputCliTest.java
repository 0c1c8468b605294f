package dev.kxai.errors;

import static dev.kxai.errors.ErrorFixtures.cli;
import static dev.kxai.errors.ErrorFixtures.digitsInput;
import static dev.kxai.errors.ErrorFixtures.digitsModel;
import static dev.kxai.errors.ErrorFixtures.digitsWith;
import static dev.kxai.errors.ErrorFixtures.filled;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.errors.ErrorFixtures.Cli;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bad inputs of the issue through {@code kxai explain / validate}: exit status 2, one
 * {@code kxai: error:} line naming the fault, and no stack trace unless --verbose.
 */
class BadInputCliTest {
    @TempDir
    Path tmp;

    /** {@code explain --model m --input x --out tmp/out} plus extra arguments. */
    private Cli explain(Path model, Path input, String... extra) {
        List<String> args = new ArrayList<>(List.of("explain", "--model", model.toString(), "--input",
                input.toString(), "--out", tmp.resolve("out").toString()));
        args.addAll(Arrays.asList(extra));
        return cli(args.toArray(String[]::new));
    }

    /** Exit 2, exactly one line "kxai: error: ..." holding every part, no trace, nothing written. */
    private static void assertUserError(Cli r, String... parts) {
        assertEquals(2, r.status(), () -> "exit status; err was:\n" + r.err());
        assertEquals(1, r.errLines(), () -> "one error line expected:\n" + r.err());
        assertTrue(r.err().startsWith("kxai: error: "), () -> "err: " + r.err());
        for (String p : parts) {
            assertTrue(r.err().contains(p), () -> "err should mention '" + p + "': " + r.err());
        }
        assertNoTrace(r);
    }

    private static void assertNoTrace(Cli r) {
        assertFalse(r.err().contains("\tat "), () -> "stack trace printed:\n" + r.err());
        assertFalse(r.err().contains("Exception"), () -> "exception class printed:\n" + r.err());
    }

    private void assertNoOutputWritten() {
        assertFalse(Files.exists(tmp.resolve("out").resolve("attributions.npy")), "no attributions on error");
    }

    // ---- model files ----

    @Test
    void missingModelFile() {
        Cli r = explain(tmp.resolve("absent_model.onnx"), digitsInput());
        assertUserError(r, "absent_model.onnx");
        assertNoOutputWritten();
    }

    @Test
    void unreadableModelFile() throws IOException {
        Path f = Files.copy(digitsModel(), tmp.resolve("locked.onnx"));
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("---------"));
        boolean root = "root".equals(System.getProperty("user.name")) || Files.isReadable(f);
        Assumptions.assumeFalse(root, "root reads chmod 000 files");
        assertUserError(explain(f, digitsInput()), "locked.onnx");
    }

    @Test
    void directoryAsModel() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("folder.onnx"));
        assertUserError(explain(dir, digitsInput()), "folder.onnx");
    }

    @Test
    void textFileAsModel() throws IOException {
        Path f = ErrorFixtures.textModel(tmp);
        assertUserError(explain(f, digitsInput()), f.toString(), "not an ONNX model");
        assertNoOutputWritten();
    }

    @Test
    void truncatedModel() throws IOException {
        Path f = ErrorFixtures.truncatedModel(tmp);
        assertUserError(explain(f, digitsInput()), "truncated.onnx", "not an ONNX model");
    }

    @Test
    void unsupportedOperator() throws IOException {
        Path f = ErrorFixtures.unsupportedOpModel(tmp);
        Path in = ErrorFixtures.npy(tmp, "x4.npy", filled(2, 4));
        assertUserError(explain(f, in), "NonMaxSuppression", "my_nms", "supported", "Gemm", "Conv");
    }

    @Test
    void unsupportedOperatorNamesFile() throws IOException {
        Path f = ErrorFixtures.unsupportedOpModel(tmp);
        Path in = ErrorFixtures.npy(tmp, "x4.npy", filled(2, 4));
        assertUserError(explain(f, in), "nms_model.onnx", "NonMaxSuppression", "my_nms");
    }

    // ---- input files ----

    @Test
    void missingInputFile() {
        assertUserError(explain(digitsModel(), tmp.resolve("absent_input.npy")), "absent_input.npy");
    }

    @Test
    void inputThatIsNotNpy() throws IOException {
        Path f = Files.writeString(tmp.resolve("input_text.npy"), "1,2,3\n");
        assertUserError(explain(digitsModel(), f), "input_text.npy");
    }

    @Test
    void wrongInputShape() {
        Path f = ErrorFixtures.npy(tmp, "wrong_shape.npy", filled(10, 1, 9, 9));
        assertUserError(explain(digitsModel(), f), "wrong_shape.npy", "[10, 1, 9, 9]", "[batch, 1, 8, 8]");
        assertNoOutputWritten();
    }

    @Test
    void emptyBatch() {
        Path f = ErrorFixtures.npy(tmp, "empty_batch.npy", Tensor.zeros(0, 1, 8, 8));
        assertUserError(explain(digitsModel(), f), "empty batch", "[0, 1, 8, 8]", "empty_batch.npy");
    }

    @Test
    void nanInInput() {
        int at = 5 * 64 + 3;
        Path f = ErrorFixtures.npy(tmp, "has_nan.npy", digitsWith(at, Float.NaN));
        assertUserError(explain(digitsModel(), f, "--method", "saliency"), "has_nan.npy", "NaN", "row 5",
                String.valueOf(at));
    }

    @Test
    void infinityInBaselineFile() {
        Path b = ErrorFixtures.npy(tmp, "baseline_inf.npy", digitsWith(42, Float.POSITIVE_INFINITY));
        assertUserError(explain(digitsModel(), digitsInput(), "--baseline", b.toString()), "baseline", "Infinity",
                "42");
        assertNoOutputWritten();
    }

    @Test
    void infinityInBaselineFileNamesFile() {
        Path b = ErrorFixtures.npy(tmp, "baseline_inf.npy", digitsWith(42, Float.POSITIVE_INFINITY));
        assertUserError(explain(digitsModel(), digitsInput(), "--baseline", b.toString()), "baseline_inf.npy",
                "Infinity");
    }

    @Test
    void nanScalarBaseline() {
        assertUserError(explain(digitsModel(), digitsInput(), "--baseline", "NaN"), "baseline", "NaN");
    }

    @Test
    void missingBaselineFile() {
        assertUserError(explain(digitsModel(), digitsInput(), "--baseline", tmp.resolve("no_base.npy").toString()),
                "no_base.npy");
    }

    // ---- targets, steps, names ----

    @Test
    void targetEqualToOutputCount() {
        assertUserError(explain(digitsModel(), digitsInput(), "--target", "10"), "target 10", "0..9");
        assertNoOutputWritten();
    }

    @Test
    void negativeTarget() {
        assertUserError(explain(digitsModel(), digitsInput(), "--target", "-1", "--method", "saliency"),
                "target -1", "0..9");
    }

    @Test
    void wrongNumberOfTargets() {
        assertUserError(explain(digitsModel(), digitsInput(), "--target", "1,2"), "2 targets", "10 rows");
    }

    @Test
    void zeroStepsGaussLegendre() {
        assertUserError(explain(digitsModel(), digitsInput(), "--steps", "0", "--rule", "gausslegendre"),
                "n_steps", "got 0");
        assertNoOutputWritten();
    }

    @Test
    void oneStepRiemannTrapezoid() {
        assertUserError(explain(digitsModel(), digitsInput(), "--steps", "1", "--rule", "riemann_trapezoid"),
                "n_steps", "riemann_trapezoid", "got 1");
    }

    @Test
    void unknownMethodListsKnownMethods() {
        assertUserError(explain(digitsModel(), digitsInput(), "--method", "no_such_method"), "'no_such_method'", "ig", "saliency",
                "input_x_gradient");
    }

    @Test
    void unknownRuleListsKnownRules() {
        assertUserError(explain(digitsModel(), digitsInput(), "--rule", "simpson"), "'simpson'", "riemann_left",
                "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre");
    }

    @Test
    void unknownDeviceListsKnownDevices() {
        assertUserError(explain(digitsModel(), digitsInput(), "--device", "tpu"), "'tpu'", "auto", "cpu");
    }

    @Test
    void zeroInternalBatchSize() {
        assertUserError(explain(digitsModel(), digitsInput(), "--internal-batch-size", "0"), "internal_batch_size");
    }

    @Test
    void modelWithoutInput() {
        Cli r = cli("explain", "--model", digitsModel().toString(), "--out", tmp.resolve("out").toString());
        assertUserError(r, "--model", "--input");
    }

    @Test
    void outIsAnExistingFile() throws IOException {
        Path f = Files.writeString(tmp.resolve("out_file"), "x");
        Cli r = cli("explain", "--model", digitsModel().toString(), "--input", digitsInput().toString(), "--out",
                f.toString(), "--method", "saliency");
        assertUserError(r, "out_file");
    }

    // ---- validate and usage errors ----

    @Test
    void validateMissingDirectory() {
        assertUserError(cli("validate", tmp.resolve("no_such_dir").toString()), "no_such_dir");
    }

    @Test
    void validateDirectoryWithoutManifest() {
        assertUserError(cli("validate", tmp.toString()), "manifest.json", tmp.toString());
    }

    @Test
    void unknownOptionIsUsageError() {
        Cli r = explain(digitsModel(), digitsInput(), "--bogus-option");
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("--bogus-option"), r.err());
        assertNoTrace(r);
        assertNoOutputWritten();
    }

    @Test
    void nonNumericStepsIsUsageError() {
        Cli r = explain(digitsModel(), digitsInput(), "--steps", "many");
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("--steps") && r.err().contains("many"), r.err());
        assertNoTrace(r);
    }

    @Test
    void unknownSubcommandIsUsageError() {
        Cli r = cli("explode");
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("explode"), r.err());
        assertNoTrace(r);
    }

    /** Was: picocli's 43 lines of usage without a {@code kxai: error:} line (issue 13). */
    @Test
    void usageErrorsAreOneErrorLineAndAHint() {
        for (Cli r : new Cli[] {explain(digitsModel(), digitsInput(), "--bogus-option"),
                explain(digitsModel(), digitsInput(), "--steps", "many"), cli("explode"), cli("explain", "--steps")}) {
            assertEquals(2, r.status(), r.err());
            assertTrue(r.err().startsWith("kxai: error: "), r.err());
            assertTrue(r.err().contains("--help"), r.err());
            assertTrue(r.err().lines().count() <= 3, "a short message, not the usage: " + r.err());
            assertNoTrace(r);
        }
        Cli typo = explain(digitsModel(), digitsInput(), "--step", "5");
        assertTrue(typo.err().contains("--steps"), "a suggestion: " + typo.err());
    }

    /** Was: the work ran, then writing failed (issue 13): an unwritable --out is refused first, naming the path. */
    @Test
    void anUnwritableOutIsRefusedBeforeTheWork() throws Exception {
        Path file = java.nio.file.Files.writeString(tmp.resolve("a_file.txt"), "x");
        Path out = file.resolve("sub");
        long t0 = System.nanoTime();
        Cli r = cli("explain", "--model", digitsModel().toString(), "--input", digitsInput().toString(), "--out",
                out.toString());
        assertUserError(r, "--out", "a_file.txt", "not a folder");
        assertFalse(r.out().contains("ran on"), "no work was done: " + r.out());
        if (!"root".equals(System.getProperty("user.name"))) {
            Path ro = java.nio.file.Files.createDirectory(tmp.resolve("read_only"));
            ro.toFile().setWritable(false);
            try {
                assertUserError(cli("explain", "--model", digitsModel().toString(), "--input",
                        digitsInput().toString(), "--out", ro.resolve("x").toString()),
                        "--out", "read_only", "cannot write");
            } finally {
                ro.toFile().setWritable(true);
            }
        }
        System.out.printf("unwritable --out refused in %.2f s%n", (System.nanoTime() - t0) / 1e9);
    }

    // ---- --verbose ----

    @Test
    void verboseAddsTheStackTrace() {
        Path missing = tmp.resolve("absent_model.onnx");
        Cli quiet = explain(missing, digitsInput());
        Cli loud = explain(missing, digitsInput(), "--verbose");
        assertEquals(2, quiet.status());
        assertEquals(2, loud.status());
        assertNoTrace(quiet);
        assertTrue(loud.err().startsWith("kxai: error: "), loud.err());
        assertTrue(loud.err().contains("absent_model.onnx"), loud.err());
        assertTrue(loud.err().contains("dev.kxai.ModelException"), loud.err());
        assertTrue(loud.err().contains("\tat "), loud.err());
    }

    @Test
    void verboseBeforeTheSubcommandAlsoWorks() {
        Cli loud = cli("--verbose", "explain", "--model", digitsModel().toString(), "--input", digitsInput().toString(),
                "--out", tmp.resolve("out").toString(), "--steps", "1", "--rule", "riemann_trapezoid");
        assertEquals(2, loud.status(), loud.err());
        assertTrue(loud.err().contains("InvalidInputException") && loud.err().contains("\tat "), loud.err());
    }

    @Test
    void goodRunStillSucceeds() {
        // control: the same arguments without the fault exit 0 and write the outputs
        Cli r = explain(digitsModel(), digitsInput(), "--method", "saliency", "--target", "3");
        assertEquals(0, r.status(), r.err());
        assertTrue(Files.exists(tmp.resolve("out").resolve("attributions.npy")));
    }
}
