package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.backend.Backends;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Malformed models that used to be accepted and computed (wrong numbers with exit 0) or crashed with a
 * raw Java exception (issue 13): each must be refused at load with a {@link ModelException} naming the
 * node, the attribute, its value and the rule. One table: the case, how it spoils a valid CNN, and the
 * fragments the message must hold.
 */
public class MalformedModelTest {
    /** Node indices in the valid CNN below. */
    public static final int CONV = 0;
    public static final int POOL = 2;

    /**
     * A valid CNN: input x [batch, 2, 6, 6] → Conv 'conv' (W [4, 2, 3, 3], B [4]) → Relu 'relu' →
     * MaxPool 'pool' (2×2, stride 2) → Flatten 'flatten' → output [batch, 16]; {@code tweak} spoils it.
     */
    public static byte[] cnn(Consumer<OnnxMl.GraphProto.Builder> tweak) {
        float[] w = new float[4 * 2 * 3 * 3];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) Math.sin(i + 1) * 0.5f;
        }
        OnnxMl.TypeProto in = type(-1, 2, 6, 6);
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("cnn")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("x").setType(in))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("output").setType(type(-1, 16)))
                .addInitializer(OnnxModels.floats("W", new int[] {4, 2, 3, 3}, w))
                .addInitializer(OnnxModels.floats("B", new int[] {4}, 0.1f, -0.2f, 0.3f, 0f))
                .addNode(node("Conv", "conv", "c", "x", "W", "B"))
                .addNode(node("Relu", "relu", "r", "c"))
                .addNode(node("MaxPool", "pool", "p", "r").addAttribute(OnnxModels.intsAttr("kernel_shape", 2, 2))
                        .addAttribute(OnnxModels.intsAttr("strides", 2, 2)))
                .addNode(node("Flatten", "flatten", "output", "p"));
        tweak.accept(g);
        return OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13))
                .setGraph(g).build().toByteArray();
    }

    public static OnnxMl.TypeProto type(long... dims) {
        OnnxMl.TensorShapeProto.Builder s = OnnxMl.TensorShapeProto.newBuilder();
        for (long d : dims) {
            s.addDim(d < 0 ? OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch")
                    : OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(d));
        }
        return OnnxMl.TypeProto.newBuilder().setTensorType(OnnxMl.TypeProto.Tensor.newBuilder()
                .setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).setShape(s)).build();
    }

    /** A type with dim {@code axis} set to {@code value} as a dim_value (negative values too). */
    public static OnnxMl.TypeProto withDim(OnnxMl.TypeProto t, int axis, long value) {
        OnnxMl.TypeProto.Builder b = t.toBuilder();
        b.getTensorTypeBuilder().getShapeBuilder().setDim(axis,
                OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(value));
        return b.build();
    }

    public static OnnxMl.NodeProto.Builder node(String op, String name, String out, String... ins) {
        OnnxMl.NodeProto.Builder b = OnnxMl.NodeProto.newBuilder().setOpType(op).setName(name).addOutput(out);
        for (String i : ins) {
            b.addInput(i);
        }
        return b;
    }

    /** Sets (replaces) an attribute of node {@code index}. */
    public static Consumer<OnnxMl.GraphProto.Builder> attr(int index, OnnxMl.AttributeProto a) {
        return g -> {
            OnnxMl.NodeProto.Builder n = g.getNodeBuilder(index);
            List<OnnxMl.AttributeProto> keep = new ArrayList<>();
            for (OnnxMl.AttributeProto x : n.getAttributeList()) {
                if (!x.getName().equals(a.getName())) {
                    keep.add(x);
                }
            }
            n.clearAttribute().addAllAttribute(keep).addAttribute(a);
        };
    }

    public static Consumer<OnnxMl.GraphProto.Builder> ints(int index, String name, long... v) {
        return attr(index, OnnxModels.intsAttr(name, v));
    }

    public static Consumer<OnnxMl.GraphProto.Builder> i(int index, String name, long v) {
        return attr(index, OnnxModels.intAttr(name, v));
    }

    /** Replaces the pool with an AveragePool of the same window. */
    static Consumer<OnnxMl.GraphProto.Builder> avg(Consumer<OnnxMl.GraphProto.Builder> then) {
        return g -> {
            g.getNodeBuilder(POOL).setOpType("AveragePool");
            then.accept(g);
        };
    }

    static Arguments c(String what, Consumer<OnnxMl.GraphProto.Builder> tweak, String... fragments) {
        return Arguments.of(what, tweak, fragments);
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                // ---- Conv
                c("conv dilation 0", ints(CONV, "dilations", 0, 1), "'conv'", "dilations", "[0, 1]", ">= 1"),
                c("conv dilation negative", ints(CONV, "dilations", 1, -2), "'conv'", "dilations", "[1, -2]", ">= 1"),
                c("conv dilations of rank 1", ints(CONV, "dilations", 1), "'conv'", "dilations", "[1]", "one dilation per spatial axis"),
                c("conv stride 0", ints(CONV, "strides", 0, 1), "'conv'", "strides", "[0, 1]", "strides >= 1"),
                c("conv stride negative", ints(CONV, "strides", 1, -1), "'conv'", "strides", "[1, -1]", "strides >= 1"),
                c("conv group 0", i(CONV, "group", 0), "'conv'", "group = 0", "group >= 1"),
                c("conv group negative", i(CONV, "group", -2), "'conv'", "group = -2", "group >= 1"),
                c("conv group not dividing the output channels", i(CONV, "group", 3), "'conv'", "group = 3", "divides"),
                c("conv group not matching the weights", i(CONV, "group", 2), "'conv'", "group = 2", "input's 2 channels"),
                c("conv pads negative", ints(CONV, "pads", -1, 0, 0, 0), "'conv'", "pads", "[-1, 0, 0, 0]", "pads >= 0"),
                c("conv pads of length 2", ints(CONV, "pads", 1, 1), "'conv'", "pads", "[1, 1]", "4 for a 2-D Conv"),
                c("conv kernel_shape vs 3x3 weights", ints(CONV, "kernel_shape", 1, 1), "'conv'", "kernel_shape",
                        "[1, 1]", "equals the weights' spatial dims [3, 3]"),
                c("conv kernel_shape 0", ints(CONV, "kernel_shape", 0, 3), "'conv'", "kernel_shape", "[0, 3]", ">= 1"),
                c("conv auto_pad unknown", attr(CONV, OnnxModels.attr("auto_pad", "SOMETIMES")), "'conv'", "auto_pad",
                        "SOMETIMES", "one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"),
                c("conv pads with auto_pad", g -> {
                    ints(CONV, "pads", 1, 1, 1, 1).accept(g);
                    attr(CONV, OnnxModels.attr("auto_pad", "SAME_UPPER")).accept(g);
                }, "'conv'", "pads", "auto_pad NOTSET"),
                c("conv stride beyond int range", ints(CONV, "strides", 1L << 33, 1), "'conv'", "strides", "8589934592",
                        "int range"),
                c("conv group given as a float", attr(CONV, OnnxMl.AttributeProto.newBuilder().setName("group").setF(2f)
                        .setType(OnnxMl.AttributeProto.AttributeType.FLOAT).build()), "'conv'", "group", "FLOAT", "INT"),
                c("conv weights of rank 3", g -> g.setInitializer(0, OnnxModels.floats("W", new int[] {4, 2, 9},
                        new float[72])), "'conv'", "'W'", "4-D weights"),
                // ---- MaxPool
                c("max pool kernel 0", ints(POOL, "kernel_shape", 0, 2), "'pool'", "kernel_shape", "[0, 2]", ">= 1"),
                c("max pool kernel negative", ints(POOL, "kernel_shape", 2, -1), "'pool'", "kernel_shape", "[2, -1]", ">= 1"),
                c("max pool stride 0", ints(POOL, "strides", 2, 0), "'pool'", "strides", "[2, 0]", "strides >= 1"),
                c("max pool dilation 0", ints(POOL, "dilations", 0, 0), "'pool'", "dilations", "[0, 0]", ">= 1"),
                c("max pool pads negative", ints(POOL, "pads", 0, 0, 0, -1), "'pool'", "pads", "pads >= 0"),
                c("max pool ceil_mode 2", i(POOL, "ceil_mode", 2), "'pool'", "ceil_mode = 2", "0 or 1"),
                c("max pool kernel of rank 1", ints(POOL, "kernel_shape", 2), "'pool'", "only 2-D MaxPool"),
                // ---- AveragePool
                c("average pool kernel 0", avg(ints(POOL, "kernel_shape", 0, 0)), "'pool'", "AveragePool", "kernel_shape",
                        "[0, 0]", ">= 1"),
                c("average pool stride negative", avg(ints(POOL, "strides", -1, 2)), "'pool'", "strides", ">= 1"),
                c("average pool pads negative", avg(ints(POOL, "pads", 0, 0, -1, 0)), "'pool'", "pads", "pads >= 0"),
                c("average pool count_include_pad 5", avg(i(POOL, "count_include_pad", 5)), "'pool'",
                        "count_include_pad = 5", "0 or 1"),
                c("average pool dilations", avg(ints(POOL, "dilations", 2, 2)), "'pool'", "dilations", "not supported"),
                // ---- other attributes
                c("softmax axis beyond int range", g -> g.addNode(node("Softmax", "soft", "s", "output")
                        .addAttribute(OnnxModels.intAttr("axis", 1L << 40))), "'soft'", "axis", "1099511627776", "int range"),
                c("batch norm epsilon negative", g -> {
                    g.addInitializer(OnnxModels.floats("s", new int[] {4}, 1, 1, 1, 1));
                    g.addInitializer(OnnxModels.floats("m", new int[] {4}, 0, 0, 0, 0));
                    g.addInitializer(OnnxModels.floats("v", new int[] {4}, 1, 1, 1, 1));
                    g.getNodeBuilder(1).setInput(0, "bn");
                    g.addNode(1, node("BatchNormalization", "bnorm", "bn", "c", "s", "B", "m", "v")
                            .addAttribute(OnnxMl.AttributeProto.newBuilder().setName("epsilon").setF(-1f)
                                    .setType(OnnxMl.AttributeProto.AttributeType.FLOAT)));
                }, "'bnorm'", "epsilon = -1.0", ">= 0"),
                // ---- single assignment
                c("two nodes write one value", g -> {
                    g.getNodeBuilder(1).setOutput(0, "c"); // relu writes 'c', which conv writes
                    g.getNodeBuilder(POOL).setInput(0, "c");
                }, "'relu'", "'conv'", "writes 'c'", "single assignment"),
                c("a node output shadows the graph input", g -> g.getNodeBuilder(1).setOutput(0, "x"),
                        "'relu'", "graph input 'x'"),
                c("a node output shadows an initializer", g -> g.getNodeBuilder(1).setOutput(0, "W"),
                        "'relu'", "initializer 'W'"),
                // ---- sizes beyond int range, declared sizes against the data
                c("input dim beyond int range", g -> g.setInput(0, OnnxMl.ValueInfoProto.newBuilder().setName("x")
                        .setType(type(-1, 2, (1L << 32) + 6, 6))), "input 'x'", "4294967302", "axis 2"),
                c("input dim negative", g -> g.setInput(0, OnnxMl.ValueInfoProto.newBuilder().setName("x")
                        .setType(withDim(type(-1, 2, 6, 6), 3, -6))), "input 'x'", "-6", "negative"),
                c("input example beyond a tensor", g -> g.setInput(0, OnnxMl.ValueInfoProto.newBuilder().setName("x")
                        .setType(type(-1, 2, 65536, 65536))), "input 'x'", "elements per example"),
                c("initializer dim beyond int range", g -> g.setInitializer(1, OnnxMl.TensorProto.newBuilder().setName("B")
                        .setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims((1L << 32) + 4)
                        .addAllFloatData(List.of(1f, 2f, 3f, 4f)).build()), "initializer B", "4294967300"),
                c("initializer declaring 4 GiB with 4 bytes of data", g -> g.setInitializer(1, OnnxMl.TensorProto.newBuilder()
                        .setName("B").setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(1L << 30)
                        .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[4])).build()), "initializer B",
                        "1073741824 elements", "4294967296 bytes", "stores 4 bytes"),
                c("initializer declaring 2^20 floats with 4 typed values", g -> g.setInitializer(1, OnnxMl.TensorProto
                        .newBuilder().setName("B").setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(1L << 20)
                        .addAllFloatData(List.of(1f, 2f, 3f, 4f)).build()), "initializer B", "1048576 elements", "stores 4"),
                c("initializer element count beyond 64 bits", g -> g.setInitializer(1, OnnxMl.TensorProto.newBuilder()
                        .setName("B").setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(Integer.MAX_VALUE)
                        .addDims(Integer.MAX_VALUE).addDims(Integer.MAX_VALUE).build()), "initializer B", "64-bit"),
                c("initializer raw data not a whole number of floats", g -> g.setInitializer(1, OnnxMl.TensorProto
                        .newBuilder().setName("B").setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(4)
                        .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[15])).build()), "initializer B",
                        "16 bytes", "stores 15 bytes"),
                c("two initializers of one name", g -> g.addInitializer(OnnxModels.floats("B", new int[] {4}, 1, 1, 1, 1)),
                        "two initializers", "'B'"));
    }

    @Test
    void theValidCnnLoadsAndRuns() {
        Graph g = OnnxImporter.parse(cnn(x -> { }), "cnn.onnx");
        try (Model m = Model.of(g, Backends.cpu())) {
            Tensor y = m.forward(new Tensor(new int[] {1, 2, 6, 6}, new float[72]));
            assertEquals(16, y.size());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void refusedAtLoadNamingNodeAttributeValueAndRule(String what, Consumer<OnnxMl.GraphProto.Builder> tweak,
            String[] fragments) {
        byte[] bytes = cnn(tweak);
        ModelException e = assertThrows(ModelException.class, () -> {
            Graph g = OnnxImporter.parse(bytes, "bad.onnx");
            Model.of(g, Backends.cpu()).close();
        }, what + ": accepted");
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), what + ": '" + f + "' missing from: " + e.getMessage());
        }
        assertTrue(e.getMessage().startsWith("bad.onnx: "), e.getMessage());
    }
}
