package dev.kxai.report;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Renders one example's input next to its attribution heat map as a single picture.
 *
 * <p>Layout, top to bottom: the input panel and the heat panel side by side (separated by
 * {@link #GAP} px), a caption strip of {@link #CAPTION_HEIGHT} px and a legend strip of
 * {@link #LEGEND_HEIGHT} px. Each panel is the CHW image upscaled by the integer factor
 * {@link #scaleFor(int, int)} with nearest-neighbour sampling, so individual pixels stay visible.
 *
 * <p>The heat map is symmetric around zero (scaled by the largest absolute per-pixel value), so
 * white always means "no attribution" and colour intensity is comparable between signs: red is
 * positive, blue negative. Non-finite values are drawn mid-grey instead of failing, because a
 * report is usually wanted most when something has gone numerically wrong.
 *
 * <p>All methods are stateless and thread-safe.
 */
public final class AttributionImage {

    static {
        Png.init();
    }

    /** Smallest panel side in px after upscaling, so tiny inputs (8x8 digits) stay legible. */
    static final int MIN_PANEL_SIDE = 160;
    /** Largest panel side in px: larger inputs are subsampled (nearest) so the PNG stays bounded. */
    static final int MAX_PANEL_SIDE = 1024;
    /** White space between the input panel and the heat panel. */
    static final int GAP = 8;
    static final int CAPTION_HEIGHT = 20;
    static final int LEGEND_HEIGHT = 16;

    static final int MID_GREY = 0x808080;
    private static final int WHITE = 0xFFFFFF;

    private AttributionImage() {}

    /**
     * Renders {@code image} and {@code attribution} (both CHW, length channels*height*width).
     *
     * @throws IllegalArgumentException if a length does not match the shape or the shape is not
     *     positive
     */
    public static BufferedImage render(float[] image, float[] attribution, int channels,
                                       int height, int width, String caption) {
        Chw.checkLength("image", image, channels, height, width);
        Chw.checkLength("attribution", attribution, channels, height, width);

        int[] input = inputPixels(image, channels, height, width);
        int[] heat = heatPixels(attribution, channels, height, width);
        // a picture larger than MAX_PANEL_SIDE is subsampled every `step` pixels: the PNG stays bounded
        int step = stepFor(height, width);
        if (step > 1) {
            int h2 = (height + step - 1) / step;
            int w2 = (width + step - 1) / step;
            input = subsample(input, height, width, step, h2, w2);
            heat = subsample(heat, height, width, step, h2, w2);
            height = h2;
            width = w2;
        }
        int scale = scaleFor(height, width);
        int panelW = Math.multiplyExact(width, scale);
        int panelH = Math.multiplyExact(height, scale);
        int totalW = Math.addExact(Math.multiplyExact(2, panelW), GAP);
        int totalH = Math.addExact(panelH, CAPTION_HEIGHT + LEGEND_HEIGHT);

        BufferedImage out = new BufferedImage(totalW, totalH, BufferedImage.TYPE_INT_RGB);
        fill(out, 0, 0, totalW, totalH, WHITE);

        blitScaled(out, input, height, width, scale, 0, 0);
        blitScaled(out, heat, height, width, scale, panelW + GAP, 0);

        drawLegendBar(out, panelW + GAP, panelH + CAPTION_HEIGHT + 3, panelW, LEGEND_HEIGHT - 6);
        drawText(out, caption == null ? "" : caption, panelW, panelH);
        return out;
    }

    /**
     * Writes {@link #render} output to {@code file} as PNG, creating missing parent directories.
     */
    public static void writePng(Path file, float[] image, float[] attribution, int channels,
                                int height, int width, String caption) throws IOException {
        Png.write(file, render(image, attribution, channels, height, width, caption));
    }

    /**
     * Integer upscale factor that makes the smaller side at least {@link #MIN_PANEL_SIDE}, without the
     * larger side passing {@link #MAX_PANEL_SIDE} (a 1 x 4000 row is not drawn 160 px high).
     */
    static int scaleFor(int height, int width) {
        int smaller = Math.min(height, width);
        int larger = Math.max(height, width);
        return Math.max(1, Math.min((MIN_PANEL_SIDE + smaller - 1) / smaller, MAX_PANEL_SIDE / larger));
    }

    /** Subsampling step that brings the larger side to at most {@link #MAX_PANEL_SIDE}. */
    static int stepFor(int height, int width) {
        int larger = Math.max(height, width);
        return (larger + MAX_PANEL_SIDE - 1) / MAX_PANEL_SIDE;
    }

    private static int[] subsample(int[] rgb, int height, int width, int step, int h2, int w2) {
        int[] out = new int[h2 * w2];
        for (int y = 0; y < h2; y++) {
            for (int x = 0; x < w2; x++) {
                out[y * w2 + x] = rgb[Math.min(height - 1, y * step) * width + Math.min(width - 1, x * step)];
            }
        }
        return out;
    }

    /** One RGB value per pixel for the input panel, min-max normalised over the whole image. */
    static int[] inputPixels(float[] image, int channels, int height, int width) {
        int plane = height * width;
        if (channels == 3) {
            double[] range = finiteRange(image, 0, image.length);
            int[] rgb = new int[plane];
            for (int p = 0; p < plane; p++) {
                float r = image[p];
                float g = image[plane + p];
                float b = image[2 * plane + p];
                if (!Float.isFinite(r) || !Float.isFinite(g) || !Float.isFinite(b)) {
                    rgb[p] = MID_GREY;
                } else {
                    rgb[p] = (toByte(r, range) << 16) | (toByte(g, range) << 8) | toByte(b, range);
                }
            }
            return rgb;
        }
        // channels == 1 is the mean of a single channel, so one code path covers both cases.
        float[] mean = new float[plane];
        for (int p = 0; p < plane; p++) {
            double sum = 0;
            for (int c = 0; c < channels; c++) {
                sum += image[c * plane + p];
            }
            mean[p] = (float) (sum / channels);
        }
        double[] range = finiteRange(mean, 0, plane);
        int[] rgb = new int[plane];
        for (int p = 0; p < plane; p++) {
            if (!Float.isFinite(mean[p])) {
                rgb[p] = MID_GREY;
            } else {
                int v = toByte(mean[p], range);
                rgb[p] = (v << 16) | (v << 8) | v;
            }
        }
        return rgb;
    }

    /** One RGB value per pixel for the heat panel: white to red for +, white to blue for -. */
    static int[] heatPixels(float[] attribution, int channels, int height, int width) {
        int plane = height * width;
        double[] sum = new double[plane];
        for (int c = 0; c < channels; c++) {
            for (int p = 0; p < plane; p++) {
                sum[p] += attribution[c * plane + p];
            }
        }
        double maxAbs = 0;
        for (double s : sum) {
            if (Double.isFinite(s)) {
                maxAbs = Math.max(maxAbs, Math.abs(s));
            }
        }
        int[] rgb = new int[plane];
        for (int p = 0; p < plane; p++) {
            double s = sum[p];
            if (!Double.isFinite(s)) {
                rgb[p] = MID_GREY;
            } else if (maxAbs == 0) {
                rgb[p] = WHITE;
            } else {
                rgb[p] = diverging(s / maxAbs);
            }
        }
        return rgb;
    }

    /** Maps t in [-1, 1] to blue..white..red. */
    static int diverging(double t) {
        double m = Math.min(1.0, Math.abs(t));
        int fade = (int) Math.round(255 * (1 - m));
        return t >= 0 ? (255 << 16) | (fade << 8) | fade : (fade << 16) | (fade << 8) | 255;
    }

    private static double[] finiteRange(float[] data, int from, int to) {
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = from; i < to; i++) {
            float v = data[i];
            if (Float.isFinite(v)) {
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
        }
        return new double[] {min, max};
    }

    private static int toByte(float v, double[] range) {
        double span = range[1] - range[0];
        // A constant image carries no contrast; grey says so better than all-black would.
        if (!(span > 0) || !Double.isFinite(span)) {
            return 0x80;
        }
        long b = Math.round((v - range[0]) / span * 255);
        return (int) Math.max(0, Math.min(255, b));
    }

    // The pixels are written into the image's int array (TYPE_INT_RGB: 0xRRGGBB per pixel), which is
    // what setRGB stores through the colour model, pixel by pixel, at several times the cost in a cold
    // JVM (a tenth of the bundled example's start-up went to setRGB).

    private static int[] pixels(BufferedImage out) {
        return ((java.awt.image.DataBufferInt) out.getRaster().getDataBuffer()).getData();
    }

    private static void blitScaled(BufferedImage out, int[] rgb, int height, int width, int scale,
                                   int x0, int y0) {
        int[] px = pixels(out);
        int stride = out.getWidth();
        int rowLength = width * scale;
        for (int y = 0; y < height; y++) {
            int first = (y0 + y * scale) * stride + x0;
            for (int x = 0; x < width; x++) {
                java.util.Arrays.fill(px, first + x * scale, first + (x + 1) * scale, rgb[y * width + x] & 0xFFFFFF);
            }
            for (int dy = 1; dy < scale; dy++) {
                System.arraycopy(px, first, px, first + dy * stride, rowLength);
            }
        }
    }

    private static void fill(BufferedImage out, int x0, int y0, int w, int h, int rgb) {
        int[] px = pixels(out);
        int stride = out.getWidth();
        for (int y = y0; y < y0 + h; y++) {
            java.util.Arrays.fill(px, y * stride + x0, y * stride + x0 + w, rgb & 0xFFFFFF);
        }
    }

    private static void drawLegendBar(BufferedImage out, int x0, int y0, int w, int h) {
        // Leave room at both ends for the "-" and "+" labels drawn in drawText.
        int inset = Math.min(14, w / 4);
        int barW = w - 2 * inset;
        if (barW <= 1 || h <= 0) {
            return;
        }
        int[] px = pixels(out);
        int stride = out.getWidth();
        for (int i = 0; i < barW; i++) {
            int c = diverging(2.0 * i / (barW - 1) - 1.0) & 0xFFFFFF;
            for (int y = y0; y < y0 + h; y++) {
                px[y * stride + x0 + inset + i] = c;
            }
        }
    }

    private static void drawText(BufferedImage out, String caption, int panelW, int panelH) {
        Graphics2D g = out.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING,
                    RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.setColor(Color.BLACK);
            g.setClip(0, panelH, out.getWidth(), CAPTION_HEIGHT);
            g.drawString(caption, 4, panelH + CAPTION_HEIGHT - 6);
            g.setClip(null);

            int baseline = panelH + CAPTION_HEIGHT + LEGEND_HEIGHT - 3;
            g.setColor(Color.BLUE);
            g.drawString("\u2212", panelW + GAP + 2, baseline);
            g.setColor(Color.RED);
            g.drawString("+", 2 * panelW + GAP - 10, baseline);
            g.setColor(Color.DARK_GRAY);
            g.drawString("input", 4, baseline);
        } catch (RuntimeException | LinkageError | InternalError e) {
            // Minimal JREs without fontconfig fail inside the font stack; the picture is still
            // useful without its labels, so degrade rather than lose the whole report.
        } finally {
            g.dispose();
        }
    }
}
