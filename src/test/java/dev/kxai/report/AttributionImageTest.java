package dev.kxai.report;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AttributionImageTest {

    private static float[] ramp(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        return a;
    }

    /** Counts heat-panel pixels that are clearly red and clearly blue: {red, blue}. */
    private static int[] countHeatColours(BufferedImage img, int height, int width) {
        int scale = AttributionImage.scaleFor(height, width);
        int x0 = width * scale + AttributionImage.GAP;
        int red = 0;
        int blue = 0;
        for (int y = 0; y < height * scale; y++) {
            for (int x = x0; x < x0 + width * scale; x++) {
                int rgb = img.getRGB(x, y);
                int r = (rgb >> 16) & 0xFF;
                int g = (rgb >> 8) & 0xFF;
                int b = rgb & 0xFF;
                if (r - b > 60 && r - g > 60) {
                    red++;
                }
                if (b - r > 60 && b - g > 60) {
                    blue++;
                }
            }
        }
        return new int[] {red, blue};
    }

    @Test
    void renderSizeForSmallSquareInput() {
        BufferedImage img = AttributionImage.render(ramp(64), ramp(64), 1, 8, 8, "digit");
        // 8 px * 20 = 160 per panel, two panels plus gap; panel + caption + legend strips.
        assertEquals(2 * 160 + AttributionImage.GAP, img.getWidth());
        assertEquals(160 + AttributionImage.CAPTION_HEIGHT + AttributionImage.LEGEND_HEIGHT,
                img.getHeight());
    }

    @Test
    void renderScalesBySmallerSideForNonSquareInput() {
        int c = 3;
        int h = 10;
        int w = 40;
        BufferedImage img = AttributionImage.render(ramp(c * h * w), new float[c * h * w], c, h, w,
                "wide");
        // smaller side 10 -> factor 16 -> panels 640 x 160
        assertEquals(2 * 640 + AttributionImage.GAP, img.getWidth());
        assertEquals(160 + AttributionImage.CAPTION_HEIGHT + AttributionImage.LEGEND_HEIGHT,
                img.getHeight());
    }

    @Test
    void largeInputIsNotUpscaled() {
        BufferedImage img = AttributionImage.render(new float[200 * 300], new float[200 * 300], 1,
                200, 300, null);
        assertEquals(2 * 300 + AttributionImage.GAP, img.getWidth());
    }

    @Test
    void positiveAttributionIsRedAndNeverBlue() {
        float[] attr = new float[64];
        attr[9] = 1f;
        attr[10] = 0.5f;
        attr[40] = 2f;
        BufferedImage img = AttributionImage.render(ramp(64), attr, 1, 8, 8, "pos");
        int[] counts = countHeatColours(img, 8, 8);
        assertTrue(counts[0] > 0, "expected red pixels, got " + counts[0]);
        assertEquals(0, counts[1], "blue pixels");
    }

    @Test
    void negativeAttributionIsBlueAndNeverRed() {
        float[] attr = new float[64];
        attr[9] = -1f;
        attr[10] = -0.5f;
        attr[40] = -2f;
        BufferedImage img = AttributionImage.render(ramp(64), attr, 1, 8, 8, "neg");
        int[] counts = countHeatColours(img, 8, 8);
        assertTrue(counts[1] > 0, "expected blue pixels, got " + counts[1]);
        assertEquals(0, counts[0], "red pixels");
    }

    @Test
    void strongestPixelIsSaturatedAndChannelsAreSummed() {
        // Two channels: pixel 0 sums to +2 (the max), pixel 1 cancels to 0.
        float[] attr = new float[2 * 4];
        attr[0] = 1f;
        attr[4] = 1f;
        attr[1] = 3f;
        attr[5] = -3f;
        BufferedImage img = AttributionImage.render(new float[8], attr, 2, 2, 2, "");
        int scale = AttributionImage.scaleFor(2, 2);
        int x0 = 2 * scale + AttributionImage.GAP;
        assertEquals(0xFF0000, img.getRGB(x0, 0) & 0xFFFFFF);
        assertEquals(0xFFFFFF, img.getRGB(x0 + scale, 0) & 0xFFFFFF);
    }

    @Test
    void zeroAttributionGivesWhiteHeatPanel() {
        BufferedImage img = AttributionImage.render(ramp(64), new float[64], 1, 8, 8, "zero");
        int scale = AttributionImage.scaleFor(8, 8);
        int x0 = 8 * scale + AttributionImage.GAP;
        for (int y = 0; y < 8 * scale; y++) {
            for (int x = x0; x < x0 + 8 * scale; x++) {
                assertEquals(0xFFFFFF, img.getRGB(x, y) & 0xFFFFFF, "pixel " + x + "," + y);
            }
        }
    }

    @Test
    void grayscaleInputIsMinMaxNormalised() {
        float[] image = new float[64];
        image[0] = -5f;
        image[63] = 5f;
        BufferedImage img = AttributionImage.render(image, new float[64], 1, 8, 8, "");
        int scale = AttributionImage.scaleFor(8, 8);
        assertEquals(0x000000, img.getRGB(0, 0) & 0xFFFFFF);
        assertEquals(0xFFFFFF, img.getRGB(8 * scale - 1, 8 * scale - 1) & 0xFFFFFF);
        int mid = img.getRGB(scale, 0) & 0xFF;
        assertTrue(mid >= 127 && mid <= 128, "zero should land mid-range, got " + mid);
    }

    @Test
    void rgbInputKeepsChannels() {
        // 3 x 1 x 1 would be tiny; use 3 x 2 x 2 with pixel 0 pure red, the rest black.
        float[] image = new float[12];
        image[0] = 1f;
        BufferedImage img = AttributionImage.render(image, new float[12], 3, 2, 2, "");
        assertEquals(0xFF0000, img.getRGB(0, 0) & 0xFFFFFF);
        assertEquals(0x000000, img.getRGB(AttributionImage.scaleFor(2, 2), 0) & 0xFFFFFF);
    }

    @Test
    void nanDoesNotThrowAndIsMidGrey() {
        float[] image = ramp(64);
        image[0] = Float.NaN;
        float[] attr = new float[64];
        attr[0] = Float.NaN;
        attr[5] = 1f;
        BufferedImage img = assertDoesNotThrow(
                () -> AttributionImage.render(image, attr, 1, 8, 8, "nan"));
        int scale = AttributionImage.scaleFor(8, 8);
        assertEquals(AttributionImage.MID_GREY, img.getRGB(0, 0) & 0xFFFFFF);
        assertEquals(AttributionImage.MID_GREY,
                img.getRGB(8 * scale + AttributionImage.GAP, 0) & 0xFFFFFF);
        // The NaN must not poison the scale of the finite pixels.
        assertEquals(0xFF0000,
                img.getRGB(8 * scale + AttributionImage.GAP + 5 * scale, 0) & 0xFFFFFF);
    }

    @Test
    void wrongImageLengthNamesBothLengths() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AttributionImage.render(new float[63], new float[64], 1, 8, 8, "x"));
        assertTrue(e.getMessage().contains("64"), e.getMessage());
        assertTrue(e.getMessage().contains("63"), e.getMessage());
        assertTrue(e.getMessage().startsWith("image"), e.getMessage());
    }

    @Test
    void wrongAttributionLengthNamesBothLengths() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AttributionImage.render(new float[192], new float[64], 3, 8, 8, "x"));
        assertTrue(e.getMessage().contains("192"), e.getMessage());
        assertTrue(e.getMessage().contains("64"), e.getMessage());
        assertTrue(e.getMessage().startsWith("attribution"), e.getMessage());
    }

    @Test
    void nonPositiveShapeIsRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> AttributionImage.render(new float[0], new float[0], 1, 0, 8, "x"));
    }

    @Test
    void writePngCreatesParentsAndReadsBack(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("nested/deeper/attr.png");
        AttributionImage.writePng(file, ramp(192), ramp(192), 3, 8, 8, "rgb");
        assertTrue(Files.isRegularFile(file));
        BufferedImage back = ImageIO.read(file.toFile());
        assertNotNull(back, "ImageIO could not decode the file");
        assertEquals(2 * 160 + AttributionImage.GAP, back.getWidth());
        assertEquals(160 + AttributionImage.CAPTION_HEIGHT + AttributionImage.LEGEND_HEIGHT,
                back.getHeight());
    }
}
