package dev.kxai.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A headless Chromium for tests that look at what a browser renders: Debian's {@code chromium}
 * (or {@code KXAI_CHROMIUM}, {@code chromium-browser}, {@code google-chrome} on the PATH).
 */
public final class Chromium {
    private final Path binary;

    private Chromium(Path binary) {
        this.binary = binary;
    }

    /** The browser, or empty with no browser installed. */
    public static Optional<Chromium> find() {
        List<String> names = new ArrayList<>();
        String env = System.getenv("KXAI_CHROMIUM");
        if (env != null && !env.isBlank()) {
            names.add(env);
        }
        names.addAll(List.of("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"));
        for (String n : names) {
            Path p = Path.of(n);
            if (p.isAbsolute() && Files.isExecutable(p)) {
                return Optional.of(new Chromium(p));
            }
            for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
                Path c = Path.of(dir, n);
                if (!dir.isEmpty() && Files.isExecutable(c)) {
                    return Optional.of(new Chromium(c));
                }
            }
        }
        return Optional.empty();
    }

    public Path binary() {
        return binary;
    }

    /** The DOM after the page loaded (its scripts ran). */
    public String dumpDom(Path html, int width, int height) throws IOException, InterruptedException {
        return run(html, width, height, "--dump-dom", null);
    }

    /** A PNG screenshot of the viewport, width x height CSS px at scale 1. */
    public void screenshot(Path html, Path png, int width, int height) throws IOException, InterruptedException {
        run(html, width, height, "--screenshot=" + png.toAbsolutePath(), png);
    }

    private String run(Path html, int width, int height, String what, Path expect) throws IOException, InterruptedException {
        Path profile = Files.createTempDirectory("kxai-chromium");
        Path log = Files.createTempFile("kxai-chromium", ".log");
        Path stdout = Files.createTempFile("kxai-chromium", ".out");
        try {
            List<String> cmd = List.of(binary.toString(), "--headless", "--disable-gpu", "--no-sandbox",
                    "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
                    "--force-device-scale-factor=1", "--user-data-dir=" + profile, "--window-size=" + width + "," + height,
                    "--virtual-time-budget=5000", what, html.toAbsolutePath().toUri().toString());
            Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).redirectOutput(stdout.toFile()).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("chromium did not finish in 120 s: " + cmd);
            }
            String out = Files.readString(stdout, StandardCharsets.UTF_8);
            if (p.exitValue() != 0 || (expect != null && !Files.exists(expect))) {
                throw new IOException("chromium failed (exit " + p.exitValue() + "): " + cmd + "\n"
                        + Files.readString(log, StandardCharsets.UTF_8));
            }
            return out;
        } finally {
            Files.deleteIfExists(log);
            Files.deleteIfExists(stdout);
            try (var s = Files.walk(profile)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }
}
