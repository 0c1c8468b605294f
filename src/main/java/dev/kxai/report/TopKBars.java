package dev.kxai.report;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Locale;

/**
 * A horizontal bar chart of the k features with the largest |attribution| (tabular models), largest
 * first: red bars to the right for positive values, blue to the left for negative, from a zero line.
 * Its size is bounded whatever the number of features: {@link #WIDTH} px wide and
 * {@link #ROW_HEIGHT} px per bar, at most {@link #MAX_K} bars.
 */
public final class TopKBars {
    static {
        Png.init();
    }

    public static final int WIDTH = 640;
    public static final int ROW_HEIGHT = 18;
    public static final int MAX_K = 50;
    public static final int DEFAULT_K = 20;
    static final int TOP = 26;
    static final int BOTTOM = 8;
    static final int LABEL_W = 170;
    static final int VALUE_W = 80;

    private TopKBars() {
    }

    /** Indices of the k largest |values| (finite ones first), largest first; ties by index. */
    public static int[] topK(float[] values, int k) {
        Integer[] idx = new Integer[values.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, Comparator.<Integer>comparingDouble(i -> Float.isFinite(values[i]) ? -Math.abs(values[i])
                : Double.POSITIVE_INFINITY).thenComparingInt(i -> i));
        int n = Math.min(Math.min(k, MAX_K), values.length);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = idx[i];
        }
        return out;
    }

    /** The chart of the top {@code k} of {@code values}; names null: "feature i". */
    public static BufferedImage render(float[] values, String[] names, int k, String title) {
        if (values == null || values.length == 0) {
            throw new IllegalArgumentException("no values to chart");
        }
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        if (names != null && names.length != values.length) {
            throw new IllegalArgumentException(names.length + " names for " + values.length + " values");
        }
        int[] top = topK(values, k);
        double max = 0;
        for (int i : top) {
            if (Float.isFinite(values[i])) {
                max = Math.max(max, Math.abs(values[i]));
            }
        }
        int h = TOP + top.length * ROW_HEIGHT + BOTTOM;
        BufferedImage out = new BufferedImage(WIDTH, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, h);
            int plotW = WIDTH - LABEL_W - VALUE_W;
            int zero = LABEL_W + plotW / 2;
            g.setColor(Color.GRAY);
            g.fillRect(zero, TOP - 4, 1, top.length * ROW_HEIGHT + 4);
            for (int r = 0; r < top.length; r++) {
                float v = values[top[r]];
                int y = TOP + r * ROW_HEIGHT + 2;
                if (!Float.isFinite(v)) {
                    g.setColor(new Color(AttributionImage.MID_GREY));
                    g.fillRect(zero - plotW / 2, y, plotW, ROW_HEIGHT - 4);
                    continue;
                }
                int len = max > 0 ? (int) Math.round(Math.abs(v) / max * (plotW / 2 - 2)) : 0;
                g.setColor(new Color(v >= 0 ? Heatmap.diverging(0.85) : Heatmap.diverging(-0.85)));
                g.fillRect(v >= 0 ? zero + 1 : zero - len, y, Math.max(len, 1), ROW_HEIGHT - 4);
            }
            text(g, values, names, top, title, zero);
        } finally {
            g.dispose();
        }
        return out;
    }

    private static void text(Graphics2D g, float[] values, String[] names, int[] top, String title, int zero) {
        try {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            g.setColor(Color.BLACK);
            g.drawString(title == null ? "" : title, 4, 14);
            for (int r = 0; r < top.length; r++) {
                int y = TOP + r * ROW_HEIGHT + ROW_HEIGHT - 5;
                String name = names != null ? names[top[r]] : "feature " + top[r];
                g.setClip(0, 0, LABEL_W - 6, 10_000);
                g.drawString(name, 4, y);
                g.setClip(null);
                g.drawString(String.format(Locale.ROOT, "%+.3g", values[top[r]]), WIDTH - VALUE_W + 4, y);
            }
        } catch (RuntimeException | LinkageError | InternalError e) {
            // no fonts: bars without labels
        }
    }

    public static void writePng(Path file, float[] values, String[] names, int k, String title) throws IOException {
        Png.write(file, render(values, names, k, title));
    }
}
