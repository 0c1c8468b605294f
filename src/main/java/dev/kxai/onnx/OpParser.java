package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.UnsupportedOperatorException;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;

/**
 * One ONNX node's operator as a typed {@link Op}: attributes parsed and checked (arity, ranges,
 * the opset's differences), values an operator folds into itself (pads, bounds, axes) read from
 * load-time constants. What kxai cannot run is refused here, naming the file, node and operator.
 */
final class OpParser {
    private final OnnxMl.GraphProto g;
    private final String source;
    private final long opset;
    private final LoadTime lt;

    OpParser(OnnxMl.GraphProto g, String source, long opset, LoadTime lt) {
        this.g = g;
        this.source = source;
        this.opset = opset;
        this.lt = lt;
    }

    void checkArity(String opType, String node, int n) {
        int min;
        int max;
        switch (opType) {
            case "Gemm" -> { min = 2; max = 3; }
            case "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Reshape", "Expand", "Gather" -> { min = 2; max = 2; }
            case "Where" -> { min = 3; max = 3; }
            case "Equal", "Less", "Greater" -> { min = 2; max = 2; }
            case "Conv" -> { min = 2; max = 3; }
            case "BatchNormalization" -> { min = 5; max = 5; }
            case "Concat" -> { min = 1; max = Integer.MAX_VALUE; }
            case "Pad" -> { min = 1; max = 4; }
            case "Clip", "Dropout" -> { min = 1; max = 3; }
            case "Squeeze", "Unsqueeze", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin" -> { min = 1; max = 2; }
            default -> { min = 1; max = 1; }
        }
        if (n < min || n > max) {
            throw new ModelException(source + ": node '" + node + "' (" + opType + ") has " + n
                    + " inputs; expected " + (min == max ? "" + min : min + ".." + (max == Integer.MAX_VALUE ? "n" : max)));
        }
    }

    Op op(OnnxMl.NodeProto n, String name) {
        Attrs a = new Attrs(n, name, source);
        return switch (n.getOpType()) {
            case "Gemm" -> new Op.Gemm(a.f("alpha", 1f), a.f("beta", 1f), a.i("transA", 0) != 0, a.i("transB", 0) != 0);
            case "MatMul" -> new Op.MatMul();
            case "Add" -> new Op.Add();
            case "Sub" -> new Op.Sub();
            case "Mul" -> new Op.Mul();
            case "Div" -> new Op.Div();
            case "Pow" -> new Op.Pow();
            case "Relu" -> new Op.Relu();
            case "LeakyRelu" -> new Op.LeakyRelu(a.f("alpha", 0.01f));
            case "Sigmoid" -> new Op.Sigmoid();
            case "Tanh" -> new Op.Tanh();
            // opsets 1-12: axis defaults to 1 and the input is flattened to 2-D there
            case "Softmax" -> opset < 13 ? new Op.Softmax(a.i32("axis", 1), true)
                    : new Op.Softmax(a.i32("axis", -1));
            case "Flatten" -> new Op.Flatten(a.i32("axis", 1));
            case "Reshape" -> new Op.Reshape(a.i("allowzero", 0) != 0);
            case "Identity" -> new Op.Identity();
            case "Conv" -> {
                int[] k = a.ints("kernel_shape", null);
                Op.Conv c = new Op.Conv(k, a.ints("strides", new int[] {1, 1}), a.ints("pads", new int[] {0, 0, 0, 0}),
                        a.ints("dilations", new int[] {1, 1}), a.i32("group", 1), a.s("auto_pad", "NOTSET"));
                checkWindow(a, "Conv", k, c.strides(), c.pads(), c.dilations(), c.autoPad());
                if (c.group() < 1) {
                    throw a.bad("Conv", "group", c.group(), "group >= 1");
                }
                checkConvWeights(n, a, name, c);
                yield c;
            }
            case "MaxPool" -> {
                int[] k = a.required("kernel_shape");
                if (n.getOutputCount() > 1 && !n.getOutput(1).isEmpty()) {
                    throw new ModelException(source + ": node '" + name + "': MaxPool with an Indices output is not supported");
                }
                if (a.i("storage_order", 0) != 0) {
                    throw new ModelException(source + ": node '" + name + "': MaxPool storage_order=1 is not supported");
                }
                Op.MaxPool p = new Op.MaxPool(k, a.ints("strides", new int[] {1, 1}), a.ints("pads", new int[] {0, 0, 0, 0}),
                        a.ints("dilations", new int[] {1, 1}), bool(a, "MaxPool", "ceil_mode"), a.s("auto_pad", "NOTSET"));
                checkWindow(a, "MaxPool", k, p.strides(), p.pads(), p.dilations(), p.autoPad());
                yield p;
            }
            case "AveragePool" -> {
                int[] k = a.required("kernel_shape");
                if (a.has("dilations") && !java.util.Arrays.equals(a.ints("dilations", null), new int[] {1, 1})) {
                    throw new ModelException(source + ": node '" + name + "' (AveragePool): dilations "
                            + java.util.Arrays.toString(a.ints("dilations", null)) + " are not supported (only 1)");
                }
                Op.AveragePool p = new Op.AveragePool(k, a.ints("strides", new int[] {1, 1}),
                        a.ints("pads", new int[] {0, 0, 0, 0}), bool(a, "AveragePool", "count_include_pad"),
                        bool(a, "AveragePool", "ceil_mode"), a.s("auto_pad", "NOTSET"));
                checkWindow(a, "AveragePool", k, p.strides(), p.pads(), null, p.autoPad());
                yield p;
            }
            case "GlobalAveragePool" -> new Op.GlobalAveragePool();
            case "BatchNormalization" -> {
                if (a.i("training_mode", 0) != 0) {
                    throw new ModelException(source + ": node '" + name + "': BatchNormalization in training mode is not supported");
                }
                float eps = a.f("epsilon", 1e-5f);
                if (!(eps >= 0f) || Float.isInfinite(eps)) {
                    throw a.bad("BatchNormalization", "epsilon", eps, "a finite epsilon >= 0 (it is added to the "
                            + "variance under a square root)");
                }
                yield new Op.BatchNormalization(eps);
            }
            case "Concat" -> new Op.Concat(a.required("axis", "Concat"));
            case "Pad" -> pad(n, a, name);
            case "Clip" -> clip(n, a, name);
            case "HardSigmoid" -> new Op.Unary(Op.Unary.Kind.HARD_SIGMOID, a.f("alpha", 0.2f), a.f("beta", 0.5f));
            case "HardSwish" -> new Op.Unary(Op.Unary.Kind.HARD_SWISH);
            case "Sqrt" -> new Op.Unary(Op.Unary.Kind.SQRT);
            case "Exp" -> new Op.Unary(Op.Unary.Kind.EXP);
            case "Log" -> new Op.Unary(Op.Unary.Kind.LOG);
            case "Erf" -> new Op.Unary(Op.Unary.Kind.ERF);
            case "Softplus" -> new Op.Unary(Op.Unary.Kind.SOFTPLUS);
            case "Elu" -> new Op.Unary(Op.Unary.Kind.ELU, a.f("alpha", 1f), 0f);
            case "Selu" -> new Op.Unary(Op.Unary.Kind.SELU, a.f("alpha", 1.67326319217681884765625f),
                    a.f("gamma", 1.05070102214813232421875f));
            case "Gelu" -> switch (a.s("approximate", "none")) {
                case "none" -> new Op.Unary(Op.Unary.Kind.GELU);
                case "tanh" -> new Op.Unary(Op.Unary.Kind.GELU_TANH);
                default -> throw new ModelException(source + ": node '" + name + "' (Gelu): unknown approximate '"
                        + a.s("approximate", "") + "' (none, tanh)");
            };
            case "Neg" -> new Op.Unary(Op.Unary.Kind.NEG);
            case "Abs" -> new Op.Unary(Op.Unary.Kind.ABS);
            case "Floor" -> new Op.Unary(Op.Unary.Kind.FLOOR);
            case "Ceil" -> new Op.Unary(Op.Unary.Kind.CEIL);
            case "Round" -> new Op.Unary(Op.Unary.Kind.ROUND);
            case "Sign" -> new Op.Unary(Op.Unary.Kind.SIGN);
            case "Reciprocal" -> new Op.Unary(Op.Unary.Kind.RECIPROCAL);
            case "Sin" -> new Op.Unary(Op.Unary.Kind.SIN);
            case "Cos" -> new Op.Unary(Op.Unary.Kind.COS);
            case "Dropout" -> dropout(n, name);
            case "Transpose" -> new Op.Transpose(a.ints("perm", null));
            case "Squeeze" -> new Op.Squeeze(axes(n, a, name, 13));
            case "Unsqueeze" -> {
                int[] axes = axes(n, a, name, 13);
                if (axes == null) {
                    throw new ModelException(source + ": node '" + name + "' (Unsqueeze) has no axes");
                }
                yield new Op.Unsqueeze(axes);
            }
            case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin" -> reduce(n, a, name);
            case "Expand" -> new Op.Expand();
            case "Where" -> new Op.Where();
            case "Equal" -> new Op.Compare(Op.Compare.Kind.EQUAL);
            case "Less" -> new Op.Compare(Op.Compare.Kind.LESS);
            case "Greater" -> new Op.Compare(Op.Compare.Kind.GREATER);
            case "ConstantOfShape" -> {
                Tensor v = null;
                for (OnnxMl.AttributeProto at : n.getAttributeList()) {
                    if (at.getName().equals("value")) {
                        v = TensorReader.read(at.getT(), "attribute value of node '" + name + "'", source);
                    }
                }
                yield new Op.ConstantOfShape(v == null || v.size() == 0 ? 0f : v.data()[0]);
            }
            case "Cast" -> {
                long to = a.i("to", 1);
                if (ConstantFolding.INTEGER_TYPES.contains(to)) {
                    // float → integer truncates toward zero (NumPy, PyTorch); the value stays a float holding it
                    yield new Op.Unary(Op.Unary.Kind.TRUNC);
                }
                if (to != OnnxMl.TensorProto.DataType.FLOAT_VALUE && to != OnnxMl.TensorProto.DataType.DOUBLE_VALUE
                        && to != OnnxMl.TensorProto.DataType.FLOAT16_VALUE
                        && to != OnnxMl.TensorProto.DataType.BFLOAT16_VALUE) {
                    throw new ModelException(source + ": node '" + name + "' (Cast) converts a value computed per request "
                            + "to element type " + TensorReader.typeName((int) to) + " (" + to + "); per request kxai casts"
                            + " to float32 (1), float64 (11), float16 (10) and bfloat16 (16) (all computed in float32) and"
                            + " integer types (truncated toward zero); other types only at load");
                }
                // float16/bfloat16 (mixed-precision exports) and float64 run in float32: kxai explains the
                // model's function at float32 precision, not its 16-bit rounding
                yield new Op.Identity();
            }
            default -> {
                if (ConstantFolding.FOLDABLE.contains(n.getOpType())) {
                    throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") reads a value "
                            + "computed per request; kxai evaluates " + n.getOpType() + " only at load, on constants "
                            + "and shapes");
                }
                throw new UnsupportedOperatorException(source, n.getOpType(), name, OnnxImporter.SUPPORTED);
            }
        };
    }

    /**
     * Resize (opset 10: scales input, asymmetric coordinates; from 11: roi, scales, sizes and the
     * coordinate transformation mode) and Upsample (7: scales attribute, 9: input), nearest or
     * linear over H and W. Scales must be constants; sizes may be a load-time value (the node's
     * second input then). Cubic, tf_crop_and_resize, antialias and exclude_outside are refused.
     */
    Op.Resize resize(OnnxMl.NodeProto n, String name) {
        Attrs a = new Attrs(n, name, source);
        String mode = a.s("mode", "nearest");
        boolean linear = switch (mode) {
            case "nearest" -> false;
            case "linear", "bilinear" -> true;
            default -> throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): mode '" + mode
                    + "' is not supported (nearest, linear)");
        };
        boolean upsample = n.getOpType().equals("Upsample");
        String coordinates = upsample || opset < 11 ? "asymmetric" : a.s("coordinate_transformation_mode", "half_pixel");
        if (!List.of("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
                .contains(coordinates)) {
            throw new ModelException(source + ": node '" + name + "' (Resize): coordinate_transformation_mode '"
                    + coordinates + "' is not supported");
        }
        if (a.i("antialias", 0) != 0 || a.i("exclude_outside", 0) != 0 || a.ints("axes", null) != null) {
            throw new ModelException(source + ": node '" + name + "' (Resize): antialias, exclude_outside and axes are "
                    + "not supported");
        }
        String nearest = upsample || opset < 11 ? "floor" : a.s("nearest_mode", "round_prefer_floor");
        float[] scales;
        if (upsample && opset < 9) {
            scales = a.fs("scales");
        } else {
            scales = constantInput(n, upsample || opset < 11 ? 1 : 2, name, "scales");
        }
        if (scales != null && scales.length == 0) {
            scales = null;
        }
        if (scales == null && (n.getInputCount() < 4 || n.getInput(3).isEmpty())) {
            throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + ") has neither scales nor sizes");
        }
        if (scales != null && (scales.length != 4 || scales[0] != 1f || scales[1] != 1f)) {
            throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): scales "
                    + java.util.Arrays.toString(scales) + "; kxai resizes the H and W of NCHW tensors");
        }
        return new Op.Resize(linear, coordinates, nearest, scales);
    }

    /**
     * Pad: before opset 11 pads and value are attributes; from 11 inputs (pads, optional
     * constant_value, from 18 optional axes), which must be constants here.
     */
    private Op.Pad pad(OnnxMl.NodeProto n, Attrs a, String name) {
        String mode = a.s("mode", "constant");
        if (!List.of("constant", "reflect", "edge", "wrap").contains(mode)) {
            throw new ModelException(source + ": node '" + name + "' (Pad): unknown mode '" + mode
                    + "' (constant, reflect, edge, wrap)");
        }
        if (opset < 11) {
            int[] pads = a.ints(opset < 2 ? "paddings" : "pads", null);
            if (pads == null) {
                throw new ModelException(source + ": node '" + name + "' (Pad) lacks the required attribute pads");
            }
            return new Op.Pad(mode, pads, a.f("value", 0f), null);
        }
        float[] pads = constantInput(n, 1, name, "pads");
        if (pads == null) {
            throw new ModelException(source + ": node '" + name + "' (Pad) has no pads input");
        }
        float[] value = constantInput(n, 2, name, "constant_value");
        if (value != null && value.length != 1) {
            throw new ModelException(source + ": node '" + name + "' (Pad): constant_value must be one value, got "
                    + value.length);
        }
        float[] axes = constantInput(n, 3, name, "axes");
        return new Op.Pad(mode, toInts(pads), value == null ? 0f : value[0], axes == null ? null : toInts(axes));
    }

    /** Axes as an attribute before {@code inputFrom}, the (constant) second input from it; null if absent. */
    private int[] axes(OnnxMl.NodeProto n, Attrs a, String name, long inputFrom) {
        if (opset < inputFrom) {
            return a.ints("axes", null);
        }
        float[] v = constantInput(n, 1, name, "axes");
        return v == null ? null : toInts(v);
    }

    /**
     * ReduceMean, ReduceMax, ReduceMin (axes an input from opset 18) and ReduceSum (from 13). Absent axes mean every
     * axis, the batch axis included, which the plan refuses (it would mix examples), unless
     * noop_with_empty_axes makes the node the identity.
     */
    private Op reduce(OnnxMl.NodeProto n, Attrs a, String name) {
        Op.Reduce.Kind kind = switch (n.getOpType()) {
            case "ReduceMean" -> Op.Reduce.Kind.MEAN;
            case "ReduceMax" -> Op.Reduce.Kind.MAX;
            case "ReduceMin" -> Op.Reduce.Kind.MIN;
            default -> Op.Reduce.Kind.SUM;
        };
        int[] axes = axes(n, a, name, kind == Op.Reduce.Kind.SUM ? 13 : 18);
        if (axes == null || axes.length == 0) {
            if (a.i("noop_with_empty_axes", 0) != 0) {
                return new Op.Identity();
            }
            axes = null;
        }
        return new Op.Reduce(kind, axes, a.i("keepdims", 1) != 0);
    }

    /** Clip: min and max as attributes before opset 11, as optional constant inputs from 11. */
    private Op.Unary clip(OnnxMl.NodeProto n, Attrs a, String name) {
        float lo = Float.NEGATIVE_INFINITY;
        float hi = Float.POSITIVE_INFINITY;
        if (opset < 11) {
            lo = a.f("min", lo);
            hi = a.f("max", hi);
        } else {
            float[] min = constantInput(n, 1, name, "min");
            float[] max = constantInput(n, 2, name, "max");
            for (float[] v : new float[][] {min, max}) {
                if (v != null && v.length != 1) {
                    throw new ModelException(source + ": node '" + name + "' (Clip): min and max must be single values, got "
                            + v.length);
                }
            }
            lo = min != null ? min[0] : lo;
            hi = max != null ? max[0] : hi;
        }
        return new Op.Unary(Op.Unary.Kind.CLIP, lo, hi);
    }

    /**
     * Dropout at inference is the identity; so is one of ratio 0 in training mode (torchvision's
     * swin_t passes training=self.training with p = 0.0, which tracing can bake in as true). A
     * constant training_mode of true with a ratio above 0, or a used mask output, is refused.
     */
    private Op dropout(OnnxMl.NodeProto n, String name) {
        float[] training = constantInput(n, 2, name, "training_mode");
        float[] ratio = opset >= 12 ? constantInput(n, 1, name, "ratio") : null;
        boolean noDrop = ratio != null && ratio.length == 1 && ratio[0] == 0f;
        if (training != null && training.length > 0 && training[0] != 0f && !noDrop) {
            throw new ModelException(source + ": node '" + name + "' (Dropout): training_mode is true; kxai explains "
                    + "models in inference");
        }
        if (n.getOutputCount() > 1 && !n.getOutput(1).isEmpty() && g.getNodeList().stream()
                .anyMatch(o -> o.getInputList().contains(n.getOutput(1)))) {
            throw new ModelException(source + ": node '" + name + "' (Dropout): its mask output is read by another node");
        }
        return new Op.Identity();
    }

    /** A node's j-th input as a constant's values, null when absent; a computed one is refused. */
    float[] constantInput(OnnxMl.NodeProto n, int j, String name, String what) {
        if (n.getInputCount() <= j || n.getInput(j).isEmpty()) {
            return null;
        }
        Tensor t = lt.isConstant(n.getInput(j)) ? lt.valueAt(n.getInput(j), 0) : null;
        if (t == null) {
            throw new ModelException(source + ": node '" + name + "' (" + n.getOpType() + "): " + what + " '"
                    + n.getInput(j) + "' is computed at run time; kxai needs it constant (an initializer or Constant node)");
        }
        return t.data();
    }

    private static int[] toInts(float[] v) {
        int[] r = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = (int) v[i];
        }
        return r;
    }

    /** A 0/1 flag attribute (ceil_mode, count_include_pad): any other value is refused. */
    private static boolean bool(Attrs a, String opType, String attr) {
        long v = a.i(attr, 0);
        if (v != 0 && v != 1) {
            throw a.bad(opType, attr, v, attr + " is 0 or 1");
        }
        return v == 1;
    }

    /**
     * The window attributes of a 2-D Conv or pool, as the ONNX spec has them: kernel_shape (when given)
     * two values >= 1, strides two values >= 1, dilations two values >= 1, pads four values >= 0
     * (begin H, begin W, end H, end W), auto_pad one of NOTSET, VALID, SAME_UPPER, SAME_LOWER, and no
     * explicit pads beside an auto_pad other than NOTSET. Each refusal names the node, attribute, value
     * and rule: computing with a 0 stride, a 0 kernel or a negative dilation gives numbers, not errors.
     */
    private void checkWindow(Attrs a, String opType, int[] kernel, int[] strides, int[] pads, int[] dilations,
            String autoPad) {
        if (kernel != null) {
            if (kernel.length != 2) {
                throw new ModelException(source + ": node '" + nodeOf(a) + "': only 2-D " + opType
                        + " is supported, kernel_shape is " + java.util.Arrays.toString(kernel));
            }
            positive(a, opType, "kernel_shape", kernel);
        }
        if (strides.length != 2) {
            throw a.bad(opType, "strides", strides, "one stride per spatial axis (2 for a 2-D " + opType + ")");
        }
        positive(a, opType, "strides", strides);
        if (dilations != null) {
            if (dilations.length != 2) {
                throw a.bad(opType, "dilations", dilations, "one dilation per spatial axis (2 for a 2-D " + opType + ")");
            }
            positive(a, opType, "dilations", dilations);
        }
        if (pads.length != 4) {
            throw a.bad(opType, "pads", pads, "a begin and an end pad per spatial axis (4 for a 2-D " + opType + ")");
        }
        for (int p : pads) {
            if (p < 0) {
                throw a.bad(opType, "pads", pads, "pads >= 0");
            }
        }
        if (!List.of("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER").contains(autoPad)) {
            throw a.bad(opType, "auto_pad", "'" + autoPad + "'", "one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
        }
        if (!autoPad.equals("NOTSET") && a.has("pads")) {
            throw a.bad(opType, "pads", pads, "explicit pads only with auto_pad NOTSET (auto_pad is " + autoPad + ")");
        }
    }

    private static void positive(Attrs a, String opType, String attr, int[] v) {
        for (int x : v) {
            if (x < 1) {
                throw a.bad(opType, attr, v, attr + " >= 1");
            }
        }
    }

    private static String nodeOf(Attrs a) {
        return a.node();
    }

    /**
     * Conv against its weights and input where their shapes are known at load: 4-D weights [M, C/group, kH, kW],
     * kernel_shape equal to the weights' spatial dims, group dividing the input channels and M.
     */
    private void checkConvWeights(OnnxMl.NodeProto n, Attrs a, String name, Op.Conv c) {
        int[] w = n.getInputCount() > 1 ? lt.knownShape(n.getInput(1)) : null;
        if (w == null) {
            return;
        }
        if (w.length != 4) {
            throw new ModelException(source + ": node '" + name + "' (Conv): weights '" + n.getInput(1) + "' of shape "
                    + java.util.Arrays.toString(w) + "; a 2-D Conv takes 4-D weights [M, C/group, kH, kW]");
        }
        if (c.kernel() != null && (c.kernel()[0] != w[2] || c.kernel()[1] != w[3])) {
            throw a.bad("Conv", "kernel_shape", c.kernel(), "kernel_shape equals the weights' spatial dims ["
                    + w[2] + ", " + w[3] + "] (weights '" + n.getInput(1) + "' " + java.util.Arrays.toString(w) + ")");
        }
        if (w[2] < 1 || w[3] < 1) {
            throw new ModelException(source + ": node '" + name + "' (Conv): weights '" + n.getInput(1) + "' of shape "
                    + java.util.Arrays.toString(w) + " have an empty kernel");
        }
        if (w[0] % c.group() != 0) {
            throw a.bad("Conv", "group", c.group(), "group divides the " + w[0] + " output channels of the weights '"
                    + n.getInput(1) + "' " + java.util.Arrays.toString(w));
        }
        int[] x = lt.knownShape(n.getInput(0));
        if (x != null && x.length == 4 && x[1] >= 0 && (x[1] % c.group() != 0 || x[1] / c.group() != w[1])) {
            throw a.bad("Conv", "group", c.group(), "group divides the input's " + x[1] + " channels into groups of "
                    + "the weights' " + w[1] + " (input '" + n.getInput(0) + "' " + java.util.Arrays.toString(x)
                    + ", weights " + java.util.Arrays.toString(w) + ")");
        }
    }
}
