package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.List;

/**
 * Spatial operators rewritten at load into kxai's own (see {@link Lowerings}): ConvTranspose (2-D) as
 * zero insertion (Reshape, Pad, Reshape per strided axis), one Pad and a Conv with the flipped,
 * transposed weights; 1-D Conv, ConvTranspose, MaxPool and AveragePool as their 2-D forms on an
 * unsqueezed [N, C, 1, L] input; DepthToSpace and SpaceToDepth as Reshape, Transpose, Reshape; LRN
 * as a channel-window AveragePool of x²; Tile as a Concat of copies per repeated axis.
 */
final class SpatialLowerings {
    static final List<String> OPS = List.of("ConvTranspose", "DepthToSpace", "SpaceToDepth", "LRN", "Tile");

    /** Operators kxai runs in 2-D whose 1-D form (a rank-3 input) is rewritten here. */
    private static final List<String> ONE_D = List.of("Conv", "ConvTranspose", "MaxPool", "AveragePool");

    private SpatialLowerings() {
    }

    /** Whether this class rewrites the node: one of {@link #OPS}, or a 1-D window operator. */
    static boolean handles(OnnxMl.NodeProto n, LoadTime lt, String name) {
        if (OPS.contains(n.getOpType()) || VolumeLowerings.handles(n, lt)) {
            return true;
        }
        if (!ONE_D.contains(n.getOpType()) || n.getInputCount() < 1) {
            return false;
        }
        int[] x = lt.knownShape(n.getInput(0));
        return x != null && x.length == 3;
    }

    static void lower(OnnxMl.NodeProto n, String name, String source, LoadTime lt, Decompositions.Sink out) {
        Lowerings.Emit e = new Lowerings.Emit(n, name, source, lt, out);
        Attrs a = new Attrs(n, name, source);
        int[] x = out.shape(n.getInput(0), name);
        if (ONE_D.contains(n.getOpType()) && x.length == 3) {
            oneD(e, a, x);
            return;
        }
        if (VolumeLowerings.OPS.contains(n.getOpType()) && x.length == 5) {
            VolumeLowerings.lower(e, a, x);
            return;
        }
        switch (n.getOpType()) {
            case "ConvTranspose" -> convTranspose(e, a, x);
            case "DepthToSpace", "SpaceToDepth" -> depthSpace(e, a, x);
            case "LRN" -> lrn(e, a, x);
            case "Tile" -> tile(e, x);
            default -> throw new IllegalArgumentException(n.getOpType());
        }
    }

    /**
     * A 1-D window operator on [N, C, L] as its 2-D form on [N, C, 1, L]: every spatial attribute gets
     * a leading H entry (kernel 1, stride 1, dilation 1, pads 0, output_padding 0, output_shape 1),
     * weights [M, C/g, k] become [M, C/g, 1, k] (a constant laid out at load, or an Unsqueeze), and
     * the output loses the H axis again. The 2-D node then goes through the ordinary checks.
     */
    private static void oneD(Lowerings.Emit e, Attrs a, int[] x) {
        OnnxMl.NodeProto n = e.n;
        String t = n.getOpType();
        OnnxMl.NodeProto.Builder b = n.toBuilder().clearAttribute().clearInput().clearOutput().setName(e.name + "/2d");
        for (OnnxMl.AttributeProto at : n.getAttributeList()) {
            OnnxMl.AttributeProto.Builder c = at.toBuilder();
            switch (at.getName()) {
                case "kernel_shape", "strides", "dilations", "output_padding", "output_shape" -> {
                    if (at.getIntsCount() != 1) {
                        throw a.bad(t, at.getName(), at.getIntsList(), "one value for a 1-D " + t + " (input "
                                + Shapes.str(x) + ")");
                    }
                    long pad = at.getName().equals("output_padding") ? 0 : 1;
                    c.clearInts().addInts(pad).addInts(at.getInts(0));
                }
                case "pads" -> {
                    if (at.getIntsCount() != 2) {
                        throw a.bad(t, "pads", at.getIntsList(), "a begin and an end pad for a 1-D " + t);
                    }
                    c.clearInts().addInts(0).addInts(at.getInts(0)).addInts(0).addInts(at.getInts(1));
                }
                default -> { }
            }
            b.addAttribute(c);
        }
        String in2 = e.node("as_2d", "Unsqueeze", new Op.Unsqueeze(new int[] {2}), n.getInput(0));
        b.addInput(in2);
        boolean weighted = t.equals("Conv") || t.equals("ConvTranspose");
        for (int j = 1; j < n.getInputCount(); j++) {
            String v = n.getInput(j);
            if (j == 1 && weighted && !v.isEmpty()) {
                int[] w = e.out.shape(v, e.name);
                if (w.length != 3) {
                    throw new ModelException(e.source + ": node '" + e.name + "' (" + t + "): weights '" + v + "' of shape "
                            + Shapes.str(w) + "; a 1-D " + t + " takes 3-D weights");
                }
                v = e.lt.isConstant(v)
                        ? e.constant("weights_2d", new Tensor(new int[] {w[0], w[1], 1, w[2]}, e.lt.valueAt(v, 0).data()))
                        : e.node("weights_2d", "Unsqueeze", new Op.Unsqueeze(new int[] {2}), v);
            }
            b.addInput(v);
        }
        String y2 = e.prefix + "2d";
        b.addOutput(y2);
        for (int k = 1; k < n.getOutputCount(); k++) {
            b.addOutput(n.getOutput(k));
        }
        e.out.onnx(b.build(), e.name + "/2d");
        e.last("Squeeze", new Op.Squeeze(new int[] {2}), y2);
    }

    /**
     * ConvTranspose (2-D; groups, strides, pads, output_padding, dilations, output_shape, auto_pad):
     * y = Conv(pad(z), W'), z the input with stride − 1 zeros after every row and column, W'[g·M/g + o,
     * i] = flip(W[g·C/g + i, o]) (W is [C, M/g, kH, kW]), and the pads (k − 1)·d − pad_begin before
     * and (k − 1)·d − pad_end + output_padding − (stride − 1) after (negative: a crop). Exactly the
     * transpose of Conv; the convolution runs over the zero-filled input (stride² times a direct
     * transposed convolution's work).
     */
    private static void convTranspose(Lowerings.Emit e, Attrs a, int[] x) {
        String t = "ConvTranspose";
        e.inputs(2, 3);
        if (x.length != 4) {
            throw new ModelException(e.source + ": node '" + e.name + "' (ConvTranspose): input " + Shapes.str(x)
                    + "; kxai runs 1-D and 2-D ConvTranspose");
        }
        String wName = e.in(1);
        if (!e.lt.isConstant(wName)) {
            throw new ModelException(e.source + ": node '" + e.name + "' (ConvTranspose): weights '" + wName
                    + "' are computed per request; kxai needs them constant");
        }
        Tensor w = e.lt.valueAt(wName, 0);
        int[] ws = w.shape();
        int group = a.i32("group", 1);
        if (ws.length != 4) {
            throw new ModelException(e.source + ": node '" + e.name + "' (ConvTranspose): weights '" + wName + "' of shape "
                    + Shapes.str(ws) + "; a 2-D ConvTranspose takes [C, M/group, kH, kW]");
        }
        if (group < 1 || x[1] % group != 0 || ws[0] != x[1]) {
            throw a.bad(t, "group", group, "group >= 1 dividing the input's " + x[1] + " channels, which equal the "
                    + "weights' first dimension (weights '" + wName + "' " + Shapes.str(ws) + ")");
        }
        int[] k = a.ints("kernel_shape", new int[] {ws[2], ws[3]});
        if (k.length != 2 || k[0] != ws[2] || k[1] != ws[3]) {
            throw a.bad(t, "kernel_shape", k, "the weights' spatial dims [" + ws[2] + ", " + ws[3] + "]");
        }
        int[] s = twoPositive(a, t, "strides");
        int[] d = twoPositive(a, t, "dilations");
        int[] op = a.ints("output_padding", new int[] {0, 0});
        if (op.length != 2 || op[0] < 0 || op[1] < 0 || op[0] >= Math.max(s[0], d[0]) || op[1] >= Math.max(s[1], d[1])) {
            throw a.bad(t, "output_padding", op, "two values in [0, max(stride, dilation)) per axis");
        }
        String autoPad = a.s("auto_pad", "NOTSET");
        int[] pads = a.ints("pads", new int[] {0, 0, 0, 0});
        if (pads.length != 4 || Arrays.stream(pads).anyMatch(p -> p < 0)) {
            throw a.bad(t, "pads", pads, "four pads >= 0 (begin H, begin W, end H, end W)");
        }
        int[] outShape = a.ints("output_shape", null);
        if (outShape != null && outShape.length == 4) {
            outShape = new int[] {outShape[2], outShape[3]};
        }
        if (outShape != null && outShape.length != 2) {
            throw a.bad(t, "output_shape", outShape, "the two spatial sizes (or all four dims) of the output");
        }
        if (autoPad.equals("SAME_UPPER") || autoPad.equals("SAME_LOWER")) {
            outShape = outShape != null ? outShape : new int[] {x[2] * s[0], x[3] * s[1]};
        } else if (autoPad.equals("VALID")) {
            pads = new int[4];
        } else if (!autoPad.equals("NOTSET")) {
            throw a.bad(t, "auto_pad", "'" + autoPad + "'", "one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
        }
        if (outShape != null) {
            for (int i = 0; i < 2; i++) {
                int total = s[i] * (x[2 + i] - 1) + op[i] + (k[i] - 1) * d[i] + 1 - outShape[i];
                if (total < 0) {
                    throw a.bad(t, "output_shape", a.ints("output_shape", null), "at most the full output size "
                            + (s[i] * (x[2 + i] - 1) + op[i] + (k[i] - 1) * d[i] + 1) + " on spatial axis " + i);
                }
                boolean upperFirst = autoPad.equals("SAME_UPPER");
                pads[i] = upperFirst ? total / 2 : total - total / 2;
                pads[2 + i] = total - pads[i];
            }
        }
        // the Conv's weights: [M, C/group, kH, kW], each kernel flipped
        int cg = ws[0] / group;
        int mg = ws[1];
        int kk = k[0] * k[1];
        float[] wd = w.data();
        float[] flipped = new float[wd.length];
        for (int g = 0; g < group; g++) {
            for (int i = 0; i < cg; i++) {
                for (int o = 0; o < mg; o++) {
                    int src = ((g * cg + i) * mg + o) * kk;
                    int dst = ((g * mg + o) * cg + i) * kk;
                    for (int q = 0; q < kk; q++) {
                        flipped[dst + kk - 1 - q] = wd[src + q];
                    }
                }
            }
        }
        String wConv = e.constant("conv_weights", new Tensor(new int[] {group * mg, cg, k[0], k[1]}, flipped));
        // zero insertion, one strided axis at a time, in 4-D views
        String z = e.in(0);
        int c = x[1];
        int h = x[2];
        int wd2 = x[3];
        if (s[0] > 1) {
            String v = e.node("rows", "Reshape", new Op.Reshape(false), z, shape(e, "rows_shape", 0, c * h, 1, wd2));
            String p = e.node("rows_spread", "Pad", new Op.Pad("constant", new int[] {0, 0, 0, 0, 0, 0, s[0] - 1, 0}, 0f,
                    null), v);
            h *= s[0];
            z = e.node("rows_zeros", "Reshape", new Op.Reshape(false), p, shape(e, "rows_zeros_shape", 0, c, h, wd2));
        }
        if (s[1] > 1) {
            String v = e.node("cols", "Reshape", new Op.Reshape(false), z, shape(e, "cols_shape", 0, c * h, wd2, 1));
            String p = e.node("cols_spread", "Pad", new Op.Pad("constant", new int[] {0, 0, 0, 0, 0, 0, 0, s[1] - 1}, 0f,
                    null), v);
            wd2 *= s[1];
            z = e.node("cols_zeros", "Reshape", new Op.Reshape(false), p, shape(e, "cols_zeros_shape", 0, c, h, wd2));
        }
        int[] padded = new int[8];
        for (int i = 0; i < 2; i++) {
            int reach = (k[i] - 1) * d[i];
            padded[2 + i] = reach - pads[i];
            padded[6 + i] = reach - pads[2 + i] + op[i] - (s[i] - 1);
        }
        if (Arrays.stream(padded).anyMatch(p -> p != 0)) {
            z = e.node("padded", "Pad", new Op.Pad("constant", padded, 0f, null), z);
        }
        boolean bias = e.n.getInputCount() > 2 && !e.in(2).isEmpty();
        Op.Conv conv = new Op.Conv(k, new int[] {1, 1}, new int[] {0, 0, 0, 0}, d, group, "NOTSET");
        if (bias) {
            e.last("Conv", conv, z, wConv, e.in(2));
        } else {
            e.last("Conv", conv, z, wConv);
        }
    }

    private static int[] twoPositive(Attrs a, String t, String attr) {
        int[] v = a.ints(attr, new int[] {1, 1});
        if (v.length != 2 || v[0] < 1 || v[1] < 1) {
            throw a.bad(t, attr, v, "two values >= 1 (one per spatial axis of a 2-D " + t + ")");
        }
        return v;
    }

    /** A Reshape target constant (0 keeps the batch axis). */
    private static String shape(Lowerings.Emit e, String suffix, int... dims) {
        float[] v = new float[dims.length];
        for (int i = 0; i < dims.length; i++) {
            v[i] = dims[i];
        }
        return e.constant(suffix, new Tensor(new int[] {v.length}, v));
    }

    /**
     * DepthToSpace (DCR: depth as [b, b, C/b²]; CRD: [C/b², b, b]) and SpaceToDepth, as ONNX defines
     * them: a 6-D view, a transpose, a 4-D view.
     */
    private static void depthSpace(Lowerings.Emit e, Attrs a, int[] x) {
        String t = e.n.getOpType();
        e.inputs(1, 1);
        int b = a.required("blocksize", t);
        if (x.length != 4) {
            throw new ModelException(e.source + ": node '" + e.name + "' (" + t + "): input " + Shapes.str(x)
                    + "; it takes NCHW");
        }
        int c = x[1];
        int h = x[2];
        int w = x[3];
        int[] view;
        int[] perm;
        int[] result;
        if (t.equals("DepthToSpace")) {
            if (b < 1 || c % (b * b) != 0) {
                throw a.bad(t, "blocksize", b, "blocksize >= 1 with blocksize² dividing the " + c + " channels");
            }
            String mode = a.s("mode", "DCR");
            if (mode.equals("DCR")) {
                view = new int[] {0, b, b, c / (b * b), h, w};
                perm = new int[] {0, 3, 4, 1, 5, 2};
            } else if (mode.equals("CRD")) {
                view = new int[] {0, c / (b * b), b, b, h, w};
                perm = new int[] {0, 1, 4, 2, 5, 3};
            } else {
                throw a.bad(t, "mode", "'" + mode + "'", "DCR or CRD");
            }
            result = new int[] {0, c / (b * b), h * b, w * b};
        } else {
            if (b < 1 || h % b != 0 || w % b != 0) {
                throw a.bad(t, "blocksize", b, "blocksize >= 1 dividing H " + h + " and W " + w);
            }
            view = new int[] {0, c, h / b, b, w / b, b};
            perm = new int[] {0, 3, 5, 1, 2, 4};
            result = new int[] {0, c * b * b, h / b, w / b};
        }
        String v = e.node("blocks", "Reshape", new Op.Reshape(false), e.in(0), shape(e, "blocks_shape", view));
        String moved = e.node("moved", "Transpose", new Op.Transpose(perm), v);
        e.last("Reshape", new Op.Reshape(false), moved, shape(e, "result_shape", result));
    }

    /**
     * LRN over channels: x / (bias + α/size · Σ x²)^β, the sum over channels c − ⌊(size−1)/2⌋ ..
     * c + ⌈(size−1)/2⌉ (zeros outside): x² viewed as [N, 1, C, H·W], averaged by an AveragePool of
     * [size, 1] that counts its padding (so it divides by size), viewed back.
     */
    private static void lrn(Lowerings.Emit e, Attrs a, int[] x) {
        String t = "LRN";
        e.inputs(1, 1);
        int size = a.required("size", t);
        if (size < 1) {
            throw a.bad(t, "size", size, "size >= 1");
        }
        if (x.length < 3) {
            throw new ModelException(e.source + ": node '" + e.name + "' (LRN): input " + Shapes.str(x)
                    + "; it normalises across the channels of [N, C, ...]");
        }
        float alpha = a.f("alpha", 1e-4f);
        float beta = a.f("beta", 0.75f);
        float bias = a.f("bias", 1f);
        int spatial = 1;
        for (int i = 2; i < x.length; i++) {
            spatial *= x[i];
        }
        int[] back = x.clone();
        back[0] = 0;
        String sq = e.node("squared", "Mul", new Op.Mul(), e.in(0), e.in(0));
        String v = e.node("channels", "Reshape", new Op.Reshape(false), sq, shape(e, "channels_shape", 0, 1, x[1], spatial));
        String avg = e.node("window", "AveragePool", new Op.AveragePool(new int[] {size, 1}, new int[] {1, 1},
                new int[] {(size - 1) / 2, 0, size / 2, 0}, true, false, "NOTSET"), v);
        String mean = e.node("window_nd", "Reshape", new Op.Reshape(false), avg, shape(e, "window_shape", back));
        String scaled = e.node("scaled", "Mul", new Op.Mul(), mean, e.constant("alpha", alpha));
        String based = e.node("based", "Add", new Op.Add(), scaled, e.constant("bias", bias));
        String den = e.node("denominator", "Pow", new Op.Pow(), based, e.constant("beta", beta));
        e.last("Div", new Op.Div(), e.in(0), den);
    }

    /** Tile with constant repeats: per repeated axis a Concat of that many copies; the batch axis stays. */
    private static void tile(Lowerings.Emit e, int[] x) {
        e.inputs(2, 2);
        float[] r = e.constantInput(1, "repeats").data();
        if (r.length != x.length) {
            throw new ModelException(e.source + ": node '" + e.name + "' (Tile): " + r.length + " repeats for an input of "
                    + "rank " + x.length);
        }
        if (r.length > 0 && r[0] != 1f) {
            throw new ModelException(e.source + ": node '" + e.name + "' (Tile): repeats " + Arrays.toString(r)
                    + " copy the batch axis; kxai keeps one output row per example");
        }
        String v = e.in(0);
        int last = -1;
        for (int d = 0; d < r.length; d++) {
            if (r[d] < 0 || r[d] != Math.rint(r[d])) {
                throw new ModelException(e.source + ": node '" + e.name + "' (Tile): repeats " + Arrays.toString(r)
                        + " must be integers >= 0");
            }
            if (r[d] != 1f) {
                last = d;
            }
        }
        if (last < 0) {
            e.last("Identity", new Op.Identity(), v);
            return;
        }
        for (int d = 0; d <= last; d++) {
            if (r[d] == 1f) {
                continue;
            }
            if (r[d] == 0f) {
                throw new ModelException(e.source + ": node '" + e.name + "' (Tile): a repeat of 0 (axis " + d
                        + ") gives an empty tensor");
            }
            String[] copies = new String[(int) r[d]];
            Arrays.fill(copies, v);
            v = d == last ? e.last("Concat", new Op.Concat(d), copies)
                    : e.node("axis" + d, "Concat", new Op.Concat(d), copies);
        }
    }
}
