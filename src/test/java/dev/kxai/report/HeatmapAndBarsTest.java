package dev.kxai.report;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import org.junit.jupiter.api.Test;

/** Overlays, colour scales, bar charts, and the size bounds of every picture. */
class HeatmapAndBarsTest {
    @Test
    void scaleIsCaptumsCumulativeSumThreshold() {
        // |values| 1..100 sum to 5050; 98% is 4949; the running sum first reaches it at 99 (4950)
        float[] v = new float[100];
        for (int i = 0; i < 100; i++) {
            v[i] = (i % 2 == 0 ? 1 : -1) * (i + 1);
        }
        assertEquals(99, Heatmap.scale(v, 2), 0);
        assertEquals(0, Heatmap.scale(new float[] {0, 0, Float.NaN}, 2), 0);
    }

    @Test
    void overlaysBlendByMagnitudeAndKeepTheImageWhereThereIsNoAttribution() {
        BufferedImage grey = new BufferedImage(4, 2, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 2; y++) {
            for (int x = 0; x < 4; x++) {
                grey.setRGB(x, y, 0x808080);
            }
        }
        // one channel: +1 at (0,0), -1 at (1,0), 0 elsewhere
        float[] a = {1, -1, 0, 0, 0, 0, 0, 0};
        BufferedImage signed = Heatmap.blend(grey, a, 1, 2, 4, Heatmap.Sign.SIGNED, 1.0);
        assertEquals(Heatmap.diverging(1), signed.getRGB(0, 0) & 0xFFFFFF, "full alpha at the scale: the colour");
        assertEquals(Heatmap.diverging(-1), signed.getRGB(1, 0) & 0xFFFFFF);
        assertEquals(0x808080, signed.getRGB(2, 0) & 0xFFFFFF, "no attribution: the image unchanged");
        int red = (signed.getRGB(0, 0) >> 16) & 0xFF;
        int blue = signed.getRGB(1, 0) & 0xFF;
        assertTrue(red > 90 && blue > 90, "positive is red, negative blue");
        BufferedImage abs = Heatmap.blend(grey, a, 1, 2, 4, Heatmap.Sign.ABSOLUTE, 0.5);
        assertEquals(abs.getRGB(0, 0), abs.getRGB(1, 0), "absolute: the sign is gone");
        assertTrue(abs.getRGB(0, 0) != 0xFF808080, "blended at half alpha");
        // the sequential map runs dark to light
        int lo = Heatmap.sequential(0);
        int hi = Heatmap.sequential(1);
        assertTrue(luma(hi) > luma(lo) + 100, "viridis: dark to light");
    }

    @Test
    void renderedOverlaysAreBoundedAndCarryAColourBar() {
        BufferedImage small = new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB);
        BufferedImage r = Heatmap.render(small, new float[64], 1, 8, 8, Heatmap.Sign.SIGNED, 0.7, "x");
        assertEquals(160, r.getWidth(), "8 px upscaled x20");
        assertEquals(160 + Heatmap.CAPTION_HEIGHT + Heatmap.BAR_HEIGHT, r.getHeight());
        // the bar: blue at its left end, red at its right end
        int barY = 160 + Heatmap.CAPTION_HEIGHT + 6;
        assertEquals(Heatmap.diverging(-1), r.getRGB(6, barY) & 0xFFFFFF);
        assertEquals(Heatmap.diverging(1), r.getRGB(160 - 7, barY) & 0xFFFFFF);
        BufferedImage big = new BufferedImage(1200, 900, BufferedImage.TYPE_INT_RGB);
        BufferedImage b = Heatmap.render(big, new float[1200 * 900], 1, 900, 1200, Heatmap.Sign.ABSOLUTE, 0.7, "x");
        assertEquals(Heatmap.MAX_SIDE, b.getWidth(), "scaled down to the cap");
    }

    @Test
    void barsShowTheTopKWhateverTheNumberOfFeatures() {
        float[] v = new float[4000];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) Math.sin(i) * i / 4000f;
        }
        v[1234] = -5f;
        v[77] = 4f;
        int[] top = TopKBars.topK(v, 3);
        assertEquals(1234, top[0]);
        assertEquals(77, top[1]);
        BufferedImage img = TopKBars.render(v, null, 20, "t");
        assertEquals(TopKBars.WIDTH, img.getWidth());
        assertEquals(TopKBars.TOP + 20 * TopKBars.ROW_HEIGHT + TopKBars.BOTTOM, img.getHeight());
        assertEquals(TopKBars.MAX_K, TopKBars.topK(v, 1000).length, "k is capped");
        // the first bar (negative) is drawn left of the zero line in blue, the second right of it in red
        int plotW = TopKBars.WIDTH - TopKBars.LABEL_W - TopKBars.VALUE_W;
        int zero = TopKBars.LABEL_W + plotW / 2;
        int y0 = TopKBars.TOP + TopKBars.ROW_HEIGHT / 2;
        assertEquals(Heatmap.diverging(-0.85), img.getRGB(zero - 20, y0) & 0xFFFFFF);
        assertEquals(Heatmap.diverging(0.85), img.getRGB(zero + 20, y0 + TopKBars.ROW_HEIGHT) & 0xFFFFFF);
    }

    @Test
    void theSideBySidePictureOfAWideInputIsBounded() {
        // the old picture of a 1 x 4000 row was 160 px high and 2 x 640,000 px wide
        BufferedImage row = AttributionImage.render(new float[4000], new float[4000], 1, 1, 4000, "row");
        assertTrue(row.getWidth() <= 2 * AttributionImage.MAX_PANEL_SIDE + AttributionImage.GAP, "" + row.getWidth());
        BufferedImage big = AttributionImage.render(new float[3000 * 10], new float[3000 * 10], 1, 10, 3000, "wide");
        assertTrue(big.getWidth() <= 2 * AttributionImage.MAX_PANEL_SIDE + AttributionImage.GAP, "" + big.getWidth());
        assertArrayEquals(new int[] {20}, new int[] {AttributionImage.scaleFor(8, 8)}, "small inputs still upscaled");
    }

    @Test
    void theHtmlEscapesTextAndEmbedsPngs() {
        HtmlReport r = new HtmlReport("<t>").param("a&b", "\"q\"");
        r.add(new HtmlReport.Example("e", java.util.List.of(HtmlReport.Picture.of("c", new BufferedImage(3, 2,
                BufferedImage.TYPE_INT_RGB))), java.util.Map.of("k", "<v>")));
        String html = r.html();
        assertTrue(html.contains("<title>&lt;t&gt;</title>") && html.contains("a&amp;b") && html.contains("&quot;q&quot;")
                && html.contains("&lt;v&gt;"), html);
        assertTrue(html.contains("width=\"3\" height=\"2\" src=\"data:image/png;base64,iVBORw0KGgo"), "a PNG data URI");
    }

    private static int luma(int rgb) {
        return (((rgb >> 16) & 0xFF) * 299 + ((rgb >> 8) & 0xFF) * 587 + (rgb & 0xFF) * 114) / 1000;
    }
}
