package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Graph;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * A graph output's declared shape is checked at load against the shape computed from the declared input
 * shapes (issue 13): a fixed dim that contradicts a computed fixed dim, or another rank, is refused with the
 * output and both shapes named; symbolic, unknown and batch dims, and a missing declaration, load.
 */
class DeclaredOutputShapeTest {
    private static final Path SEEDS = Path.of("src/test/resources/dev/kxai/onnx/OnnxImporterFuzzTestInputs/parse");

    /** mlp_shapley: one input [N, 6] (batch dynamic), output [N, 3]. */
    private static byte[] edited(String seed, Consumer<OnnxMl.TensorShapeProto.Builder> outputShape) throws Exception {
        OnnxMl.ModelProto.Builder m = OnnxMl.ModelProto.parseFrom(Files.readAllBytes(SEEDS.resolve(seed + ".onnx")))
                .toBuilder();
        outputShape.accept(m.getGraphBuilder().getOutputBuilder(0).getTypeBuilder().getTensorTypeBuilder()
                .getShapeBuilder());
        return m.build().toByteArray();
    }

    private static OnnxMl.TensorShapeProto.Dimension fixed(long v) {
        return OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(v).build();
    }

    private static OnnxMl.TensorShapeProto.Dimension symbolic(String p) {
        return OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam(p).build();
    }

    private static int[] computedAtBatch1(String seed) throws Exception {
        Graph g = OnnxImporter.parse(edited(seed, s -> { }), seed);
        return dev.kxai.exec.ShapeInference.infer(g, 1).get(g.outputName());
    }

    @Test
    void aFixedDimThatContradictsTheGraphIsRefused() throws Exception {
        int[] out = computedAtBatch1("mlp_shapley");
        assertEquals(2, out.length);
        byte[] bytes = edited("mlp_shapley", s -> s.clear().addDim(symbolic("batch")).addDim(fixed(out[1] + 5)));
        ModelException e = assertThrows(ModelException.class, () -> OnnxImporter.parse(bytes, "m.onnx"));
        Graph ok = OnnxImporter.parse(edited("mlp_shapley", s -> { }), "m.onnx");
        String m = e.getMessage();
        assertTrue(m.contains("graph output '" + ok.outputName() + "'"), m);
        assertTrue(m.contains("declared with shape [batch, " + (out[1] + 5) + "]"), m);
        assertTrue(m.contains("computes [N, " + out[1] + "]"), m);
        assertTrue(m.contains("'" + ok.inputName() + "' [N, "), m);
    }

    @Test
    void anotherRankIsRefused() throws Exception {
        int[] out = computedAtBatch1("mlp_shapley");
        ModelException e = assertThrows(ModelException.class, () -> OnnxImporter.parse(edited("mlp_shapley",
                s -> s.clear().addDim(symbolic("batch")).addDim(fixed(out[1])).addDim(fixed(1))), "m.onnx"));
        assertTrue(e.getMessage().contains("[batch, " + out[1] + ", 1]") && e.getMessage().contains("[N, " + out[1] + "]"),
                e.getMessage());
        e = assertThrows(ModelException.class, () -> OnnxImporter.parse(edited("mlp_shapley",
                s -> s.clear().addDim(symbolic("batch"))), "m.onnx"));
        assertTrue(e.getMessage().contains("declared with shape [batch]"), e.getMessage());
    }

    @Test
    void symbolicUnknownBatchAndMissingDimsLoad() throws Exception {
        int[] out = computedAtBatch1("mlp_shapley");
        // symbolic and unknown dims
        OnnxImporter.parse(edited("mlp_shapley", s -> s.clear().addDim(symbolic("batch")).addDim(symbolic("classes"))), "m");
        OnnxImporter.parse(edited("mlp_shapley", s -> s.clear().addDim(OnnxMl.TensorShapeProto.Dimension.getDefaultInstance())
                .addDim(fixed(out[1]))), "m");
        // the exporter pattern: the traced batch (1, or any other) written into the output of a model kxai runs at any batch
        OnnxImporter.parse(edited("mlp_shapley", s -> s.clear().addDim(fixed(1)).addDim(fixed(out[1]))), "m");
        OnnxImporter.parse(edited("mlp_shapley", s -> s.clear().addDim(fixed(7)).addDim(fixed(out[1]))), "m");
        // no declared shape at all
        OnnxMl.ModelProto.Builder m = OnnxMl.ModelProto.parseFrom(Files.readAllBytes(SEEDS.resolve("mlp_shapley.onnx")))
                .toBuilder();
        m.getGraphBuilder().getOutputBuilder(0).getTypeBuilder().getTensorTypeBuilder().clearShape();
        Graph g = OnnxImporter.parse(m.build().toByteArray(), "m");
        assertArrayEquals(out, dev.kxai.exec.ShapeInference.infer(g, 1).get(g.outputName()));
        m.getGraphBuilder().getOutputBuilder(0).clearType();
        OnnxImporter.parse(m.build().toByteArray(), "m");
    }

    @Test
    void aSecondGraphOutputIsCheckedToo() throws Exception {
        int[] out = computedAtBatch1("mlp_shapley");
        OnnxMl.ModelProto.Builder m = OnnxMl.ModelProto.parseFrom(Files.readAllBytes(SEEDS.resolve("mlp_shapley.onnx")))
                .toBuilder();
        OnnxMl.GraphProto.Builder g = m.getGraphBuilder();
        String first = g.getOutput(0).getName();
        g.addNode(OnnxMl.NodeProto.newBuilder().setName("second").setOpType("Relu").addInput(first).addOutput("relu_out"));
        OnnxMl.ValueInfoProto.Builder second = g.getOutput(0).toBuilder().setName("relu_out");
        second.getTypeBuilder().getTensorTypeBuilder().getShapeBuilder().clear().addDim(symbolic("batch"))
                .addDim(fixed(out[1] * 2));
        g.addOutput(second);
        ModelException e = assertThrows(ModelException.class, () -> OnnxImporter.parse(m.build().toByteArray(), "m"));
        assertTrue(e.getMessage().contains("graph output 'relu_out' is declared with shape [batch, " + (out[1] * 2) + "]"),
                e.getMessage());
        second.getTypeBuilder().getTensorTypeBuilder().getShapeBuilder().setDim(1, fixed(out[1]));
        g.setOutput(1, second);
        OnnxImporter.parse(m.build().toByteArray(), "m"); // right: loads
    }

    @Test
    void aConvolutionalModelWithAWrongSpatialDimIsRefused() throws Exception {
        Graph g = OnnxImporter.parse(edited("digits_cnn", s -> { }), "digits_cnn");
        int[] out = dev.kxai.exec.ShapeInference.infer(g, 1).get(g.outputName());
        StringBuilder ok = new StringBuilder();
        ModelException e = assertThrows(ModelException.class, () -> OnnxImporter.parse(edited("digits_cnn", s -> {
            s.clear().addDim(fixed(1));
            for (int i = 1; i < out.length; i++) {
                s.addDim(fixed(i == out.length - 1 ? out[i] + 1 : out[i]));
            }
        }), "digits_cnn"));
        assertTrue(e.getMessage().contains("is declared with shape [1, "), e.getMessage());
        ok.append(e.getMessage());
    }
}
