package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.graph.Graph;

/** One-node ONNX models built with the protobuf classes: input [batch, 4] → node → output. */
public final class OnnxModels {
    private OnnxModels() {
    }

    static final OnnxMl.TypeProto TYPE = OnnxMl.TypeProto.newBuilder().setTensorType(
            OnnxMl.TypeProto.Tensor.newBuilder().setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE)
                    .setShape(OnnxMl.TensorShapeProto.newBuilder()
                            .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                            .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(4)))).build();

    /**
     * The graph output's type: float, no declared shape. The importer refuses an output whose declared shape
     * contradicts the computed one, and these graphs compute every kind of shape from their [batch, 4] input.
     */
    static final OnnxMl.TypeProto OUTPUT_TYPE = OnnxMl.TypeProto.newBuilder().setTensorType(
            OnnxMl.TypeProto.Tensor.newBuilder().setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE)).build();

    public static OnnxMl.TensorProto ints(String name, long... v) {
        OnnxMl.TensorProto.Builder t = OnnxMl.TensorProto.newBuilder().setName(name)
                .setDataType(OnnxMl.TensorProto.DataType.INT64_VALUE).addDims(v.length);
        for (long x : v) {
            t.addInt64Data(x);
        }
        return t.build();
    }

    /** An int64 scalar (rank 0), as exporters write Gather indices that drop an axis. */
    static OnnxMl.TensorProto intScalar(String name, long v) {
        return OnnxMl.TensorProto.newBuilder().setName(name).setDataType(OnnxMl.TensorProto.DataType.INT64_VALUE)
                .addInt64Data(v).build();
    }

    /** A float tensor of the given dims. */
    public static OnnxMl.TensorProto floats(String name, int[] dims, float... v) {
        OnnxMl.TensorProto.Builder t = OnnxMl.TensorProto.newBuilder().setName(name)
                .setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE);
        for (int d : dims) {
            t.addDims(d);
        }
        for (float x : v) {
            t.addFloatData(x);
        }
        return t.build();
    }

    /** input [batch, 4] → nodes → the value named "output". */
    static Graph graph(long opset, java.util.List<OnnxMl.NodeProto> nodes, OnnxMl.TensorProto... inits) {
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("graph")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("input").setType(TYPE))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("output").setType(OUTPUT_TYPE)).addAllNode(nodes);
        for (OnnxMl.TensorProto t : inits) {
            g.addInitializer(t);
        }
        byte[] bytes = OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset))
                .setGraph(g).build().toByteArray();
        return OnnxImporter.parse(bytes, "graph-opset" + opset + ".onnx");
    }

    /** A node named after its output. */
    static OnnxMl.NodeProto.Builder n(String opType, String output, String... inputs) {
        OnnxMl.NodeProto.Builder b = OnnxMl.NodeProto.newBuilder().setName(output + "_node").setOpType(opType)
                .addOutput(output);
        for (String i : inputs) {
            b.addInput(i);
        }
        return b;
    }

    static OnnxMl.TensorProto scalar(String name, float v) {
        return OnnxMl.TensorProto.newBuilder().setName(name).setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE)
                .addFloatData(v).build();
    }

    public static OnnxMl.AttributeProto attr(String name, String s) {
        return OnnxMl.AttributeProto.newBuilder().setName(name).setS(com.google.protobuf.ByteString.copyFromUtf8(s))
                .setType(OnnxMl.AttributeProto.AttributeType.STRING).build();
    }

    static Graph oneNode(long opset, OnnxMl.NodeProto node, OnnxMl.TensorProto... inits) {
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("one-node")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("input").setType(TYPE))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("output").setType(OUTPUT_TYPE)).addNode(node);
        for (OnnxMl.TensorProto t : inits) {
            g.addInitializer(t);
        }
        byte[] bytes = OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset))
                .setGraph(g).build().toByteArray();
        return OnnxImporter.parse(bytes, node.getOpType() + "-opset" + opset + ".onnx");
    }

    public static OnnxMl.AttributeProto intsAttr(String name, long... v) {
        OnnxMl.AttributeProto.Builder a = OnnxMl.AttributeProto.newBuilder().setName(name)
                .setType(OnnxMl.AttributeProto.AttributeType.INTS);
        for (long x : v) {
            a.addInts(x);
        }
        return a.build();
    }

    public static OnnxMl.AttributeProto intAttr(String name, long v) {
        return OnnxMl.AttributeProto.newBuilder().setName(name).setI(v).setType(OnnxMl.AttributeProto.AttributeType.INT)
                .build();
    }
}
