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

/** {@code kxai explain --method lrp|layer_lrp --lrp-rule ...} on the bundled digits, and its errors (exit 2, the key named). */
class LrpCliTest {
    private static final Path EXPECTED = TestData.referenceRoot().getParent().getParent().resolve("lrp");

    private static void close(Tensor want, Tensor got) {
        assertArrayEquals(want.shape(), got.shape());
        double max = 0;
        for (float v : want.data()) {
            max = Math.max(max, Math.abs(v));
        }
        for (int i = 0; i < want.size(); i++) {
            assertEquals(want.data()[i], got.data()[i], 1e-4 * max + 1e-6, "element " + i);
        }
    }

    @Test
    void lrpOnTheBundledDigitsIsCaptumsWithTheRulesGiven(@TempDir Path out) {
        CliRun r = run("explain", "--method", "lrp", "--lrp-rule", "Conv=gamma:0.25", "--device", "cpu", "--out",
                out.resolve("g").toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("method lrp"), r.out());
        close(NpyIO.read(EXPECTED.resolve("digits_gamma.npy")), NpyIO.read(out.resolve("g/attributions.npy")));
        r = run("explain", "--method", "layer_lrp", "--layer", "/4/MaxPool_output_0", "--device", "cpu", "--out",
                out.resolve("l").toString());
        assertEquals(0, r.status(), r.err());
        close(NpyIO.read(EXPECTED.resolve("digits_epsilon_layer_4_MaxPool_output_0.npy")),
                NpyIO.read(out.resolve("l/attributions.npy")));
    }

    @Test
    void badRulesAreRefusedWithTheKeyNamed(@TempDir Path out) {
        CliRun r = run("explain", "--method", "lrp", "--lrp-rule", "fc9=epsilon", "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("'fc9'"), r.err());
        r = run("explain", "--method", "lrp", "--lrp-rule", "MaxPool=identity", "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("'/4/MaxPool' (MaxPool)") && r.err().contains("one shape"), r.err());
    }
}
