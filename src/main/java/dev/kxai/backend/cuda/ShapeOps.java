package dev.kxai.backend.cuda;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;

/**
 * Flatten, Reshape and Identity as views of the same buffer (shapes from the plan), Concat and its
 * backward as copies of contiguous blocks, Pad through {@code pad_forward}/{@code pad_backward}.
 */
final class ShapeOps {
    private ShapeOps() {
    }

    static DTensor view(DTensor x, int[] shape) {
        return x.reshape(shape.clone());
    }

    /** The axis of a Concat (already checked against the rank by the plan). */
    static int axis(int axis, int rank) {
        return axis < 0 ? axis + rank : axis;
    }

    private static long outer(int[] shape, int axis) {
        long outer = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        return outer;
    }

    static DTensor concat(DeviceScope s, int axis, DTensor[] in, int[] out) {
        int a = axis(axis, out.length);
        long outer = outer(out, a);
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        long outRow = y.size() / Math.max(1, outer);
        long at = 0;
        for (DTensor t : in) {
            long chunk = t.size() / Math.max(1, outer);
            for (long o = 0; o < outer; o++) {
                y.buf().viewFloats(o * outRow + at, chunk).copyFrom(t.buf().viewFloats(o * chunk, chunk), chunk);
            }
            at += chunk;
        }
        return y;
    }

    static DTensor[] concatBackward(DeviceScope s, int axis, int[][] inShapes, DTensor gy, boolean[] need) {
        int a = axis(axis, gy.rank());
        long outer = outer(gy.shape(), a);
        long outRow = gy.size() / Math.max(1, outer);
        DTensor[] r = new DTensor[inShapes.length];
        long at = 0;
        for (int j = 0; j < inShapes.length; j++) {
            long size = Shapes.size(inShapes[j]);
            long chunk = size / Math.max(1, outer);
            if (need[j]) {
                r[j] = new DTensor(inShapes[j], s.floats(size));
                for (long o = 0; o < outer; o++) {
                    r[j].buf().viewFloats(o * chunk, chunk).copyFrom(gy.buf().viewFloats(o * outRow + at, chunk), chunk);
                }
            }
            at += chunk;
        }
        return r;
    }

    /** Pad modes by number, as kernels/dense.cu takes them. */
    private static int padMode(String mode) {
        return switch (mode) {
            case "reflect" -> 1;
            case "edge" -> 2;
            case "wrap" -> 3;
            default -> 0;
        };
    }

    /** A shape of rank up to 4 as 4 dims, leading ones first. */
    private static int[] four(int[] shape) {
        int[] r = new int[4];
        int pad = 4 - shape.length;
        for (int d = 0; d < 4; d++) {
            r[d] = d < pad ? 1 : shape[d - pad];
        }
        return r;
    }

    /** The begin pads of every axis, as 4 dims (0 on the leading ones). */
    private static int[] begins(Op.Pad op, int rank) {
        int[] full = op.forRank(rank);
        int[] b = new int[4];
        for (int d = 0; d < rank; d++) {
            b[4 - rank + d] = full[d];
        }
        return b;
    }

    static DTensor pad(Kernels k, DeviceScope s, Op.Pad op, DTensor x, int[] out) {
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        k.padForward(y.buf(), x.buf(), padMode(op.mode()), op.value(), four(x.shape()), four(out),
                begins(op, out.length));
        return y;
    }

    static DTensor padBackward(Kernels k, DeviceScope s, Op.Pad op, int[] in, DTensor gy) {
        DTensor dx = new DTensor(in.clone(), s.floats(Shapes.size(in)));
        k.padBackward(dx.buf(), gy.buf(), padMode(op.mode()), four(in), four(gy.shape()),
                begins(op, in.length));
        return dx;
    }

    /** Up to 6 axes padded with leading 1s (stride 0), the layout strided_copy6 takes. */
    private static void six(int[] dims, long[] strides, int[] dims6, long[] strides6) {
        if (dims.length > 6) {
            throw new IllegalStateException("a strided copy over " + dims.length + " dimensions reached cuda");
        }
        java.util.Arrays.fill(dims6, 1);
        int pad = 6 - dims.length;
        for (int d = 0; d < dims.length; d++) {
            dims6[pad + d] = dims[d];
            strides6[pad + d] = strides[d];
        }
    }

    private static long[] rowMajorStrides(int[] shape) {
        long[] st = new long[shape.length];
        long acc = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            st[d] = acc;
            acc *= shape[d];
        }
        return st;
    }

    /** Transpose of up to 6 axes. */
    static DTensor transpose(Kernels k, DeviceScope s, DTensor x, int[] perm) {
        int rank = x.rank();
        long[] inStrides = rowMajorStrides(x.shape());
        int[] out = new int[rank];
        long[] walk = new long[rank];
        for (int d = 0; d < rank; d++) {
            out[d] = x.dim(perm[d]);
            walk[d] = inStrides[perm[d]];
        }
        DTensor y = new DTensor(out, s.floats(x.size()));
        int[] out6 = new int[6];
        long[] strides6 = new long[6];
        six(out, walk, out6, strides6);
        k.stridedCopy6(y.buf(), x.buf(), out6, strides6);
        return y;
    }

    /** Expand: x broadcast to {@code out} (up to 6 axes). */
    static DTensor expand(Kernels k, DeviceScope s, DTensor x, int[] out) {
        int rank = out.length;
        int[] xs = x.shape();
        long[] own = rowMajorStrides(xs);
        long[] walk = new long[rank];
        for (int d = 0; d < rank; d++) {
            int sd = d - (rank - xs.length);
            walk[d] = sd < 0 || xs[sd] == 1 ? 0 : own[sd];
        }
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        int[] out6 = new int[6];
        long[] strides6 = new long[6];
        six(out, walk, out6, strides6);
        k.stridedCopy6(y.buf(), x.buf(), out6, strides6);
        return y;
    }

    /** Expand's backward: gy summed over the broadcast axes (reduce_forward, in double), as the CPU does. */
    static DTensor expandBackward(Kernels k, DeviceScope s, int[] in, DTensor gy) {
        int rank = gy.rank();
        boolean[] r = Shapes.broadcastAxes(in, gy.shape());
        boolean[] r4 = new boolean[4];
        System.arraycopy(r, 0, r4, 4 - rank, rank);
        DTensor dx = new DTensor(in.clone(), s.floats(Shapes.size(in)));
        k.reduceForward(dx.buf(), gy.buf(), four(gy.shape()), r4, false);
        return dx;
    }

    /** [outer, dim, inner] around a Select's axis. */
    private static long[] around(int[] shape, int axis) {
        long outer = 1;
        long inner = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        for (int d = axis + 1; d < shape.length; d++) {
            inner *= shape[d];
        }
        return new long[] {outer, shape[axis], inner};
    }

    /** A Select's constant indices as the float ids the gather kernels read (exact below 2^24). */
    private static DeviceBuffer ids(DeviceScope s, Op.Select op) {
        float[] f = new float[op.indices().length];
        for (int i = 0; i < f.length; i++) {
            f[i] = op.indices()[i];
        }
        return s.upload(f);
    }

    /** Select (constant-index Gather, Slice along one axis) through the gather kernels. */
    static DTensor select(Kernels k, DeviceScope s, Op.Select op, DTensor x, int[] out) {
        int axis = op.axis() < 0 ? op.axis() + x.rank() : op.axis();
        long[] oi = around(x.shape(), axis);
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        k.gatherForward(y.buf(), x.buf(), ids(s, op), oi[0], op.indices().length, (int) oi[1], oi[2]);
        return y;
    }

    static DTensor gather(Kernels k, DeviceScope s, Op.Gather op, DTensor table, DTensor ids, int[] out) {
        int axis = op.axis() < 0 ? op.axis() + table.rank() : op.axis();
        long[] oi = around(table.shape(), axis);
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        k.gatherForward(y.buf(), table.buf(), ids.buf(), oi[0], (int) ids.size(), (int) oi[1], oi[2]);
        return y;
    }

    static DTensor gatherBackward(Kernels k, DeviceScope s, Op.Gather op, int[] table, DTensor ids, DTensor gy) {
        int axis = op.axis() < 0 ? op.axis() + table.length : op.axis();
        long[] oi = around(table, axis);
        DTensor dx = new DTensor(table.clone(), s.floats(Shapes.size(table)));
        k.gatherBackward(dx.buf(), gy.buf(), ids.buf(), oi[0], (int) ids.size(), (int) oi[1], oi[2]);
        return dx;
    }

    private static float[] floats(double[] w) {
        float[] f = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            f[i] = (float) w[i];
        }
        return f;
    }

    static DTensor resize(Kernels k, DeviceScope s, Op.Resize op, DTensor x, int[] out) {
        Op.Resize.Taps th = op.taps(2, x.dim(2), out[2]);
        Op.Resize.Taps tw = op.taps(3, x.dim(3), out[3]);
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        k.resizeForward(y.buf(), x.buf(), s.upload(th.index()), s.upload(floats(th.weight())), s.upload(tw.index()),
                s.upload(floats(tw.weight())), (long) x.dim(0) * x.dim(1), x.dim(2), x.dim(3), out[2], out[3]);
        return y;
    }

    /** For each input index, the output range [lo, hi) whose taps read it (taps are monotone in the output). */
    private static int[][] ranges(Op.Resize.Taps t, int in) {
        int[] lo = new int[in];
        int[] hi = new int[in];
        java.util.Arrays.fill(lo, Integer.MAX_VALUE);
        int outs = t.index().length / 2;
        for (int o = 0; o < outs; o++) {
            for (int a = 0; a < 2; a++) {
                int i = t.index()[2 * o + a];
                lo[i] = Math.min(lo[i], o);
                hi[i] = Math.max(hi[i], o + 1);
            }
        }
        for (int i = 0; i < in; i++) {
            lo[i] = Math.min(lo[i], hi[i]);
        }
        return new int[][] {lo, hi};
    }

    static DTensor resizeBackward(Kernels k, DeviceScope s, Op.Resize op, int[] in, DTensor gy) {
        Op.Resize.Taps th = op.taps(2, in[2], gy.dim(2));
        Op.Resize.Taps tw = op.taps(3, in[3], gy.dim(3));
        int[][] rh = ranges(th, in[2]);
        int[][] rw = ranges(tw, in[3]);
        DTensor dx = new DTensor(in.clone(), s.floats(Shapes.size(in)));
        k.resizeBackward(dx.buf(), gy.buf(), s.upload(th.index()), s.upload(floats(th.weight())), s.upload(tw.index()),
                s.upload(floats(tw.weight())), s.upload(rh[0]), s.upload(rh[1]), s.upload(rw[0]), s.upload(rw[1]),
                (long) in[0] * in[1], in[2], in[3], gy.dim(2), gy.dim(3));
        return dx;
    }

    static DTensor selectBackward(Kernels k, DeviceScope s, Op.Select op, int[] in, DTensor gy) {
        int axis = op.axis() < 0 ? op.axis() + in.length : op.axis();
        long[] oi = around(in, axis);
        DTensor dx = new DTensor(in.clone(), s.floats(Shapes.size(in)));
        k.gatherBackward(dx.buf(), gy.buf(), ids(s, op), oi[0], op.indices().length, (int) oi[1], oi[2]);
        return dx;
    }

    /** The reduced axes of a rank-r input as 4 flags (leading axes never reduced). */
    private static boolean[] reduced4(Op.Reduce op, int rank) {
        boolean[] r = op.reduced(rank);
        boolean[] r4 = new boolean[4];
        System.arraycopy(r, 0, r4, 4 - rank, rank);
        return r4;
    }

    static DTensor reduce(Kernels k, DeviceScope s, Op.Reduce op, DTensor x, int[] out) {
        DTensor y = new DTensor(out.clone(), s.floats(Shapes.size(out)));
        if (op.kind() == Op.Reduce.Kind.MAX || op.kind() == Op.Reduce.Kind.MIN) {
            k.reduceExtremeForward(y.buf(), x.buf(), four(x.shape()), reduced4(op, x.rank()), op.kind() == Op.Reduce.Kind.MAX);
            return y;
        }
        k.reduceForward(y.buf(), x.buf(), four(x.shape()), reduced4(op, x.rank()), op.kind() == Op.Reduce.Kind.MEAN);
        return y;
    }

    static DTensor reduceBackward(Kernels k, DeviceScope s, Op.Reduce op, DTensor x, DTensor y, int[] in, DTensor gy) {
        DTensor dx = new DTensor(in.clone(), s.floats(Shapes.size(in)));
        if (op.kind() == Op.Reduce.Kind.MAX || op.kind() == Op.Reduce.Kind.MIN) {
            k.reduceExtremeBackward(dx.buf(), gy.buf(), x.buf(), y.buf(), four(in), reduced4(op, in.length));
            return dx;
        }
        k.reduceBackward(dx.buf(), gy.buf(), four(in), reduced4(op, in.length), op.kind() == Op.Reduce.Kind.MEAN);
        return dx;
    }
}
