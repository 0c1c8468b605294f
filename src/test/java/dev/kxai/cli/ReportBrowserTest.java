package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.testing.Chromium;
import dev.kxai.testing.CliRun;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTML report in a real headless browser (Debian's chromium): every image decodes
 * (naturalWidth > 0, recorded by the report's own script into the DOM) and shows (the screenshot is
 * not blank where the images are). Skipped, with the reason printed, only where no browser is installed.
 */
class ReportBrowserTest {
    static final int WIDTH = 1400;
    static final int HEIGHT = 1400;

    @Test
    void theReportsImagesDecodeAndAreVisibleInChromium(@TempDir Path dir) throws Exception {
        Optional<Chromium> browser = Chromium.find();
        if (browser.isEmpty()) {
            String why = "no chromium on the PATH (apt-get install chromium; .ci/run installs it): browser check skipped";
            System.out.println("ReportBrowserTest: SKIPPED: " + why);
            Assumptions.abort(why);
        }
        Chromium chromium = browser.get();
        ImageReportCliTest.picture(dir, "cat.png", 90, 70, 0xE08020);
        ImageReportCliTest.picture(dir, "dog.png", 70, 90, 0x2040E0);
        Path report = dir.resolve("r.html");
        CliRun r = CliRun.of("explain", "--image", dir.resolve("cat.png").toString(), "--image",
                dir.resolve("dog.png").toString(), "--model", TestData.reference("tinyvgg").resolve("model.onnx").toString(),
                "--preprocess", ImageReportCliTest.spec(dir).toString(), "--steps", "8", "--report", report.toString(),
                "--out", dir.resolve("out").toString());
        assertEquals(0, r.status(), r.err());

        String dom = chromium.dumpDom(report, WIDTH, HEIGHT);
        Matcher m = Pattern.compile("id=\"kxai-render-check\"[^>]*").matcher(dom);
        assertTrue(m.find(), "the report's check script ran and wrote its marker: " + tail(dom));
        String marker = m.group();
        assertEquals("6", attr(marker, "data-images"), marker);
        assertEquals("6", attr(marker, "data-decoded"), "every <img> decoded (naturalWidth > 0): " + marker);
        List<int[]> rects = new ArrayList<>();
        for (String rect : attr(marker, "data-rects").split(";")) {
            String[] v = rect.split(",");
            int[] xywhn = new int[5];
            for (int i = 0; i < 5; i++) {
                xywhn[i] = Integer.parseInt(v[i]);
            }
            assertTrue(xywhn[4] > 0 && xywhn[2] > 0 && xywhn[3] > 0, "image laid out with a size: " + rect);
            rects.add(xywhn);
        }

        Path shot = dir.resolve("shot.png");
        chromium.screenshot(report, shot, WIDTH, HEIGHT);
        BufferedImage png = ImageIO.read(shot.toFile());
        assertEquals(WIDTH, png.getWidth(), "screenshot at scale 1");
        int checked = 0;
        for (int[] rect : rects) {
            if (rect[1] + rect[3] > png.getHeight() || rect[0] + rect[2] > png.getWidth()) {
                continue; // below the fold: decoding was checked above
            }
            double variance = variance(png, rect[0] + 2, rect[1] + 2, rect[2] - 4, rect[3] - 4);
            assertTrue(variance > 50, "image at " + java.util.Arrays.toString(rect) + " shows content, pixel variance "
                    + variance);
            checked++;
        }
        assertTrue(checked >= 3, "at least the first example's images are in the screenshot: " + checked);
        // and the page around them is plain: the white margin left of the first image is blank
        assertTrue(variance(png, 0, rects.get(0)[1], 6, rects.get(0)[3]) < 1, "the margin is blank");
        System.out.println("ReportBrowserTest: " + chromium.binary() + ": 6 images decoded, " + checked
                + " checked visible in the screenshot");
    }

    static String attr(String tag, String name) {
        Matcher m = Pattern.compile(name + "=\"([^\"]*)\"").matcher(tag);
        return m.find() ? m.group(1) : "";
    }

    /** Variance of the grey level over a rectangle of the picture. */
    static double variance(BufferedImage img, int x0, int y0, int w, int h) {
        double sum = 0;
        double sq = 0;
        int n = 0;
        for (int y = y0; y < y0 + h; y++) {
            for (int x = x0; x < x0 + w; x++) {
                int rgb = img.getRGB(x, y);
                double g = (((rgb >> 16) & 0xFF) + ((rgb >> 8) & 0xFF) + (rgb & 0xFF)) / 3.0;
                sum += g;
                sq += g * g;
                n++;
            }
        }
        double mean = sum / n;
        return sq / n - mean * mean;
    }

    private static String tail(String s) {
        return s.length() < 600 ? s : s.substring(s.length() - 600);
    }
}
