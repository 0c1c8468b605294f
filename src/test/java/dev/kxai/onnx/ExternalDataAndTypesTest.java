package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import com.google.protobuf.ByteString;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tensors as exporters store them beyond plain float32 in the model file: external data (large
 * models, {@code save_as_external_data}, Optimum's {@code model.onnx_data}) and the 16-bit float
 * and narrow integer element types (fp16/bf16 exports, quantised weights' integer tensors).
 */
class ExternalDataAndTypesTest {
    private static final float[] W = {1, -2, 0.5f, 3, 0, 1, -1, 2, 4, 0.25f, -3, 1, 2, 2, -0.5f, 0};

    private static OnnxMl.TypeProto type(int elem) {
        return OnnxMl.TypeProto.newBuilder().setTensorType(OnnxMl.TypeProto.Tensor.newBuilder().setElemType(elem)
                .setShape(OnnxMl.TensorShapeProto.newBuilder()
                        .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                        .addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(4)))).build();
    }

    /** input [batch, 4] → MatMul(w [4, 4]) → output, with the given weight tensor and extra nodes before. */
    private static byte[] model(OnnxMl.TensorProto w, int inputType, OnnxMl.NodeProto... before) {
        OnnxMl.GraphProto.Builder g = OnnxMl.GraphProto.newBuilder().setName("g")
                .addInput(OnnxMl.ValueInfoProto.newBuilder().setName("input").setType(type(inputType)))
                .addOutput(OnnxMl.ValueInfoProto.newBuilder().setName("output").setType(type(inputType)))
                .addInitializer(w);
        String x = "input";
        for (OnnxMl.NodeProto n : before) {
            g.addNode(n);
            x = n.getOutput(0);
        }
        g.addNode(OnnxMl.NodeProto.newBuilder().setName("mm").setOpType("MatMul").addInput(x).addInput("w")
                .addOutput("output"));
        return OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(17)).setGraph(g).build()
                .toByteArray();
    }

    private static OnnxMl.TensorProto.Builder weights(int elem) {
        return OnnxMl.TensorProto.newBuilder().setName("w").setDataType(elem).addDims(4).addDims(4);
    }

    private static OnnxMl.TensorProto external(String location, long offset, long length) {
        OnnxMl.TensorProto.Builder t = weights(OnnxMl.TensorProto.DataType.FLOAT_VALUE)
                .setDataLocation(OnnxMl.TensorProto.DataLocation.EXTERNAL)
                .addExternalData(OnnxMl.StringStringEntryProto.newBuilder().setKey("location").setValue(location))
                .addExternalData(OnnxMl.StringStringEntryProto.newBuilder().setKey("offset").setValue("" + offset));
        if (length >= 0) {
            t.addExternalData(OnnxMl.StringStringEntryProto.newBuilder().setKey("length").setValue("" + length));
        }
        return t.build();
    }

    private static byte[] floatBytes(float[] v, int padBefore) {
        ByteBuffer b = ByteBuffer.allocate(padBefore + 4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.position(padBefore);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    private static float[] run(Graph g, float... x) {
        try (Model m = Model.of(g, new CpuBackend())) {
            return m.forward(new Tensor(new int[] {1, 4}, x)).data();
        }
    }

    private static float[] expected(float... x) {
        float[] y = new float[4];
        for (int j = 0; j < 4; j++) {
            for (int k = 0; k < 4; k++) {
                y[j] += x[k] * W[k * 4 + j];
            }
        }
        return y;
    }

    @Test
    void externalDataIsReadFromBesideTheModelAtItsOffset(@TempDir Path dir) throws Exception {
        Files.write(dir.resolve("model.onnx_data"), floatBytes(W, 24)); // other tensors' bytes first
        Path file = dir.resolve("model.onnx");
        Files.write(file, model(external("model.onnx_data", 24, 64), OnnxMl.TensorProto.DataType.FLOAT_VALUE));
        assertArrayEquals(expected(1, 2, 3, 4), run(OnnxImporter.load(file), 1, 2, 3, 4), 1e-6f);
        // without length (optional in the spec): the size from the dims and type
        Files.write(file, model(external("model.onnx_data", 24, -1), OnnxMl.TensorProto.DataType.FLOAT_VALUE));
        assertArrayEquals(expected(1, 0, -1, 2), run(OnnxImporter.load(file), 1, 0, -1, 2), 1e-6f);
        // a sub-folder location, as onnx.save(location="weights/w.bin") writes
        Files.createDirectories(dir.resolve("weights"));
        Files.write(dir.resolve("weights/w.bin"), floatBytes(W, 0));
        Files.write(file, model(external("weights/w.bin", 0, 64), OnnxMl.TensorProto.DataType.FLOAT_VALUE));
        assertArrayEquals(expected(1, 2, 3, 4), run(OnnxImporter.load(file), 1, 2, 3, 4), 1e-6f);
    }

    @Test
    void externalDataRefusalsNameTheTensorAndTheFile(@TempDir Path dir) throws Exception {
        Path sub = Files.createDirectories(dir.resolve("m"));
        Files.write(dir.resolve("secret.bin"), floatBytes(W, 0));
        Files.write(sub.resolve("w.bin"), floatBytes(W, 0));
        Path file = sub.resolve("model.onnx");
        int f = OnnxMl.TensorProto.DataType.FLOAT_VALUE;

        Files.write(file, model(external("../secret.bin", 0, 64), f));
        ModelException outside = assertThrows(ModelException.class, () -> OnnxImporter.load(file));
        assertTrue(outside.getMessage().contains("initializer w") && outside.getMessage().contains("'../secret.bin'")
                && outside.getMessage().contains("outside the model's folder"), outside.getMessage());

        Files.write(file, model(external(dir.resolve("secret.bin").toString(), 0, 64), f));
        assertTrue(assertThrows(ModelException.class, () -> OnnxImporter.load(file)).getMessage()
                .contains("outside the model's folder"));

        Files.write(file, model(external("missing.bin", 0, 64), f));
        ModelException missing = assertThrows(ModelException.class, () -> OnnxImporter.load(file));
        assertTrue(missing.getMessage().contains(sub.resolve("missing.bin").toString())
                && missing.getMessage().contains("missing"), missing.getMessage());

        Files.write(file, model(external("w.bin", 8, 64), f)); // 64 bytes at 8 of a 64-byte file
        ModelException shortFile = assertThrows(ModelException.class, () -> OnnxImporter.load(file));
        assertTrue(shortFile.getMessage().contains("reads 64 bytes at offset 8")
                && shortFile.getMessage().contains("holds 64 bytes"), shortFile.getMessage());

        Files.write(file, model(external("w.bin", 0, 32), f)); // length disagrees with dims [4, 4] float
        assertTrue(assertThrows(ModelException.class, () -> OnnxImporter.load(file)).getMessage()
                .contains("declares 64 bytes of data (its dims and type) but its external data entry says length 32"));

        Files.write(file, model(external("w.bin", -4, 64), f));
        assertTrue(assertThrows(ModelException.class, () -> OnnxImporter.load(file)).getMessage()
                .contains("offset '-4', not a non-negative whole number"));

        // a model parsed from bytes has no folder: the refusal says how to load it
        ModelException fromBytes = assertThrows(ModelException.class,
                () -> OnnxImporter.parse(model(external("w.bin", 0, 64), f), "in-memory.onnx"));
        assertTrue(fromBytes.getMessage().contains("load the model from its file"), fromBytes.getMessage());
    }

    private static short half(float v) {
        // float32 → binary16 for the values of W (all exact in half precision)
        int bits = Float.floatToIntBits(v);
        int sign = (bits >>> 16) & 0x8000;
        if (v == 0f) {
            return (short) sign;
        }
        int exp = ((bits >>> 23) & 0xff) - 127 + 15;
        return (short) (sign | (exp << 10) | ((bits >>> 13) & 0x3ff));
    }

    @Test
    void float16AndBfloat16WeightsAreWidenedExactlyFromRawOrTypedData() {
        ByteBuffer raw16 = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer rawBf = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        OnnxMl.TensorProto.Builder typed16 = weights(OnnxMl.TensorProto.DataType.FLOAT16_VALUE);
        for (float w : W) {
            raw16.putShort(half(w));
            rawBf.putShort((short) (Float.floatToIntBits(w) >>> 16));
            typed16.addInt32Data(half(w) & 0xffff);
        }
        OnnxMl.TensorProto[] tensors = {
            weights(OnnxMl.TensorProto.DataType.FLOAT16_VALUE).setRawData(ByteString.copyFrom(raw16.array())).build(),
            weights(OnnxMl.TensorProto.DataType.BFLOAT16_VALUE).setRawData(ByteString.copyFrom(rawBf.array())).build(),
            typed16.build()};
        for (OnnxMl.TensorProto t : tensors) {
            assertArrayEquals(W, TensorReader.read(t, "w", "t.onnx").data(), 0f, "type " + t.getDataType());
        }
    }

    @Test
    void narrowIntegerTypesReadAsTheirValues() {
        int[] types = {OnnxMl.TensorProto.DataType.INT8_VALUE, OnnxMl.TensorProto.DataType.UINT8_VALUE,
            OnnxMl.TensorProto.DataType.INT16_VALUE, OnnxMl.TensorProto.DataType.UINT16_VALUE,
            OnnxMl.TensorProto.DataType.UINT32_VALUE, OnnxMl.TensorProto.DataType.UINT64_VALUE};
        long[][] values = {{-128, 127, -1, 5}, {0, 255, 128, 7}, {-32768, 32767, -2, 9}, {0, 65535, 40000, 3},
            {0, 4294967295L, 3000000000L, 11}, {0, 1L << 40, 123456, 13}};
        for (int i = 0; i < types.length; i++) {
            int width = TensorReader.width(types[i]);
            ByteBuffer raw = ByteBuffer.allocate(4 * width).order(ByteOrder.LITTLE_ENDIAN);
            OnnxMl.TensorProto.Builder typed = OnnxMl.TensorProto.newBuilder().setName("t").setDataType(types[i]).addDims(4);
            for (long v : values[i]) {
                switch (width) {
                    case 1 -> raw.put((byte) v);
                    case 2 -> raw.putShort((short) v);
                    case 4 -> raw.putInt((int) v);
                    default -> raw.putLong(v);
                }
                if (width >= 4 && types[i] != OnnxMl.TensorProto.DataType.INT32_VALUE) {
                    typed.addUint64Data(v);
                } else {
                    typed.addInt32Data((int) v);
                }
            }
            float[] want = new float[4];
            for (int j = 0; j < 4; j++) {
                want[j] = values[i][j];
            }
            OnnxMl.TensorProto fromRaw = OnnxMl.TensorProto.newBuilder().setName("t").setDataType(types[i]).addDims(4)
                    .setRawData(ByteString.copyFrom(raw.array())).build();
            String what = TensorReader.typeName(types[i]);
            assertArrayEquals(want, TensorReader.read(fromRaw, "t", "t.onnx").data(), 0f, what + " raw");
            assertArrayEquals(want, TensorReader.read(typed.build(), "t", "t.onnx").data(), 0f, what + " typed");
        }
        // a type kxai does not read is named
        OnnxMl.TensorProto str = OnnxMl.TensorProto.newBuilder().setName("s")
                .setDataType(OnnxMl.TensorProto.DataType.STRING_VALUE).addDims(1).addStringData(ByteString.copyFromUtf8("x"))
                .build();
        ModelException e = assertThrows(ModelException.class, () -> TensorReader.read(str, "initializer s", "t.onnx"));
        assertTrue(e.getMessage().contains("element type string (8)"), e.getMessage());
    }

    @Test
    void aFloat16ModelRunsInFloat32() {
        // input float16 → Cast(float32) → Cast(float16) → MatMul with float16 weights: a mixed-precision export
        ByteBuffer raw16 = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        for (float w : W) {
            raw16.putShort(half(w));
        }
        OnnxMl.NodeProto up = OnnxMl.NodeProto.newBuilder().setName("up").setOpType("Cast").addInput("input")
                .addOutput("x32").addAttribute(OnnxModels.intAttr("to", OnnxMl.TensorProto.DataType.FLOAT_VALUE)).build();
        OnnxMl.NodeProto down = OnnxMl.NodeProto.newBuilder().setName("down").setOpType("Cast").addInput("x32")
                .addOutput("x16").addAttribute(OnnxModels.intAttr("to", OnnxMl.TensorProto.DataType.FLOAT16_VALUE)).build();
        Graph g = OnnxImporter.parse(model(weights(OnnxMl.TensorProto.DataType.FLOAT16_VALUE)
                .setRawData(ByteString.copyFrom(raw16.array())).build(), OnnxMl.TensorProto.DataType.FLOAT16_VALUE, up,
                down), "fp16.onnx");
        assertEquals(1, g.inputs().size());
        assertArrayEquals(expected(0.5f, -1, 2, 3), run(g, 0.5f, -1, 2, 3), 1e-6f);
    }
}
