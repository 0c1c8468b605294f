package dev.kxai.tensor;

import java.util.Arrays;

/**
 * A dense float32 tensor in row-major (C) order. The data array is shared, not copied: tensors
 * are cheap views that the engine passes around; callers that keep one must not mutate it.
 */
public final class Tensor {
    private final int[] shape;
    private final float[] data;

    public Tensor(int[] shape, float[] data) {
        long n = Shapes.size(shape);
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Shapes.str(shape) + " needs " + n
                    + " elements, data has " + data.length);
        }
        this.shape = shape.clone();
        this.data = data;
    }

    public static Tensor zeros(int... shape) {
        return new Tensor(shape, new float[Shapes.intSize(shape)]);
    }

    public static Tensor scalar(float v) {
        return new Tensor(new int[0], new float[] {v});
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int axis) {
        return shape[axis < 0 ? axis + shape.length : axis];
    }

    public int size() {
        return data.length;
    }

    /** The backing array (row-major). */
    public float[] data() {
        return data;
    }

    /** Elements per index of the first axis (per example, for a batch). */
    public int rowSize() {
        return shape.length == 0 ? 1 : (shape[0] == 0 ? 0 : data.length / shape[0]);
    }

    public Tensor reshape(int... newShape) {
        return new Tensor(newShape, data);
    }

    public Tensor copy() {
        return new Tensor(shape, data.clone());
    }

    /** Rows [from, to) of the first axis, copied. */
    public Tensor rows(int from, int to) {
        int rs = rowSize();
        int[] s = shape.clone();
        s[0] = to - from;
        return new Tensor(s, Arrays.copyOfRange(data, from * rs, to * rs));
    }

    /** Index of the first non-finite element, or -1. */
    public int firstNonFinite() {
        for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
                return i;
            }
        }
        return -1;
    }

    @Override
    public String toString() {
        return "Tensor" + Shapes.str(shape);
    }
}
