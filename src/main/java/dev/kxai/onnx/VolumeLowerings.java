package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.List;

/**
 * 3-D Conv, MaxPool and AveragePool on [N, C, D, H, W] rewritten at load into kxai's 2-D operators
 * (see {@link Lowerings}); each depth slice becomes an image of a batch of N·D' images:
 * <ul>
 * <li>Conv: the depth axis padded (as a 4-D view), for each kernel depth a the input
 * slices a·d + s·o (o = 0..D'−1) picked and stacked on the channels ([N, kD·C, D', H, W]; with groups, reordered group-major), moved to
 * [N·D', kD·C, H, W] and convolved in 2-D with weights W'[m, a·C + c] = W[m, c, a]; moved back;</li>
 * <li>pooling, which is separable (the max over a box is the max over depth of the max over H, W;
 * the mean's divisor, padding counted or not, is the product of the per-axis counts): the 2-D pool
 * over H, W on [N·D, C, H, W], then a [kD, 1] pool over depth on [N, 1, D, C·H'·W'].</li>
 * </ul>
 */
final class VolumeLowerings {
    private VolumeLowerings() {
    }

    static final List<String> OPS = List.of("Conv", "MaxPool", "AveragePool");

    private record Axis(int kernel, int stride, int dilation, int begin, int end, int in) {
        int out(boolean ceil) {
            int span = in + begin + end - ((kernel - 1) * dilation + 1);
            return (ceil ? Math.floorDiv(span + stride - 1, stride) : Math.floorDiv(span, stride)) + 1;
        }
    }

    static void lower(Lowerings.Emit e, Attrs a, int[] x) {
        String t = e.n.getOpType();
        int[] k;
        if (t.equals("Conv")) {
            e.inputs(2, 3);
            int[] w = e.out.shape(e.in(1), e.name);
            if (w.length != 5) {
                throw new ModelException(e.source + ": node '" + e.name + "' (Conv): weights '" + e.in(1) + "' of shape "
                        + Shapes.str(w) + "; a 3-D Conv takes [M, C/group, kD, kH, kW]");
            }
            k = a.ints("kernel_shape", new int[] {w[2], w[3], w[4]});
            if (!Arrays.equals(k, new int[] {w[2], w[3], w[4]})) {
                throw a.bad(t, "kernel_shape", k, "the weights' spatial dims " + Shapes.str(new int[] {w[2], w[3], w[4]}));
            }
            int group = a.i32("group", 1);
            if (group < 1 || x[1] % group != 0 || w[0] % group != 0) {
                throw a.bad(t, "group", group, "a group count >= 1 dividing the " + x[1] + " input and " + w[0]
                        + " output channels");
            }
            if (w[1] * group != x[1]) {
                throw new ModelException(e.source + ": node '" + e.name + "' (Conv): weights " + Shapes.str(w)
                        + " do not match the input's " + x[1] + " channels in " + group + " group(s)");
            }
        } else {
            e.inputs(1, 1);
            k = a.required("kernel_shape");
            if (e.n.getOutputCount() > 1 && !e.n.getOutput(1).isEmpty()) {
                throw new ModelException(e.source + ": node '" + e.name + "': MaxPool with an Indices output is not "
                        + "supported");
            }
        }
        Axis[] axes = axes(e, a, t, x, k);
        boolean ceil = a.i("ceil_mode", 0) != 0;
        if (t.equals("Conv")) {
            conv(e, x, axes, a.i32("group", 1));
        } else {
            pool(e, a, x, axes, ceil);
        }
    }

    /** Per spatial axis: kernel, stride, dilation and the explicit (or auto_pad) pads. */
    private static Axis[] axes(Lowerings.Emit e, Attrs a, String t, int[] x, int[] k) {
        int[] s = a.ints("strides", new int[] {1, 1, 1});
        int[] d = a.ints("dilations", new int[] {1, 1, 1});
        int[] p = a.ints("pads", new int[6]);
        if (k.length != 3 || s.length != 3 || d.length != 3 || p.length != 6) {
            throw new ModelException(e.source + ": node '" + e.name + "' (" + t + "): kernel_shape "
                    + Arrays.toString(k) + ", strides " + Arrays.toString(s) + ", dilations " + Arrays.toString(d)
                    + ", pads " + Arrays.toString(p) + " do not describe a 3-D window");
        }
        if (t.equals("AveragePool") && !Arrays.equals(d, new int[] {1, 1, 1})) {
            throw a.bad(t, "dilations", d, "1 (AveragePool takes no dilations)");
        }
        String auto = a.s("auto_pad", "NOTSET");
        Axis[] r = new Axis[3];
        for (int i = 0; i < 3; i++) {
            if (k[i] < 1 || s[i] < 1 || d[i] < 1 || p[i] < 0 || p[3 + i] < 0) {
                throw a.bad(t, "kernel_shape/strides/dilations/pads", Arrays.toString(k) + "/" + Arrays.toString(s) + "/"
                        + Arrays.toString(d) + "/" + Arrays.toString(p), "kernel, stride, dilation >= 1 and pads >= 0");
            }
            int begin = p[i];
            int end = p[3 + i];
            int in = x[2 + i];
            switch (auto) {
                case "NOTSET" -> { }
                case "VALID" -> {
                    begin = 0;
                    end = 0;
                }
                case "SAME_UPPER", "SAME_LOWER" -> {
                    int out = (in + s[i] - 1) / s[i];
                    int total = Math.max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in);
                    begin = auto.equals("SAME_UPPER") ? total / 2 : total - total / 2;
                    end = total - begin;
                }
                default -> throw a.bad(t, "auto_pad", "'" + auto + "'", "one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
            }
            r[i] = new Axis(k[i], s[i], d[i], begin, end, in);
        }
        return r;
    }

    private static String shape(Lowerings.Emit e, String suffix, int... dims) {
        float[] v = new float[dims.length];
        for (int i = 0; i < dims.length; i++) {
            v[i] = dims[i];
        }
        return e.constant(suffix, new Tensor(new int[] {v.length}, v));
    }

    private static void conv(Lowerings.Emit e, int[] x, Axis[] ax, int group) {
        int c = x[1];
        int hw = x[3] * x[4];
        Axis dz = ax[0];
        String v = e.in(0);
        int depth = x[2];
        if (dz.begin > 0 || dz.end > 0) {
            String flat = e.node("depth_view", "Reshape", new Op.Reshape(false), v, shape(e, "depth_view_shape", 0, c,
                    depth, hw));
            String padded = e.node("depth_padded", "Pad", new Op.Pad("constant", new int[] {0, 0, dz.begin, 0, 0, 0,
                    dz.end, 0}, 0f, null), flat);
            depth += dz.begin + dz.end;
            v = e.node("depth_volume", "Reshape", new Op.Reshape(false), padded, shape(e, "depth_volume_shape", 0, c,
                    depth, x[3], x[4]));
        }
        int outD = new Axis(dz.kernel, dz.stride, dz.dilation, 0, 0, depth).out(false);
        if (outD < 1) {
            throw new ModelException(e.source + ": node '" + e.name + "' (Conv): the kernel's depth does not fit the input "
                    + Shapes.str(x));
        }
        String[] slices = new String[dz.kernel];
        for (int a = 0; a < dz.kernel; a++) {
            int[] idx = new int[outD];
            for (int o = 0; o < outD; o++) {
                idx[o] = a * dz.dilation + o * dz.stride;
            }
            slices[a] = e.node("depth_tap" + a, "Slice", new Op.Select(2, idx, new int[] {outD}), v);
        }
        String stacked = slices.length == 1 ? slices[0]
                : e.node("taps", "Concat", new Op.Concat(1), slices);
        int cg = c / group;
        if (group > 1 && dz.kernel > 1) {
            // the taps' channels a·C + c regrouped group-major (g, a, c mod C/G), so that the grouped 2-D
            // Conv's group g reads exactly the depth taps of its own input channels
            int[] order = new int[dz.kernel * c];
            for (int g = 0; g < group; g++) {
                for (int a = 0; a < dz.kernel; a++) {
                    for (int cc = 0; cc < cg; cc++) {
                        order[(g * dz.kernel + a) * cg + cc] = a * c + g * cg + cc;
                    }
                }
            }
            stacked = e.node("taps_by_group", "Gather", new Op.Select(1, order, new int[] {order.length}), stacked);
        }
        String moved = e.node("images_5d", "Transpose", new Op.Transpose(new int[] {0, 2, 1, 3, 4}), stacked);
        String images = e.node("images", "Reshape", new Op.Reshape(false), moved, shape(e, "images_shape", -1,
                dz.kernel * c, x[3], x[4]));
        // W'[m, a·C/G + c, kh, kw] = W[m, c, a, kh, kw] (c within the group's C/G channels)
        Tensor w = e.constantInput(1, "weights");
        int m = w.shape()[0];
        int kh = ax[1].kernel;
        int kw = ax[2].kernel;
        float[] src = w.data();
        float[] dst = new float[src.length];
        for (int mm = 0; mm < m; mm++) {
            for (int cc = 0; cc < cg; cc++) {
                for (int a = 0; a < dz.kernel; a++) {
                    System.arraycopy(src, (((mm * cg + cc) * dz.kernel) + a) * kh * kw, dst,
                            ((mm * dz.kernel + a) * cg + cc) * kh * kw, kh * kw);
                }
            }
        }
        String w2 = e.constant("weights_2d", new Tensor(new int[] {m, dz.kernel * cg, kh, kw}, dst));
        Op.Conv conv = new Op.Conv(new int[] {kh, kw}, new int[] {ax[1].stride, ax[2].stride},
                new int[] {ax[1].begin, ax[2].begin, ax[1].end, ax[2].end}, new int[] {ax[1].dilation, ax[2].dilation},
                group, "NOTSET");
        boolean bias = e.n.getInputCount() > 2 && !e.in(2).isEmpty();
        String y = bias ? e.node("conv", "Conv", conv, images, w2, e.in(2)) : e.node("conv", "Conv", conv, images, w2);
        int[] ys = e.out.shape(y, e.name);
        String back = e.node("volume", "Reshape", new Op.Reshape(false), y, shape(e, "volume_shape", -1, outD, m, ys[2],
                ys[3]));
        e.last("Transpose", new Op.Transpose(new int[] {0, 2, 1, 3, 4}), back);
    }

    private static void pool(Lowerings.Emit e, Attrs a, int[] x, Axis[] ax, boolean ceil) {
        String t = e.n.getOpType();
        boolean max = t.equals("MaxPool");
        boolean countPad = a.i("count_include_pad", 0) != 0;
        int c = x[1];
        String moved = e.node("images_5d", "Transpose", new Op.Transpose(new int[] {0, 2, 1, 3, 4}), e.in(0));
        String images = e.node("images", "Reshape", new Op.Reshape(false), moved, shape(e, "images_shape", -1, c, x[3],
                x[4]));
        int[] kHW = {ax[1].kernel, ax[2].kernel};
        int[] sHW = {ax[1].stride, ax[2].stride};
        int[] pHW = {ax[1].begin, ax[2].begin, ax[1].end, ax[2].end};
        Op planar = max ? new Op.MaxPool(kHW, sHW, pHW, new int[] {ax[1].dilation, ax[2].dilation}, ceil, "NOTSET")
                : new Op.AveragePool(kHW, sHW, pHW, countPad, ceil, "NOTSET");
        String p = e.node("planar", t, planar, images);
        int[] ps = e.out.shape(p, e.name);
        int plane = c * ps[2] * ps[3];
        String rows = e.node("depth_rows", "Reshape", new Op.Reshape(false), p, shape(e, "depth_rows_shape", -1, 1, x[2],
                plane));
        Axis dz = ax[0];
        int[] kD = {dz.kernel, 1};
        int[] sD = {dz.stride, 1};
        int[] pD = {dz.begin, 0, dz.end, 0};
        Op depth = max ? new Op.MaxPool(kD, sD, pD, new int[] {dz.dilation, 1}, ceil, "NOTSET")
                : new Op.AveragePool(kD, sD, pD, countPad, ceil, "NOTSET");
        String pooled = e.node("depth", t, depth, rows);
        int outD = e.out.shape(pooled, e.name)[2];
        String back = e.node("volume", "Reshape", new Op.Reshape(false), pooled, shape(e, "volume_shape", -1, outD, c,
                ps[2], ps[3]));
        e.last("Transpose", new Op.Transpose(new int[] {0, 2, 1, 3, 4}), back);
    }

    /** Whether the node is a 3-D window operator this class rewrites. */
    static boolean handles(OnnxMl.NodeProto n, LoadTime lt) {
        if (!OPS.contains(n.getOpType()) || n.getInputCount() < 1) {
            return false;
        }
        int[] x = lt.knownShape(n.getInput(0));
        return x != null && x.length == 5;
    }
}
