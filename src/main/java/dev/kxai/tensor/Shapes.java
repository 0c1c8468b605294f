package dev.kxai.tensor;

import java.util.Arrays;

/** Shape arithmetic shared by the importer, the backends and the methods. */
public final class Shapes {
    private Shapes() {
    }

    public static long size(int[] shape) {
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            int d = shape[i];
            if (d < 0) {
                throw new dev.kxai.InvalidInputException("shape " + str(shape) + " has a negative dimension " + d
                        + " at axis " + i);
            }
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new dev.kxai.InvalidInputException("shape " + str(shape) + " holds more elements than a 64-bit count");
            }
        }
        return n;
    }

    /** The most elements one float array (a tensor) holds. */
    public static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8L;

    /**
     * {@link #size} of a shape that must fit one Java array: beyond {@link #MAX_ELEMENTS} an
     * {@link dev.kxai.InvalidInputException} naming the shape, never a wrapped int.
     */
    public static int intSize(int[] shape) {
        long n = size(shape);
        if (n > MAX_ELEMENTS) {
            throw new dev.kxai.InvalidInputException("shape " + str(shape) + " holds " + n + " elements; at most "
                    + MAX_ELEMENTS + " fit one tensor");
        }
        return (int) n;
    }

    public static String str(int[] shape) {
        return Arrays.toString(shape);
    }

    /** Row-major strides of a shape. */
    public static int[] strides(int[] shape) {
        int[] s = new int[shape.length];
        int acc = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    /** NumPy broadcasting of two shapes, or null if they do not broadcast. */
    public static int[] broadcast(int[] a, int[] b) {
        int r = Math.max(a.length, b.length);
        int[] out = new int[r];
        for (int i = 0; i < r; i++) {
            int da = i < r - a.length ? 1 : a[i - (r - a.length)];
            int db = i < r - b.length ? 1 : b[i - (r - b.length)];
            if (da != db && da != 1 && db != 1) {
                return null;
            }
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /**
     * The axes of {@code out} along which {@code in} is broadcast (missing leading axes included):
     * a broadcast's backward sums over them.
     */
    public static boolean[] broadcastAxes(int[] in, int[] out) {
        boolean[] r = new boolean[out.length];
        for (int d = 0; d < out.length; d++) {
            int sd = d - (out.length - in.length);
            r[d] = sd < 0 || (in[sd] == 1 && out[d] != 1);
        }
        return r;
    }

    /** A copy of shape with the first axis replaced. */
    public static int[] withBatch(int[] shape, int batch) {
        int[] s = shape.clone();
        s[0] = batch;
        return s;
    }
}
