package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.cuda;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The kernels added for the savings, each against a Java twin written in the kernel's operation
 * order, so the comparison is bit for bit: path_interpolate_f64, gemm_f64, conv2d_forward_f64
 * (and conv2d_forward as its rounding), bias_act_forward_keep. Sizes are odd so that the capped
 * grid-stride loops wrap. Run on the CPU emulation of the driver: proves kernel logic and argument
 * order, not GPU speed or memory-model races.
 */
class SavingKernelsTest {
    private interface Work {
        void run(CudaRuntime rt, Kernels k, DeviceScope s);
    }

    private static void onDevice(Work w) {
        cuda(); // fails with the probe's reason when there is no runtime
        CudaRuntime rt = CudaRuntime.probe().runtime();
        synchronized (rt) {
            rt.enter();
            try (DeviceScope s = new DeviceScope()) {
                w.run(rt, new Kernels(rt), s);
            }
        }
    }

    private static float[] floats(Random r, int n, double lo, double hi) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return f;
    }

    private static double[] doubles(Random r, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            d[i] = 4 * r.nextDouble() - 2;
        }
        return d;
    }

    private static DeviceBuffer upload(DeviceScope s, double[] d) {
        DeviceBuffer b = s.doubles(d.length);
        b.upload(d);
        return b;
    }

    @Test
    void pathInterpolateF64RoundsTheDoubleInterpolationOnce() {
        Random r = new Random(61);
        for (int[] sz : new int[][] {{1, 1, 1}, {7, 3, 1001}, {4, 5, 37}}) {
            int steps = sz[0];
            int batch = sz[1];
            int features = sz[2];
            double[] x = doubles(r, batch * features);
            double[] b = doubles(r, batch * features);
            float[] alphas = floats(r, steps, 0, 1);
            alphas[0] = 0f;
            alphas[steps - 1] = 1f;
            float[] want = new float[steps * batch * features];
            for (int k = 0; k < steps; k++) {
                double a = alphas[k];
                for (int e = 0; e < batch * features; e++) {
                    want[k * batch * features + e] = (float) (b[e] + a * (x[e] - b[e])); // CpuOpSet.affineEndpoints' expression
                }
            }
            onDevice((rt, k, s) -> {
                DeviceBuffer out = s.floats(want.length);
                k.pathInterpolateF64(out, upload(s, x), upload(s, b), s.upload(alphas), steps, batch, features);
                assertArrayEquals(want, out.download(want.length), steps + "x" + batch + "x" + features);
            });
        }
    }

    @Test
    void gemmF64IsTheDoubleProductUnrounded() {
        Random r = new Random(67);
        for (boolean transB : new boolean[] {false, true}) {
            for (boolean bias : new boolean[] {false, true}) {
                int m = 5;
                int n = 19;
                int kk = 33;
                float alpha = 0.75f;
                float beta = 1.5f;
                float[] a = floats(r, m * kk, -1, 1);
                float[] b = floats(r, kk * n, -1, 1);
                float[] c = floats(r, n, -1, 1);
                double[] want = new double[m * n];
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double acc = 0;
                        for (int t = 0; t < kk; t++) {
                            acc += (double) a[i * kk + t] * (double) (transB ? b[j * kk + t] : b[t * n + j]);
                        }
                        double v = (double) alpha * acc;
                        if (bias) {
                            v += (double) beta * (double) c[j];
                        }
                        want[i * n + j] = v;
                    }
                }
                onDevice((rt, k, s) -> {
                    DeviceBuffer y = s.doubles((long) m * n);
                    k.gemmF64(y, s.upload(a), s.upload(b), bias ? s.upload(c) : null, m, n, kk, transB, alpha, beta);
                    assertArrayEquals(want, y.downloadDoubles(m * n), "transB " + transB + ", bias " + bias);
                });
            }
        }
    }

    @Test
    void conv2dForwardF64IsTheUnroundedAccumulatorOfConv2dForward() {
        Random r = new Random(71);
        // n, c, h, w, m, groups, kh, kw, sh, sw, ph, pw, dh, dw
        int[][] cases = {{2, 3, 7, 5, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1}, {3, 4, 9, 8, 6, 2, 3, 2, 2, 1, 0, 1, 2, 1},
            {1, 1, 5, 5, 1, 1, 5, 5, 1, 1, 2, 2, 1, 1}};
        for (int[] p : cases) {
            int n = p[0];
            int c = p[1];
            int h = p[2];
            int wd = p[3];
            int m = p[4];
            int groups = p[5];
            int kh = p[6];
            int kw = p[7];
            int oh = (h + 2 * p[10] - p[12] * (kh - 1) - 1) / p[8] + 1;
            int ow = (wd + 2 * p[11] - p[13] * (kw - 1) - 1) / p[9] + 1;
            int[] g = {kh, kw, p[8], p[9], p[10], p[11], p[12], p[13], p[10], p[11], oh, ow};
            int cg = c / groups;
            int mg = m / groups;
            float[] x = floats(r, n * c * h * wd, -1, 1);
            float[] w = floats(r, m * cg * kh * kw, -1, 1);
            float[] bias = floats(r, m, -0.5, 0.5);
            double[] want = new double[n * m * oh * ow];
            for (int img = 0; img < n; img++) {
                for (int oc = 0; oc < m; oc++) {
                    int grp = oc / mg;
                    for (int oy = 0; oy < oh; oy++) {
                        for (int ox = 0; ox < ow; ox++) {
                            double acc = bias[oc];
                            for (int ic = 0; ic < cg; ic++) {
                                int plane = (img * c + grp * cg + ic) * h * wd;
                                int wk = (oc * cg + ic) * kh * kw;
                                for (int i = 0; i < kh; i++) {
                                    int iy = oy * g[2] - g[4] + i * g[6];
                                    if (iy < 0 || iy >= h) {
                                        continue;
                                    }
                                    for (int j = 0; j < kw; j++) {
                                        int ix = ox * g[3] - g[5] + j * g[7];
                                        if (ix >= 0 && ix < wd) {
                                            acc += (double) w[wk + i * kw + j] * (double) x[plane + iy * wd + ix];
                                        }
                                    }
                                }
                            }
                            want[((img * m + oc) * oh + oy) * ow + ox] = acc;
                        }
                    }
                }
            }
            float[] rounded = new float[want.length];
            for (int i = 0; i < want.length; i++) {
                rounded[i] = (float) want[i];
            }
            onDevice((rt, k, s) -> {
                DeviceBuffer dx = s.upload(x);
                DeviceBuffer dw = s.upload(w);
                DeviceBuffer db = s.upload(bias);
                DeviceBuffer y64 = s.doubles(want.length);
                k.conv2dForwardF64(y64, dx, dw, db, n, c, h, wd, m, groups, g);
                assertArrayEquals(want, y64.downloadDoubles(want.length), java.util.Arrays.toString(p));
                DeviceBuffer y32 = s.floats(want.length);
                k.conv2dForward(y32, dx, dw, db, n, c, h, wd, m, groups, g);
                assertArrayEquals(rounded, y32.download(want.length), "float conv = rounded f64 conv");
            });
        }
    }

    @Test
    void biasActForwardKeepWritesTheActivationAndKeepsThePreActivation() {
        Random r = new Random(73);
        int rows = 7;
        int cols = 301;
        float[] y = floats(r, rows * cols, -2, 2);
        y[0] = 0f;
        y[1] = -0f;
        float[] bias = floats(r, cols, -0.5, 0.5);
        bias[0] = 0f;
        bias[1] = 0f;
        for (int act : new int[] {Kernels.ACT_NONE, Kernels.ACT_RELU, Kernels.ACT_LEAKY_RELU, Kernels.ACT_SIGMOID,
            Kernels.ACT_TANH}) {
            for (boolean withBias : new boolean[] {true, false}) {
                float alpha = -0.3f;
                onDevice((rt, k, s) -> {
                    // reference: bias only (ACT_NONE) in place, then the activation kernel on its own
                    DeviceBuffer pre = s.upload(y);
                    k.biasActForward(pre, withBias ? s.upload(bias) : null, rows, cols, Kernels.ACT_NONE, 0f);
                    float[] wantPre = pre.download(y.length);
                    DeviceBuffer wantOut = s.floats(y.length);
                    k.actForward(wantOut, pre, y.length, act, alpha);
                    // the fused kernel: same output, and the pre-activation left in its input buffer
                    DeviceBuffer io = s.upload(y);
                    DeviceBuffer out = s.floats(y.length);
                    k.biasActForwardKeep(out, io, withBias ? s.upload(bias) : null, rows, cols, act, alpha);
                    assertArrayEquals(wantOut.download(y.length), out.download(y.length), "act " + act);
                    assertArrayEquals(wantPre, io.download(y.length), "pre-activation, act " + act);
                    assertEquals(y.length, wantPre.length);
                });
            }
        }
    }
}
