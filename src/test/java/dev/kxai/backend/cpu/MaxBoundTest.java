package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.ExactValues;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link ExactValues#maxBound} is the threshold the ReLU and max-pool passes scan with: it must be
 * at least every element's own bound over the range, for each implementation that answers it
 * without asking the elements (convolution, Gemm, and the sums and ReLUs built on them), or a
 * near-kink element would be skipped and decided on its float value.
 */
class MaxBoundTest {
    private static void assertCovers(ExactValues e, float[] data, Random r, String what) {
        assertTrue(e.knowsMaxBound(), what + " answers maxBound from its own bounds");
        for (int t = 0; t < 200; t++) {
            int from = r.nextInt(data.length);
            int to = from + 1 + r.nextInt(data.length - from);
            float most = e.maxBound(data, from, to);
            for (int i = from; i < to; i++) {
                float b = e.bound(i, data[i]);
                int at = i;
                assertTrue(b <= most, () -> what + ": element " + at + "'s bound " + b + " above maxBound " + most
                        + " of [" + from + ", " + to + ")");
            }
        }
    }

    private static Tensor random(Random r, int[] shape, double scale, boolean relu) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            double g = r.nextGaussian() * scale;
            v[i] = (float) (relu ? Math.max(0, g) : g);
        }
        return new Tensor(shape, v);
    }

    @Test
    void convolutionGemmSumAndReluBoundTheirElements() {
        Random r = new Random(21);
        for (boolean pointwise : new boolean[] {false, true}) {
            int k = pointwise ? 1 : 3;
            Op.Conv op = new Op.Conv(new int[] {k, k}, new int[] {1, 1}, new int[] {k / 2, k / 2, k / 2, k / 2},
                    new int[] {1, 1}, 1, "NOTSET");
            Node node = new Node("conv", "Conv", op, List.of("x", "w", "b"), "y");
            Tensor x = random(r, new int[] {2, 40, 7, 7}, 1, true);
            Tensor w = random(r, new int[] {24, 40, k, k}, 0.1, false);
            Tensor b = random(r, new int[] {24}, 0.1, false);
            Tensor y = ConvOps.forward(node, op, x, w, b);
            assertNotNull(y.exact());
            assertCovers(y.exact(), y.data(), r, "conv " + k + "x" + k);
            Tensor y2 = ConvOps.forward(node, op, random(r, new int[] {2, 40, 7, 7}, 1, true), w, b);
            float[] sum = new float[y.size()];
            for (int i = 0; i < sum.length; i++) {
                sum[i] = y.data()[i] + y2.data()[i];
            }
            ExactValues s = ExactDecisions.sum(y, y2, sum);
            assertCovers(s, sum, r, "sum of two convs");
            Tensor st = new Tensor(y.shape(), sum).withExact(s);
            float[] relu = new float[sum.length];
            for (int i = 0; i < relu.length; i++) {
                relu[i] = Math.max(0f, sum[i]);
            }
            assertCovers(ExactDecisions.relu(st, relu), relu, r, "relu of the sum");
        }
        Op.Gemm gemm = new Op.Gemm(1.5f, 0.5f, false, true);
        Tensor a = random(r, new int[] {6, 300}, 1, true);
        Tensor bw = random(r, new int[] {50, 300}, 0.1, false);
        Tensor c = random(r, new int[] {50}, 1, false);
        Tensor y = DenseOps.gemm(new Node("fc", "Gemm", gemm, List.of("a", "b", "c"), "y"), gemm, a, bw, c);
        assertNotNull(y.exact());
        assertCovers(y.exact(), y.data(), r, "gemm");
    }
}
