package dev.kxai.report;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/** Writing the pictures: headless, as PNG, creating missing parent folders. */
public final class Png {
    static {
        // Only default it: a caller that chose a mode explicitly knows better than we do.
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    private Png() {
    }

    /** Makes sure the headless default is set before any AWT class loads. */
    static void init() {
    }

    public static void write(Path file, BufferedImage picture) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        if (!ImageIO.write(picture, "png", file.toFile())) {
            // Only possible on a JDK stripped of its PNG writer; silently writing nothing is worse.
            throw new IOException("no PNG writer available to write " + file);
        }
    }
}
