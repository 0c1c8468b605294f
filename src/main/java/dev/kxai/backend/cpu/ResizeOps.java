package dev.kxai.backend.cpu;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;

/**
 * Resize of NCHW's spatial axes (nearest, linear): two taps per output row and column, weights
 * rounded to float as the CUDA kernel takes them, sums in double rounded once; the backward adds
 * each output gradient at its taps in output order, which is the kernel's order per element.
 */
final class ResizeOps {
    private ResizeOps() {
    }

    static Tensor forward(Op.Resize op, Tensor x, int[] out) {
        int planes = x.dim(0) * x.dim(1);
        int h = x.dim(2);
        int w = x.dim(3);
        Op.Resize.Taps th = op.taps(2, h, out[2]);
        Op.Resize.Taps tw = op.taps(3, w, out[3]);
        float[] xd = x.data();
        float[] y = new float[planes * out[2] * out[3]];
        for (int p = 0; p < planes; p++) {
            for (int oh = 0; oh < out[2]; oh++) {
                for (int ow = 0; ow < out[3]; ow++) {
                    double v = 0;
                    for (int a = 0; a < 2; a++) {
                        for (int b = 0; b < 2; b++) {
                            v += (double) (float) th.weight()[2 * oh + a] * (double) (float) tw.weight()[2 * ow + b]
                                    * xd[(p * h + th.index()[2 * oh + a]) * w + tw.index()[2 * ow + b]];
                        }
                    }
                    y[(p * out[2] + oh) * out[3] + ow] = (float) v;
                }
            }
        }
        return new Tensor(out, y);
    }

    /** dx: every output gradient added back at its taps with their weights (in double, in output order). */
    static Tensor backward(Op.Resize op, int[] in, Tensor g) {
        int planes = in[0] * in[1];
        int oh = g.dim(2);
        int ow = g.dim(3);
        Op.Resize.Taps th = op.taps(2, in[2], oh);
        Op.Resize.Taps tw = op.taps(3, in[3], ow);
        double[] dx = new double[planes * in[2] * in[3]];
        float[] gd = g.data();
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < oh; i++) {
                for (int j = 0; j < ow; j++) {
                    double v = gd[(p * oh + i) * ow + j];
                    for (int a = 0; a < 2; a++) {
                        for (int b = 0; b < 2; b++) {
                            dx[(p * in[2] + th.index()[2 * i + a]) * in[3] + tw.index()[2 * j + b]] +=
                                    (double) (float) th.weight()[2 * i + a] * (double) (float) tw.weight()[2 * j + b] * v;
                        }
                    }
                }
            }
        }
        float[] r = new float[dx.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = (float) dx[i];
        }
        return new Tensor(in, r);
    }
}
