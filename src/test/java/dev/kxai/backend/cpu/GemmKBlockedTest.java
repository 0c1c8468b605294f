package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * A Gemm with a long k runs as float blocks of {@link DenseOps#K_BLOCK} products added in double:
 * every output lies within γ_{K_BLOCK+1}·Σ|terms| of the exact sum (the bound its decisions use),
 * for both layouts of B and with C, α and β; the chunks are fixed, so one thread or several give
 * the same bits.
 */
class GemmKBlockedTest {
    private static double rowMax(float[] a, int i, int k) {
        double mx = 0;
        for (int j = 0; j < k; j++) {
            mx = Math.max(mx, Math.abs(a[i * k + j]));
        }
        return mx;
    }

    private static double colAbs(float[] b, boolean transB, int o, int k, int n) {
        double s = 0;
        for (int j = 0; j < k; j++) {
            s += Math.abs(transB ? b[o * k + j] : b[j * n + o]);
        }
        return s;
    }

    @Test
    void blockedGemmLiesWithinTheBlockBoundAndIgnoresThreads() throws Exception {
        Random r = new Random(31);
        int m = 5;
        int n = 300; // two column chunks, the last one partial
        int k = 1500; // six blocks, the last one partial
        for (boolean transB : new boolean[] {true, false}) {
            float[] a = new float[m * k];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) Math.max(0, r.nextGaussian());
            }
            float[] b = new float[k * n];
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) (r.nextGaussian() * 0.05);
            }
            float[] c = new float[n];
            for (int i = 0; i < n; i++) {
                c[i] = (float) r.nextGaussian();
            }
            Op.Gemm op = new Op.Gemm(1.25f, 0.75f, false, transB);
            Node node = new Node("fc", "Gemm", op, List.of("a", "b", "c"), "y");
            Tensor at = new Tensor(new int[] {m, k}, a);
            Tensor bt = new Tensor(transB ? new int[] {n, k} : new int[] {k, n}, b);
            Tensor ct = new Tensor(new int[] {n}, c);
            Tensor one = new ForkJoinPool(1).submit(() -> DenseOps.gemm(node, op, at, bt, ct)).get();
            Tensor two = new ForkJoinPool(2).submit(() -> DenseOps.gemm(node, op, at, bt, ct)).get();
            assertArrayEquals(one.data(), two.data(), "one thread or two, transB=" + transB);
            double gamma = ExactDecisions.gamma(DenseOps.K_BLOCK + 1L);
            double gammaAll = ExactDecisions.gamma(k + 1L);
            int looseBounds = 0;
            for (int i = 0; i < m; i++) {
                for (int o = 0; o < n; o++) {
                    double s = 0;
                    double abs = 0;
                    for (int j = 0; j < k; j++) {
                        double t = (double) a[i * k + j] * (transB ? b[o * k + j] : b[j * n + o]);
                        s += t;
                        abs += Math.abs(t);
                    }
                    double exact = 1.25 * s + 0.75 * c[o];
                    double terms = 1.25 * abs + 0.75 * Math.abs(c[o]);
                    double err = Math.abs(one.data()[i * n + o] - exact);
                    int at0 = i * n + o;
                    assertTrue(err <= gamma * terms + Math.ulp((float) exact),
                            () -> "output " + at0 + " off by " + err + " beyond γ_{K_BLOCK+1}·Σ|terms|");
                    // the bound the ReLU after it decides with is the block's: γ_{K_BLOCK+1} (γ_{k+1} is 6x larger)
                    float declared = one.exact().bound(at0, one.data()[at0]);
                    looseBounds += declared > gammaAll / 3 * (1.25 * rowMax(a, i, k) * colAbs(b, transB, o, k, n)
                            + 0.75 * Math.abs(c[o])) ? 1 : 0;
                }
            }
            assertTrue(looseBounds == 0, looseBounds + " outputs declare the unblocked bound");
        }
    }
}
