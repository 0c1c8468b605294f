package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The broadcast loops for an operand constant over runs of elements (a squeeze-excitation scale
 * [N, C, 1, 1], a per-channel [C, 1, 1]) give the index-array loop's bits, forward and summed back.
 */
class BroadcastBlockTest {
    private static Tensor random(int[] shape, long seed) {
        Random r = new Random(seed);
        float[] v = new float[Shapes.intSize(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return new Tensor(shape, v);
    }

    /** The index-array computation the fast loops replace. */
    private static float[] generic(ElementwiseOps.Binary kind, Tensor a, Tensor b, int[] out) {
        int[] ia = ElementwiseOps.broadcastIndex(a.shape(), out);
        int[] ib = ElementwiseOps.broadcastIndex(b.shape(), out);
        float[] y = new float[Shapes.intSize(out)];
        for (int i = 0; i < y.length; i++) {
            y[i] = ElementwiseOps.apply(kind, a.data()[ia[i]], b.data()[ib[i]]);
        }
        return y;
    }

    @Test
    void blockOperandsMatchTheIndexLoopBitForBit() {
        int[] out = {3, 5, 4, 6};
        int[][] small = {{3, 5, 1, 1}, {1, 5, 1, 1}, {5, 1, 1}, {3, 1, 1, 1}, {3, 5, 4, 1}, {5, 4, 1}};
        long seed = 1;
        for (int[] s : small) {
            assertNotNull(ElementwiseOps.block(s, out), java.util.Arrays.toString(s));
            Tensor big = random(out, seed++);
            Tensor b = random(s, seed++);
            for (ElementwiseOps.Binary kind : new ElementwiseOps.Binary[] {ElementwiseOps.Binary.MUL,
                ElementwiseOps.Binary.ADD, ElementwiseOps.Binary.SUB, ElementwiseOps.Binary.DIV}) {
                assertArrayEquals(generic(kind, big, b, out), ElementwiseOps.binary(kind, big, b, out).data(), 0f,
                        kind + " big op " + java.util.Arrays.toString(s));
                assertArrayEquals(generic(kind, b, big, out), ElementwiseOps.binary(kind, b, big, out).data(), 0f,
                        kind + " " + java.util.Arrays.toString(s) + " op big");
            }
            // the gradient summed onto the small operand: same sums in the same order
            float[] g = random(out, seed++).data();
            int[] idx = ElementwiseOps.broadcastIndex(s, out);
            float[] want = new float[Shapes.intSize(s)];
            for (int i = 0; i < g.length; i++) {
                want[idx[i]] += 0.5f * g[i];
            }
            assertArrayEquals(want, ElementwiseOps.reduceTo(g, out, s, 0.5f).data(), 0f, java.util.Arrays.toString(s));
        }
        // not a single run of the output's axes: the general loop
        assertNull(ElementwiseOps.block(new int[] {3, 1, 4, 1}, out));
        assertNull(ElementwiseOps.block(new int[] {4, 6}, out)); // trailing: its own loop
        assertEquals(24, ElementwiseOps.block(new int[] {3, 5, 1, 1}, out)[0]);
    }
}
