package dev.kxai.errors;

import ai.onnx.proto.OnnxMl;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/** Bad-input fixtures shared by the API and CLI error tests, all built in a temp folder. */
public final class ErrorFixtures {
    private ErrorFixtures() {
    }

    static Path digits() {
        return TestData.reference("digits_cnn");
    }

    public static Path digitsModel() {
        return digits().resolve("model.onnx");
    }

    public static Path digitsInput() {
        return digits().resolve("input.npy");
    }

    static Path mlp() {
        return TestData.reference("mlp_tabular");
    }

    /** A text file with an .onnx name. */
    static Path textModel(Path dir) throws IOException {
        Path f = dir.resolve("model.onnx");
        Files.writeString(f, "this is a text file, not an ONNX model\n");
        return f;
    }

    /** The first half of the digits CNN's bytes. */
    static Path truncatedModel(Path dir) throws IOException {
        byte[] b = Files.readAllBytes(digitsModel());
        Path f = dir.resolve("truncated.onnx");
        Files.write(f, Arrays.copyOf(b, b.length / 2));
        return f;
    }

    /**
     * A one-input model: input [batch, 4] → node {@code opType} named {@code nodeName} → Gemm
     * (W [4, 3], B [3]) → output [batch, 3]. With a supported op (Relu) it loads and runs.
     */
    public static byte[] modelWithOp(String opType, String nodeName) {
        OnnxMl.TensorShapeProto inShape = OnnxMl.TensorShapeProto.newBuilder()
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(4))
                .build();
        OnnxMl.TensorShapeProto outShape = OnnxMl.TensorShapeProto.newBuilder()
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(3))
                .build();
        OnnxMl.TensorProto.Builder w = OnnxMl.TensorProto.newBuilder().setName("W")
                .setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(4).addDims(3);
        for (int i = 0; i < 12; i++) {
            w.addFloatData(0.1f * (i + 1));
        }
        OnnxMl.TensorProto b = OnnxMl.TensorProto.newBuilder().setName("B")
                .setDataType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).addDims(3)
                .addFloatData(0.5f).addFloatData(-0.5f).addFloatData(0f).build();
        OnnxMl.GraphProto graph = OnnxMl.GraphProto.newBuilder()
                .setName("bad_op_graph")
                .addInput(valueInfo("input", inShape))
                .addOutput(valueInfo("output", outShape))
                .addInitializer(w)
                .addInitializer(b)
                .addNode(OnnxMl.NodeProto.newBuilder().setName(nodeName).setOpType(opType)
                        .addInput("input").addOutput("hidden"))
                .addNode(OnnxMl.NodeProto.newBuilder().setName("fc").setOpType("Gemm")
                        .addInput("hidden").addInput("W").addInput("B").addOutput("output"))
                .build();
        return OnnxMl.ModelProto.newBuilder()
                .setIrVersion(8)
                .setProducerName("kxai-tests")
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13))
                .setGraph(graph)
                .build()
                .toByteArray();
    }

    private static OnnxMl.ValueInfoProto valueInfo(String name, OnnxMl.TensorShapeProto shape) {
        return OnnxMl.ValueInfoProto.newBuilder().setName(name)
                .setType(OnnxMl.TypeProto.newBuilder().setTensorType(OnnxMl.TypeProto.Tensor.newBuilder()
                        .setElemType(OnnxMl.TensorProto.DataType.FLOAT_VALUE).setShape(shape)))
                .build();
    }

    static Path unsupportedOpModel(Path dir) throws IOException {
        Path f = dir.resolve("nms_model.onnx");
        Files.write(f, modelWithOp("NonMaxSuppression", "my_nms"));
        return f;
    }

    /** The digits input (10×1×8×8) with one value replaced. */
    static Tensor digitsWith(int flatIndex, float value) {
        Tensor x = NpyIO.read(digitsInput()).copy();
        x.data()[flatIndex] = value;
        return x;
    }

    static Path npy(Path dir, String name, Tensor t) {
        Path f = dir.resolve(name);
        NpyIO.write(f, t);
        return f;
    }

    /** A tensor of a shape with arbitrary finite values. */
    static Tensor filled(int... shape) {
        Tensor t = Tensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (i % 7) * 0.125f;
        }
        return t;
    }

    /** Bytes of an NPY v1.0 file: magic, version, header length, header padded to 64, data. */
    public static byte[] npyBytes(String descr, boolean fortran, int[] shape, byte[] data) {
        StringBuilder s = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            s.append(shape[i]).append(i + 1 < shape.length || shape.length == 1 ? ", " : "");
        }
        if (shape.length == 1) {
            s.setLength(s.length() - 1); // (3,)
        }
        s.append(')');
        String dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False")
                + ", 'shape': " + s + ", }";
        int unpadded = 10 + dict.length() + 1;
        String header = dict + " ".repeat((64 - unpadded % 64) % 64) + "\n";
        ByteBuffer bb = ByteBuffer.allocate(10 + header.length() + data.length).order(ByteOrder.LITTLE_ENDIAN);
        bb.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        bb.putShort((short) header.length()).put(header.getBytes(StandardCharsets.US_ASCII)).put(data);
        return bb.array();
    }

    public static byte[] le(float... v) {
        ByteBuffer bb = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            bb.putFloat(f);
        }
        return bb.array();
    }

    static byte[] le(double... v) {
        ByteBuffer bb = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (double d : v) {
            bb.putDouble(d);
        }
        return bb.array();
    }

    static byte[] le(long... v) {
        ByteBuffer bb = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long l : v) {
            bb.putLong(l);
        }
        return bb.array();
    }

    /** Exit status and the two streams of one CLI run. */
    record Cli(int status, String out, String err) {
        /** The non-blank lines of err. */
        long errLines() {
            return err.lines().filter(l -> !l.isBlank()).count();
        }
    }

    static Cli cli(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = dev.kxai.cli.Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Cli(status, out.toString(), err.toString());
    }
}
