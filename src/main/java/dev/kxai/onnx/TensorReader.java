package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import com.google.protobuf.ByteString;
import dev.kxai.ModelException;
import dev.kxai.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** ONNX TensorProtos (initializers, Constant values, attributes) as float32 tensors, checked against their declared size. */
final class TensorReader {
    private TensorReader() {
    }

    /** Converts a TensorProto to float32 (integers are exact for the shapes and indices models use). */
    static Tensor read(OnnxMl.TensorProto t, String what, String source) {
        int[] shape = new int[t.getDimsCount()];
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = Math.toIntExact(t.getDims(i));
            n *= shape[i];
        }
        if (t.hasDataLocation() && t.getDataLocation() == OnnxMl.TensorProto.DataLocation.EXTERNAL) {
            throw new ModelException(source + ": " + what + " uses external data, which kxai does not read");
        }
        float[] v = new float[Math.toIntExact(n)];
        ByteString raw = t.getRawData();
        ByteBuffer bb = raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        int type = t.getDataType();
        int stored;
        switch (type) {
            case OnnxMl.TensorProto.DataType.FLOAT_VALUE -> {
                stored = raw.isEmpty() ? t.getFloatDataCount() : raw.size() / 4;
                checkCount(source, what, n, stored);
                for (int i = 0; i < n; i++) {
                    v[i] = raw.isEmpty() ? t.getFloatData(i) : bb.getFloat();
                }
            }
            case OnnxMl.TensorProto.DataType.DOUBLE_VALUE -> {
                stored = raw.isEmpty() ? t.getDoubleDataCount() : raw.size() / 8;
                checkCount(source, what, n, stored);
                for (int i = 0; i < n; i++) {
                    v[i] = (float) (raw.isEmpty() ? t.getDoubleData(i) : bb.getDouble());
                }
            }
            case OnnxMl.TensorProto.DataType.INT64_VALUE -> {
                stored = raw.isEmpty() ? t.getInt64DataCount() : raw.size() / 8;
                checkCount(source, what, n, stored);
                for (int i = 0; i < n; i++) {
                    v[i] = raw.isEmpty() ? t.getInt64Data(i) : bb.getLong();
                }
            }
            case OnnxMl.TensorProto.DataType.INT32_VALUE -> {
                stored = raw.isEmpty() ? t.getInt32DataCount() : raw.size() / 4;
                checkCount(source, what, n, stored);
                for (int i = 0; i < n; i++) {
                    v[i] = raw.isEmpty() ? t.getInt32Data(i) : bb.getInt();
                }
            }
            case OnnxMl.TensorProto.DataType.BOOL_VALUE -> { // flags such as Dropout's training_mode
                stored = raw.isEmpty() ? t.getInt32DataCount() : raw.size();
                checkCount(source, what, n, stored);
                for (int i = 0; i < n; i++) {
                    v[i] = (raw.isEmpty() ? t.getInt32Data(i) : bb.get()) != 0 ? 1f : 0f;
                }
            }
            default -> throw new ModelException(source + ": " + what + " has element type " + type
                    + "; kxai reads float, double, int32, int64 and bool tensors");
        }
        return new Tensor(shape, v);
    }

    private static void checkCount(String source, String what, long expected, int stored) {
        if (stored != expected) {
            throw new ModelException(source + ": " + what + " declares " + expected + " elements but stores "
                    + stored + " (truncated file?)");
        }
    }
}
