package dev.kxai.backend.cpu;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * Max, average and global average pooling over NCHW planes, with their input gradients.
 * <p>
 * Public, with the forward and backward methods and {@link MaxResult}, only so that the JMH
 * kernel benchmarks ({@code bench/}) can time the real twins: exposed for benchmarks, not part of
 * kxai's API.
 */
public final class PoolOps {
    private PoolOps() {
    }

    /** Max-pool output plus, per output element, the flat input index that won (saved for backward). */
    public record MaxResult(Tensor output, int[] argmax) {
    }

    private static void check4d(Node node, Tensor x) {
        if (x.rank() != 4) {
            throw new InvalidInputException("node '" + node.name() + "' (" + node.opType() + "): needs an NCHW input, got "
                    + Shapes.str(x.shape()));
        }
    }

    /**
     * Ties go to the first maximal element in row-major window order (PyTorch's rule): a later
     * element must be strictly greater to win. Paths from a zero baseline start at all-zero
     * activations, where every element of a window ties.
     */
    public static MaxResult maxForward(Node node, Op.MaxPool op, Tensor x) {
        check4d(node, x);
        Window w = Window.of(node.name(), op.kernel(), op.strides(), op.pads(), op.dilations(), op.autoPad(),
                op.ceilMode(), x.dim(2), x.dim(3));
        ExactDecisions.repairPoolTies(x, w); // float convolution outputs: near-ties recomputed first
        int planes = x.dim(0) * x.dim(1);
        int h = x.dim(2);
        int wid = x.dim(3);
        int oh = w.outH();
        int ow = w.outW();
        float[] xd = x.data();
        float[] y = new float[planes * oh * ow];
        int[] arg = new int[y.length];
        if (w.kh() == 2 && w.kw() == 2 && w.sh() == 2 && w.sw() == 2 && w.dh() == 1 && w.dw() == 1 && w.padTop() == 0
                && w.padLeft() == 0 && 2 * oh <= h && 2 * ow <= wid) {
            // the common 2×2 stride-2 pool with every window inside: no bounds to test
            Parallel.forEach(x.dim(0), img -> {
                for (int p = img * x.dim(1); p < (img + 1) * x.dim(1); p++) {
                    int in0 = p * h * wid;
                    for (int oy = 0; oy < oh; oy++) {
                        int r0 = in0 + 2 * oy * wid;
                        int o = (p * oh + oy) * ow;
                        for (int ox = 0; ox < ow; ox++, o++) {
                            int i0 = r0 + 2 * ox;
                            int best = i0;
                            best = wins(xd[i0 + 1], xd[best]) ? i0 + 1 : best;
                            best = wins(xd[i0 + wid], xd[best]) ? i0 + wid : best;
                            best = wins(xd[i0 + wid + 1], xd[best]) ? i0 + wid + 1 : best;
                            y[o] = xd[best];
                            arg[o] = best;
                        }
                    }
                }
            });
            return new MaxResult(winners(x, new Tensor(new int[] {x.dim(0), x.dim(1), oh, ow}, y), arg), arg);
        }
        // the taps of each window row and column that fall inside the input, once per call (two integer
        // divisions per window cost more than its nine comparisons)
        int[] jLos = new int[ow];
        int[] jHis = new int[ow];
        for (int ox = 0; ox < ow; ox++) {
            int x0 = ox * w.sw() - w.padLeft();
            jLos[ox] = insideStart(x0, w.dw());
            jHis[ox] = insideEnd(x0, w.dw(), wid, w.kw());
        }
        boolean three = w.kh() == 3 && w.kw() == 3 && w.dh() == 1 && w.dw() == 1;
        Parallel.forEach(x.dim(0), img -> {
            for (int p = img * x.dim(1); p < (img + 1) * x.dim(1); p++) {
                int in0 = p * h * wid;
                for (int oy = 0; oy < oh; oy++) {
                    int y0 = oy * w.sh() - w.padTop();
                    int iHi = insideEnd(y0, w.dh(), h, w.kh());
                    int iLo = insideStart(y0, w.dh());
                    for (int ox = 0; ox < ow; ox++) {
                        float best = Float.NEGATIVE_INFINITY;
                        int bestIdx = -1;
                        // the window's taps that fall inside the input, in row-major order
                        int x0 = ox * w.sw() - w.padLeft();
                        int jLo = jLos[ox];
                        int jHi = jHis[ox];
                        // the maximum first, without branches (Math.max keeps a NaN: NaN propagates
                        // as in PyTorch), then the first tap holding it: one unpredictable branch per
                        // window where comparing as we go mispredicted on about half the taps
                        float m;
                        if (three && iLo == 0 && iHi == 3 && jLo == 0 && jHi == 3) {
                            // a whole 3×3 window (most of resnet's stem pool): a max tree of depth 4,
                            // where the loop's chain of 9 dependent maxima set the pace
                            int r = in0 + y0 * wid + x0;
                            m = Math.max(Math.max(Math.max(xd[r], xd[r + 1]), Math.max(xd[r + 2], xd[r + wid])),
                                    Math.max(Math.max(xd[r + wid + 1], xd[r + wid + 2]),
                                            Math.max(Math.max(xd[r + 2 * wid], xd[r + 2 * wid + 1]), xd[r + 2 * wid + 2])));
                        } else {
                            m = Float.NEGATIVE_INFINITY;
                            for (int i = iLo; i < iHi; i++) {
                                int row = in0 + (y0 + i * w.dh()) * wid + x0;
                                for (int j = jLo; j < jHi; j++) {
                                    m = Math.max(m, xd[row + j * w.dw()]);
                                }
                            }
                        }
                        boolean nan = m != m;
                        search:
                        for (int i = iLo; i < iHi; i++) {
                            int row = in0 + (y0 + i * w.dh()) * wid + x0;
                            for (int j = jLo; j < jHi; j++) {
                                float v = xd[row + j * w.dw()];
                                // == also matches −0 against +0: the first of them, as v > best would keep
                                if (v == m || (nan && v != v)) {
                                    best = v;
                                    bestIdx = row + j * w.dw();
                                    break search;
                                }
                            }
                        }
                        int o = (p * oh + oy) * ow + ox;
                        y[o] = best;
                        arg[o] = bestIdx;
                    }
                }
            }
        });
        return new MaxResult(winners(x, new Tensor(new int[] {x.dim(0), x.dim(1), oh, ow}, y), arg), arg);
    }

    /** The pooled tensor, carrying its winners' bounds when the input has them (a pool or ReLU may follow). */
    private static Tensor winners(Tensor x, Tensor y, int[] arg) {
        dev.kxai.tensor.ExactValues e = ExactDecisions.picked(x, arg);
        return e == null ? y : y.withExact(e);
    }

    /** The first tap k with start + k·step ≥ 0. */
    private static int insideStart(int start, int step) {
        return start >= 0 ? 0 : (-start + step - 1) / step;
    }

    /** One past the last tap k (at most taps) with start + k·step &lt; size. */
    private static int insideEnd(int start, int step, int size, int taps) {
        int last = size - 1 - start;
        return last < 0 ? 0 : Math.min(taps, last / step + 1);
    }

    /**
     * Whether a later window element v replaces the current best: strictly greater (ties keep
     * the first, PyTorch's rule), or a NaN over a number (NaN propagates and stays).
     */
    private static boolean wins(float v, float best) {
        return v > best || (v != v && best == best);
    }

    public static Tensor maxBackward(Tensor x, int[] argmax, Tensor gOut) {
        float[] dx = new float[x.size()];
        float[] g = gOut.data();
        // each output's winner lies in its own image: images scatter into disjoint parts of dx
        int n = x.dim(0);
        int perImage = g.length / n;
        Parallel.forEach(n, img -> {
            for (int o = img * perImage; o < (img + 1) * perImage; o++) {
                if (argmax[o] >= 0) {
                    dx[argmax[o]] += g[o];
                }
            }
        });
        return new Tensor(x.shape(), dx);
    }

    public static Tensor averageForward(Node node, Op.AveragePool op, Tensor x) {
        check4d(node, x);
        Window w = Window.of(node.name(), op.kernel(), op.strides(), op.pads(), null, op.autoPad(), op.ceilMode(),
                x.dim(2), x.dim(3));
        float[] xd = x.data();
        int planes = x.dim(0) * x.dim(1);
        float[] y = new float[planes * w.outH() * w.outW()];
        forEachWindow(w, op.countIncludePad(), planes, (p, o, in, n, div) -> {
            float s = 0f;
            for (int k = 0; k < n; k++) {
                s += xd[p * w.inH() * w.inW() + in[k]];
            }
            y[o] = s / div;
        });
        return new Tensor(new int[] {x.dim(0), x.dim(1), w.outH(), w.outW()}, y);
    }

    public static Tensor averageBackward(Node node, Op.AveragePool op, Tensor x, Tensor gOut) {
        Window w = Window.of(node.name(), op.kernel(), op.strides(), op.pads(), null, op.autoPad(), op.ceilMode(),
                x.dim(2), x.dim(3));
        float[] g = gOut.data();
        float[] dx = new float[x.size()];
        int planes = x.dim(0) * x.dim(1);
        forEachWindow(w, op.countIncludePad(), planes, (p, o, in, n, div) -> {
            float share = g[o] / div;
            for (int k = 0; k < n; k++) {
                dx[p * w.inH() * w.inW() + in[k]] += share;
            }
        });
        return new Tensor(x.shape(), dx);
    }

    private interface WindowBody {
        /** inputOffsets[0, count) are the window's valid input elements (the array is reused). */
        void accept(int plane, int outIndex, int[] inputOffsets, int count, float divisor);
    }

    /**
     * Visits every output window with the in-plane offsets of its valid input elements and the
     * divisor: the window clipped to the padded input when pads count, else to the input. Planes
     * run in parallel (each writes only its own outputs, or its own input gradient).
     */
    private static void forEachWindow(Window w, boolean countPad, int planes, WindowBody body) {
        Parallel.forEach(planes, p -> {
            int[] buf = new int[w.kh() * w.kw()];
            for (int oy = 0; oy < w.outH(); oy++) {
                for (int ox = 0; ox < w.outW(); ox++) {
                    int n = 0;
                    int y0 = oy * w.sh() - w.padTop();
                    int x0 = ox * w.sw() - w.padLeft();
                    for (int i = 0; i < w.kh(); i++) {
                        for (int j = 0; j < w.kw(); j++) {
                            int iy = y0 + i;
                            int ix = x0 + j;
                            if (iy >= 0 && iy < w.inH() && ix >= 0 && ix < w.inW()) {
                                buf[n++] = iy * w.inW() + ix;
                            }
                        }
                    }
                    float div;
                    if (countPad) {
                        int ye = Math.min(y0 + w.kh(), w.inH() + w.padBottom());
                        int xe = Math.min(x0 + w.kw(), w.inW() + w.padRight());
                        div = (float) (ye - y0) * (xe - x0);
                    } else {
                        div = n;
                    }
                    body.accept(p, (p * w.outH() + oy) * w.outW() + ox, buf, n, Math.max(div, 1f));
                }
            }
        });
    }

    /** Mean over every axis after the channel axis; output [N, C, 1, ..., 1]. */
    public static Tensor globalAverageForward(Node node, Tensor x) {
        if (x.rank() < 3) {
            throw new InvalidInputException("node '" + node.name() + "' (GlobalAveragePool): needs N×C×spatial input, got "
                    + Shapes.str(x.shape()));
        }
        int planes = x.dim(0) * x.dim(1);
        int area = x.size() / Math.max(1, planes);
        float[] xd = x.data();
        float[] y = new float[planes];
        for (int p = 0; p < planes; p++) {
            double s = 0;
            for (int i = 0; i < area; i++) {
                s += xd[p * area + i];
            }
            y[p] = (float) (s / area);
        }
        int[] out = new int[x.rank()];
        java.util.Arrays.fill(out, 1);
        out[0] = x.dim(0);
        out[1] = x.dim(1);
        return new Tensor(out, y);
    }

    public static Tensor globalAverageBackward(Tensor x, Tensor gOut) {
        int planes = x.dim(0) * x.dim(1);
        int area = x.size() / Math.max(1, planes);
        float[] g = gOut.data();
        float[] dx = new float[x.size()];
        for (int p = 0; p < planes; p++) {
            float share = g[p] / area;
            java.util.Arrays.fill(dx, p * area, (p + 1) * area, share);
        }
        return new Tensor(x.shape(), dx);
    }
}
