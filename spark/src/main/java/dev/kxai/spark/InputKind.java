package dev.kxai.spark;

import dev.kxai.InvalidInputException;
import dev.kxai.image.Preprocess;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.awt.image.BufferedImage;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StructType;

/**
 * The three forms an input column can take, and each one decoded into one example's floats in the
 * model's layout (flattened): an array of numbers (the example flattened in C order, as
 * {@code x.reshape(-1)}), a binary {@code .npy} of one example (its shape, or with a leading 1), or
 * a Spark image struct ({@code spark.read.format("image")}: BGR(A) bytes, row by row) through a kxai
 * preprocessing spec. A row that does not decode says why, and becomes an error row.
 */
enum InputKind {
    ARRAY, NPY, IMAGE;

    /** The kind of a column's type; anything else is refused with the type. */
    static InputKind of(String column, DataType type) {
        if (type instanceof ArrayType a && a.elementType() instanceof NumericType) {
            return ARRAY;
        }
        if (type instanceof BinaryType) {
            return NPY;
        }
        if (type instanceof StructType s && Arrays.asList(s.fieldNames()).containsAll(
                List.of("height", "width", "nChannels", "data"))) {
            return IMAGE;
        }
        throw new InvalidInputException("input column '" + column + "' is " + type.simpleString() + "; kxai takes an "
                + "array of numbers (one example, flattened), a binary .npy of one example, or an image struct");
    }

    /**
     * One example's floats, {@code per} of them (the model input's example size); null values, wrong sizes,
     * unreadable .npy and undecodable images throw {@link InvalidInputException} with what is wrong.
     */
    float[] decode(Row row, int column, int[] exampleShape, int per, Preprocess preprocess) {
        if (row.isNullAt(column)) {
            throw new InvalidInputException("the input is null");
        }
        switch (this) {
            case ARRAY: {
                List<Object> v = row.getList(column);
                if (v.size() != per) {
                    throw new InvalidInputException("the input has " + v.size() + " values; the model's example "
                            + Arrays.toString(exampleShape) + " takes " + per);
                }
                float[] x = new float[per];
                for (int i = 0; i < per; i++) {
                    Object e = v.get(i);
                    if (e == null) {
                        throw new InvalidInputException("the input holds null at index " + i);
                    }
                    x[i] = ((Number) e).floatValue();
                }
                return x;
            }
            case NPY: {
                Tensor t = NpyIO.read((byte[]) row.get(column), "the row's .npy");
                int[] s = t.shape();
                int[] withBatch = new int[exampleShape.length + 1];
                withBatch[0] = 1;
                System.arraycopy(exampleShape, 0, withBatch, 1, exampleShape.length);
                if (!Arrays.equals(s, exampleShape) && !Arrays.equals(s, withBatch)) {
                    throw new InvalidInputException("the row's .npy has shape " + Arrays.toString(s) + "; the model's "
                            + "example is " + Arrays.toString(exampleShape));
                }
                return t.data();
            }
            case IMAGE: {
                if (preprocess == null) {
                    throw new InvalidInputException("image input needs a preprocessing spec (setPreprocess)");
                }
                float[] x = preprocess.normalise(preprocess.geometry(image(row.getStruct(column))));
                if (x.length != per) {
                    throw new InvalidInputException("the image comes out " + x.length + " values after preprocessing; "
                            + "the model's example " + Arrays.toString(exampleShape) + " takes " + per);
                }
                return x;
            }
            default:
                throw new IllegalStateException(name());
        }
    }

    /** Spark's image struct (OpenCV's layout: BGR or BGRA or grey bytes, row-major) as an RGB image. */
    static BufferedImage image(Row s) {
        int h = s.getInt(s.fieldIndex("height"));
        int w = s.getInt(s.fieldIndex("width"));
        int c = s.getInt(s.fieldIndex("nChannels"));
        byte[] data = (byte[]) s.get(s.fieldIndex("data"));
        if (h <= 0 || w <= 0 || (c != 1 && c != 3 && c != 4) || data == null || data.length != (long) h * w * c) {
            throw new InvalidInputException("the image struct is " + w + "x" + h + "x" + c + " with "
                    + (data == null ? "no" : data.length) + " bytes; expected 1, 3 or 4 channels and width*height*channels bytes");
        }
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int o = (y * w + x) * c;
                int b = data[o] & 0xFF;
                int g = c == 1 ? b : data[o + 1] & 0xFF;
                int r = c == 1 ? b : data[o + 2] & 0xFF;
                img.setRGB(x, y, (r << 16) | (g << 8) | b);
            }
        }
        return img;
    }
}
