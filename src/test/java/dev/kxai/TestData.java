package dev.kxai;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/** Locations of the reference cases copied into the test resources. */
public final class TestData {
    private TestData() {
    }

    /** The folder holding one folder per reference model (Captum 0.8.0 outputs). */
    public static Path referenceRoot() {
        URL u = TestData.class.getResource("/reference/captum-0.8.0");
        if (u == null) {
            throw new IllegalStateException("test resources lack reference/captum-0.8.0");
        }
        try {
            return Path.of(u.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Path reference(String model) {
        return referenceRoot().resolve(model);
    }

    /** A model exported from PyTorch with its reference outputs (src/test/resources/models/NAME, see its make.py). */
    public static Path exported(String model) {
        URL u = TestData.class.getResource("/models/" + model);
        if (u == null) {
            throw new IllegalStateException("test resources lack models/" + model);
        }
        try {
            return Path.of(u.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
