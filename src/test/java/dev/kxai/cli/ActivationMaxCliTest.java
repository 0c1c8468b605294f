package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code explain --method activation_max} on the bundled digits CNN, and its options' errors. */
class ActivationMaxCliTest {
    @Test
    void explainMaximisesTargetThreeOnTheBundledDigits(@TempDir Path dir) throws Exception {
        CliRun r = CliRun.of("explain", "--method", "activation_max", "--target", "3", "--iterations", "40",
                "--device", "cpu", "--out", dir.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("method activation_max"), r.out());
        assertEquals(10, r.out().lines().filter(l -> l.matches("example \\d: .*, optimised input: output 3 [0-9.]+, "
                + "predicted 3; mass .*")).count(), r.out());
        Tensor x = NpyIO.read(dir.resolve("attributions.npy"));
        assertArrayEquals(new int[] {10, 1, 8, 8}, x.shape());
        for (int i = 0; i < 10; i++) {
            BufferedImage png = ImageIO.read(dir.resolve(String.format("example_%03d.png", i)).toFile());
            assertTrue(png.getWidth() > png.getHeight(), "image and heat map side by side");
        }
        // the images written are 3s to the model
        try (dev.kxai.Model m = dev.kxai.Model.load(dev.kxai.TestData.reference("digits_cnn").resolve("model.onnx"), "cpu")) {
            for (int p : m.predict(x)) {
                assertEquals(3, p);
            }
        }
    }

    @Test
    void aChannelOfALayerWithRegularisers(@TempDir Path dir) {
        CliRun r = CliRun.of("explain", "--method", "activation_maximization", "--layer", "/3/Relu_output_0", "--channel",
                "4", "--iterations", "10", "--lr-schedule", "cosine", "--l2", "0.01", "--tv", "0.01", "--jitter", "1",
                "--blur-every", "3", "--blur-sigma", "0.6", "--init", "input", "--seed", "5", "--device", "cpu", "--out",
                dir.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("method activation_max"), r.out());
    }

    @Test
    void badValuesNameTheOptionAndTheValue(@TempDir Path dir) {
        String[][] cases = {{"--iterations", "0"}, {"--lr", "-1"}, {"--lr-schedule", "step"}, {"--l2", "-0.5"},
            {"--tv", "NaN"}, {"--jitter", "-2"}, {"--blur-every", "-1"}, {"--blur-sigma", "0"}, {"--init", "zeros"},
            {"--noise-std", "-1"}, {"--channel", "-3"}};
        for (String[] c : cases) {
            CliRun r = CliRun.of("explain", "--method", "activation_max", c[0], c[1], "--device", "cpu", "--out",
                    dir.toString());
            assertEquals(2, r.status(), String.join(" ", c) + ": " + r.out() + r.err());
            assertTrue(r.err().contains("kxai: error: " + c[0] + " " + c[1]), String.join(" ", c) + ": " + r.err());
        }
        CliRun r = CliRun.of("explain", "--method", "activation_max", "--layer", "/3/Relu_output_0", "--channel", "16",
                "--iterations", "2", "--device", "cpu", "--out", dir.toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("channel 16") && r.err().contains("channels 0..15"), r.err());
    }
}
