package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link SimdLoops.Warming}: scalar loops for the first multiply-adds of a process, then the SIMD
 * loops, with the same bits either side of the switch (surefire runs the other tests with
 * -Dkxai.simd.warmup=0, so they exercise the SIMD loops from the start).
 */
class SimdWarmupTest {
    @Test
    void switchesAfterTheThresholdAndGivesTheScalarBitsThroughout() {
        SimdLoops.Warming warming = new SimdLoops.Warming(100_000);
        SimdLoops scalar = new SimdLoops.Scalar("reference");
        Random r = new Random(3);
        int span = 100;
        int planes = 5;
        int taps = 9;
        int[] off = new int[taps];
        for (int t = 0; t < taps; t++) {
            off[t] = r.nextInt(20);
        }
        float[] w = new float[taps * planes];
        float[] x = new float[span + 20];
        for (int i = 0; i < w.length; i++) {
            w[i] = r.nextFloat() * 2 - 1;
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat() * 2 - 1;
        }
        // 4500 multiply-adds per call: the switch falls after the 22nd call
        boolean sawScalar = false;
        for (int call = 0; call < 40; call++) {
            sawScalar |= !warming.switched();
            float[] got = new float[planes * span];
            float[] want = new float[planes * span];
            warming.add(got, 0, span, planes, x, 0, span, w, off);
            scalar.add(want, 0, span, planes, x, 0, span, w, off);
            assertArrayEquals(want, got, "call " + call);
        }
        assertTrue(sawScalar);
        assertTrue(warming.switched());
        assertTrue(warming.describe().startsWith("SIMD") || warming.describe().startsWith("scalar"), warming.describe());
    }

    @Test
    void belowTheThresholdTheVectorLoopsAreNotUsed() {
        SimdLoops.Warming warming = new SimdLoops.Warming(Long.MAX_VALUE);
        float[] in = {-1, 2, -0f, Float.NaN, 3};
        float[] out = new float[in.length];
        warming.relu(in, out, 0, in.length);
        assertArrayEquals(new float[] {0, 2, 0, 0, 3}, out);
        assertFalse(warming.switched());
    }
}
