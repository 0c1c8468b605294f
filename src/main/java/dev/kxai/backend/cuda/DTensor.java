package dev.kxai.backend.cuda;

import dev.kxai.tensor.Shapes;

/** A tensor on the device: a shape and the buffer holding its floats (row-major). */
record DTensor(int[] shape, DeviceBuffer buf) {
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
        return new DTensor(s, buf);
    }
}
