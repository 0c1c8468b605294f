package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * QuantizeLinear and DequantizeLinear, as quantisation tools write them in the QDQ format (ONNX
 * Runtime's {@code quantize_static}, TensorRT's explicit quantisation, PyTorch's fake-quantised QAT
 * exports): weights stored as 8-bit integers with a DequantizeLinear, activations passed through a
 * QuantizeLinear → DequantizeLinear pair.
 * <ul>
 *   <li>DequantizeLinear (and QuantizeLinear) of constants is evaluated at load: the float weights.</li>
 *   <li>A pair on a value computed per request is its fake quantisation,
 *       {@code (clamp(round(x / s) + zp, qmin, qmax) − zp) · s} with ONNX's rounding (half to even),
 *       per tensor or per axis; its gradient is the straight-through estimator, PyTorch's for fake
 *       quantisation: 1 where the rounded value lies in the integer range, 0 where it is clamped
 *       ({@link Op.StraightThrough} over the value and the input clamped to the range).</li>
 *   <li>A quantized (integer) value read by anything but its DequantizeLinear (QLinearConv and other
 *       integer operators) is refused.</li>
 * </ul>
 */
final class Quantization {
    /** A QuantizeLinear on a per-request value, waiting for its DequantizeLinear. */
    record Pending(String x, String node, Tensor scale, Tensor zeroPoint, int axis, int qmin, int qmax) {
    }

    private final String source;
    private final OnnxMl.GraphProto g;
    private final LoadTime lt;
    private final Map<String, Pending> pending = new HashMap<>();

    Quantization(String source, OnnxMl.GraphProto g, LoadTime lt) {
        this.source = source;
        this.g = g;
        this.lt = lt;
    }

    static boolean handles(String opType) {
        return opType.equals("QuantizeLinear") || opType.equals("DequantizeLinear");
    }

    /** Whether v is a quantized value waiting for its DequantizeLinear (any other reader is refused). */
    boolean isPending(String v) {
        return pending.containsKey(v);
    }

    /** Handles a QuantizeLinear or DequantizeLinear node (folded, recorded, or lowered through {@code out}). */
    void node(OnnxMl.NodeProto n, String name, long opset, Decompositions.Sink out) {
        boolean quantize = n.getOpType().equals("QuantizeLinear");
        if (n.getInputCount() < 2 || n.getInput(0).isEmpty() || n.getInput(1).isEmpty()) {
            throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") needs its input and scale");
        }
        String x = n.getInput(0);
        Tensor scale = constant(n, 1, name, "scale");
        String zpName = n.getInputCount() > 2 ? n.getInput(2) : "";
        Tensor zp = zpName.isEmpty() ? null : constant(n, 2, name, "zero point");
        Attrs a = new Attrs(n, name, source);
        if (a.i("block_size", 0) != 0) {
            throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): blocked quantisation"
                    + " (block_size) is not supported");
        }
        int axis = (int) a.i("axis", 1);
        int[] range = range(n, name, zpName, quantize ? outputTypeAttr(a) : -1);
        if (!quantize && pending.containsKey(x)) {
            Pending q = pending.get(x);
            if (!same(q.scale(), scale) || !same(q.zeroPoint(), zp) || q.axis() != axis && scale.size() > 1) {
                throw new ModelException(source + ": node '" + name + "' (DequantizeLinear) reads '" + x + "' with another "
                        + "scale or zero point than its QuantizeLinear '" + q.node() + "'; kxai runs matching pairs");
            }
            fakeQuantize(n, name, q, out);
            return;
        }
        if (lt.isConstant(x)) {
            Tensor v = lt.valueAt(x, 0);
            lt.putConstant(n.getOutput(0), quantize ? quantize(v, scale, zp, axis, range, name)
                    : dequantize(v, scale, zp, axis, name), quantize);
            return;
        }
        if (!quantize) {
            throw new ModelException(source + ": node '" + name + "' (DequantizeLinear) reads '" + x + "', an integer value "
                    + "computed per request; kxai dequantizes constants and the output of a QuantizeLinear");
        }
        pending.put(n.getOutput(0), new Pending(x, name, scale, zp, axis, range[0], range[1]));
    }

    /** A node other than DequantizeLinear reading a quantized value: refused. */
    ModelException refusal(String v, String name, String opType) {
        Pending q = pending.get(v);
        return new ModelException(source + ": node '" + name + "' (" + opType + ") reads '" + v + "', the integer output of"
                + " QuantizeLinear '" + q.node() + "'; kxai runs quantized models in the QDQ format (QuantizeLinear →"
                + " DequantizeLinear around float operators), not integer operators");
    }

    private void fakeQuantize(OnnxMl.NodeProto n, String name, Pending q, Decompositions.Sink out) {
        String x = q.x();
        int[] shape = lt.shapeAt(x, 0, name);
        String prefix = n.getOutput(0) + "/";
        String s = constant(out, prefix + "scale", broadcast(q.scale(), q.axis(), shape, name));
        Tensor zp = q.zeroPoint() != null ? q.zeroPoint() : Tensor.scalar(0f);
        String z = constant(out, prefix + "zero_point", broadcast(zp, q.axis(), shape, name));
        String scaled = node(out, name + "/scaled", "Div", new Op.Div(), prefix + "scaled", x, s);
        String rounded = node(out, name + "/rounded", "Round", new Op.Unary(Op.Unary.Kind.ROUND), prefix + "rounded", scaled);
        String shifted = node(out, name + "/shifted", "Add", new Op.Add(), prefix + "shifted", rounded, z);
        String clamped = node(out, name + "/saturated", "Clip", new Op.Unary(Op.Unary.Kind.CLIP, q.qmin(), q.qmax()),
                prefix + "saturated", shifted);
        String centred = node(out, name + "/centred", "Sub", new Op.Sub(), prefix + "centred", clamped, z);
        String value = node(out, name + "/value", "Mul", new Op.Mul(), prefix + "value", centred, s);
        // the gradient's path: x clamped to the range the grid covers, [(qmin − zp)·s, (qmax − zp)·s]
        String path;
        if (q.scale().size() == 1 && zp.size() == 1) {
            float sc = q.scale().data()[0];
            float z0 = zp.data()[0];
            float lo = (q.qmin() - z0) * sc;
            float hi = (q.qmax() - z0) * sc;
            path = node(out, name + "/range", "Clip", new Op.Unary(Op.Unary.Kind.CLIP, Math.min(lo, hi), Math.max(lo, hi)),
                    prefix + "range", x);
        } else {
            Tensor sb = broadcast(q.scale(), q.axis(), shape, name);
            Tensor zb = broadcast(zp, q.axis(), shape, name);
            int c = Math.max(sb.size(), zb.size());
            float[] lo = new float[c];
            float[] hi = new float[c];
            for (int i = 0; i < c; i++) {
                float sc = sb.data()[sb.size() == 1 ? 0 : i];
                float z0 = zb.data()[zb.size() == 1 ? 0 : i];
                lo[i] = Math.min((q.qmin() - z0) * sc, (q.qmax() - z0) * sc);
                hi[i] = Math.max((q.qmin() - z0) * sc, (q.qmax() - z0) * sc);
            }
            int[] bs = (sb.size() >= zb.size() ? sb : zb).shape();
            String loC = constant(out, prefix + "range_low", new Tensor(bs, lo));
            String hiC = constant(out, prefix + "range_high", new Tensor(bs, hi));
            // max(min(x, hi), lo) as selections, the gradient to the selected operand (x inside the range)
            String above = node(out, name + "/above", "Greater", new Op.Compare(Op.Compare.Kind.GREATER), prefix + "above",
                    x, hiC);
            String low = node(out, name + "/capped", "Where", new Op.Where(), prefix + "capped", above, hiC, x);
            String below = node(out, name + "/below", "Less", new Op.Compare(Op.Compare.Kind.LESS), prefix + "below",
                    low, loC);
            path = node(out, name + "/range", "Where", new Op.Where(), prefix + "range", below, loC, low);
        }
        out.node(new Node(name, "DequantizeLinear", new Op.StraightThrough(), List.of(value, path), n.getOutput(0)));
    }

    private static String node(Decompositions.Sink out, String name, String type, Op op, String output, String... ins) {
        out.node(new Node(name, type, op, List.of(ins), output));
        return output;
    }

    private static String constant(Decompositions.Sink out, String name, Tensor t) {
        out.constant(name, t);
        return name;
    }

    /** A per-axis parameter [C] shaped to broadcast along {@code axis} of {@code shape}; a scalar as it is. */
    private Tensor broadcast(Tensor p, int axis, int[] shape, String name) {
        if (p.size() == 1) {
            return Tensor.scalar(p.data()[0]);
        }
        int ax = axis < 0 ? axis + shape.length : axis;
        if (ax < 1 || ax >= shape.length || shape[ax] != p.size()) {
            throw new ModelException(source + ": node '" + name + "': " + p.size() + " scales along axis " + axis + " of "
                    + Shapes.str(shape) + (ax == 0 ? " (the batch axis)" : ""));
        }
        int[] s = new int[shape.length - ax];
        java.util.Arrays.fill(s, 1);
        s[0] = p.size();
        return new Tensor(s, p.data().clone());
    }

    private Tensor constant(OnnxMl.NodeProto n, int j, String name, String what) {
        String v = n.getInput(j);
        if (!lt.isConstant(v)) {
            throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): " + what + " '" + v
                    + "' is computed per request; kxai needs it constant");
        }
        return lt.valueAt(v, 0);
    }

    private static boolean same(Tensor a, Tensor b) {
        if (a == null || b == null) {
            return a == b || (a == null ? b.size() == 1 && b.data()[0] == 0 : a.size() == 1 && a.data()[0] == 0);
        }
        return java.util.Arrays.equals(a.data(), b.data());
    }

    private static int outputTypeAttr(Attrs a) {
        return (int) a.i("output_dtype", 0);
    }

    /** [qmin, qmax] of the integer type: the zero point's, else output_dtype, else uint8 (ONNX's default). */
    private int[] range(OnnxMl.NodeProto n, String name, String zpName, int outputDtype) {
        int type = OnnxMl.TensorProto.DataType.UINT8_VALUE;
        if (!zpName.isEmpty()) {
            type = -1;
            for (OnnxMl.TensorProto t : g.getInitializerList()) {
                type = t.getName().equals(zpName) ? t.getDataType() : type;
            }
            for (OnnxMl.NodeProto c : g.getNodeList()) {
                if (type < 0 && c.getOpType().equals("Constant") && c.getOutputList().contains(zpName)) {
                    for (OnnxMl.AttributeProto at : c.getAttributeList()) {
                        type = at.getName().equals("value") ? at.getT().getDataType() : type;
                    }
                }
            }
        } else if (outputDtype > 0) {
            type = outputDtype;
        }
        return switch (type) {
            case OnnxMl.TensorProto.DataType.UINT8_VALUE -> new int[] {0, 255};
            case OnnxMl.TensorProto.DataType.INT8_VALUE -> new int[] {-128, 127};
            case OnnxMl.TensorProto.DataType.UINT16_VALUE -> new int[] {0, 65535};
            case OnnxMl.TensorProto.DataType.INT16_VALUE -> new int[] {-32768, 32767};
            case OnnxMl.TensorProto.DataType.INT32_VALUE -> new int[] {Integer.MIN_VALUE, Integer.MAX_VALUE};
            default -> throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): zero point of type "
                    + TensorReader.typeName(type) + "; kxai runs 8-, 16- and 32-bit integer quantisation");
        };
    }

    private Tensor quantize(Tensor x, Tensor scale, Tensor zp, int axis, int[] range, String name) {
        float[] r = new float[x.size()];
        int[] idx = perElement(x, scale, axis, name);
        for (int i = 0; i < r.length; i++) {
            int k = idx == null ? 0 : idx[i];
            float z = zp == null ? 0 : zp.data()[zp.size() == 1 ? 0 : k];
            double v = Math.rint(x.data()[i] / scale.data()[scale.size() == 1 ? 0 : k]) + z;
            r[i] = (float) Math.max(range[0], Math.min(range[1], v));
        }
        return new Tensor(x.shape(), r);
    }

    private Tensor dequantize(Tensor x, Tensor scale, Tensor zp, int axis, String name) {
        float[] r = new float[x.size()];
        int[] idx = perElement(x, scale, axis, name);
        for (int i = 0; i < r.length; i++) {
            int k = idx == null ? 0 : idx[i];
            float z = zp == null ? 0 : zp.data()[zp.size() == 1 ? 0 : k];
            r[i] = (x.data()[i] - z) * scale.data()[scale.size() == 1 ? 0 : k];
        }
        return new Tensor(x.shape(), r);
    }

    /** For a per-axis scale, each element's index along the axis; null for a per-tensor one. */
    private int[] perElement(Tensor x, Tensor scale, int axis, String name) {
        if (scale.size() == 1) {
            return null;
        }
        int[] s = x.shape();
        int ax = axis < 0 ? axis + s.length : axis;
        if (ax < 0 || ax >= s.length || s[ax] != scale.size()) {
            throw new ModelException(source + ": node '" + name + "': " + scale.size() + " scales along axis " + axis
                    + " of " + Shapes.str(s));
        }
        int inner = 1;
        for (int d = ax + 1; d < s.length; d++) {
            inner *= s[d];
        }
        int[] r = new int[x.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = (i / inner) % s[ax];
        }
        return r;
    }
}
