package dev.kxai.cli;

import static dev.kxai.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.io.NpyIO;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kxai explain} with the path methods beyond Captum, their options, and their errors. */
class PathMethodsCliTest {
    @Test
    void eachRunsOnTheBundledDigits(@TempDir Path out) {
        String[][] runs = {
            {"--method", "guided_ig", "--steps", "16", "--fraction", "0.5", "--max-dist", "0.05"},
            {"--method", "blur_ig", "--steps", "16", "--max-sigma", "4", "--grad-step", "0.02"},
            {"--method", "idgi", "--steps", "8"},
            {"--method", "ig", "--alphas", "0.05,0.2,0.5,0.8,0.95"},
        };
        for (int i = 0; i < runs.length; i++) {
            String[] args = new String[runs[i].length + 5];
            args[0] = "explain";
            System.arraycopy(runs[i], 0, args, 1, runs[i].length);
            args[runs[i].length + 1] = "--device";
            args[runs[i].length + 2] = "cpu";
            args[runs[i].length + 3] = "--out";
            args[runs[i].length + 4] = out.resolve("r" + i).toString();
            CliRun r = run(args);
            assertEquals(0, r.status(), String.join(" ", args) + "\n" + r.err());
            assertEquals(10 * 64, NpyIO.read(out.resolve("r" + i + "/attributions.npy")).size());
        }
        // --alphas with weights that reproduce --steps 4 --rule riemann_right
        CliRun plain = run("explain", "--method", "ig", "--steps", "4", "--rule", "riemann_right", "--device", "cpu",
                "--out", out.resolve("p").toString());
        CliRun given = run("explain", "--method", "ig", "--alphas", "0.25,0.5,0.75,1", "--alpha-weights",
                "0.25,0.25,0.25,0.25", "--device", "cpu", "--out", out.resolve("g").toString());
        assertEquals(0, plain.status(), plain.err());
        assertEquals(0, given.status(), given.err());
        assertArrayEquals(NpyIO.read(out.resolve("p/attributions.npy")).data(),
                NpyIO.read(out.resolve("g/attributions.npy")).data(), 0f);
    }

    @Test
    void badValuesAreNamed(@TempDir Path out) {
        CliRun r = run("explain", "--method", "ig", "--alphas", "0.1,x", "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("--alphas") && r.err().contains("'x'"), r.err());
        r = run("explain", "--method", "ig", "--alphas", "0.5,0.2", "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("must increase"), r.err());
        r = run("explain", "--method", "guided_ig", "--fraction", "2", "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("fraction") && r.err().contains("2.0"), r.err());
        r = run("explain", "--method", "blur_ig", "--max-sigma", "0", "--device", "cpu", "--out", out.toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("max_sigma"), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
    }
}
