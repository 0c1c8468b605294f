package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import com.google.protobuf.ByteString;
import dev.kxai.ModelException;
import dev.kxai.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** ONNX TensorProtos (initializers, Constant values, attributes) as float32 tensors, checked against their declared size. */
final class TensorReader {
    /** The most elements a Java float array holds. */
    static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8L;

    private TensorReader() {
    }

    /** Converts a TensorProto to float32 (integers are exact for the shapes and indices models use). */
    static Tensor read(OnnxMl.TensorProto t, String what, String source) {
        int[] shape = new int[t.getDimsCount()];
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            long d = t.getDims(i);
            if (d < 0 || d > Integer.MAX_VALUE) {
                throw new ModelException(source + ": " + what + " declares dims " + t.getDimsList() + ": dimension " + d
                        + " at axis " + i + " is " + (d < 0 ? "negative" : "beyond the " + Integer.MAX_VALUE
                        + " kxai takes per axis"));
            }
            shape[i] = (int) d;
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new ModelException(source + ": " + what + " declares dims " + t.getDimsList()
                        + ": more elements than a 64-bit count");
            }
        }
        if (n > MAX_ELEMENTS) {
            throw new ModelException(source + ": " + what + " declares dims " + t.getDimsList() + ", " + n
                    + " elements; at most " + MAX_ELEMENTS + " fit a float32 tensor");
        }
        if (t.hasDataLocation() && t.getDataLocation() == OnnxMl.TensorProto.DataLocation.EXTERNAL) {
            throw new ModelException(source + ": " + what + " uses external data, which kxai does not read");
        }
        ByteString raw = t.getRawData();
        ByteBuffer bb = raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        int type = t.getDataType();
        // the declared size against the bytes present, before the tensor is allocated
        int width = switch (type) {
            case OnnxMl.TensorProto.DataType.FLOAT_VALUE, OnnxMl.TensorProto.DataType.INT32_VALUE -> 4;
            case OnnxMl.TensorProto.DataType.DOUBLE_VALUE, OnnxMl.TensorProto.DataType.INT64_VALUE -> 8;
            case OnnxMl.TensorProto.DataType.BOOL_VALUE -> 1;
            default -> throw new ModelException(source + ": " + what + " has element type " + type
                    + "; kxai reads float, double, int32, int64 and bool tensors");
        };
        if (!raw.isEmpty() && t.getFloatDataCount() + t.getDoubleDataCount() + t.getInt32DataCount()
                + t.getInt64DataCount() > 0) {
            throw new ModelException(source + ": " + what + " stores both raw_data and typed data; ONNX allows one");
        }
        if (!raw.isEmpty() && (long) raw.size() != n * width) {
            throw new ModelException(source + ": " + what + " declares dims " + t.getDimsList() + " (" + n + " elements of "
                    + width + " bytes, " + n * width + " bytes) but stores " + raw.size() + " bytes of raw data");
        }
        if (raw.isEmpty()) {
            long typed = switch (type) {
                case OnnxMl.TensorProto.DataType.FLOAT_VALUE -> t.getFloatDataCount();
                case OnnxMl.TensorProto.DataType.DOUBLE_VALUE -> t.getDoubleDataCount();
                case OnnxMl.TensorProto.DataType.INT64_VALUE -> t.getInt64DataCount();
                default -> t.getInt32DataCount();
            };
            if (typed != n) {
                throw new ModelException(source + ": " + what + " declares dims " + t.getDimsList() + " (" + n
                        + " elements) but stores " + typed + " (truncated file?)");
            }
        }
        float[] v = new float[(int) n];
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
