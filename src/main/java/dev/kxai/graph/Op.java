package dev.kxai.graph;

/**
 * The operators kxai runs, as typed values with their ONNX attributes already parsed and checked.
 * Backends switch over this sealed set; adding an operator makes every backend's switch fail to
 * compile until it handles it.
 */
public sealed interface Op {
    /** Y = alpha * op(A) * op(B) + beta * C. */
    record Gemm(float alpha, float beta, boolean transA, boolean transB) implements Op {
    }

    /** NumPy matmul of two tensors (2-D, or N-D with a 2-D right operand). */
    record MatMul() implements Op {
    }

    /** Elementwise with NumPy broadcasting. */
    record Add() implements Op {
    }

    record Sub() implements Op {
    }

    record Mul() implements Op {
    }

    record Relu() implements Op {
    }

    record LeakyRelu(float alpha) implements Op {
    }

    record Sigmoid() implements Op {
    }

    record Tanh() implements Op {
    }

    /**
     * Softmax over one axis (opset 13 semantics), or with {@code flatten} (opsets 1–12) over the
     * input seen as 2-D [prod(dims[:axis]), prod(dims[axis:])]: every trailing block is one
     * distribution. The two agree when the axis is the last one.
     */
    record Softmax(int axis, boolean flatten) implements Op {
        public Softmax(int axis) {
            this(axis, false);
        }
    }

    /** Reshape to [prod(dims[:axis]), prod(dims[axis:])]. */
    record Flatten(int axis) implements Op {
    }

    /** Reshape to the constant shape given as second input; 0 copies a dim, -1 infers one. */
    record Reshape(boolean allowZero) implements Op {
    }

    record Identity() implements Op {
    }

    /** 2-D convolution, NCHW, weights [M, C/group, kH, kW]. pads = top, left, bottom, right. */
    record Conv(int[] kernel, int[] strides, int[] pads, int[] dilations, int group, String autoPad) implements Op {
    }

    record MaxPool(int[] kernel, int[] strides, int[] pads, int[] dilations, boolean ceilMode, String autoPad)
            implements Op {
    }

    record AveragePool(int[] kernel, int[] strides, int[] pads, boolean countIncludePad, boolean ceilMode,
            String autoPad) implements Op {
    }

    record GlobalAveragePool() implements Op {
    }

    /** Inference-mode batch norm over axis 1: inputs X, scale, B, mean, var. */
    record BatchNormalization(float epsilon) implements Op {
    }

    record Concat(int axis) implements Op {
    }
}
