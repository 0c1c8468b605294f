package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A graph as sklearn-onnx writes a classifier: the label (its first output) through operators of the
 * {@code ai.onnx.ml} domain, the probabilities beside it in standard operators. kxai explains the
 * probabilities; the label, which needs what kxai does not run, is refused when asked for by name.
 */
class OutputConeTest {
    private static byte[] sklearnLike(boolean mlOpInProbabilities) {
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("sklearn-like")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("input").setType(OnnxModels.TYPE))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("label").setType(OnnxModels.OUTPUT_TYPE))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("probabilities").setType(OnnxModels.OUTPUT_TYPE))
                .addInitializer(OnnxModels.floats("w", new int[] {4, 3}, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1))
                .addInitializer(OnnxModels.ints("classes", 10, 20, 30));
        String scaled = "input";
        if (mlOpInProbabilities) {
            g.addNode(OnnxModels.n("Scaler", "scaled", "input").setDomain("ai.onnx.ml"));
            scaled = "scaled";
        }
        g.addNode(OnnxModels.n("MatMul", "scores", scaled, "w"));
        g.addNode(OnnxModels.n("Softmax", "probabilities", "scores").addAttribute(OnnxModels.intAttr("axis", 1)));
        g.addNode(OnnxModels.n("ArgMax", "best", "probabilities").addAttribute(OnnxModels.intAttr("axis", 1)));
        g.addNode(OnnxModels.n("ArrayFeatureExtractor", "label", "classes", "best").setDomain("ai.onnx.ml"));
        return OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13))
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("ai.onnx.ml").setVersion(3))
                .setGraph(g).build().toByteArray();
    }

    @Test
    void theProbabilitiesAreExplainedWhereTheLabelNeedsAnOperatorKxaiDoesNotRun(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("classifier.onnx");
        Files.write(f, sklearnLike(false));
        try (Model m = Model.load(f, "cpu")) {
            assertEquals("probabilities", m.graph().outputName());
            Tensor p = m.forward(new Tensor(new int[] {1, 4}, new float[] {0, 0, 0, 0}));
            assertArrayEquals(new float[] {1 / 3f, 1 / 3f, 1 / 3f}, p.data(), 1e-6f);
        }
        try (Model m = Model.load(f, "cpu", "scores")) {
            assertEquals("scores", m.graph().outputName());
        }
        ModelException label = assertThrows(ModelException.class, () -> Model.load(f, "cpu", "label"));
        assertTrue(label.getMessage().contains("(ArrayFeatureExtractor) is of domain 'ai.onnx.ml'"), label.getMessage());
    }

    @Test
    void anOperatorTheExplainedOutputNeedsStillRefusesTheModel(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("scaled.onnx");
        Files.write(f, sklearnLike(true));
        ModelException e = assertThrows(ModelException.class, () -> Model.load(f, "cpu"));
        assertTrue(e.getMessage().contains("(Scaler) is of domain 'ai.onnx.ml'"), e.getMessage());
    }

    @Test
    void aModelKxaiRunsWholeKeepsEveryNode() {
        Graph g = OnnxImporter.parse(sklearnLikeWithoutMl(), "whole.onnx");
        assertTrue(g.valueNames().contains("best"), g.valueNames().toString());
    }

    private static byte[] sklearnLikeWithoutMl() {
        OnnxMl.ModelProto m;
        try {
            m = OnnxMl.ModelProto.parseFrom(sklearnLike(false));
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new AssertionError(e);
        }
        OnnxMl.GraphProto.Builder g = m.getGraph().toBuilder().clearOutput()
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("probabilities").setType(OnnxModels.OUTPUT_TYPE));
        g.removeNode(3);
        return m.toBuilder().setGraph(g).build().toByteArray();
    }
}
