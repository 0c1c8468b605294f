package dev.kxai.backend.cuda;

import dev.kxai.tensor.Shapes;

/**
 * A tensor on the device: a shape and the buffer holding its floats (row-major), and, for the
 * output of a float convolution (conv2d_forward_f32) or of a residual sum of one, what its
 * exact-decision repair needs ({@link ConvOps.Bounds}; null otherwise). Views keep it: the repair indexes elements flat.
 */
record DTensor(int[] shape, DeviceBuffer buf, ConvOps.Bounds exact) {
    DTensor(int[] shape, DeviceBuffer buf) {
        this(shape, buf, null);
    }

    long size() {
        return Shapes.size(shape);
    }

    int dim(int i) {
        return shape[i];
    }

    int rank() {
        return shape.length;
    }

    /** The same buffer seen with another shape of equal size. */
    DTensor reshape(int[] s) {
        return new DTensor(s, buf, exact);
    }
}
