package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.OnnxModels;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Models whose output is not one [batch, classes] tensor: a segmenter's [batch, C, H, W] map
 * (Captum's tuple target (c, h, w)) and a model with two graph outputs (logits and probabilities),
 * through the API and the CLI.
 */
class OutputSelectionTest {
    private static OnnxMl.ValueInfoProto value(String name, long... dims) {
        OnnxMl.TensorShapeProto.Builder s = OnnxMl.TensorShapeProto.newBuilder()
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"));
        for (long d : dims) {
            s.addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(d));
        }
        return OnnxMl.ValueInfoProto.newBuilder().setName(name).setType(OnnxMl.TypeProto.newBuilder().setTensorType(
                OnnxMl.TypeProto.Tensor.newBuilder().setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).setShape(s)))
                .build();
    }

    private static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    private static Path write(Path dir, String name, OnnxMl.GraphProto.Builder g) throws Exception {
        Path file = dir.resolve(name);
        Files.write(file, OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13)).setGraph(g).build()
                .toByteArray());
        return file;
    }

    /** input [B, 3, 4, 4] → 1×1 Conv to 2 channels → Relu → "seg" [B, 2, 4, 4]. */
    private static Path segmenter(Path dir) throws Exception {
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("seg")
                .addInput(value("input", 3, 4, 4)).addOutput(value("seg", 2, 4, 4))
                .addInitializer(OnnxModels.floats("W", new int[] {2, 3, 1, 1}, random(6, 1)))
                .addInitializer(OnnxModels.floats("B", new int[] {2}, 0.1f, -0.2f))
                .addNode(OnnxMl.NodeProto.newBuilder().setName("conv").setOpType("Conv").addInput("input").addInput("W")
                        .addInput("B").addOutput("c"))
                .addNode(OnnxMl.NodeProto.newBuilder().setName("relu").setOpType("Relu").addInput("c").addOutput("seg"));
        return write(dir, "seg.onnx", g);
    }

    /** input [B, 4] → Gemm → "logits" [B, 3] → Softmax → "probs": two graph outputs. */
    private static Path twoOutputs(Path dir) throws Exception {
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("two")
                .addInput(value("input", 4)).addOutput(value("logits", 3)).addOutput(value("probs", 3))
                .addInitializer(OnnxModels.floats("W", new int[] {3, 4}, random(12, 2)))
                .addNode(OnnxMl.NodeProto.newBuilder().setName("gemm").setOpType("Gemm").addInput("input").addInput("W")
                        .addOutput("logits").addAttribute(OnnxModels.intAttr("transB", 1)))
                .addNode(OnnxMl.NodeProto.newBuilder().setName("softmax").setOpType("Softmax").addInput("logits")
                        .addOutput("probs"));
        return write(dir, "two.onnx", g);
    }

    @Test
    void tupleTargetsAreRowMajorIndicesIntoTheOutputMap(@TempDir Path dir) throws Exception {
        try (Model m = Model.load(segmenter(dir), "cpu")) {
            assertArrayEquals(new int[] {2, 4, 4}, m.outputShape());
            assertEquals(32, m.outputs());
            assertEquals(1 * 16 + 2 * 4 + 3, m.target(1, 2, 3));
            assertTrue(assertThrows(InvalidInputException.class, () -> m.target(2, 0, 0)).getMessage()
                    .contains("coordinate 2 at axis 0 is outside 0..1"));
            assertTrue(assertThrows(InvalidInputException.class, () -> m.target(1, 2)).getMessage()
                    .contains("has 2 coordinate(s); the model's output per example has shape [2, 4, 4]"));
        }
        Path x = dir.resolve("x.npy");
        NpyIO.write(x, new Tensor(new int[] {2, 3, 4, 4}, random(96, 3)));
        String model = dir.resolve("seg.onnx").toString();
        CliRun tuple = CliRun.of("explain", "--model", model, "--input", x.toString(), "--method", "saliency",
                "--target", "1:2:3", "--out", dir.resolve("tuple").toString());
        assertEquals(0, tuple.status(), tuple.err());
        CliRun flat = CliRun.of("explain", "--model", model, "--input", x.toString(), "--method", "saliency",
                "--target", "27", "--out", dir.resolve("flat").toString());
        assertEquals(0, flat.status(), flat.err());
        float[] a = NpyIO.read(dir.resolve("tuple/attributions.npy")).data();
        assertArrayEquals(NpyIO.read(dir.resolve("flat/attributions.npy")).data(), a, 0f);
        // the gradient of output (1, 2, 3) reaches only pixel (2, 3) of each channel (a 1×1 conv)
        for (int i = 0; i < 48; i++) {
            boolean pixel = i % 16 == 2 * 4 + 3;
            assertTrue(pixel || a[i] == 0f, "attribution " + i + " = " + a[i]);
        }
        CliRun bad = CliRun.of("explain", "--model", model, "--input", x.toString(), "--target", "1:9:0", "--out",
                dir.resolve("bad").toString());
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("coordinate 9 at axis 1 is outside 0..3"), bad.err());
        CliRun word = CliRun.of("explain", "--model", model, "--input", x.toString(), "--target", "cat", "--out",
                dir.resolve("word").toString());
        assertEquals(2, word.status());
        assertTrue(word.err().contains("--target 'cat' is not an output index") && word.err().contains("[2, 4, 4]"),
                word.err());
    }

    @Test
    void anotherGraphOutputOrValueCanBeExplained(@TempDir Path dir) throws Exception {
        Path file = twoOutputs(dir);
        Tensor x = new Tensor(new int[] {2, 4}, random(8, 4));
        float[] logits;
        try (Model m = Model.load(file, "cpu")) {
            logits = m.forward(x).data();
        }
        try (Model m = Model.load(file, "cpu", "probs")) {
            float[] p = m.forward(x).data();
            for (int r = 0; r < 2; r++) {
                double z = 0;
                for (int j = 0; j < 3; j++) {
                    z += Math.exp(logits[r * 3 + j]);
                }
                for (int j = 0; j < 3; j++) {
                    assertEquals(Math.exp(logits[r * 3 + j]) / z, p[r * 3 + j], 1e-6);
                }
            }
        }
        ModelException none = assertThrows(ModelException.class, () -> Model.load(file, "cpu", "nope"));
        assertTrue(none.getMessage().contains("no node computes a value named 'nope'")
                && none.getMessage().contains("the graph's output is 'logits'"), none.getMessage());

        Path xf = dir.resolve("x.npy");
        NpyIO.write(xf, x);
        CliRun r = CliRun.of("explain", "--model", file.toString(), "--input", xf.toString(), "--model-output", "probs",
                "--out", dir.resolve("probs").toString());
        assertEquals(0, r.status(), r.err());
        // IG of a probability: the attributions sum to p(x) − p(0) (small delta), and p is in [0, 1]
        float[] deltas = NpyIO.read(dir.resolve("probs/deltas.npy")).data();
        for (float d : deltas) {
            assertTrue(Math.abs(d) < 1e-3, "delta " + d);
        }
        assertTrue(r.out().contains("example 0: predicted"), r.out());
        CliRun bad = CliRun.of("explain", "--model", file.toString(), "--input", xf.toString(), "--model-output", "nope",
                "--out", dir.resolve("nope").toString());
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("no node computes a value named 'nope'"), bad.err());
    }
}
