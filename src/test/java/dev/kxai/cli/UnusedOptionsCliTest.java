package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An option the method does not use is an error (exit 2, "kxai: error:" naming the option and the method); it
 * used to be ignored without a word (issue 13). The options every method shares (--target, --device, --out,
 * ...) and the defaults of the others stay quiet.
 */
class UnusedOptionsCliTest {
    private static void refused(Path dir, String option, String method, String... args) {
        String[] all = new String[args.length + 4];
        System.arraycopy(args, 0, all, 0, args.length);
        all[args.length] = "--device";
        all[args.length + 1] = "cpu";
        all[args.length + 2] = "--out";
        all[args.length + 3] = dir.resolve("out").toString();
        CliRun r = CliRun.of(all);
        assertEquals(2, r.status(), String.join(" ", args) + ": " + r.out() + r.err());
        assertTrue(r.err().contains("kxai: error: " + option + ": method " + method + " does not use it"),
                String.join(" ", args) + ": " + r.err());
    }

    @Test
    void anOptionTheMethodDoesNotUse(@TempDir Path dir) throws Exception {
        Path mask = dir.resolve("mask.npy");
        NpyIO.write(mask, new Tensor(new int[] {1, 8, 8}, new float[64]));
        refused(dir, "--feature-mask", "integrated_gradients", "explain", "--method", "ig", "--feature-mask", mask.toString());
        refused(dir, "--stdevs", "integrated_gradients", "explain", "--method", "ig", "--stdevs", "0.1");
        refused(dir, "--steps", "saliency", "explain", "--method", "saliency", "--steps", "20");
        refused(dir, "--seed", "occlusion", "explain", "--method", "occlusion", "--sliding-window", "1,2,2", "--seed", "4");
        refused(dir, "--n-samples", "deeplift", "explain", "--method", "deeplift", "--n-samples", "4");
        refused(dir, "--superpixels", "saliency", "explain", "--method", "saliency", "--superpixels", "2");
        CliRun r = CliRun.of("explain", "--method", "ig", "--stdevs", "0.1", "--device", "cpu", "--out", dir.toString());
        assertTrue(r.err().contains("without --noise-tunnel") && r.err().contains("--steps"), r.err());
    }

    @Test
    void sharedOptionsAndDefaultsStayQuiet(@TempDir Path dir) {
        CliRun r = CliRun.of("explain", "--method", "saliency", "--target", "3", "--device", "cpu", "--out", dir.toString());
        assertEquals(0, r.status(), r.err());
        r = CliRun.of("explain", "--method", "ig", "--stdevs", "0.1", "--noise-tunnel", "smoothgrad", "--nt-samples", "2",
                "--steps", "8", "--seed", "2", "--device", "cpu", "--out", dir.toString());
        assertEquals(0, r.status(), r.err());
        r = CliRun.of("explain", "--device", "cpu", "--out", dir.resolve("bundled").toString()); // the bundled example
        assertEquals(0, r.status(), r.err());
    }
}
