package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The max-pool's window loop (maximum first, then the first tap holding it) against the plain
 * compare-as-you-go twin, on data full of what decides differently: exact ties (the first tap wins),
 * −0 beside +0, NaN (propagates, the first NaN wins), −∞, and every geometry the general path takes
 * (pads, strides, dilation, ceil mode).
 */
class MaxPoolTwinTest {
    private static final float[] SPECIAL = {0f, -0f, 1f, 1f, Float.NaN, Float.NEGATIVE_INFINITY, -1f};

    @Test
    void winnersMatchTheCompareAsYouGoTwin() {
        Random r = new Random(41);
        int[][] geometries = { // kh kw sh sw pt pl pb pr dh dw ceil
            {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0}, {2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0}, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
            {3, 2, 2, 1, 1, 0, 1, 1, 2, 1, 0}, {3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1}, {5, 5, 3, 3, 2, 2, 2, 2, 1, 1, 1}};
        for (int[] g : geometries) {
            Op.MaxPool op = new Op.MaxPool(new int[] {g[0], g[1]}, new int[] {g[2], g[3]},
                    new int[] {g[4], g[5], g[6], g[7]}, new int[] {g[8], g[9]}, g[10] == 1, "NOTSET");
            int n = 2;
            int c = 3;
            int h = 11;
            int wd = 9;
            float[] x = new float[n * c * h * wd];
            for (int i = 0; i < x.length; i++) {
                x[i] = r.nextInt(3) == 0 ? SPECIAL[r.nextInt(SPECIAL.length)] : r.nextInt(4) - 2; // many ties
            }
            var res = PoolOps.maxForward(new Node("pool", "MaxPool", op, List.of("x"), "y"), op,
                    new dev.kxai.tensor.Tensor(new int[] {n, c, h, wd}, x.clone()));
            Window w = Window.of("pool", op.kernel(), op.strides(), op.pads(), op.dilations(), op.autoPad(), op.ceilMode(),
                    h, wd);
            int o = 0;
            for (int p = 0; p < n * c; p++) {
                for (int oy = 0; oy < w.outH(); oy++) {
                    for (int ox = 0; ox < w.outW(); ox++, o++) {
                        int best = -1;
                        for (int i = 0; i < w.kh(); i++) {
                            for (int j = 0; j < w.kw(); j++) {
                                int iy = oy * w.sh() - w.padTop() + i * w.dh();
                                int ix = ox * w.sw() - w.padLeft() + j * w.dw();
                                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) {
                                    continue;
                                }
                                int k = p * h * wd + iy * wd + ix;
                                float v = x[k];
                                if (best < 0 || v > x[best] || (v != v && x[best] == x[best])) {
                                    best = k;
                                }
                            }
                        }
                        assertEquals(best, res.argmax()[o], "geometry " + java.util.Arrays.toString(g) + " output " + o);
                        assertEquals(Float.floatToRawIntBits(x[best]), Float.floatToRawIntBits(res.output().data()[o]),
                                "value bits, output " + o);
                    }
                }
            }
        }
    }
}
