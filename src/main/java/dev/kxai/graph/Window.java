package dev.kxai.graph;

import dev.kxai.InvalidInputException;

/**
 * Geometry of a 2-D sliding window (convolution or pooling) over one input size: output size
 * and effective pads, with ONNX's auto_pad and ceil_mode rules resolved.
 */
public record Window(int kh, int kw, int sh, int sw, int dh, int dw, int padTop, int padLeft, int padBottom, int padRight,
        int inH, int inW, int outH, int outW) {

    public static Window of(String node, int[] kernel, int[] strides, int[] pads, int[] dilations, String autoPad,
            boolean ceilMode, int inH, int inW) {
        int kh = kernel[0];
        int kw = kernel[1];
        int sh = strides[0];
        int sw = strides[1];
        int dh = dilations == null ? 1 : dilations[0];
        int dw = dilations == null ? 1 : dilations[1];
        int pt = pads.length == 4 ? pads[0] : 0;
        int pl = pads.length == 4 ? pads[1] : 0;
        int pb = pads.length == 4 ? pads[2] : 0;
        int pr = pads.length == 4 ? pads[3] : 0;
        int ekh = (kh - 1) * dh + 1;
        int ekw = (kw - 1) * dw + 1;
        switch (autoPad) {
            case "NOTSET", "" -> { }
            case "VALID" -> { pt = 0; pl = 0; pb = 0; pr = 0; }
            case "SAME_UPPER", "SAME_LOWER" -> {
                int oh = (inH + sh - 1) / sh;
                int ow = (inW + sw - 1) / sw;
                int th = Math.max(0, (oh - 1) * sh + ekh - inH);
                int tw = Math.max(0, (ow - 1) * sw + ekw - inW);
                boolean upper = autoPad.equals("SAME_UPPER");
                pt = upper ? th / 2 : th - th / 2;
                pb = th - pt;
                pl = upper ? tw / 2 : tw - tw / 2;
                pr = tw - pl;
            }
            default -> throw new InvalidInputException("node '" + node + "': unknown auto_pad '" + autoPad + "'");
        }
        int outH = outSize(inH, pt, pb, ekh, sh, ceilMode);
        int outW = outSize(inW, pl, pr, ekw, sw, ceilMode);
        if (outH <= 0 || outW <= 0) {
            throw new InvalidInputException("node '" + node + "': a " + kh + "x" + kw + " window does not fit an input of "
                    + inH + "x" + inW + " (with pads " + pt + "," + pl + "," + pb + "," + pr + ")");
        }
        return new Window(kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, inH, inW, outH, outW);
    }

    private static int outSize(int in, int p0, int p1, int ek, int s, boolean ceil) {
        int span = in + p0 + p1 - ek;
        if (span < 0) {
            return 0;
        }
        int out = (ceil ? (span + s - 1) / s : span / s) + 1;
        // PyTorch's rule: the last window must start inside the input or the leading pad
        if (ceil && (out - 1) * s >= in + p0) {
            out--;
        }
        return out;
    }
}
