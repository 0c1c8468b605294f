package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;

/**
 * Resize with {@code mode=cubic} (PyTorch's {@code interpolate(mode="bicubic")}): a resize is linear
 * in its input, separately along H and W, so it is two constant matrices — each output column a
 * combination of four input columns with ONNX's cubic weights (coefficient {@code cubic_coeff_a},
 * taps outside the input clamped to the edge, or with {@code exclude_outside} dropped and the rest
 * renormalised). Lowered at load to MatMul, Transpose, MatMul, Transpose over NCHW: both backends,
 * forward and gradient, with no kernel of its own.
 */
final class CubicResize {
    /** The most entries one axis's weight matrix may have (input × output length; 4096 × 4096). */
    private static final long MAX_WEIGHTS = 1L << 24;

    private CubicResize() {
    }

    static boolean handles(OnnxMl.NodeProto n, String name, String source) {
        return n.getOpType().equals("Resize") && new Attrs(n, name, source).s("mode", "nearest").equals("cubic");
    }

    static void lower(OnnxMl.NodeProto n, String name, String source, LoadTime lt, Decompositions.Sink out) {
        Lowerings.Emit e = new Lowerings.Emit(n, name, source, lt, out);
        Attrs a = new Attrs(n, name, source);
        String coordinates = a.s("coordinate_transformation_mode", "half_pixel");
        if (!List.of("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric").contains(coordinates)) {
            throw new ModelException(source + ": node '" + name + "' (Resize): cubic with coordinate_transformation_mode '"
                    + coordinates + "' is not supported (half_pixel, pytorch_half_pixel, align_corners, asymmetric)");
        }
        if (a.i("antialias", 0) != 0 || a.ints("axes", null) != null) {
            throw new ModelException(source + ": node '" + name + "' (Resize): antialias and axes are not supported");
        }
        float coeff = a.f("cubic_coeff_a", -0.75f);
        boolean exclude = a.i("exclude_outside", 0) != 0;
        int[] x = lt.shapeAt(e.in(0), 0, name);
        if (x.length != 4) {
            throw new ModelException(source + ": node '" + name + "' (Resize): cubic resizes the H and W of NCHW tensors;"
                    + " the input has rank " + x.length);
        }
        float[] scales = n.getInputCount() > 2 && !n.getInput(2).isEmpty() ? e.constantInput(2, "scales").data() : null;
        if (scales != null && scales.length == 0) {
            scales = null;
        }
        int oh;
        int ow;
        if (scales != null) {
            if (scales.length != 4 || scales[0] != 1f || scales[1] != 1f) {
                throw new ModelException(source + ": node '" + name + "' (Resize): scales " + java.util.Arrays.toString(scales)
                        + "; kxai resizes the H and W of NCHW tensors");
            }
            oh = (int) Math.floor(x[2] * scales[2]);
            ow = (int) Math.floor(x[3] * scales[3]);
        } else {
            if (n.getInputCount() < 4 || n.getInput(3).isEmpty() || !lt.isLoadTime(n.getInput(3))) {
                throw new ModelException(source + ": node '" + name + "' (Resize) has neither constant scales nor sizes");
            }
            float[] sizes = lt.valueAt(n.getInput(3), 0).data();
            if (sizes.length != 4 || sizes[1] != x[1]) {
                throw new ModelException(source + ": node '" + name + "' (Resize): sizes " + java.util.Arrays.toString(sizes)
                        + "; kxai resizes the H and W of NCHW tensors");
            }
            oh = (int) sizes[2];
            ow = (int) sizes[3];
        }
        if (oh < 1 || ow < 1) {
            throw new ModelException(source + ": node '" + name + "' (Resize): output size " + oh + "×" + ow);
        }
        if ((long) x[2] * oh > MAX_WEIGHTS || (long) x[3] * ow > MAX_WEIGHTS) {
            throw new ModelException(source + ": node '" + name + "' (Resize): cubic from " + x[2] + "×" + x[3] + " to " + oh
                    + "×" + ow + " needs weight matrices of more than " + MAX_WEIGHTS + " entries");
        }
        float sh = scales != null ? scales[2] : (float) oh / x[2];
        float sw = scales != null ? scales[3] : (float) ow / x[3];
        String byW = e.node("columns", "MatMul", new Op.MatMul(), e.in(0),
                e.constant("column_weights", weights(coordinates, x[3], ow, sw, coeff, exclude)));
        String turned = e.node("turned", "Transpose", new Op.Transpose(new int[] {0, 1, 3, 2}), byW);
        String byH = e.node("rows", "MatMul", new Op.MatMul(), turned,
                e.constant("row_weights", weights(coordinates, x[2], oh, sh, coeff, exclude)));
        e.last("Transpose", new Op.Transpose(new int[] {0, 1, 3, 2}), byH);
    }

    /** [in, out]: column o holds the weights output o gives the input elements (ONNX Runtime's cubic). */
    static Tensor weights(String coordinates, int in, int out, float scale, float coeff, boolean exclude) {
        float[] m = new float[in * out];
        for (int o = 0; o < out; o++) {
            float xf = Op.Resize.sourceCoordinate(coordinates, o, in, out, scale);
            int x0 = (int) Math.floor(xf);
            float s = xf - x0;
            float[] c = {((coeff * (s + 1) - 5 * coeff) * (s + 1) + 8 * coeff) * (s + 1) - 4 * coeff,
                ((coeff + 2) * s - (coeff + 3)) * s * s + 1,
                ((coeff + 2) * (1 - s) - (coeff + 3)) * (1 - s) * (1 - s) + 1,
                ((coeff * (2 - s) - 5 * coeff) * (2 - s) + 8 * coeff) * (2 - s) - 4 * coeff};
            float kept = 0;
            for (int k = 0; k < 4; k++) {
                int i = x0 - 1 + k;
                if (exclude && (i < 0 || i >= in)) {
                    c[k] = 0;
                }
                kept += c[k];
            }
            for (int k = 0; k < 4; k++) {
                int i = Math.max(0, Math.min(in - 1, x0 - 1 + k));
                m[i * out + o] += exclude ? c[k] / kept : c[k];
            }
        }
        return new Tensor(new int[] {in, out}, m);
    }
}
