package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The oneDNN convolutions of the float path ({@link OneDnn}) against straightforward double loops:
 * the forward of every geometry real models use lies within the bound {@link ConvOps} states for it
 * (γ of {@link OneDnn#sumDepth} times Σ|terms|, the guarantee the exact decisions rest on), the
 * input gradient within its own, the ReLU decisions are the exact path's on planted near-ties, and
 * the shared layer gives the same bits from many threads and batch sizes.
 */
class OneDnnConvTest {
    @BeforeAll
    static void bindingLoads() {
        boolean inBuild = OneDnn.class.getResource(OneDnn.RESOURCE) != null;
        // where the build packed the binding (g++ and libdnnl-dev present, as .ci/run installs) it must
        // load: a binding that silently fails would leave every convolution on the slow path
        if (inBuild) {
            assertTrue(OneDnn.available(), "the binding is in the build but does not load: " + OneDnn.status());
        }
        assumeTrue(inBuild, "no oneDNN binding in this build (needs g++ and libdnnl-dev): " + OneDnn.status());
    }

    @AfterEach
    void defaults() {
        OneDnn.enabled = true;
        ExactDecisions.exactPath = false;
    }

    /** {n, c, h, w, m, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups, bias} */
    private static final int[][] GEOMETRIES = {
        {2, 64, 12, 12, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},     // 3x3 same, two slices of 32 channels
        {3, 75, 9, 11, 24, 3, 3, 2, 2, 1, 1, 0, 1, 1, 1, 1, 0},      // stride 2, asymmetric pads, 3 slices (last 11)
        {1, 3, 30, 30, 16, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1},      // a first layer
        {2, 320, 5, 5, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},      // 1x1, one slice of 320
        {2, 400, 4, 4, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},      // 1x1, two slices
        {1, 48, 10, 10, 32, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1},     // dilation 2
        {2, 32, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1},       // groups 4 (ResNeXt-like)
        {1, 24, 13, 13, 32, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1},     // 5x5 stride 2
    };

    private record Case(Op.Conv op, Tensor x, Tensor w, Tensor b, Node node) {
    }

    private static Case make(int[] g, Random r) {
        int n = g[0];
        int c = g[1];
        int m = g[4];
        int groups = g[15];
        Op.Conv op = new Op.Conv(new int[] {g[5], g[6]}, new int[] {g[7], g[8]}, new int[] {g[9], g[10], g[11], g[12]},
                new int[] {g[13], g[14]}, groups, "NOTSET");
        float[] x = new float[n * c * g[2] * g[3]];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.max(0, r.nextGaussian()); // ReLU'd activations
        }
        float[] w = new float[m * (c / groups) * g[5] * g[6]];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.1);
        }
        Tensor b = null;
        if (g[16] == 1) {
            float[] bias = new float[m];
            for (int i = 0; i < m; i++) {
                bias[i] = (float) (r.nextGaussian() * 0.1);
            }
            b = new Tensor(new int[] {m}, bias);
        }
        return new Case(op, new Tensor(new int[] {n, c, g[2], g[3]}, x),
                new Tensor(new int[] {m, c / groups, g[5], g[6]}, w), b,
                new Node("conv", "Conv", op, List.of("x", "w"), "y"));
    }

    /** The exact sums (bias + products, in double) and Σ|terms| of every output. */
    private static double[][] reference(Case k, Window win) {
        int n = k.x.dim(0);
        int c = k.x.dim(1);
        int h = k.x.dim(2);
        int wd = k.x.dim(3);
        int m = k.w.dim(0);
        int groups = k.op.group();
        int cg = c / groups;
        int mg = m / groups;
        int oh = win.outH();
        int ow = win.outW();
        double[] sum = new double[n * m * oh * ow];
        double[] abs = new double[sum.length];
        float[] x = k.x.data();
        float[] w = k.w.data();
        for (int img = 0; img < n; img++) {
            for (int oc = 0; oc < m; oc++) {
                int g = oc / mg;
                for (int oy = 0; oy < oh; oy++) {
                    for (int ox = 0; ox < ow; ox++) {
                        double s = k.b == null ? 0 : k.b.data()[oc];
                        double a = Math.abs(s);
                        for (int ch = 0; ch < cg; ch++) {
                            for (int i = 0; i < win.kh(); i++) {
                                int iy = oy * win.sh() - win.padTop() + i * win.dh();
                                for (int j = 0; j < win.kw(); j++) {
                                    int ix = ox * win.sw() - win.padLeft() + j * win.dw();
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
                                        double t = (double) w[((oc * cg + ch) * win.kh() + i) * win.kw() + j]
                                                * x[((img * c + g * cg + ch) * h + iy) * wd + ix];
                                        s += t;
                                        a += Math.abs(t);
                                    }
                                }
                            }
                        }
                        int o = ((img * m + oc) * oh + oy) * ow + ox;
                        sum[o] = s;
                        abs[o] = a;
                    }
                }
            }
        }
        return new double[][] {sum, abs};
    }

    @Test
    void forwardLiesWithinTheStatedBoundOnEveryGeometry() {
        Random r = new Random(11);
        for (int[] g : GEOMETRIES) {
            Case k = make(g, r);
            Window win = ConvOps.window(k.node, k.op, k.x, k.w);
            OneDnn.Layer layer = OneDnn.layer(k.w.data(), k.b == null ? null : k.b.data(), false, win, g[1], g[4], g[15]);
            assertNotNull(layer);
            float[] y = new float[g[0] * g[4] * win.outH() * win.outW()];
            assertTrue(layer.forward(g[0], k.x.data(), y), "oneDNN refused " + java.util.Arrays.toString(g));
            double[][] ref = reference(k, win);
            double gamma = ExactDecisions.gamma(OneDnn.sumDepth(g[1], g[15], g[5] * g[6]) + 1L);
            double worst = 0;
            for (int i = 0; i < y.length; i++) {
                double err = Math.abs(y[i] - ref[0][i]);
                // the float sum's error, plus rounding the exact sum itself to float
                double allowed = gamma * ref[1][i] + Math.ulp((float) ref[0][i]);
                assertTrue(err <= allowed, () -> "geometry " + java.util.Arrays.toString(g) + ": output off by "
                        + err + ", beyond its bound " + allowed);
                worst = Math.max(worst, err / Math.max(1e-30, gamma * ref[1][i]));
            }
            // the bound is tight enough to mean something: the float sums do round
            assertTrue(worst > 0, "no rounding at all in " + java.util.Arrays.toString(g));
        }
    }

    @Test
    void inputGradientMatchesTheTransposedConvolution() {
        Random r = new Random(12);
        for (int[] g : GEOMETRIES) {
            Case k = make(g, r);
            Window win = ConvOps.window(k.node, k.op, k.x, k.w);
            float[] dy = new float[g[0] * g[4] * win.outH() * win.outW()];
            for (int i = 0; i < dy.length; i++) {
                dy[i] = (float) r.nextGaussian();
            }
            Tensor gOut = new Tensor(new int[] {g[0], g[4], win.outH(), win.outW()}, dy);
            Tensor fast = ConvOps.inputGradient(k.node, k.op, k.x, k.w, gOut, false);
            OneDnn.enabled = false;
            Tensor sgemm = ConvOps.inputGradient(k.node, k.op, k.x, k.w, gOut, false);
            OneDnn.enabled = true;
            double scale = 0;
            for (float v : sgemm.data()) {
                scale = Math.max(scale, Math.abs(v));
            }
            for (int i = 0; i < fast.size(); i++) {
                assertEquals(sgemm.data()[i], fast.data()[i], 1e-5 * scale,
                        "geometry " + java.util.Arrays.toString(g) + " element " + i);
            }
        }
    }

    /**
     * Planted near-ties on a multi-slice 3×3 layer: outputs whose exact value is ±t but whose float
     * sum, 1e4 + t − 1e4, loses t. The ReLU after the oneDNN forward decides as the all-double path.
     */
    @Test
    void reluDecidesAsTheExactPathOnPlantedTies() {
        int c = 64;
        int m = 32;
        int h = 6;
        Op.Conv op = new Op.Conv(new int[] {3, 3}, new int[] {1, 1}, new int[] {1, 1, 1, 1}, new int[] {1, 1}, 1,
                "NOTSET");
        Random r = new Random(5);
        float[] x = new float[c * h * h];
        for (int p = 0; p < h * h; p++) {
            x[p] = 1f;                                                         // channel 0: 1e4 · 1
            x[h * h + p] = (r.nextBoolean() ? 1 : -1) * (1e-6f + r.nextFloat() * 1e-6f); // channel 1: the tiny t
            x[40 * h * h + p] = 1f;                                            // channel 40 (second slice): −1e4 · 1
        }
        float[] w = new float[m * c * 9];
        for (int oc = 0; oc < m; oc++) {
            w[(oc * c) * 9 + 4] = 1e4f;
            w[(oc * c + 1) * 9 + 4] = 1f;
            w[(oc * c + 40) * 9 + 4] = -1e4f;
        }
        Tensor xt = new Tensor(new int[] {1, c, h, h}, x);
        Tensor wt = new Tensor(new int[] {m, c, 3, 3}, w);
        Node node = new Node("conv", "Conv", op, List.of("x", "w"), "y");
        Tensor raw = ConvOps.forward(node, op, xt, wt, null);
        int lost = 0;
        for (int i = 0; i < raw.size(); i++) {
            lost += raw.data()[i] == 0f ? 1 : 0;
        }
        assertTrue(lost > 0, "the float sums must lose the tiny terms, else this tests nothing");
        Tensor fast = ConvOps.forwardRelu(node, op, xt, wt, null);
        ExactDecisions.exactPath = true;
        Tensor exact = ConvOps.forwardRelu(node, op, xt, wt, null);
        ExactDecisions.exactPath = false;
        for (int i = 0; i < fast.size(); i++) {
            assertEquals(exact.data()[i] > 0f, fast.data()[i] > 0f, "ReLU decision at " + i);
            if (exact.data()[i] > 0f && exact.data()[i] < 1e-5f) {
                assertEquals(exact.data()[i], fast.data()[i], "a planted positive takes its exact value, at " + i);
            }
        }
    }

    @Test
    void oneLayerSharedByThreadsAndBatchSizesGivesTheSameBits() throws Exception {
        Random r = new Random(13);
        Case k = make(GEOMETRIES[1], r);
        int c = k.x.dim(1);
        int plane = c * k.x.dim(2) * k.x.dim(3);
        Window win = ConvOps.window(k.node, k.op, k.x, k.w);
        int outPlane = k.w.dim(0) * win.outH() * win.outW();
        OneDnn.Layer layer = OneDnn.layer(k.w.data(), null, false, win, c, k.w.dim(0), 1);
        float[] whole = new float[k.x.dim(0) * outPlane];
        assertTrue(layer.forward(k.x.dim(0), k.x.data(), whole));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<float[]>> rows = new ArrayList<>();
            for (int t = 0; t < 12; t++) {
                int img = t % k.x.dim(0);
                rows.add(pool.submit(() -> {
                    float[] one = java.util.Arrays.copyOfRange(k.x.data(), img * plane, (img + 1) * plane);
                    float[] y = new float[outPlane];
                    assertTrue(layer.forward(1, one, y));
                    return y;
                }));
            }
            for (int t = 0; t < rows.size(); t++) {
                int img = t % k.x.dim(0);
                // a row alone equals its row in the batch: oneDNN's direct kernels sum each output in an
                // order that does not depend on the batch (what BatchingExplainer's bit-for-bit promise needs)
                assertArrayEquals(java.util.Arrays.copyOfRange(whole, img * outPlane, (img + 1) * outPlane),
                        rows.get(t).get(), "row " + img + " from thread task " + t);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /** Every geometry: each image alone gives the bits it gets in the batch, forward and backward. */
    @Test
    void eachImageAloneEqualsItsRowInTheBatch() {
        Random r = new Random(14);
        for (int[] g : GEOMETRIES) {
            int n = Math.max(2, g[0]);
            int[] gn = g.clone();
            gn[0] = n;
            Case k = make(gn, r);
            Window win = ConvOps.window(k.node, k.op, k.x, k.w);
            int inPlane = g[1] * g[2] * g[3];
            int outPlane = g[4] * win.outH() * win.outW();
            OneDnn.Layer layer = OneDnn.layer(k.w.data(), k.b == null ? null : k.b.data(), false, win, g[1], g[4], g[15]);
            float[] y = new float[n * outPlane];
            assertTrue(layer.forward(n, k.x.data(), y));
            float[] dx = new float[n * inPlane];
            assertTrue(layer.backwardData(n, y, dx));
            for (int img = 0; img < n; img++) {
                float[] y1 = new float[outPlane];
                assertTrue(layer.forward(1, java.util.Arrays.copyOfRange(k.x.data(), img * inPlane, (img + 1) * inPlane), y1));
                assertArrayEquals(java.util.Arrays.copyOfRange(y, img * outPlane, (img + 1) * outPlane), y1,
                        "forward, geometry " + java.util.Arrays.toString(g) + ", image " + img);
                float[] dx1 = new float[inPlane];
                assertTrue(layer.backwardData(1, y1, dx1));
                assertArrayEquals(java.util.Arrays.copyOfRange(dx, img * inPlane, (img + 1) * inPlane), dx1,
                        "backward, geometry " + java.util.Arrays.toString(g) + ", image " + img);
            }
        }
    }

    @Test
    void statusNamesTheLibrary() {
        assertTrue(OneDnn.status().startsWith("oneDNN "), OneDnn.status());
        // OpenMP threads sleep between calls (spinning ones took the JVM's cores: 4-9 s instead of 1.4 s)
        String given = System.getenv("OMP_WAIT_POLICY");
        assertEquals(given == null ? "passive" : given, OneDnn.waitPolicy());
        assertTrue(OneDnn.status().contains("OMP_WAIT_POLICY=" + OneDnn.waitPolicy()), OneDnn.status());
        OneDnn.enabled = false;
        assertTrue(OneDnn.status().contains("im2col + sgemm"), OneDnn.status());
        Random r = new Random(1);
        Case k = make(GEOMETRIES[0], r);
        Window win = ConvOps.window(k.node, k.op, k.x, k.w);
        assertEquals(null, OneDnn.layer(k.w.data(), null, false, win, 64, 32, 1), "switched off: no layer");
    }
}
