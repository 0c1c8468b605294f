package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Model;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Softmax changed meaning at opset 13: before, default axis 1 and the input flattened to 2-D there. */
class SoftmaxOpsetTest {
    @TempDir
    Path dir;

    /** input [batch, 2, 3] → Softmax (axis attribute or none) → output, under the given opset. */
    private Path model(long opset, Integer axis) throws Exception {
        OnnxMl.TensorShapeProto.Builder shape = OnnxMl.TensorShapeProto.newBuilder()
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(2))
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(3));
        OnnxMl.TypeProto type = OnnxMl.TypeProto.newBuilder().setTensorType(OnnxMl.TypeProto.Tensor.newBuilder()
                .setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).setShape(shape)).build();
        OnnxMl.NodeProto.Builder node = OnnxMl.NodeProto.newBuilder().setName("sm").setOpType("Softmax")
                .addInput("input").addOutput("output");
        if (axis != null) {
            node.addAttribute(OnnxMl.AttributeProto.newBuilder().setName("axis").setI(axis)
                    .setType(OnnxMl.AttributeProto.AttributeType.INT));
        }
        OnnxMl.GraphProto graph = OnnxMl.GraphProto.newBuilder().setName("softmax")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("input").setType(type))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("output").setType(type))
                .addNode(node).build();
        byte[] bytes = OnnxMl.ModelProto.newBuilder().setIrVersion(7).setProducerName("kxai-tests")
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(opset))
                .setGraph(graph).build().toByteArray();
        Path f = dir.resolve("softmax-" + opset + "-" + axis + ".onnx");
        Files.write(f, bytes);
        return f;
    }

    private Op.Softmax op(long opset, Integer axis) throws Exception {
        Graph g = OnnxImporter.load(model(opset, axis));
        return (Op.Softmax) g.nodes().get(0).op();
    }

    @Test
    void opsetDecidesDefaultAxisAndFlattening() throws Exception {
        assertEquals(new Op.Softmax(-1, false), op(13, null));
        assertEquals(new Op.Softmax(1, true), op(11, null));
        assertEquals(new Op.Softmax(2, true), op(12, 2));
        assertEquals(new Op.Softmax(1, false), op(13, 1));
    }

    @Test
    void opset11SoftmaxNormalisesEachExampleAsAWhole() throws Exception {
        Model m = Model.load(model(11, null), "cpu");
        float[] x = {1, 2, 3, 4, 5, 6};
        float[] y = m.runner().forward(new Tensor(new int[] {1, 2, 3}, x)).data();
        double z = 0;
        for (float v : x) {
            z += Math.exp(v);
        }
        for (int i = 0; i < 6; i++) { // one distribution over all 6 values (opset 13 would give two of 3)
            assertEquals(Math.exp(x[i]) / z, y[i], 1e-6, "element " + i);
        }
    }
}
