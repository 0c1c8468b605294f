package dev.kxai.cli;

import static dev.kxai.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kxai explain} with the perturbation methods: the reference's occlusion through the CLI's
 * options, superpixel masks, seeds, and the errors a user meets (exit 2, the value named).
 */
class PerturbationCliTest {
    private static final Path TINY = TestData.reference("tinyvgg");
    private static final Path TABULAR = TestData.reference("mlp_tabular");

    @Test
    void occlusionThroughTheCliIsTheReferences(@TempDir Path out) {
        CliRun r = run("explain", "--model", TINY.resolve("model.onnx").toString(), "--input",
                TINY.resolve("input.npy").toString(), "--method", "occlusion", "--sliding-window", "3,8,8", "--strides",
                "3,4,4", "--baseline", "0", "--device", "cpu", "--out", out.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("method occlusion"), r.out());
        Tensor got = NpyIO.read(out.resolve("attributions.npy"));
        Tensor ref = NpyIO.read(TINY.resolve("occlusion_3x8x8_s4.npy"));
        assertArrayEquals(ref.shape(), got.shape());
        double max = 0;
        for (float v : ref.data()) {
            max = Math.max(max, Math.abs(v));
        }
        for (int i = 0; i < ref.size(); i++) {
            assertEquals(ref.data()[i], got.data()[i], 1e-4 * max + 1e-6, "element " + i);
        }
    }

    @Test
    void superpixelsMakeExactShapleyValuesAffordableAndSeedsRepeat(@TempDir Path out) {
        // the bundled digits: 64 pixels are too many for exact Shapley values; 4×4 superpixels make 4 groups
        CliRun bad = run("explain", "--method", "shapley_values", "--device", "cpu", "--out", out.toString());
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("64 feature groups") && bad.err().contains("shapley_value_sampling"), bad.err());
        CliRun ok = run("explain", "--method", "shapley_values", "--superpixels", "4", "--device", "cpu", "--out",
                out.resolve("a").toString());
        assertEquals(0, ok.status(), ok.err());
        Tensor a = NpyIO.read(out.resolve("a/attributions.npy"));
        assertEquals(a.data()[0], a.data()[1 * 8 + 3], "pixels of one superpixel share its value");
        for (String dir : new String[] {"b", "c"}) {
            CliRun s = run("explain", "--method", "kernel_shap", "--superpixels", "2", "--n-samples", "60",
                    "--seed", "7", "--device", "cpu", "--out", out.resolve(dir).toString());
            assertEquals(0, s.status(), s.err());
        }
        assertArrayEquals(NpyIO.read(out.resolve("b/attributions.npy")).data(),
                NpyIO.read(out.resolve("c/attributions.npy")).data(), "the same seed, the same samples");
    }

    @Test
    void badPerturbationOptionsAreRefusedWithTheValueNamed(@TempDir Path out) {
        String model = TABULAR.resolve("model.onnx").toString();
        String input = TABULAR.resolve("input.npy").toString();
        CliRun r = run("explain", "--model", model, "--input", input, "--method", "occlusion", "--device", "cpu",
                "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("sliding_window_shapes"), r.err());
        r = run("explain", "--model", model, "--input", input, "--method", "occlusion", "--sliding-window", "9",
                "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("[9]") && r.err().contains("[8]"), r.err());
        r = run("explain", "--model", model, "--input", input, "--method", "lime", "--sample-weights", input,
                "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("--samples"), r.err());
    }
}
