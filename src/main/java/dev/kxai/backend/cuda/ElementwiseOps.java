package dev.kxai.backend.cuda;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import java.util.Arrays;

/**
 * Elementwise operators on the device (kernels/dense.cu, kernels/head.cu): activations, the
 * broadcasting binary operators (through {@link Broadcast}, 4-D at most), Softmax, and the batch
 * norm's per-channel affine map (scale and shift folded once, see {@link CudaOpSet}).
 */
final class ElementwiseOps {
    static final int ADD = 0;
    static final int SUB = 1;
    static final int MUL = 2;
    static final int DIV = 3;
    static final int POW = 4;

    private final Kernels k;

    ElementwiseOps(Kernels k) {
        this.k = k;
    }

    DTensor activation(DeviceScope s, DTensor x, int code, float alpha) {
        DTensor y = new DTensor(x.shape(), s.floats(x.size()));
        k.actForward(y.buf(), x.buf(), y.size(), code, alpha);
        return y;
    }

    /** y = f(x) for the unary family (Clip, HardSwish, Erf, ...). */
    DTensor unary(DeviceScope s, dev.kxai.graph.Op.Unary op, DTensor x) {
        DTensor y = new DTensor(x.shape(), s.floats(x.size()));
        k.unaryForward(y.buf(), x.buf(), y.size(), op.kind().code, op.alpha(), op.beta());
        return y;
    }

    /** gx = gy · f'(x) for the unary family (the backward reads the input). */
    DTensor unaryBackward(DeviceScope s, dev.kxai.graph.Op.Unary op, DTensor x, DTensor gy) {
        DTensor gx = new DTensor(gy.shape(), s.floats(gy.size()));
        k.unaryBackward(gx.buf(), gy.buf(), x.buf(), gx.size(), op.kind().code, op.alpha(), op.beta());
        return gx;
    }

    /** The gradient through an activation whose backward reads {@code saved} (its output, or its input for LeakyReLU). */
    DTensor activationBackward(DeviceScope s, DTensor gy, DeviceBuffer saved, int code, float alpha) {
        DTensor gx = new DTensor(gy.shape(), s.floats(gy.size()));
        k.actBackward(gx.buf(), gy.buf(), saved, gx.size(), code, alpha);
        return gx;
    }

    DTensor binary(DeviceScope s, int code, DTensor a, DTensor b, int[] out) {
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        Broadcast bc = Broadcast.of(out, a.shape(), b.shape());
        k.binaryForward(y.buf(), a.buf(), b.buf(), code, bc.dims, bc.a, bc.b);
        return y;
    }

    /**
     * The gradients of a binary operator's operands. An operand the fused group did not
     * materialise (a MatMul's output under its absorbed bias Add) gets the gradient as it is.
     */
    /** Where: c ≠ 0 ? x : y, broadcast to {@code out} (up to 4-D). */
    DTensor where(DeviceScope s, DTensor c, DTensor x, DTensor y, int[] out) {
        DTensor r = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        Broadcast cx = Broadcast.of(out, c.shape(), x.shape());
        Broadcast yy = Broadcast.of(out, y.shape(), y.shape());
        k.whereForward(r.buf(), c.buf(), x.buf(), y.buf(), cx.dims, cx.a, cx.b, yy.a);
        return r;
    }

    /** Where's gradient for x (which 0) or y (which 1): gy where the condition picks it, onto its shape. */
    DTensor whereBackward(DeviceScope s, DTensor c, int[] shape, DTensor gy, int which) {
        int[] out = gy.shape();
        Broadcast gc = Broadcast.of(out, shape, c.shape());
        DTensor g = new DTensor(shape.clone(), s.floats(Shapes.size(shape)));
        g.buf().zero();
        k.whereBackward(g.buf(), gy.buf(), c.buf(), which, gc.dims, gc.a, gc.b);
        return g;
    }

    DTensor[] binaryBackward(DeviceScope s, int code, DTensor[] in, int[][] inShapes, DTensor gy, boolean[] need) {
        DTensor[] r = new DTensor[2];
        int[] out = gy.shape();
        if (in[0] == null || in[1] == null) {
            for (int j = 0; j < 2; j++) {
                if (need[j]) {
                    if (code != ADD || Shapes.size(inShapes[j]) != gy.size()) {
                        throw new IllegalStateException("the backward of a fused binary operator needs its inputs");
                    }
                    r[j] = Arrays.equals(inShapes[j], out) ? gy : gy.reshape(inShapes[j]);
                }
            }
            return r;
        }
        Broadcast b = Broadcast.of(out, in[0].shape(), in[1].shape());
        for (int j = 0; j < 2; j++) {
            if (!need[j]) {
                continue;
            }
            if (code == DIV || code == POW) {
                // the contribution of each output element, from both operands, summed onto this one
                DTensor g = new DTensor(in[j].shape(), s.floats(in[j].size()));
                g.buf().zero();
                k.binaryGrad(g.buf(), gy.buf(), in[0].buf(), in[1].buf(), code, j, b.dims, j == 0 ? b.a : b.b, b.a, b.b);
                r[j] = g;
                continue;
            }
            DTensor operand = in[j];
            DTensor other = in[1 - j];
            long[] ownStrides = j == 0 ? b.a : b.b;
            long[] otherStrides = j == 0 ? b.b : b.a;
            float scale = code == SUB && j == 1 ? -1f : 1f;
            DTensor g = new DTensor(operand.shape(), s.floats(operand.size()));
            boolean full = Arrays.equals(operand.shape(), out);
            if (full && code != MUL) {
                k.scaleCopy(g.buf(), gy.buf(), g.size(), scale);
            } else if (full) {
                // gy ⊙ other, other broadcast: the forward kernel with "mul"
                long[] dense = Broadcast.of(out, out, out).a;
                k.binaryForward(g.buf(), gy.buf(), other.buf(), MUL, b.dims, dense, otherStrides);
            } else {
                g.buf().zero();
                long[] dense = Broadcast.of(out, out, out).a;
                if (code == MUL) {
                    k.binaryBackward(g.buf(), gy.buf(), other.buf(), 1f, b.dims, ownStrides, otherStrides);
                } else {
                    k.binaryBackward(g.buf(), gy.buf(), null, scale, b.dims, ownStrides, dense);
                }
            }
            r[j] = g;
        }
        return r;
    }

    /**
     * {outer, n, inner} of a Softmax: n values along the axis, strided by inner; with the opset-12
     * flattening, one line of prod(dims[axis:]) contiguous values per outer index.
     */
    private static long[] softmaxLines(Op.Softmax sm, int[] shape) {
        int axis = sm.axis() < 0 ? sm.axis() + shape.length : sm.axis(); // checked by the plan
        long outer = 1;
        long inner = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        for (int d = axis + 1; d < shape.length; d++) {
            inner *= shape[d];
        }
        if (sm.flatten()) {
            return new long[] {outer, shape[axis] * inner, 1};
        }
        return new long[] {outer, shape[axis], inner};
    }

    DTensor softmax(DeviceScope s, Op.Softmax sm, DTensor x) {
        DTensor y = new DTensor(x.shape(), s.floats(x.size()));
        long[] oni = softmaxLines(sm, x.shape());
        k.softmaxForward(y.buf(), x.buf(), oni[0], (int) oni[1], oni[2]);
        return y;
    }

    DTensor softmaxBackward(DeviceScope s, Op.Softmax sm, DTensor y, DTensor gy) {
        long[] oni = softmaxLines(sm, y.shape());
        DTensor gx = new DTensor(y.shape(), s.floats(y.size()));
        k.softmaxBackward(gx.buf(), gy.buf(), y.buf(), oni[0], (int) oni[1], oni[2]);
        return gx;
    }

    /** {scale, shift} per channel of an inference batch norm, folded on the host once (at load). */
    static float[][] foldBatchNorm(float[] gamma, float[] beta, float[] mean, float[] var, float epsilon) {
        float[] scale = new float[gamma.length];
        float[] shift = new float[gamma.length];
        for (int c = 0; c < gamma.length; c++) {
            float inv = (float) (1.0 / Math.sqrt(var[c] + epsilon));
            scale[c] = gamma[c] * inv;
            shift[c] = beta[c] - mean[c] * scale[c];
        }
        return new float[][] {scale, shift};
    }

    /** Inference batch norm: y = scale_c · x + shift_c per channel (axis 1). */
    DTensor channelAffine(DeviceScope s, DTensor x, DeviceBuffer[] scaleShift) {
        DTensor y = new DTensor(x.shape(), s.floats(x.size()));
        int c = x.dim(1);
        k.channelAffine(y.buf(), x.buf(), scaleShift[0], scaleShift[1], y.size(), c, y.size() / ((long) x.dim(0) * c));
        return y;
    }

    /** The batch norm's input gradient: scale_c · gy. */
    DTensor channelAffineBackward(DeviceScope s, int[] x, DTensor gy, DeviceBuffer[] scaleShift) {
        int c = x[1];
        DTensor gx = new DTensor(x, s.floats(Shapes.size(x)));
        k.channelAffine(gx.buf(), gy.buf(), scaleShift[0], null, gx.size(), c, gx.size() / ((long) x[0] * c));
        return gx;
    }
}
