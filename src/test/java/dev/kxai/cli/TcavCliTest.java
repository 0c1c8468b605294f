package dev.kxai.cli;

import static dev.kxai.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kxai concepts --tcav-concept}: on an ONNX model that provably reads a direction
 * (h = W x, logits = (h4, −h4), h4 = x0 + x1), a concept along that direction scores 1 and is
 * significant, folders of examples are read, and missing pieces are named.
 */
class TcavCliTest {
    private static Path plantedModel(Path dir) throws IOException {
        OnnxMl.TypeProto.Tensor.Builder in = OnnxMl.TypeProto.Tensor.newBuilder()
                .setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE)
                .setShape(OnnxMl.TensorShapeProto.newBuilder()
                        .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                        .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(4)));
        OnnxMl.TensorProto.Builder w = OnnxMl.TensorProto.newBuilder().setName("w")
                .setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(5).addDims(4);
        for (float v : new float[] {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0}) {
            w.addFloatData(v);
        }
        OnnxMl.TensorProto.Builder head = OnnxMl.TensorProto.newBuilder().setName("v")
                .setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(2).addDims(5);
        for (float v : new float[] {0, 0, 0, 0, 1, 0, 0, 0, 0, -1}) {
            head.addFloatData(v);
        }
        OnnxMl.AttributeProto transB = OnnxMl.AttributeProto.newBuilder().setName("transB").setI(1)
                .setType(OnnxMl.AttributeProto.AttributeType.INT).build();
        OnnxMl.GraphProto g = OnnxMl.GraphProto.newBuilder().setName("planted")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("x")
                        .setType(OnnxMl.TypeProto.newBuilder().setTensorType(in)))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("logits"))
                .addNode(OnnxMl.NodeProto.newBuilder().setName("layer").setOpType("Gemm").addInput("x").addInput("w")
                        .addOutput("h").addAttribute(transB))
                .addNode(OnnxMl.NodeProto.newBuilder().setName("head").setOpType("Gemm").addInput("h").addInput("v")
                        .addOutput("logits").addAttribute(transB))
                .addInitializer(w).addInitializer(head).build();
        Path p = dir.resolve("planted.onnx");
        Files.write(p, OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13)).setGraph(g).build()
                .toByteArray());
        return p;
    }

    private static Tensor gaussian(Random r, int n, double shift) {
        float[] v = new float[n * 4];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() + (i % 4 < 2 ? shift : 0));
        }
        return new Tensor(new int[] {n, 4}, v);
    }

    @Test
    void aPlantedConceptIsSignificantFromFiles(@TempDir Path dir) throws IOException {
        Path model = plantedModel(dir);
        Random r = new Random(3);
        // the concept as a folder of single examples, the random sets as batches
        Path conceptDir = Files.createDirectories(dir.resolve("striped"));
        Tensor concept = gaussian(r, 30, 3);
        for (int i = 0; i < 30; i++) {
            NpyIO.write(conceptDir.resolve(String.format("ex%02d.npy", i)), new Tensor(new int[] {4},
                    java.util.Arrays.copyOfRange(concept.data(), i * 4, i * 4 + 4)));
        }
        String[] randoms = new String[20];
        for (int i = 0; i < 10; i++) {
            Path p = dir.resolve("random" + i + ".npy");
            NpyIO.write(p, gaussian(r, 30, 0));
            randoms[2 * i] = "--tcav-random";
            randoms[2 * i + 1] = p.toString();
        }
        Path inputs = dir.resolve("inputs.npy");
        NpyIO.write(inputs, gaussian(r, 25, 0));
        String[] args = new String[12 + randoms.length];
        String[] head = {"concepts", "--model", model.toString(), "--layer", "h", "--input", inputs.toString(),
            "--tcav-concept", conceptDir.toString(), "--target", "0"};
        System.arraycopy(head, 0, args, 0, head.length);
        System.arraycopy(randoms, 0, args, head.length, randoms.length);
        args[args.length - 1] = "--device=cpu";
        CliRun ok = run(args);
        assertEquals(0, ok.status(), ok.err());
        assertTrue(ok.out().contains("mean TCAV score 1.0000") && ok.out().contains("(significant at 0.05)"), ok.out());
        args[10] = "1"; // the other class reads −h4: the concept lowers it everywhere
        CliRun other = run(args);
        assertEquals(0, other.status(), other.err());
        assertTrue(other.out().contains("mean TCAV score 0.0000"), other.out());

        CliRun one = run("concepts", "--model", model.toString(), "--layer", "h", "--input", inputs.toString(),
                "--tcav-concept", conceptDir.toString(), "--tcav-random", dir.resolve("random0.npy").toString());
        assertEquals(2, one.status());
        assertTrue(one.err().contains("at least two --tcav-random"), one.err());
        CliRun empty = run("concepts", "--model", model.toString(), "--layer", "h", "--input", inputs.toString(),
                "--tcav-concept", Files.createDirectories(dir.resolve("empty")).toString(), "--tcav-random",
                dir.resolve("random0.npy").toString(), "--tcav-random", dir.resolve("random1.npy").toString());
        assertEquals(2, empty.status());
        assertTrue(empty.err().contains("no .npy files in"), empty.err());
    }
}
