package dev.kxai.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AttributionSummaryTest {

    private static float[] hot(int channels, int height, int width, int row, int col, float v) {
        float[] a = new float[channels * height * width];
        a[row * width + col] = v;
        return a;
    }

    @Test
    void centroidOfSingleHotPixelIsThatPixel() {
        AttributionSummary s = AttributionSummary.of(hot(1, 8, 8, 3, 5, 2f), 1, 8, 8);
        assertEquals(3.0, s.centroidRow(), 1e-12);
        assertEquals(5.0, s.centroidCol(), 1e-12);
    }

    @Test
    void centroidUsesAbsoluteMassAcrossChannels() {
        // Equal mass at (0,0) (negative, channel 1) and (0,4) (positive, channel 0).
        float[] a = new float[2 * 5 * 5];
        a[4] = 1f;
        a[25] = -1f;
        AttributionSummary s = AttributionSummary.of(a, 2, 5, 5);
        assertEquals(0.0, s.centroidRow(), 1e-12);
        assertEquals(2.0, s.centroidCol(), 1e-12);
        assertEquals("upper-centre", s.topRegion());
    }

    @Test
    void topRegionForCornersAndCentre() {
        assertEquals("upper-left", AttributionSummary.of(hot(1, 8, 8, 0, 0, 1f), 1, 8, 8).topRegion());
        assertEquals("upper-right", AttributionSummary.of(hot(1, 8, 8, 0, 7, 1f), 1, 8, 8).topRegion());
        assertEquals("lower-left", AttributionSummary.of(hot(1, 8, 8, 7, 0, 1f), 1, 8, 8).topRegion());
        assertEquals("lower-right", AttributionSummary.of(hot(3, 8, 8, 7, 7, -1f), 3, 8, 8).topRegion());
        assertEquals("centre", AttributionSummary.of(hot(1, 9, 9, 4, 4, 1f), 1, 9, 9).topRegion());
        assertEquals("centre-right", AttributionSummary.of(hot(1, 9, 9, 4, 8, 1f), 1, 9, 9).topRegion());
    }

    @Test
    void singleHotPixelAmongHundredFillsTopDecile() {
        AttributionSummary s = AttributionSummary.of(hot(1, 10, 10, 6, 2, 4f), 1, 10, 10);
        assertEquals(1.0, s.fractionInTopDecile(), 1e-12);
    }

    @Test
    void uniformAttributionPutsTenPercentInTopDecile() {
        float[] a = new float[100];
        java.util.Arrays.fill(a, 0.5f);
        AttributionSummary s = AttributionSummary.of(a, 1, 10, 10);
        assertEquals(0.1, s.fractionInTopDecile(), 1e-9);
        assertEquals(4.5, s.centroidRow(), 1e-9);
        assertEquals("centre", s.topRegion());
    }

    @Test
    void massesSplitBySign() {
        float[] a = {1f, 2f, -0.5f, 0f, -1f, 3f};
        AttributionSummary s = AttributionSummary.of(a, 1, 2, 3);
        assertEquals(4.5, s.total(), 1e-9);
        assertEquals(6.0, s.positiveMass(), 1e-9);
        assertEquals(1.5, s.negativeMass(), 1e-9);
    }

    @Test
    void allZeroGivesNaNCentroidAndNoRegion() {
        AttributionSummary s = AttributionSummary.of(new float[64], 1, 8, 8);
        assertTrue(Double.isNaN(s.centroidRow()));
        assertTrue(Double.isNaN(s.centroidCol()));
        assertTrue(Double.isNaN(s.fractionInTopDecile()));
        assertEquals("none", s.topRegion());
        assertEquals(0.0, s.total());
        assertTrue(s.describe().contains("no attribution"), s.describe());
    }

    @Test
    void nanEntriesAreIgnored() {
        float[] a = hot(1, 8, 8, 2, 2, 1f);
        a[63] = Float.NaN;
        AttributionSummary s = AttributionSummary.of(a, 1, 8, 8);
        assertEquals(2.0, s.centroidRow(), 1e-12);
        assertEquals(1.0, s.total(), 1e-12);
    }

    @Test
    void describeIsOneFormattedLine() {
        float[] a = hot(1, 10, 10, 0, 0, 3f);
        a[1] = -0.5f;
        String line = AttributionSummary.of(a, 1, 10, 10).describe();
        assertTrue(line.startsWith("mass +3.00/-0.50, centred at (0.0, 0.1) upper-left"), line);
        assertTrue(line.endsWith("top 10% of pixels hold 100%"), line);
        assertTrue(!line.contains("\n"), line);
    }

    @Test
    void wrongLengthNamesBothLengths() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AttributionSummary.of(new float[50], 1, 8, 8));
        assertTrue(e.getMessage().contains("64") && e.getMessage().contains("50"), e.getMessage());
    }
}
