package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.onnx.proto.OnnxMl;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.kxai.Model;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.tensor.Tensor;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * kxai's forward pass against ONNX Runtime's — an independent implementation of ONNX's operator
 * semantics — over the operator forms kxai accepts: each attribute and opset variant that changes a
 * result (auto_pad, ceil_mode, count_include_pad, Resize's coordinate modes, Softmax before opset 13,
 * axes as attribute or input, negative indices, …), one small model each, random inputs, batch 2.
 * The PyTorch-exported models of the suite check gradients and attributions; this checks that kxai
 * reads ONNX as the ONNX runtime everyone else uses does, including forms no PyTorch export writes
 * (TensorFlow's SAME padding, Keras's NHWC transposes, opset 18's axes inputs).
 */
public class OnnxRuntimeConformanceTest {
    /** One model: input "input" [batch, dims…] → nodes → "output" (float). */
    public record Case(String name, long opset, int[] shape, boolean positive, List<OnnxMl.NodeProto> nodes,
            List<OnnxMl.TensorProto> inits) {
    }

    private static final List<Case> CASES = new ArrayList<>();

    // ------------------------------------------------------------------ builders

    private static OnnxMl.NodeProto.Builder node(String op, String... inputs) {
        OnnxMl.NodeProto.Builder b = OnnxMl.NodeProto.newBuilder().setOpType(op).setName(op.toLowerCase() + "_node")
                .addOutput("output");
        for (String i : inputs) {
            b.addInput(i);
        }
        return b;
    }

    private static OnnxMl.AttributeProto i(String name, long v) {
        return OnnxModels.intAttr(name, v);
    }

    private static OnnxMl.AttributeProto is(String name, long... v) {
        return OnnxModels.intsAttr(name, v);
    }

    private static OnnxMl.AttributeProto f(String name, float v) {
        return OnnxMl.AttributeProto.newBuilder().setName(name).setType(OnnxMl.AttributeProto.AttributeType.FLOAT)
                .setF(v).build();
    }

    private static OnnxMl.AttributeProto s(String name, String v) {
        return OnnxModels.attr(name, v);
    }

    private static OnnxMl.TensorProto ints(String name, long... v) {
        return OnnxModels.ints(name, v);
    }

    /** A float constant of these dims with deterministic values in [-1, 1] (seeded by the name). */
    private static OnnxMl.TensorProto weights(String name, int... dims) {
        int n = 1;
        for (int d : dims) {
            n *= d;
        }
        SplittableRandom r = new SplittableRandom(name.hashCode());
        float[] v = new float[n];
        for (int k = 0; k < n; k++) {
            v[k] = (float) (r.nextDouble() * 2 - 1);
        }
        return OnnxModels.floats(name, dims, v);
    }

    private static OnnxMl.TensorProto scalar(String name, float v) {
        return OnnxMl.TensorProto.newBuilder().setName(name).setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE)
                .addFloatData(v).build();
    }

    private static void add(String name, long opset, int[] shape, OnnxMl.NodeProto.Builder n, OnnxMl.TensorProto... inits) {
        CASES.add(new Case(name, opset, shape, false, List.of(n.build()), List.of(inits)));
    }

    private static void positive(String name, long opset, int[] shape, OnnxMl.NodeProto.Builder n,
            OnnxMl.TensorProto... inits) {
        CASES.add(new Case(name, opset, shape, true, List.of(n.build()), List.of(inits)));
    }

    /** A node writing "mid", then a Cast to float writing "output" (for operators with integer or bool results). */
    private static void toFloat(String name, long opset, int[] shape, OnnxMl.NodeProto.Builder n,
            OnnxMl.TensorProto... inits) {
        OnnxMl.NodeProto first = n.setOutput(0, "mid").build();
        OnnxMl.NodeProto cast = OnnxMl.NodeProto.newBuilder().setOpType("Cast").setName("cast_node").addInput("mid")
                .addOutput("output").addAttribute(i("to", OnnxMl.TensorProto.DataType.FLOAT_VALUE)).build();
        CASES.add(new Case(name, opset, shape, false, List.of(first, cast), List.of(inits)));
    }

    private static int[] dims(int... d) {
        return d;
    }

    static {
        int[] v3 = dims(2, 3, 4);
        int[] img = dims(2, 3, 7, 8);
        // ---- element-wise
        for (String op : List.of("Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Erf", "Softplus", "Softsign", "Sin",
                "Cos", "Floor", "Ceil", "Round", "Sign", "Identity")) {
            add(op, 13, v3, node(op, "input"));
        }
        for (String op : List.of("Sqrt", "Log", "Reciprocal")) {
            positive(op, 13, v3, node(op, "input"));
        }
        add("LeakyRelu alpha 0.1", 13, v3, node("LeakyRelu", "input").addAttribute(f("alpha", 0.1f)));
        add("LeakyRelu default", 6, v3, node("LeakyRelu", "input"));
        add("Elu alpha 0.7", 6, v3, node("Elu", "input").addAttribute(f("alpha", 0.7f)));
        add("Selu default", 6, v3, node("Selu", "input"));
        add("Selu custom", 6, v3, node("Selu", "input").addAttribute(f("alpha", 1.5f)).addAttribute(f("gamma", 0.9f)));
        add("Celu alpha 0.5", 12, v3, node("Celu", "input").addAttribute(f("alpha", 0.5f)));
        add("HardSigmoid custom", 6, v3, node("HardSigmoid", "input").addAttribute(f("alpha", 0.3f))
                .addAttribute(f("beta", 0.4f)));
        add("HardSigmoid default", 6, v3, node("HardSigmoid", "input"));
        add("HardSwish", 14, v3, node("HardSwish", "input"));
        add("ThresholdedRelu 0.5", 10, v3, node("ThresholdedRelu", "input").addAttribute(f("alpha", 0.5f)));
        add("Shrink", 9, v3, node("Shrink", "input").addAttribute(f("bias", 0.2f)).addAttribute(f("lambd", 0.6f)));
        add("Mish", 18, v3, node("Mish", "input"));
        add("Gelu exact", 20, v3, node("Gelu", "input"));
        add("Gelu tanh", 20, v3, node("Gelu", "input").addAttribute(s("approximate", "tanh")));
        add("Clip opset 6 attributes", 6, v3, node("Clip", "input").addAttribute(f("min", -0.5f))
                .addAttribute(f("max", 0.7f)));
        add("Clip opset 13 both", 13, v3, node("Clip", "input", "lo", "hi"), scalar("lo", -0.5f), scalar("hi", 0.7f));
        add("Clip opset 13 min only", 13, v3, node("Clip", "input", "lo"), scalar("lo", -0.5f));
        add("Clip opset 13 max only", 13, v3, node("Clip", "input", "", "hi"), scalar("hi", 0.7f));
        add("PRelu channel slopes", 13, v3, node("PRelu", "input", "slope"), weights("slope", 3, 1));
        add("Add broadcast", 13, v3, node("Add", "input", "c"), weights("c", 4));
        add("Sub constant first", 13, v3, node("Sub", "c", "input"), weights("c", 3, 1));
        add("Mul broadcast", 13, v3, node("Mul", "input", "c"), weights("c", 1, 4));
        add("Div by constant", 13, v3, node("Div", "input", "c"), scalar("c", 0.3f));
        add("Div constant by input", 13, v3, node("Div", "c", "input"), weights("c", 4));
        positive("Pow 0.5", 13, v3, node("Pow", "input", "e"), scalar("e", 0.5f));
        add("Pow 2", 13, v3, node("Pow", "input", "e"), scalar("e", 2f));
        add("Pow 3", 13, v3, node("Pow", "input", "e"), scalar("e", 3f));
        add("Mod fmod", 13, v3, node("Mod", "input", "c").addAttribute(i("fmod", 1)), scalar("c", 0.7f));
        add("Max variadic", 13, v3, node("Max", "input", "c"), weights("c", 4));
        add("Min variadic", 13, v3, node("Min", "input", "c", "d"), weights("c", 4), weights("d", 3, 1));
        add("Sum variadic", 13, v3, node("Sum", "input", "c", "input"), weights("c", 4));
        add("Mean variadic", 13, v3, node("Mean", "input", "c"), weights("c", 3, 4));
        add("Where constant condition", 13, v3, node("Where", "cond", "input", "c"), boolMask("cond", 3, 4),
                weights("c", 4));
        toFloat("Greater", 13, v3, node("Greater", "input", "c"), weights("c", 4));
        toFloat("LessOrEqual", 16, v3, node("LessOrEqual", "input", "c"), weights("c", 4));
        toFloat("Equal", 13, v3, node("Equal", "input", "input"));
        // ---- softmax family (opset < 13: over the input flattened to 2-D at axis)
        add("Softmax opset 11 axis 1", 11, v3, node("Softmax", "input").addAttribute(i("axis", 1)));
        add("Softmax opset 11 default axis", 11, v3, node("Softmax", "input"));
        add("Softmax opset 13 axis 1", 13, v3, node("Softmax", "input").addAttribute(i("axis", 1)));
        add("Softmax opset 13 default axis", 13, v3, node("Softmax", "input"));
        add("LogSoftmax opset 11 axis 1", 11, v3, node("LogSoftmax", "input").addAttribute(i("axis", 1)));
        add("LogSoftmax opset 13 axis -2", 13, v3, node("LogSoftmax", "input").addAttribute(i("axis", -2)));
        add("Hardmax opset 13", 13, v3, node("Hardmax", "input"));
        // ---- reductions
        add("ReduceMean axes attribute keepdims 0", 13, v3, node("ReduceMean", "input").addAttribute(is("axes", 1))
                .addAttribute(i("keepdims", 0)));
        add("ReduceMean opset 18 axes input", 18, v3, node("ReduceMean", "input", "axes"), ints("axes", -1));
        add("ReduceSum axes input", 13, v3, node("ReduceSum", "input", "axes"), ints("axes", 1, 2));
        add("ReduceSum opset 11 attribute", 11, v3, node("ReduceSum", "input").addAttribute(is("axes", 2)));
        add("ReduceMax opset 18", 18, v3, node("ReduceMax", "input", "axes").addAttribute(i("keepdims", 0)),
                ints("axes", 2));
        add("ReduceMin", 13, v3, node("ReduceMin", "input").addAttribute(is("axes", 1)));
        add("ReduceL1", 13, v3, node("ReduceL1", "input").addAttribute(is("axes", 2)));
        add("ReduceL2", 13, v3, node("ReduceL2", "input").addAttribute(is("axes", 2)));
        add("ReduceSumSquare", 13, v3, node("ReduceSumSquare", "input").addAttribute(is("axes", 1)));
        add("ReduceLogSumExp", 13, v3, node("ReduceLogSumExp", "input").addAttribute(is("axes", 2)));
        positive("ReduceLogSum", 13, v3, node("ReduceLogSum", "input").addAttribute(is("axes", 2)));
        toFloat("ArgMax keepdims 0", 13, v3, node("ArgMax", "input").addAttribute(i("axis", 2))
                .addAttribute(i("keepdims", 0)));
        toFloat("ArgMin last index", 13, v3, node("ArgMin", "input").addAttribute(i("axis", 1))
                .addAttribute(i("select_last_index", 1)));
        add("CumSum", 14, v3, node("CumSum", "input", "ax"), ints("ax", 2));
        add("CumSum exclusive reverse", 14, v3, node("CumSum", "input", "ax").addAttribute(i("exclusive", 1))
                .addAttribute(i("reverse", 1)), ints("ax", 1));
        // ---- layout
        add("Transpose", 13, v3, node("Transpose", "input").addAttribute(is("perm", 0, 2, 1)));
        add("Reshape zero and -1", 13, v3, node("Reshape", "input", "shape"), ints("shape", 0, -1));
        add("Reshape to 4-D", 13, v3, node("Reshape", "input", "shape"), ints("shape", 0, 3, 2, 2));
        add("Flatten axis 2", 13, v3, node("Flatten", "input").addAttribute(i("axis", 2)));
        add("Flatten default", 13, v3, node("Flatten", "input"));
        add("Squeeze axes input", 13, dims(2, 1, 4), node("Squeeze", "input", "axes"), ints("axes", 1));
        add("Squeeze opset 11 attribute", 11, dims(2, 3, 1), node("Squeeze", "input").addAttribute(is("axes", -1)));
        add("Unsqueeze axes input", 13, v3, node("Unsqueeze", "input", "axes"), ints("axes", 2, 4));
        add("Unsqueeze opset 11 attribute", 11, v3, node("Unsqueeze", "input").addAttribute(is("axes", 1)));
        add("Slice negative step", 13, v3, node("Slice", "input", "st", "en", "ax", "sp"), ints("st", -1), ints("en", 0),
                ints("ax", 2), ints("sp", -2));
        add("Slice clamped ends", 13, v3, node("Slice", "input", "st", "en", "ax"), ints("st", 1, -3),
                ints("en", 1000, -1), ints("ax", 1, 2));
        add("Slice opset 9 attributes", 9, v3, node("Slice", "input").addAttribute(is("starts", 1))
                .addAttribute(is("ends", 3)).addAttribute(is("axes", 2)));
        add("Gather negative indices", 13, v3, node("Gather", "input", "idx").addAttribute(i("axis", 2)),
                ints("idx", -1, 0, 2));
        add("Gather scalar index", 13, v3, node("Gather", "input", "idx").addAttribute(i("axis", 1)),
                OnnxModels.intScalar("idx", -2));
        add("Concat with itself", 13, v3, node("Concat", "input", "input").addAttribute(i("axis", 2)));
        add("Split opset 13 sizes", 13, v3, node("Split", "input", "sizes").addOutput("rest")
                .addAttribute(i("axis", 2)), ints("sizes", 1, 3));
        add("Split opset 18 num_outputs", 18, v3, node("Split", "input").addOutput("rest").addAttribute(i("axis", 2))
                .addAttribute(i("num_outputs", 2)));
        add("Split opset 11 attribute", 11, v3, node("Split", "input").addOutput("rest").addAttribute(i("axis", 1))
                .addAttribute(is("split", 2, 1)));
        add("Tile", 13, v3, node("Tile", "input", "rep"), ints("rep", 1, 2, 3));
        add("Expand", 13, dims(2, 1, 4), node("Expand", "input", "shape"), ints("shape", 1, 3, 4));
        add("DepthToSpace DCR", 13, dims(2, 8, 2, 3), node("DepthToSpace", "input").addAttribute(i("blocksize", 2)));
        add("DepthToSpace CRD", 13, dims(2, 8, 2, 3), node("DepthToSpace", "input").addAttribute(i("blocksize", 2))
                .addAttribute(s("mode", "CRD")));
        add("SpaceToDepth", 13, dims(2, 2, 4, 6), node("SpaceToDepth", "input").addAttribute(i("blocksize", 2)));
        add("Pad constant value", 13, img, node("Pad", "input", "pads", "val"), ints("pads", 0, 0, 1, 2, 0, 1, 0, 1),
                scalar("val", 0.5f));
        add("Pad reflect", 13, img, node("Pad", "input", "pads").addAttribute(s("mode", "reflect")),
                ints("pads", 0, 0, 2, 1, 0, 0, 1, 2));
        add("Pad edge", 13, img, node("Pad", "input", "pads").addAttribute(s("mode", "edge")),
                ints("pads", 0, 0, 2, 1, 0, 0, 1, 2));
        add("Pad negative (crop)", 13, img, node("Pad", "input", "pads"), ints("pads", 0, 0, -1, 1, 0, 0, 1, -2));
        add("Pad opset 2 attribute", 2, img, node("Pad", "input").addAttribute(is("pads", 0, 0, 1, 1, 0, 0, 1, 1)));
        add("Pad opset 18 axes", 18, img, node("Pad", "input", "pads", "", "axes"), ints("pads", 1, 2, 2, 1),
                ints("axes", 2, 3));
        // ---- convolution and pooling
        add("Conv pads strides bias", 13, img, node("Conv", "input", "w", "b").addAttribute(is("pads", 1, 1, 1, 1))
                .addAttribute(is("strides", 2, 2)), weights("w", 4, 3, 3, 3), weights("b", 4));
        add("Conv SAME_UPPER stride 2", 13, img, node("Conv", "input", "w").addAttribute(s("auto_pad", "SAME_UPPER"))
                .addAttribute(is("strides", 2, 2)), weights("w", 4, 3, 3, 3));
        add("Conv SAME_LOWER", 13, img, node("Conv", "input", "w").addAttribute(s("auto_pad", "SAME_LOWER"))
                .addAttribute(is("strides", 2, 2)), weights("w", 4, 3, 2, 2));
        add("Conv VALID dilated", 13, img, node("Conv", "input", "w").addAttribute(s("auto_pad", "VALID"))
                .addAttribute(is("dilations", 2, 2)), weights("w", 2, 3, 3, 3));
        add("Conv asymmetric pads", 13, img, node("Conv", "input", "w").addAttribute(is("pads", 0, 1, 2, 0)),
                weights("w", 2, 3, 3, 2));
        add("Conv depthwise", 13, img, node("Conv", "input", "w", "b").addAttribute(i("group", 3))
                .addAttribute(is("pads", 1, 1, 1, 1)), weights("w", 3, 1, 3, 3), weights("b", 3));
        add("Conv grouped", 13, dims(2, 4, 5, 5), node("Conv", "input", "w").addAttribute(i("group", 2)),
                weights("w", 6, 2, 3, 3));
        add("Conv 1-D", 13, dims(2, 3, 9), node("Conv", "input", "w").addAttribute(is("pads", 1, 2))
                .addAttribute(is("strides", 2)), weights("w", 4, 3, 3));
        add("ConvTranspose stride 2 output_padding", 13, img, node("ConvTranspose", "input", "w", "b")
                .addAttribute(is("strides", 2, 2)).addAttribute(is("pads", 1, 1, 1, 1))
                .addAttribute(is("output_padding", 1, 0)), weights("w", 3, 2, 3, 3), weights("b", 2));
        add("ConvTranspose grouped", 13, dims(2, 4, 3, 3), node("ConvTranspose", "input", "w")
                .addAttribute(i("group", 2)).addAttribute(is("strides", 2, 2)), weights("w", 4, 3, 2, 2));
        add("ConvTranspose output_shape", 13, img, node("ConvTranspose", "input", "w")
                .addAttribute(is("strides", 2, 2)).addAttribute(is("output_shape", 15, 17)), weights("w", 3, 2, 3, 3));
        add("MaxPool pads strides", 13, img, node("MaxPool", "input").addAttribute(is("kernel_shape", 3, 3))
                .addAttribute(is("pads", 1, 1, 1, 1)).addAttribute(is("strides", 2, 2)));
        add("MaxPool ceil_mode", 13, img, node("MaxPool", "input").addAttribute(is("kernel_shape", 2, 2))
                .addAttribute(is("strides", 2, 2)).addAttribute(i("ceil_mode", 1)));
        add("MaxPool dilations", 13, img, node("MaxPool", "input").addAttribute(is("kernel_shape", 2, 2))
                .addAttribute(is("dilations", 2, 2)));
        add("MaxPool SAME_UPPER", 13, img, node("MaxPool", "input").addAttribute(is("kernel_shape", 3, 3))
                .addAttribute(s("auto_pad", "SAME_UPPER")).addAttribute(is("strides", 2, 2)));
        add("AveragePool exclude pad", 13, img, node("AveragePool", "input").addAttribute(is("kernel_shape", 3, 3))
                .addAttribute(is("pads", 1, 1, 1, 1)).addAttribute(is("strides", 2, 2)));
        add("AveragePool include pad", 13, img, node("AveragePool", "input").addAttribute(is("kernel_shape", 3, 3))
                .addAttribute(is("pads", 1, 1, 1, 1)).addAttribute(i("count_include_pad", 1)));
        add("AveragePool ceil_mode", 13, img, node("AveragePool", "input").addAttribute(is("kernel_shape", 3, 3))
                .addAttribute(is("strides", 2, 2)).addAttribute(i("ceil_mode", 1)));
        add("AveragePool SAME_LOWER", 13, img, node("AveragePool", "input").addAttribute(is("kernel_shape", 2, 2))
                .addAttribute(s("auto_pad", "SAME_LOWER")));
        add("MaxPool 1-D", 13, dims(2, 3, 9), node("MaxPool", "input").addAttribute(is("kernel_shape", 3))
                .addAttribute(is("strides", 2)));
        add("GlobalAveragePool", 13, img, node("GlobalAveragePool", "input"));
        add("GlobalMaxPool", 13, img, node("GlobalMaxPool", "input"));
        add("GlobalLpPool", 13, img, node("GlobalLpPool", "input"));
        add("LRN", 13, img, node("LRN", "input").addAttribute(i("size", 3)).addAttribute(f("alpha", 0.01f))
                .addAttribute(f("beta", 0.75f)).addAttribute(f("bias", 1.5f)));
        // ---- normalisation
        add("BatchNormalization", 15, img, node("BatchNormalization", "input", "g", "b", "m", "v"), weights("g", 3),
                weights("b", 3), weights("m", 3), positives("v", 3));
        add("InstanceNormalization", 13, img, node("InstanceNormalization", "input", "g", "b")
                .addAttribute(f("epsilon", 1e-3f)), weights("g", 3), weights("b", 3));
        add("LayerNormalization last axis", 17, v3, node("LayerNormalization", "input", "g", "b"), weights("g", 4),
                weights("b", 4));
        add("LayerNormalization axis 1", 17, v3, node("LayerNormalization", "input", "g").addAttribute(i("axis", 1))
                .addAttribute(f("epsilon", 1e-3f)), weights("g", 3, 4));
        add("GroupNormalization opset 18", 18, dims(2, 4, 3, 3), node("GroupNormalization", "input", "g", "b")
                .addAttribute(i("num_groups", 2)), weights("g", 2), weights("b", 2));
        add("GroupNormalization opset 21", 21, dims(2, 4, 3, 3), node("GroupNormalization", "input", "g", "b")
                .addAttribute(i("num_groups", 2)), weights("g", 4), weights("b", 4));
        add("LpNormalization p 2", 13, v3, node("LpNormalization", "input").addAttribute(i("axis", -1)));
        add("LpNormalization p 1 axis 1", 13, v3, node("LpNormalization", "input").addAttribute(i("axis", 1))
                .addAttribute(i("p", 1)));
        // ---- matrix products
        add("Gemm transB alpha beta", 13, dims(2, 4), node("Gemm", "input", "w", "c").addAttribute(i("transB", 1))
                .addAttribute(f("alpha", 0.5f)).addAttribute(f("beta", 2f)), weights("w", 3, 4), weights("c", 3));
        add("Gemm scalar C", 13, dims(2, 4), node("Gemm", "input", "w", "c"), weights("w", 4, 3), scalar("c", 0.25f));
        add("Gemm no C", 13, dims(2, 4), node("Gemm", "input", "w"), weights("w", 4, 3));
        add("MatMul 3-D by 2-D", 13, v3, node("MatMul", "input", "w"), weights("w", 4, 5));
        add("MatMul by a vector", 13, v3, node("MatMul", "input", "w"), weights("w", 4));
        add("MatMul broadcast batch", 13, dims(2, 3, 4), node("MatMul", "w", "input"), weights("w", 2, 1, 5, 3));
        add("Einsum", 13, v3, node("Einsum", "input", "w").addAttribute(s("equation", "bij,jk->bik")),
                weights("w", 4, 2));
        // ---- resize
        add("Resize nearest asymmetric floor", 13, img, node("Resize", "input", "", "sc")
                .addAttribute(s("mode", "nearest")).addAttribute(s("coordinate_transformation_mode", "asymmetric"))
                .addAttribute(s("nearest_mode", "floor")), floats("sc", 1, 1, 2, 2));
        add("Resize nearest half_pixel round_prefer_floor x1.5", 13, img, node("Resize", "input", "", "sc")
                .addAttribute(s("mode", "nearest")), floats("sc", 1, 1, 1.5f, 1.5f));
        add("Resize linear half_pixel", 13, img, node("Resize", "input", "", "sc").addAttribute(s("mode", "linear")),
                floats("sc", 1, 1, 2, 2));
        add("Resize linear align_corners", 13, img, node("Resize", "input", "", "sc")
                .addAttribute(s("mode", "linear")).addAttribute(s("coordinate_transformation_mode", "align_corners")),
                floats("sc", 1, 1, 1.6f, 0.7f));
        add("Resize nearest ceil tf_half_pixel", 13, img, node("Resize", "input", "", "sc")
                .addAttribute(s("mode", "nearest")).addAttribute(s("nearest_mode", "ceil"))
                .addAttribute(s("coordinate_transformation_mode", "tf_half_pixel_for_nn")), floats("sc", 1, 1, 1.3f, 2));
        add("Resize linear pytorch_half_pixel", 13, img, node("Resize", "input", "", "sc")
                .addAttribute(s("mode", "linear")).addAttribute(s("coordinate_transformation_mode", "pytorch_half_pixel")),
                floats("sc", 1, 1, 0.5f, 2));
        add("Resize cubic half_pixel", 13, img, node("Resize", "input", "", "sc").addAttribute(s("mode", "cubic")),
                floats("sc", 1, 1, 2, 1.5f));
        add("Resize cubic align_corners a -0.5 down", 13, img, node("Resize", "input", "", "sc")
                .addAttribute(s("mode", "cubic")).addAttribute(s("coordinate_transformation_mode", "align_corners"))
                .addAttribute(f("cubic_coeff_a", -0.5f)), floats("sc", 1, 1, 0.6f, 0.8f));
        add("Resize cubic exclude_outside asymmetric", 13, img, node("Resize", "input", "", "sc")
                .addAttribute(s("mode", "cubic")).addAttribute(s("coordinate_transformation_mode", "asymmetric"))
                .addAttribute(i("exclude_outside", 1)), floats("sc", 1, 1, 1.7f, 2));
        add("Resize cubic pytorch_half_pixel sizes", 13, img, node("Resize", "input", "", "", "sz")
                .addAttribute(s("mode", "cubic")).addAttribute(s("coordinate_transformation_mode", "pytorch_half_pixel")),
                ints("sz", 2, 3, 5, 13));
        add("Upsample opset 9 nearest", 9, img, node("Upsample", "input", "sc"), floats("sc", 1, 1, 2, 3));
        add("Dropout opset 12", 12, v3, node("Dropout", "input"));
        CASES.add(QuantizationTest.qdqCase());
        add("Dropout ratio 0 in training mode", 13, v3, node("Dropout", "input", "ratio", "training"), scalar("ratio", 0f),
                boolScalar("training", true));
    }

    private static OnnxMl.TensorProto floats(String name, float... v) {
        return OnnxModels.floats(name, new int[] {v.length}, v);
    }

    private static OnnxMl.TensorProto positives(String name, int n) {
        float[] v = new float[n];
        for (int k = 0; k < n; k++) {
            v[k] = 0.5f + k * 0.3f;
        }
        return OnnxModels.floats(name, new int[] {n}, v);
    }

    private static OnnxMl.TensorProto intTensor(String name, int[] dims, long... v) {
        OnnxMl.TensorProto.Builder t = OnnxMl.TensorProto.newBuilder().setName(name)
                .setDataType(OnnxMl.TensorProto.DataType.INT64_VALUE);
        for (int d : dims) {
            t.addDims(d);
        }
        for (long x : v) {
            t.addInt64Data(x);
        }
        return t.build();
    }

    private static OnnxMl.TensorProto boolScalar(String name, boolean v) {
        return OnnxMl.TensorProto.newBuilder().setName(name).setDataType(OnnxMl.TensorProto.DataType.BOOL_VALUE)
                .addInt32Data(v ? 1 : 0).build();
    }

    private static OnnxMl.TensorProto boolMask(String name, int rows, int cols) {
        OnnxMl.TensorProto.Builder t = OnnxMl.TensorProto.newBuilder().setName(name)
                .setDataType(OnnxMl.TensorProto.DataType.BOOL_VALUE).addDims(rows).addDims(cols);
        for (int k = 0; k < rows * cols; k++) {
            t.addInt32Data(k % 3 == 0 ? 1 : 0);
        }
        return t.build();
    }

    // ------------------------------------------------------------------ running both

    /** Every case (the CUDA backend's twin of this test runs them on the emulator). */
    public static List<Case> cases() {
        return List.copyOf(CASES);
    }

    public static byte[] bytes(Case c) {
        OnnxMl.TensorShapeProto.Builder shape = OnnxMl.TensorShapeProto.newBuilder()
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"));
        for (int k = 1; k < c.shape().length; k++) {
            shape.addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(c.shape()[k]));
        }
        OnnxMl.TypeProto in = OnnxMl.TypeProto.newBuilder().setTensorType(OnnxMl.TypeProto.Tensor.newBuilder()
                .setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).setShape(shape)).build();
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName(c.name())
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("input").setType(in))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("output").setType(OnnxModels.OUTPUT_TYPE))
                .addAllNode(c.nodes()).addAllInitializer(c.inits());
        return OnnxMl.ModelProto.newBuilder().setIrVersion(c.opset() >= 21 ? 10 : 8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(c.opset()))
                .setGraph(g).build().toByteArray();
    }

    public static Tensor input(Case c) {
        int n = 1;
        for (int d : c.shape()) {
            n *= d;
        }
        SplittableRandom r = new SplittableRandom(c.name().hashCode());
        float[] v = new float[n];
        for (int k = 0; k < n; k++) {
            double u = r.nextDouble();
            v[k] = (float) (c.positive() ? 0.1 + 2 * u : 4 * u - 2);
        }
        return new Tensor(c.shape().clone(), v);
    }

    /** ONNX Runtime's output: its shape, then its values. */
    public static Object[] onnxRuntime(byte[] model, Tensor x) throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setIntraOpNumThreads(1);
            try (OrtSession s = env.createSession(model, o);
                    OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()),
                            Arrays.stream(x.shape()).asLongStream().toArray());
                    OrtSession.Result r = s.run(Map.of("input", t))) {
                OnnxTensor out = (OnnxTensor) r.get(0);
                long[] shape = out.getInfo().getShape();
                FloatBuffer fb = out.getFloatBuffer();
                float[] v = new float[fb.remaining()];
                fb.get(v);
                return new Object[] {Arrays.stream(shape).mapToInt(Math::toIntExact).toArray(), v};
            }
        }
    }

    public static void compare(String what, Tensor kxai, Object[] ort) {
        assertArrayEquals((int[]) ort[0], kxai.shape(), what + ": output shape");
        float[] want = (float[]) ort[1];
        float[] got = kxai.data();
        double worst = 0;
        int at = -1;
        for (int k = 0; k < want.length; k++) {
            double err = Math.abs((double) got[k] - want[k]) / (1e-5 + 1e-5 * Math.abs(want[k]));
            if (!(err <= worst)) {
                worst = err;
                at = k;
            }
        }
        if (worst > 1) {
            fail(what + ": kxai " + got[at] + " vs ONNX Runtime " + want[at] + " at flat index " + at + " of "
                    + Arrays.toString(kxai.shape()));
        }
    }

    @TestFactory
    Stream<DynamicTest> kxaiForwardMatchesOnnxRuntime() {
        return CASES.stream().map(c -> DynamicTest.dynamicTest(c.name() + " (opset " + c.opset() + ")", () -> {
            byte[] model = bytes(c);
            Tensor x = input(c);
            Object[] ort = onnxRuntime(model, x);
            try (Model m = Model.of(OnnxImporter.parse(model, c.name() + ".onnx"), new CpuBackend())) {
                compare(c.name(), m.forward(x), ort);
            }
        }));
    }

    @org.junit.jupiter.api.Test
    void theCasesCoverManyOperators() {
        long ops = CASES.stream().flatMap(c -> c.nodes().stream()).map(OnnxMl.NodeProto::getOpType).distinct().count();
        assertTrue(ops >= 80, ops + " operators");
    }
}
