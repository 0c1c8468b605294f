package dev.kxai.report;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.Arrays;
import java.util.Locale;

/**
 * Heat-map overlays of an attribution on the image it explains, with a colour bar.
 *
 * <p>The attribution is summed over channels per pixel (Captum's {@code visualize_image_attr});
 * {@link Sign#ABSOLUTE} then takes its absolute value. Values are scaled as Captum does
 * ({@code outlier_perc} 2): by the |value| at which the cumulative sum of the sorted |values|
 * reaches 98% of the total, clipped to [−1, 1]. Signed maps use a diverging colormap (matplotlib's
 * RdBu reversed: blue negative, white 0, red positive), absolute maps a sequential one (viridis).
 * Blending: out = (1 − a)·image + a·colour with a = alpha·|t|, so pixels without attribution show
 * the image unchanged.
 *
 * <p>Sizes are bounded: the panel is the image upscaled by an integer factor (nearest neighbour) to
 * at least {@link #MIN_SIDE} px, or scaled down to at most {@link #MAX_SIDE} px on its longer side.
 */
public final class Heatmap {
    static {
        Png.init();
    }

    /** Whether the sign is kept. */
    public enum Sign { SIGNED, ABSOLUTE }

    public static final int MIN_SIDE = 160;
    public static final int MAX_SIDE = 512;
    static final int CAPTION_HEIGHT = 18;
    static final int BAR_HEIGHT = 34;
    /** Captum's default outlier percentage for the colour scale. */
    public static final double OUTLIER_PERC = 2;

    private static final int[][] RDBU_R = {
        {5, 48, 97}, {33, 102, 172}, {67, 147, 195}, {146, 197, 222}, {209, 229, 240}, {247, 247, 247},
        {253, 219, 199}, {244, 165, 130}, {214, 96, 77}, {178, 24, 43}, {103, 0, 31}};
    private static final int[][] VIRIDIS = {
        {68, 1, 84}, {72, 40, 120}, {62, 74, 137}, {49, 104, 142}, {38, 130, 142}, {31, 158, 137},
        {53, 183, 121}, {109, 205, 89}, {180, 222, 44}, {253, 231, 37}};

    private Heatmap() {
    }

    /** Per pixel: the attribution summed over channels (absolute value for ABSOLUTE); non-finite stays. */
    public static float[] combine(float[] attribution, int channels, int height, int width, Sign sign) {
        Chw.checkLength("attribution", attribution, channels, height, width);
        int plane = height * width;
        float[] out = new float[plane];
        for (int p = 0; p < plane; p++) {
            double s = 0;
            for (int c = 0; c < channels; c++) {
                s += attribution[c * plane + p];
            }
            out[p] = (float) (sign == Sign.ABSOLUTE ? Math.abs(s) : s);
        }
        return out;
    }

    /** Captum's {@code _cumulative_sum_threshold} of |values| at 100 − outlierPerc percent (finite values only). */
    public static double scale(float[] values, double outlierPerc) {
        double[] abs = new double[values.length];
        int n = 0;
        for (float v : values) {
            if (Float.isFinite(v)) {
                abs[n++] = Math.abs(v);
            }
        }
        if (n == 0) {
            return 0;
        }
        abs = Arrays.copyOf(abs, n);
        Arrays.sort(abs);
        double total = 0;
        for (double a : abs) {
            total += a;
        }
        double target = total * 0.01 * (100 - outlierPerc);
        double cum = 0;
        for (double a : abs) {
            cum += a;
            if (cum >= target) {
                return a;
            }
        }
        return abs[n - 1];
    }

    /** t in [−1, 1] → RdBu reversed. */
    public static int diverging(double t) {
        return ramp(RDBU_R, (Math.max(-1, Math.min(1, t)) + 1) / 2);
    }

    /** t in [0, 1] → viridis. */
    public static int sequential(double t) {
        return ramp(VIRIDIS, Math.max(0, Math.min(1, t)));
    }

    private static int ramp(int[][] anchors, double u) {
        double pos = u * (anchors.length - 1);
        int i = Math.min((int) pos, anchors.length - 2);
        double f = pos - i;
        int rgb = 0;
        for (int c = 0; c < 3; c++) {
            int v = (int) Math.round(anchors[i][c] + f * (anchors[i + 1][c] - anchors[i][c]));
            rgb = (rgb << 8) | v;
        }
        return rgb;
    }

    /** An RGB picture of a CHW input (min-max normalised; 1 channel or the channel mean: grey). */
    public static BufferedImage imageOf(float[] image, int channels, int height, int width) {
        Chw.checkLength("image", image, channels, height, width);
        int[] px = AttributionImage.inputPixels(image, channels, height, width);
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        out.setRGB(0, 0, width, height, px, 0, width);
        return out;
    }

    /**
     * The image with the attribution blended over it, at the image's own size (no bar, no caption).
     * The image must be height x width.
     */
    public static BufferedImage blend(BufferedImage image, float[] attribution, int channels, int height, int width,
            Sign sign, double alpha) {
        if (image.getWidth() != width || image.getHeight() != height) {
            throw new IllegalArgumentException("image is " + image.getWidth() + "x" + image.getHeight()
                    + " but the attribution " + width + "x" + height);
        }
        if (!(alpha >= 0 && alpha <= 1)) {
            throw new IllegalArgumentException("alpha must be in [0, 1], got " + alpha);
        }
        float[] v = combine(attribution, channels, height, width, sign);
        double s = scale(v, OUTLIER_PERC);
        int[] px = image.getRGB(0, 0, width, height, null, 0, width);
        for (int p = 0; p < px.length; p++) {
            int base = px[p] & 0xFFFFFF;
            if (!Float.isFinite(v[p])) {
                px[p] = AttributionImage.MID_GREY;
                continue;
            }
            double t = s > 0 ? Math.max(-1, Math.min(1, v[p] / s)) : 0;
            int colour = sign == Sign.SIGNED ? diverging(t) : sequential(t);
            double a = alpha * Math.abs(t);
            px[p] = mix(base, colour, a);
        }
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        out.setRGB(0, 0, width, height, px, 0, width);
        return out;
    }

    private static int mix(int base, int colour, double a) {
        int rgb = 0;
        for (int shift = 16; shift >= 0; shift -= 8) {
            double b = (base >> shift) & 0xFF;
            double c = (colour >> shift) & 0xFF;
            rgb |= ((int) Math.round((1 - a) * b + a * c)) << shift;
        }
        return rgb;
    }

    /**
     * The overlay panel (bounded size), a caption and a colour bar labelled with the scale: for a
     * signed map −s, 0, +s; for an absolute one 0 and s.
     */
    public static BufferedImage render(BufferedImage image, float[] attribution, int channels, int height, int width,
            Sign sign, double alpha, String caption) {
        BufferedImage blended = blend(image, attribution, channels, height, width, sign, alpha);
        double s = scale(combine(attribution, channels, height, width, sign), OUTLIER_PERC);
        BufferedImage panel = fit(blended);
        int w = Math.max(panel.getWidth(), MIN_SIDE);
        BufferedImage out = new BufferedImage(w, panel.getHeight() + CAPTION_HEIGHT + BAR_HEIGHT,
                BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, out.getWidth(), out.getHeight());
            g.drawImage(panel, 0, 0, null);
            int barY = panel.getHeight() + CAPTION_HEIGHT + 2;
            int inset = 6;
            int barW = w - 2 * inset;
            for (int i = 0; i < barW; i++) {
                double u = barW == 1 ? 0 : (double) i / (barW - 1);
                g.setColor(new Color(sign == Sign.SIGNED ? diverging(2 * u - 1) : sequential(u)));
                g.fillRect(inset + i, barY, 1, 12);
            }
            labels(g, caption, sign, s, panel.getHeight(), barY, inset, barW);
        } finally {
            g.dispose();
        }
        return out;
    }

    private static void labels(Graphics2D g, String caption, Sign sign, double s, int panelH, int barY, int inset,
            int barW) {
        try {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            g.setColor(Color.BLACK);
            g.drawString(caption == null ? "" : caption, 4, panelH + CAPTION_HEIGHT - 5);
            int y = barY + 12 + 12;
            String hi = String.format(Locale.ROOT, "%.2g", s);
            if (sign == Sign.SIGNED) {
                g.drawString("\u2212" + hi, inset, y);
                g.drawString("0", inset + barW / 2 - 3, y);
            } else {
                g.drawString("0", inset, y);
            }
            int tw = g.getFontMetrics().stringWidth(hi);
            g.drawString(sign == Sign.SIGNED ? "+" + hi : hi, inset + barW - tw - (sign == Sign.SIGNED ? 7 : 0), y);
        } catch (RuntimeException | LinkageError | InternalError e) {
            // no fonts on a minimal JRE: the picture without labels is still worth having
        }
    }

    /** The picture at report size: see {@link #fit}. */
    public static BufferedImage fitted(BufferedImage img) {
        return fit(img);
    }

    /** The picture scaled into [MIN_SIDE, MAX_SIDE]: integer nearest-neighbour upscale, or a bilinear downscale. */
    static BufferedImage fit(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        int larger = Math.max(w, h);
        int nw;
        int nh;
        Object interpolation;
        if (larger > MAX_SIDE) {
            double f = (double) MAX_SIDE / larger;
            nw = Math.max(1, (int) Math.round(w * f));
            nh = Math.max(1, (int) Math.round(h * f));
            interpolation = RenderingHints.VALUE_INTERPOLATION_BILINEAR;
        } else {
            int smaller = Math.min(w, h);
            int k = Math.max(1, Math.min((MIN_SIDE + smaller - 1) / smaller, MAX_SIDE / larger));
            if (k == 1) {
                return img;
            }
            nw = w * k;
            nh = h * k;
            interpolation = RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR;
        }
        BufferedImage out = new BufferedImage(nw, nh, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, interpolation);
            g.drawImage(img, 0, 0, nw, nh, null);
        } finally {
            g.dispose();
        }
        return out;
    }
}
