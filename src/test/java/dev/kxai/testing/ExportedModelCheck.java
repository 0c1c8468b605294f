package dev.kxai.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Saliency;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.validate.Comparison;
import java.nio.file.Path;

/**
 * A model exported from PyTorch against PyTorch's own numbers (src/test/resources/models/NAME,
 * written by its make.py): the logits, and the gradient of each row's predicted logit from
 * autograd (kxai's signed Saliency), both within 1e-5 relative; and the model ran where it was
 * loaded, without falling back.
 */
public final class ExportedModelCheck {
    private ExportedModelCheck() {
    }

    public static void check(Model m, Path dir, String device) {
        Tensor x = NpyIO.read(dir.resolve("input.npy"));
        Comparison logits = Comparison.of(m.forward(x).data(), NpyIO.read(dir.resolve("logits.npy")).data());
        assertTrue(logits.relL2() < 1e-5, dir.getFileName() + " logits: " + logits);
        Attribution a = new Saliency(m).attribute(x, false, m.predict(x));
        assertEquals(device, a.device(), "where it ran");
        assertNull(a.fallbackReason());
        Comparison g = Comparison.of(a.attributions().data(), NpyIO.read(dir.resolve("gradient.npy")).data());
        assertTrue(g.relL2() < 1e-5 && g.maxAbs() <= 1e-5 * g.maxRef(), dir.getFileName() + " input gradient: " + g);
    }
}
