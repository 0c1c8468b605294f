package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import com.google.protobuf.ByteString;
import dev.kxai.ModelException;
import dev.kxai.tensor.Float16;
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
        return read(t, what, source, null);
    }

    /**
     * Converts a TensorProto to float32, reading external data through {@code ext} (null: a model
     * parsed from bytes, whose external data is refused with the reason).
     */
    static Tensor read(OnnxMl.TensorProto t, String what, String source, ExternalData ext) {
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
        int type = t.getDataType();
        // the declared size against the bytes present, before the tensor is allocated
        int width = width(type);
        if (width == 0) {
            throw new ModelException(source + ": " + what + " has element type " + typeName(type) + " (" + type + "); kxai"
                    + " reads float32/64, float16, bfloat16, (u)int8/16/32/64 and bool tensors (as float32)");
        }
        boolean external = t.hasDataLocation() && t.getDataLocation() == OnnxMl.TensorProto.DataLocation.EXTERNAL;
        ByteString raw = t.getRawData();
        long typedCount = t.getFloatDataCount() + t.getDoubleDataCount() + t.getInt32DataCount()
                + t.getInt64DataCount() + t.getUint64DataCount();
        if (external && (!raw.isEmpty() || typedCount > 0)) {
            throw new ModelException(source + ": " + what + " declares external data and also stores data in the model;"
                    + " ONNX allows one");
        }
        if (!raw.isEmpty() && typedCount > 0) {
            throw new ModelException(source + ": " + what + " stores both raw_data and typed data; ONNX allows one");
        }
        ByteBuffer bytes = null;
        if (external) {
            bytes = (ext == null ? new ExternalData(null) : ext).read(t, n * width, what, source);
        } else if (!raw.isEmpty()) {
            if ((long) raw.size() != n * width) {
                throw new ModelException(source + ": " + what + " declares dims " + t.getDimsList() + " (" + n
                        + " elements of " + width + " bytes, " + n * width + " bytes) but stores " + raw.size()
                        + " bytes of raw data");
            }
            bytes = raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        } else {
            long typed = switch (type) {
                case OnnxMl.TensorProto.DataType.FLOAT_VALUE -> t.getFloatDataCount();
                case OnnxMl.TensorProto.DataType.DOUBLE_VALUE -> t.getDoubleDataCount();
                case OnnxMl.TensorProto.DataType.INT64_VALUE -> t.getInt64DataCount();
                case OnnxMl.TensorProto.DataType.UINT32_VALUE, OnnxMl.TensorProto.DataType.UINT64_VALUE ->
                        t.getUint64DataCount();
                default -> t.getInt32DataCount(); // int8/16/32, uint8/16, bool, float16 and bfloat16 bits
            };
            if (typed != n) {
                throw new ModelException(source + ": " + what + " declares dims " + t.getDimsList() + " (" + n
                        + " elements) but stores " + typed + " (truncated file?)");
            }
        }
        float[] v = new float[(int) n];
        if (bytes != null) {
            for (int i = 0; i < n; i++) {
                v[i] = fromBytes(type, bytes);
            }
        } else {
            for (int i = 0; i < n; i++) {
                v[i] = fromTyped(type, t, i);
            }
        }
        return new Tensor(shape, v);
    }

    /** Bytes per element of an ONNX element type kxai reads, 0 for one it does not. */
    static int width(int type) {
        return switch (type) {
            case OnnxMl.TensorProto.DataType.FLOAT_VALUE, OnnxMl.TensorProto.DataType.INT32_VALUE,
                    OnnxMl.TensorProto.DataType.UINT32_VALUE -> 4;
            case OnnxMl.TensorProto.DataType.DOUBLE_VALUE, OnnxMl.TensorProto.DataType.INT64_VALUE,
                    OnnxMl.TensorProto.DataType.UINT64_VALUE -> 8;
            case OnnxMl.TensorProto.DataType.FLOAT16_VALUE, OnnxMl.TensorProto.DataType.BFLOAT16_VALUE,
                    OnnxMl.TensorProto.DataType.INT16_VALUE, OnnxMl.TensorProto.DataType.UINT16_VALUE -> 2;
            case OnnxMl.TensorProto.DataType.BOOL_VALUE, OnnxMl.TensorProto.DataType.INT8_VALUE,
                    OnnxMl.TensorProto.DataType.UINT8_VALUE -> 1;
            default -> 0;
        };
    }

    static String typeName(int type) {
        OnnxMl.TensorProto.DataType d = OnnxMl.TensorProto.DataType.forNumber(type);
        return d == null ? "unknown" : d.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** One little-endian element of raw or external data, as float32. */
    private static float fromBytes(int type, ByteBuffer b) {
        return switch (type) {
            case OnnxMl.TensorProto.DataType.FLOAT_VALUE -> b.getFloat();
            case OnnxMl.TensorProto.DataType.DOUBLE_VALUE -> (float) b.getDouble();
            case OnnxMl.TensorProto.DataType.INT64_VALUE -> b.getLong();
            case OnnxMl.TensorProto.DataType.UINT64_VALUE -> unsigned64(b.getLong());
            case OnnxMl.TensorProto.DataType.INT32_VALUE -> b.getInt();
            case OnnxMl.TensorProto.DataType.UINT32_VALUE -> b.getInt() & 0xffffffffL;
            case OnnxMl.TensorProto.DataType.INT16_VALUE -> b.getShort();
            case OnnxMl.TensorProto.DataType.UINT16_VALUE -> b.getShort() & 0xffff;
            case OnnxMl.TensorProto.DataType.FLOAT16_VALUE -> Float16.toFloat(b.getShort());
            case OnnxMl.TensorProto.DataType.BFLOAT16_VALUE -> Float16.bfloat16ToFloat(b.getShort());
            case OnnxMl.TensorProto.DataType.INT8_VALUE -> b.get();
            case OnnxMl.TensorProto.DataType.UINT8_VALUE -> b.get() & 0xff;
            case OnnxMl.TensorProto.DataType.BOOL_VALUE -> b.get() != 0 ? 1f : 0f; // flags such as Dropout's training_mode
            default -> throw new IllegalStateException("type " + type + " passed width()");
        };
    }

    /** Element i of the typed fields (ONNX stores the narrow types, float16 and bfloat16 bits in int32_data). */
    private static float fromTyped(int type, OnnxMl.TensorProto t, int i) {
        return switch (type) {
            case OnnxMl.TensorProto.DataType.FLOAT_VALUE -> t.getFloatData(i);
            case OnnxMl.TensorProto.DataType.DOUBLE_VALUE -> (float) t.getDoubleData(i);
            case OnnxMl.TensorProto.DataType.INT64_VALUE -> t.getInt64Data(i);
            case OnnxMl.TensorProto.DataType.UINT32_VALUE, OnnxMl.TensorProto.DataType.UINT64_VALUE ->
                    unsigned64(t.getUint64Data(i));
            case OnnxMl.TensorProto.DataType.FLOAT16_VALUE -> Float16.toFloat((short) t.getInt32Data(i));
            case OnnxMl.TensorProto.DataType.BFLOAT16_VALUE -> Float16.bfloat16ToFloat((short) t.getInt32Data(i));
            case OnnxMl.TensorProto.DataType.BOOL_VALUE -> t.getInt32Data(i) != 0 ? 1f : 0f;
            default -> t.getInt32Data(i); // int8/16/32, uint8/16
        };
    }

    private static float unsigned64(long v) {
        return v >= 0 ? v : (float) (v >>> 1) * 2f; // beyond 2^63: exact to float precision (the low bit is lost anyway)
    }
}
