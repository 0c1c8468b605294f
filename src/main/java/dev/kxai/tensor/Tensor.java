package dev.kxai.tensor;

import java.util.Arrays;

/**
 * A dense float32 tensor in row-major (C) order. The data array is shared, not copied: tensors
 * are cheap views that the engine passes around; callers that keep one must not mutate it.
 */
public final class Tensor {
    private final int[] shape;
    private final float[] data;
    /** How far the elements may lie from the exact path's values, or null (see {@link ExactValues}). */
    private final ExactValues exact;

    public Tensor(int[] shape, float[] data) {
        this(shape, data, null);
    }

    private Tensor(int[] shape, float[] data, ExactValues exact) {
        long n = Shapes.size(shape);
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Shapes.str(shape) + " needs " + n
                    + " elements, data has " + data.length);
        }
        this.shape = shape.clone();
        this.data = data;
        this.exact = exact;
    }

    /**
     * This tensor's data with the bound and exact values of {@code e} attached: the backend that
     * computed it in float says how far each element may be from the all-double value, so that
     * the operators deciding on it (ReLU, max-pool) can recompute the few near a decision.
     */
    public Tensor withExact(ExactValues e) {
        return new Tensor(shape, data, e);
    }

    /** The attached {@link ExactValues}, or null when the data are the exact path's values. */
    public ExactValues exact() {
        return exact;
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
