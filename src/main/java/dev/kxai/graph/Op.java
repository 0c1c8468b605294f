package dev.kxai.graph;

/**
 * The operators kxai runs, as typed values with their ONNX attributes already parsed and checked.
 * Code that handles every operator does so through {@link Visitor} (see {@link #accept}), so that
 * adding an operator fails to compile wherever it is not handled yet.
 */
public sealed interface Op {
    /**
     * Dispatches to the visitor's method for this operator. Every record implements it, and
     * {@link Visitor} has one method per record: adding an operator fails to compile until every
     * visitor (each backend's forward and backward, shape inference) handles it.
     */
    <C, R> R accept(Visitor<C, R> v, C context);

    /** One method per operator; {@code C} is whatever context the caller passes along. */
    interface Visitor<C, R> {
        R visit(Gemm op, C context);

        R visit(MatMul op, C context);

        R visit(Add op, C context);

        R visit(Sub op, C context);

        R visit(Mul op, C context);

        R visit(Relu op, C context);

        R visit(LeakyRelu op, C context);

        R visit(Sigmoid op, C context);

        R visit(Tanh op, C context);

        R visit(Softmax op, C context);

        R visit(Flatten op, C context);

        R visit(Reshape op, C context);

        R visit(Identity op, C context);

        R visit(StraightThrough op, C context);

        R visit(Conv op, C context);

        R visit(MaxPool op, C context);

        R visit(AveragePool op, C context);

        R visit(GlobalAveragePool op, C context);

        R visit(BatchNormalization op, C context);

        R visit(Concat op, C context);

        R visit(Pad op, C context);

        R visit(Unary op, C context);

        R visit(Div op, C context);

        R visit(Pow op, C context);

        R visit(Transpose op, C context);

        R visit(Squeeze op, C context);

        R visit(Unsqueeze op, C context);

        R visit(Reduce op, C context);

        R visit(Expand op, C context);

        R visit(Select op, C context);

        R visit(Gather op, C context);

        R visit(ConstantOfShape op, C context);

        R visit(Where op, C context);

        R visit(Compare op, C context);

        R visit(Resize op, C context);
    }

    /** Y = alpha * op(A) * op(B) + beta * C. */
    record Gemm(float alpha, float beta, boolean transA, boolean transB) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    /** NumPy matmul of two tensors (2-D, or N-D with a 2-D right operand). */
    record MatMul() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    /** Elementwise with NumPy broadcasting. */
    record Add() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record Sub() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record Mul() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record Relu() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record LeakyRelu(float alpha) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record Sigmoid() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record Tanh() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    /**
     * Softmax over one axis (opset 13 semantics), or with {@code flatten} (opsets 1–12) over the
     * input seen as 2-D [prod(dims[:axis]), prod(dims[axis:])]: every trailing block is one
     * distribution. The two agree when the axis is the last one.
     */
    record Softmax(int axis, boolean flatten) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

        public Softmax(int axis) {
            this(axis, false);
        }
    }

    /** Reshape to [prod(dims[:axis]), prod(dims[axis:])]. */
    record Flatten(int axis) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    /** Reshape to the constant shape given as second input; 0 copies a dim, -1 infers one. */
    record Reshape(boolean allowZero) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record Identity() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    /**
     * The straight-through estimator: the value of input 0, the gradient of input 1 (both of one
     * shape). Quantize-dequantize pairs (QDQ models) round their input to a grid, a function whose
     * gradient is 0 almost everywhere; like PyTorch's fake quantisation, kxai gives them the gradient
     * of the clamp to the grid's range instead — input 0 the rounded value, input 1 the clamped input.
     */
    record StraightThrough() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /** 2-D convolution, NCHW, weights [M, C/group, kH, kW]. pads = top, left, bottom, right. */
    record Conv(int[] kernel, int[] strides, int[] pads, int[] dilations, int group, String autoPad) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record MaxPool(int[] kernel, int[] strides, int[] pads, int[] dilations, boolean ceilMode, String autoPad)
            implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record AveragePool(int[] kernel, int[] strides, int[] pads, boolean countIncludePad, boolean ceilMode,
            String autoPad) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record GlobalAveragePool() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    /** Inference-mode batch norm over axis 1: inputs X, scale, B, mean, var. */
    record BatchNormalization(float epsilon) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    record Concat(int axis) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

    }

    /**
     * ONNX Pad: {@code pads} = [begin of each padded axis..., end of each...] (negative values
     * crop), over {@code axes} (null: every axis, in order). Modes: constant (with {@code value}),
     * reflect (mirror without repeating the edge), edge (repeat the edge), wrap (periodic).
     */
    record Pad(String mode, int[] pads, float value, int[] axes) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

        /** Begin and end pads for every axis of a rank-{@code rank} input: [b0..b(r-1), e0..e(r-1)]. */
        public int[] forRank(int rank) {
            int[] full = new int[2 * rank];
            int n = axes == null ? rank : axes.length;
            for (int j = 0; j < n; j++) {
                int axis = axes == null ? j : axes[j] < 0 ? axes[j] + rank : axes[j];
                if (axis < 0 || axis >= rank || pads.length != 2 * n) {
                    return null;
                }
                full[axis] = pads[j];
                full[rank + axis] = pads[n + j];
            }
            return full;
        }
    }

    /**
     * An elementwise function of one tensor with up to two parameters, the family that needs no
     * fusion or saved state: Clip (alpha = min, beta = max), HardSigmoid (alpha, beta), HardSwish,
     * Sqrt, Exp, Log, Erf, Softplus, Elu (alpha), Selu (alpha, beta = gamma), Gelu (exact or tanh),
     * Neg, Abs. Derivatives at kinks follow PyTorch: Clip (hardtanh, ReLU6) and HardSigmoid pass
     * the gradient strictly inside the range, Abs has 0 at 0.
     */
    record Unary(Kind kind, float alpha, float beta) implements Op {
        /** The functions, with the codes the kernels take (kernels/dense.cu, unary_forward). */
        public enum Kind {
            CLIP(0), HARD_SIGMOID(1), HARD_SWISH(2), SQRT(3), EXP(4), LOG(5), ERF(6), SOFTPLUS(7), ELU(8), SELU(9),
            GELU(10), GELU_TANH(11), NEG(12), ABS(13),
            /** Cast of a float to an integer type (truncation toward zero), Floor, Ceil, Round (half to even), Sign:
             * piecewise constant, gradient 0 (PyTorch's). */
            TRUNC(14), FLOOR(15), CEIL(16), ROUND(17), SIGN(18),
            RECIPROCAL(19),
            /** Sin and Cos of values computed per request (Fourier features; positional encodings are folded at load). */
            SIN(20), COS(21);

            public final int code;

            Kind(int code) {
                this.code = code;
            }
        }

        public Unary(Kind kind) {
            this(kind, 0f, 0f);
        }

        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /** a / b with NumPy broadcasting. */
    record Div() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * a ^ b with NumPy broadcasting, computed in double and rounded once. Gradients as PyTorch's:
     * d/da = b·a^(b−1) (0 where b = 0), d/db = a^b·ln a (0 where a = 0 and b ≥ 0).
     */
    record Pow() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /** Axis permutation: output axis d is input axis perm[d] (null: reversed, ONNX's default). */
    record Transpose(int[] perm) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /** Drops the listed axes of size 1 (null: every axis of size 1). A view: no data moves. */
    record Squeeze(int[] axes) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /** Inserts axes of size 1 at the listed output positions. A view: no data moves. */
    record Unsqueeze(int[] axes) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * ReduceMean / ReduceSum over {@code axes} (null: every axis, as ONNX's default, which the plan
     * refuses: reducing the batch axis would mix the examples), keeping them as size 1 when
     * {@code keepDims}. Sums are formed in double and rounded once.
     */
    record Reduce(Kind kind, int[] axes, boolean keepDims) implements Op {
        /**
         * MEAN and SUM in double, rounded once; MAX and MIN exact, NaN propagating, their gradient
         * split evenly among the inputs equal to the result (PyTorch's amax/amin rule).
         */
        public enum Kind { MEAN, SUM, MAX, MIN }

        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

        /** Which axes of a rank-{@code rank} input are reduced. */
        public boolean[] reduced(int rank) {
            boolean[] r = new boolean[rank];
            if (axes == null) {
                java.util.Arrays.fill(r, true);
            } else {
                for (int a : axes) {
                    r[a < 0 ? a + rank : a] = true;
                }
            }
            return r;
        }
    }

    /**
     * Broadcasts the input to the target shape given as second input (NumPy rules: the result has
     * the broadcast of the two shapes). The target is a load-time value, possibly batch-dependent
     * ({@link Graph#perRow}); backends take the output shape from the plan. Backward sums the
     * gradient over the broadcast axes.
     */
    record Expand() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * Picks entries along one axis by constant indices: ONNX Gather with constant indices (the
     * axis is replaced by the indices' shape, so a scalar index drops it), and Slice (one node per
     * sliced axis, the indices an arithmetic progression). Indices are non-negative and in range.
     * Backward adds each output gradient back at its index (an index may repeat).
     */
    record Select(int axis, int[] indices, int[] indicesShape) implements Op {
        public Select {
            indices = indices.clone();
            indicesShape = indicesShape.clone();
        }

        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * ONNX Gather with indices given per request (token ids into an embedding table): the second
     * input holds integer ids (carried as floats, exact below 2^24), negative ones counting from
     * the end; ids out of range are refused where requests enter ({@code Model}). No gradient
     * reaches the ids; the table (first input) gets the output gradient added at each id.
     */
    record Gather(int axis) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * A tensor of one value, of the shape given as input: computed per request only when that
     * shape depends on the batch (an LSTM's zero initial state, {@code torch.zeros(x.size(0), ...)});
     * otherwise folded at load. Its shape input is a load-time value ({@link Graph#perRow}); no
     * gradient flows through it.
     */
    record ConstantOfShape(float value) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * Where(condition, x, y) = condition ≠ 0 ? x : y with NumPy broadcasting of all three (a causal
     * or padding mask applied to attention scores). A selection: −inf and NaN pass unchanged. The
     * gradient goes to x where the condition holds and to y elsewhere; none to the condition.
     */
    record Where() implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * Equal, Less, Greater (and NotEqual, for Not and Cast to bool) with NumPy broadcasting, giving
     * 1 or 0: masks computed per request from an input (PyTorch's {@code mask == 0} before a
     * {@code masked_fill}). Piecewise constant: no gradient reaches either operand.
     */
    record Compare(Kind kind) implements Op {
        public enum Kind {
            EQUAL(5), LESS(6), GREATER(7), NOT_EQUAL(8);

            /** The code of the broadcasting binary kernels. */
            public final int code;

            Kind(int code) {
                this.code = code;
            }
        }

        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }
    }

    /**
     * ONNX Resize (and Upsample) of the two spatial axes of an NCHW tensor, nearest or linear, with
     * ONNX's coordinate transformation modes. The output size comes from {@code scales} (per axis,
     * N and C 1) or, where scales is null, from the sizes given as the second input (a load-time
     * value, possibly batch-dependent). Each output row and column reads at most two input rows and
     * columns with fixed weights ({@link #taps}), so the backward adds each output gradient back
     * with the same weights.
     *
     * @param coordinateMode half_pixel, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn
     * @param nearestMode    round_prefer_floor, round_prefer_ceil, floor, ceil (nearest only)
     */
    record Resize(boolean linear, String coordinateMode, String nearestMode, float[] scales) implements Op {
        @Override
        public <C, R> R accept(Visitor<C, R> v, C context) {
            return v.visit(this, context);
        }

        /**
         * For each output coordinate along an axis of {@code in} input and {@code out} output
         * elements: the two input indices read and their weights, as {i0, i1} and {w0, w1} per
         * output (nearest: one tap of weight 1, the second of weight 0).
         */
        public Taps taps(int axis, int in, int out) {
            // float arithmetic, as ONNX Runtime computes the coordinates: a nearest neighbour on a
            // rounding boundary ((o + 0.5) / 1.3 at o = 6 is 5 in float, 5.000000000000001 in double)
            // must pick the same input element
            float scale = scales != null ? scales[axis] : (float) out / in;
            int[] idx = new int[2 * out];
            double[] w = new double[2 * out];
            for (int o = 0; o < out; o++) {
                double x = sourceCoordinate(coordinateMode, o, in, out, scale);
                if (linear) {
                    x = Math.max(0, Math.min(in - 1, x));
                    int i0 = (int) Math.floor(x);
                    int i1 = Math.min(i0 + 1, in - 1);
                    double l = x - i0;
                    idx[2 * o] = i0;
                    idx[2 * o + 1] = i1;
                    w[2 * o] = 1 - l;
                    w[2 * o + 1] = l;
                } else {
                    double r = switch (nearestMode) {
                        case "floor" -> Math.floor(x);
                        case "ceil" -> Math.ceil(x);
                        case "round_prefer_ceil" -> Math.floor(x + 0.5);
                        default -> x == Math.floor(x) + 0.5 ? Math.floor(x) : Math.rint(x); // round_prefer_floor
                    };
                    int i = (int) Math.max(0, Math.min(in - 1, r));
                    idx[2 * o] = i;
                    idx[2 * o + 1] = i;
                    w[2 * o] = 1;
                    w[2 * o + 1] = 0;
                }
            }
            return new Taps(idx, w);
        }

        /**
         * The input coordinate output element {@code o} reads along an axis of {@code in} input and
         * {@code out} output elements, in float arithmetic as ONNX Runtime computes it.
         */
        public static float sourceCoordinate(String coordinateMode, int o, int in, int out, float scale) {
            return switch (coordinateMode) {
                case "align_corners" -> out == 1 ? 0f : o * (float) (in - 1) / (out - 1);
                case "asymmetric" -> o / scale;
                case "pytorch_half_pixel" -> out > 1 ? (o + 0.5f) / scale - 0.5f : 0f;
                case "tf_half_pixel_for_nn" -> (o + 0.5f) / scale;
                default -> (o + 0.5f) / scale - 0.5f; // half_pixel
            };
        }

        /** Two taps per output coordinate: indices and weights, interleaved. */
        public record Taps(int[] index, double[] weight) {
        }
    }
}
