package dev.kxai.report;

import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;

/**
 * A few numbers that say how much attribution an example has and where it sits.
 *
 * <p>Spatial quantities work on per-pixel mass: the sum over channels of |attribution|. Absolute
 * values are summed (rather than taking |sum|) so that opposite-signed channels at one pixel do
 * not cancel out and hide a pixel the model clearly reacts to. Non-finite entries are ignored
 * everywhere, so one NaN does not turn the whole summary into NaN.
 *
 * @param total sum of all attribution values
 * @param positiveMass sum of the positive values
 * @param negativeMass sum of the absolute values of the negative values (so it is &ge; 0)
 * @param centroidRow row of the centre of mass of per-pixel mass, in pixel coordinates (pixel
 *     centres at integers); NaN if there is no mass
 * @param centroidCol column of that centre of mass; NaN if there is no mass
 * @param topRegion cell of a 3x3 grid holding the centroid: "upper-left", "upper-centre",
 *     "upper-right", "centre-left", "centre", "centre-right", "lower-left", "lower-centre",
 *     "lower-right", or "none" if there is no mass
 * @param fractionInTopDecile share of the total mass carried by the ceil(10%) of pixels with the
 *     largest mass, in [0, 1]; NaN if there is no mass
 */
public record AttributionSummary(double total, double positiveMass, double negativeMass,
                                 double centroidRow, double centroidCol, String topRegion,
                                 double fractionInTopDecile) {

    private static final String[] ROW_NAMES = {"upper", "centre", "lower"};
    private static final String[] COL_NAMES = {"left", "centre", "right"};

    public AttributionSummary {
        Objects.requireNonNull(topRegion, "topRegion");
    }

    /**
     * Summarises one example's attribution in CHW layout.
     *
     * @throws IllegalArgumentException if the length is not channels*height*width or the shape is
     *     not positive
     */
    public static AttributionSummary of(float[] attribution, int channels, int height, int width) {
        Chw.checkLength("attribution", attribution, channels, height, width);
        int plane = height * width;
        double positive = 0;
        double negative = 0;
        double[] mass = new double[plane];
        for (int c = 0; c < channels; c++) {
            for (int p = 0; p < plane; p++) {
                float v = attribution[c * plane + p];
                if (!Float.isFinite(v)) {
                    continue;
                }
                if (v > 0) {
                    positive += v;
                } else {
                    negative -= v;
                }
                mass[p] += Math.abs(v);
            }
        }

        double totalMass = 0;
        double rowMoment = 0;
        double colMoment = 0;
        for (int p = 0; p < plane; p++) {
            totalMass += mass[p];
            rowMoment += mass[p] * (p / width);
            colMoment += mass[p] * (p % width);
        }
        if (!(totalMass > 0) || !Double.isFinite(totalMass)) {
            return new AttributionSummary(positive - negative, positive, negative,
                    Double.NaN, Double.NaN, "none", Double.NaN);
        }
        double row = rowMoment / totalMass;
        double col = colMoment / totalMass;

        // ceil so that tiny images (fewer than 10 pixels) still count their single hottest pixel.
        int k = Math.max(1, (int) Math.ceil(plane / 10.0));
        double[] sorted = mass.clone();
        Arrays.sort(sorted);
        double top = 0;
        for (int i = plane - k; i < plane; i++) {
            top += sorted[i];
        }
        double fraction = Math.min(1.0, top / totalMass);

        return new AttributionSummary(positive - negative, positive, negative, row, col,
                region(row, col, height, width), fraction);
    }

    private static String region(double row, double col, int height, int width) {
        String r = ROW_NAMES[band(row, height)];
        String c = COL_NAMES[band(col, width)];
        if (r.equals("centre") && c.equals("centre")) {
            return "centre";
        }
        return r + "-" + c;
    }

    /** Third of [0, size) holding the pixel-centre coordinate {@code pos}. */
    private static int band(double pos, int size) {
        // +0.5 turns a pixel-centre coordinate into a position along the pixel edges [0, size].
        int b = (int) Math.floor((pos + 0.5) * 3 / size);
        return Math.max(0, Math.min(2, b));
    }

    /**
     * One short human-readable line, e.g. {@code mass +3.21/-0.45, centred at (3.2, 4.1)
     * upper-left, top 10% of pixels hold 62%}. Coordinates are (row, col).
     */
    public String describe() {
        if (Double.isNaN(centroidRow)) {
            return String.format(Locale.ROOT, "mass +%.2f/-%.2f, no attribution to locate",
                    positiveMass, negativeMass);
        }
        return String.format(Locale.ROOT,
                "mass +%.2f/-%.2f, centred at (%.1f, %.1f) %s, top 10%% of pixels hold %.0f%%",
                positiveMass, negativeMass, centroidRow, centroidCol, topRegion,
                fractionInTopDecile * 100);
    }
}
