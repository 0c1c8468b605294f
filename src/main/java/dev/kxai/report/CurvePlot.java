package dev.kxai.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * A line plot of curves over the fraction axis [0, 1] (deletion and insertion curves): each
 * series' points are equally spaced from 0 to 1, drawn as a polyline with a legend. The y axis
 * spans [0, 1] when every value lies there (probabilities), else the values' range. Non-finite
 * points break a line rather than fail. Stateless and thread-safe.
 */
public final class CurvePlot {
    static {
        Png.init();
    }

    static final int WIDTH = 560;
    static final int HEIGHT = 400;
    private static final int LEFT = 60;
    private static final int RIGHT = 20;
    private static final int TOP = 50;
    private static final int BOTTOM = 48;

    private CurvePlot() {
    }

    /** One curve: its legend label, its points, its colour, and whether it is drawn dashed. */
    public record Series(String label, double[] y, Color color, boolean dashed) {
        public Series {
            if (y.length < 2) {
                throw new IllegalArgumentException("a curve needs at least 2 points, '" + label + "' has " + y.length);
            }
        }
    }

    public static BufferedImage render(String title, String xLabel, String yLabel, List<Series> series) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (Series s : series) {
            for (double v : s.y()) {
                if (Double.isFinite(v)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        if (!(lo <= hi)) {
            lo = 0;
            hi = 1;
        } else if (lo >= 0 && hi <= 1) {
            lo = 0;
            hi = 1;
        } else {
            double pad = Math.max((hi - lo) * 0.05, 1e-6);
            lo -= pad;
            hi += pad;
        }
        BufferedImage out = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            int pw = WIDTH - LEFT - RIGHT;
            int ph = HEIGHT - TOP - BOTTOM;
            g.setColor(new Color(0xE0E0E0));
            for (int i = 0; i <= 4; i++) {
                g.drawLine(LEFT + pw * i / 4, TOP, LEFT + pw * i / 4, TOP + ph);
                g.drawLine(LEFT, TOP + ph * i / 4, LEFT + pw, TOP + ph * i / 4);
            }
            g.setColor(Color.BLACK);
            g.drawRect(LEFT, TOP, pw, ph);
            for (Series s : series) {
                g.setColor(s.color());
                g.setStroke(s.dashed() ? new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f,
                        new float[] {6f, 4f}, 0f) : new BasicStroke(2f));
                Path2D.Double line = new Path2D.Double();
                boolean pen = false;
                double[] y = s.y();
                for (int k = 0; k < y.length; k++) {
                    if (!Double.isFinite(y[k])) {
                        pen = false;
                        continue;
                    }
                    double px = LEFT + pw * (double) k / (y.length - 1);
                    double py = TOP + ph * (hi - y[k]) / (hi - lo);
                    if (pen) {
                        line.lineTo(px, py);
                    } else {
                        line.moveTo(px, py);
                        pen = true;
                    }
                }
                g.draw(line);
            }
            labels(g, title, xLabel, yLabel, series, lo, hi, pw, ph);
        } finally {
            g.dispose();
        }
        return out;
    }

    private static void labels(Graphics2D g, String title, String xLabel, String yLabel, List<Series> series, double lo,
            double hi, int pw, int ph) {
        try {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.setColor(Color.BLACK);
            g.drawString(title == null ? "" : title, LEFT, 16);
            for (int i = 0; i <= 4; i++) {
                g.drawString(String.format(Locale.ROOT, "%.2f", i / 4.0), LEFT + pw * i / 4 - 12, TOP + ph + 16);
                g.drawString(String.format(Locale.ROOT, "%.3g", hi - (hi - lo) * i / 4), 4, TOP + ph * i / 4 + 4);
            }
            g.drawString(xLabel, LEFT + pw / 2 - 4 * xLabel.length(), HEIGHT - 10);
            g.drawString(yLabel, 4, TOP - 16);
            java.awt.FontMetrics fm = g.getFontMetrics();
            int widest = 0;
            for (Series s : series) {
                widest = Math.max(widest, fm.stringWidth(s.label()));
            }
            int x0 = LEFT + pw - widest - 30;
            g.setColor(Color.WHITE);
            g.fillRect(x0 - 6, TOP + 4, widest + 32, 16 * series.size() + 4);
            g.setColor(Color.LIGHT_GRAY);
            g.setStroke(new BasicStroke(1f));
            g.drawRect(x0 - 6, TOP + 4, widest + 32, 16 * series.size() + 4);
            int y = TOP + 20;
            for (Series s : series) {
                g.setColor(s.color());
                g.fillRect(x0, y - 7, 14, 3);
                g.setColor(Color.BLACK);
                g.drawString(s.label(), x0 + 20, y - 3);
                y += 16;
            }
        } catch (RuntimeException | LinkageError | InternalError e) {
            // Minimal JREs without fontconfig fail inside the font stack; the curves are still worth having.
        }
    }

    /** Writes {@link #render} output to {@code file} as PNG, creating missing parent folders. */
    public static void writePng(Path file, String title, String xLabel, String yLabel, List<Series> series)
            throws IOException {
        Png.write(file, render(title, xLabel, yLabel, series));
    }
}
