package dev.kxai.backend.cpu;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * 2-D convolution as im2col + GEMM, one image per task, images spread over the cores. The input
 * gradient is Wᵀ·dY folded back by col2im. Weights are constants: no weight gradient is formed.
 * <p>
 * Public, with {@link #im2col(float[], int, int, Window, double[])} and {@link #col2im}, only so
 * that the JMH kernel benchmarks ({@code bench/}) can time the real twins: exposed for benchmarks,
 * not part of kxai's API.
 */
public final class ConvOps {
    private ConvOps() {
    }

    static Window window(Node node, Op.Conv op, Tensor x, Tensor w) {
        if (x.rank() != 4 || w.rank() != 4) {
            throw new InvalidInputException("node '" + node.name() + "' (Conv): needs NCHW input and 4-D weights, got "
                    + Shapes.str(x.shape()) + " and " + Shapes.str(w.shape()));
        }
        int c = x.dim(1);
        if (c % op.group() != 0 || w.dim(0) % op.group() != 0 || w.dim(1) != c / op.group()) {
            throw new InvalidInputException("node '" + node.name() + "' (Conv): input " + Shapes.str(x.shape())
                    + " has " + c + " channels; weights " + Shapes.str(w.shape()) + " with group=" + op.group()
                    + " expect " + w.dim(1) * op.group());
        }
        int[] kernel = op.kernel() != null ? op.kernel() : new int[] {w.dim(2), w.dim(3)};
        return Window.of(node.name(), kernel, op.strides(), op.pads(), op.dilations(), op.autoPad(), false, x.dim(2),
                x.dim(3));
    }

    /**
     * The forward accumulates in double and rounds once, so each output is the correctly rounded
     * value whatever BLAS runs underneath. Float GEMMs round in their own summation order; two
     * outputs one ulp apart can then come out equal (or swapped), which flips a max-pool winner or
     * a ReLU and moves gradient to another pixel. Found on the tinyvgg reference: at α = 0.25 two
     * conv outputs 5.7e-9 apart tied in float and the path gradient left Captum's by 5e-4.
     * The backward takes no decisions, so it stays in float.
     */
    static Tensor forward(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias) {
        return new Tensor(outputShape(node, op, x, w), (float[]) forward(node, op, x, w, bias, false));
    }

    /** The forward's double accumulators before rounding (the first-layer saving interpolates these). */
    static double[] forwardDouble(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias) {
        return (double[]) forward(node, op, x, w, bias, true);
    }

    static int[] outputShape(Node node, Op.Conv op, Tensor x, Tensor w) {
        Window win = window(node, op, x, w);
        return new int[] {x.dim(0), w.dim(0), win.outH(), win.outW()};
    }

    private static Object forward(Node node, Op.Conv op, Tensor x, Tensor w, Tensor bias, boolean asDouble) {
        Window win = window(node, op, x, w);
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        int inPlane = x.dim(2) * x.dim(3);
        float[] xd = x.data();
        double[] wd = toDouble(w.data());
        float[] bd = bias == null ? null : bias.data();
        float[] y = asDouble ? null : new float[n * m * hw];
        double[] yd = asDouble ? new double[n * m * hw] : null;
        Parallel.forEach(n, img -> {
            double[] cols = new double[kk * hw];
            double[] acc = new double[mg * hw];
            for (int g = 0; g < groups; g++) {
                im2col(xd, (img * c + g * cg) * inPlane, cg, win, cols);
                for (int oc = 0; oc < mg; oc++) {
                    java.util.Arrays.fill(acc, oc * hw, (oc + 1) * hw, bd == null ? 0.0 : bd[g * mg + oc]);
                }
                Blas.dgemm(false, false, mg, hw, kk, 1.0, wd, g * mg * kk, kk, cols, 0, hw, 1.0, acc, 0, hw);
                int yOff = (img * m + g * mg) * hw;
                if (asDouble) {
                    System.arraycopy(acc, 0, yd, yOff, mg * hw);
                } else {
                    for (int j = 0; j < mg * hw; j++) {
                        y[yOff + j] = (float) acc[j];
                    }
                }
            }
        });
        return asDouble ? yd : y;
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    static Tensor inputGradient(Node node, Op.Conv op, Tensor x, Tensor w, Tensor gOut) {
        Window win = window(node, op, x, w);
        int n = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        int inPlane = x.dim(2) * x.dim(3);
        float[] wd = w.data();
        float[] g = gOut.data();
        float[] dx = new float[x.size()];
        Parallel.forEach(n, img -> {
            float[] cols = new float[kk * hw];
            for (int gr = 0; gr < groups; gr++) {
                // dcols[kk, hw] = W_gᵀ[kk, mg] · dY_g[mg, hw]
                Blas.gemm(true, false, kk, hw, mg, 1f, wd, gr * mg * kk, kk, g, (img * m + gr * mg) * hw, hw, 0f, cols, 0, hw);
                col2im(cols, cg, win, dx, (img * c + gr * cg) * inPlane);
            }
        });
        return new Tensor(x.shape(), dx);
    }

    /** Gradient of a bias computed from the input: dY summed over images and positions per channel. */
    static Tensor biasGradient(Tensor gOut) {
        int n = gOut.dim(0);
        int m = gOut.dim(1);
        int hw = gOut.size() / Math.max(1, n * m);
        float[] g = gOut.data();
        float[] d = new float[m];
        for (int i = 0; i < g.length; i++) {
            d[(i / hw) % m] += g[i];
        }
        return new Tensor(new int[] {m}, d);
    }

    /** cols[(ch·kh + i)·kw + j, oy·outW + ox] = x[ch, oy·sh − pt + i·dh, ox·sw − pl + j·dw] (0 outside). */
    static void im2col(float[] x, int xOff, int channels, Window w, float[] cols) {
        int h = w.inH();
        int wid = w.inW();
        int oh = w.outH();
        int ow = w.outW();
        int row = 0;
        for (int ch = 0; ch < channels; ch++) {
            int plane = xOff + ch * h * wid;
            for (int i = 0; i < w.kh(); i++) {
                for (int j = 0; j < w.kw(); j++, row++) {
                    int base = row * oh * ow;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * w.sh() - w.padTop() + i * w.dh();
                        int dst = base + oy * ow;
                        if (iy < 0 || iy >= h) {
                            java.util.Arrays.fill(cols, dst, dst + ow, 0f);
                            continue;
                        }
                        int src = plane + iy * wid;
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * w.sw() - w.padLeft() + j * w.dw();
                            cols[dst + ox] = ix >= 0 && ix < wid ? x[src + ix] : 0f;
                        }
                    }
                }
            }
        }
    }

    /** Double twin of im2col for the forward: cols[(ch·kh + i)·kw + j, oy·outW + ox] = x[ch, oy·sh − pt + i·dh, ox·sw − pl + j·dw] (0 outside). */
    public static void im2col(float[] x, int xOff, int channels, Window w, double[] cols) {
        int h = w.inH();
        int wid = w.inW();
        int oh = w.outH();
        int ow = w.outW();
        int row = 0;
        for (int ch = 0; ch < channels; ch++) {
            int plane = xOff + ch * h * wid;
            for (int i = 0; i < w.kh(); i++) {
                for (int j = 0; j < w.kw(); j++, row++) {
                    int base = row * oh * ow;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * w.sh() - w.padTop() + i * w.dh();
                        int dst = base + oy * ow;
                        if (iy < 0 || iy >= h) {
                            java.util.Arrays.fill(cols, dst, dst + ow, 0.0);
                            continue;
                        }
                        int src = plane + iy * wid;
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * w.sw() - w.padLeft() + j * w.dw();
                            cols[dst + ox] = ix >= 0 && ix < wid ? x[src + ix] : 0.0;
                        }
                    }
                }
            }
        }
    }

    /** The adjoint of im2col: adds each column entry back to the input element it was read from. */
    public static void col2im(float[] cols, int channels, Window w, float[] dx, int dxOff) {
        int h = w.inH();
        int wid = w.inW();
        int oh = w.outH();
        int ow = w.outW();
        int row = 0;
        for (int ch = 0; ch < channels; ch++) {
            int plane = dxOff + ch * h * wid;
            for (int i = 0; i < w.kh(); i++) {
                for (int j = 0; j < w.kw(); j++, row++) {
                    int base = row * oh * ow;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * w.sh() - w.padTop() + i * w.dh();
                        if (iy < 0 || iy >= h) {
                            continue;
                        }
                        int dst = plane + iy * wid;
                        int src = base + oy * ow;
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * w.sw() - w.padLeft() + j * w.dw();
                            if (ix >= 0 && ix < wid) {
                                dx[dst + ix] += cols[src + ox];
                            }
                        }
                    }
                }
            }
        }
    }
}
