package dev.kxai.backend.cpu;

import dev.kxai.exec.OpSet.Forward;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * The CPU's forward and backward of every operator, dispatched through the exhaustive
 * {@link Op.Visitor} to the families ({@link DenseOps}, {@link ConvOps}, {@link PoolOps},
 * {@link ElementwiseOps}, {@link ShapeOps}); {@link CpuOpSet} is what the executor sees.
 */
final class CpuDispatch {
    private CpuDispatch() {
    }

    /** One node's forward; {@code out} is the plan's output shape (null outside a plan: the operator tests). */
    record Fwd(Node node, Tensor[] in, int[] out) {
        Fwd(Node node, Tensor[] in) {
            this(node, in, null);
        }

        Tensor opt(int j) {
            return in.length > j ? in[j] : null;
        }
    }

    record Bwd(Node node, Tensor[] in, Tensor y, Object saved, Tensor g, boolean[] need) {
        Tensor opt(int j) {
            return in.length > j ? in[j] : null;
        }

        boolean need(int j) {
            return need.length > j && need[j];
        }
    }

    private static int[][] shapes(Tensor[] in) {
        int[][] s = new int[in.length][];
        for (int j = 0; j < in.length; j++) {
            s[j] = in[j].shape();
        }
        return s;
    }

    /** The inputs at which a unary operator's derivative jumps (its decisions). */
    private static float[] kinks(Op.Unary op) {
        return switch (op.kind()) {
            case CLIP -> new float[] {op.alpha(), op.beta()};
            case HARD_SIGMOID -> op.alpha() == 0f ? new float[0]
                    : new float[] {-op.beta() / op.alpha(), (1f - op.beta()) / op.alpha()};
            case HARD_SWISH -> new float[] {-3f, 3f};
            case ABS -> new float[] {0f};
            default -> new float[0];
        };
    }

    private static Forward<Tensor> plain(Tensor t) {
        return new Forward<>(t, null);
    }

    private static Tensor[] one(Tensor t) {
        return new Tensor[] {t};
    }

    /** [prod(shape[:axis]), prod(shape[axis:])]: the 2-D view of opset-12 Softmax. */
    private static int[] flat2d(int[] shape, int axis) {
        int outer = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        return new int[] {outer, (int) (Shapes.size(shape) / Math.max(1, outer))};
    }

    private static Tensor binary(ElementwiseOps.Binary kind, Fwd c) {
        return ElementwiseOps.binary(kind, c.in[0], c.in[1], Shapes.broadcast(c.in[0].shape(), c.in[1].shape()));
    }

    private static Tensor activation(ElementwiseOps.Activation kind, float alpha, Fwd c) {
        return ElementwiseOps.activation(kind, alpha, c.in[0]);
    }

    private static Tensor[] activationBackward(ElementwiseOps.Activation kind, float alpha, Bwd c) {
        return one(ElementwiseOps.activationBackward(kind, alpha, c.in[0], c.y, c.g));
    }

    private static Tensor[] binaryBackward(ElementwiseOps.Binary kind, Bwd c) {
        return ElementwiseOps.binaryBackward(kind, c.in[0], c.in[1], c.g.shape(), c.g, c.need(0), c.need(1));
    }

    private static dev.kxai.InvalidInputException fromInput(Node n, String what) {
        return new dev.kxai.InvalidInputException("node '" + n.name() + "' (" + n.opType() + "): " + what
                + " computed from the input are not supported");
    }

    static final Op.Visitor<Fwd, Forward<Tensor>> FORWARD = new Op.Visitor<>() {
        @Override
        public Forward<Tensor> visit(Op.Gemm op, Fwd c) {
            return plain(DenseOps.gemm(c.node, op, c.in[0], c.in[1], c.opt(2)));
        }

        @Override
        public Forward<Tensor> visit(Op.MatMul op, Fwd c) {
            return plain(DenseOps.matmul(c.node, c.in[0], c.in[1]));
        }

        @Override
        public Forward<Tensor> visit(Op.Add op, Fwd c) {
            Tensor y = binary(ElementwiseOps.Binary.ADD, c);
            dev.kxai.tensor.ExactValues e = ExactDecisions.sum(c.in[0], c.in[1], y.data());
            return plain(e == null ? y : y.withExact(e)); // a residual sum before its ReLU keeps the bounds
        }

        @Override
        public Forward<Tensor> visit(Op.Sub op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.SUB, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Mul op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.MUL, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Relu op, Fwd c) {
            ExactDecisions.repairKinks(c.in[0], 0f);
            Tensor y = activation(ElementwiseOps.Activation.RELU, 0f, c);
            dev.kxai.tensor.ExactValues e = ExactDecisions.relu(c.in[0], y.data());
            return plain(e == null ? y : y.withExact(e)); // a pool or Concat → pool after it still decides exactly
        }

        @Override
        public Forward<Tensor> visit(Op.LeakyRelu op, Fwd c) {
            ExactDecisions.repairKinks(c.in[0], 0f);
            return plain(activation(ElementwiseOps.Activation.LEAKY_RELU, op.alpha(), c));
        }

        @Override
        public Forward<Tensor> visit(Op.Sigmoid op, Fwd c) {
            return plain(activation(ElementwiseOps.Activation.SIGMOID, 0f, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Tanh op, Fwd c) {
            return plain(activation(ElementwiseOps.Activation.TANH, 0f, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Softmax op, Fwd c) {
            Tensor x = c.in[0];
            int axis = ShapeOps.axis(c.node, op.axis(), x.rank(), false);
            if (op.flatten()) { // opsets 1-12: one distribution per trailing block
                return plain(ElementwiseOps.softmax(x.reshape(flat2d(x.shape(), axis)), 1).reshape(x.shape()));
            }
            return plain(ElementwiseOps.softmax(x, axis));
        }

        @Override
        public Forward<Tensor> visit(Op.Flatten op, Fwd c) {
            return plain(ShapeOps.flatten(c.node, c.in[0], op.axis()));
        }

        @Override
        public Forward<Tensor> visit(Op.Reshape op, Fwd c) {
            // a batch-dependent target (x.shape[0] in a view) is only right in the plan's shape
            return plain(c.out != null ? ShapeOps.reshapeTo(c.node, c.in[0], c.out)
                    : ShapeOps.reshape(c.node, c.in[0], c.in[1], op.allowZero()));
        }

        @Override
        public Forward<Tensor> visit(Op.Identity op, Fwd c) {
            return plain(c.in[0]);
        }

        @Override
        public Forward<Tensor> visit(Op.StraightThrough op, Fwd c) {
            return plain(c.in[0]);
        }

        @Override
        public Forward<Tensor> visit(Op.Conv op, Fwd c) {
            return plain(ConvOps.forward(c.node, op, c.in[0], c.in[1], c.opt(2)));
        }

        @Override
        public Forward<Tensor> visit(Op.MaxPool op, Fwd c) {
            PoolOps.MaxResult r = PoolOps.maxForward(c.node, op, c.in[0]);
            return new Forward<>(r.output(), r.argmax());
        }

        @Override
        public Forward<Tensor> visit(Op.AveragePool op, Fwd c) {
            return plain(PoolOps.averageForward(c.node, op, c.in[0]));
        }

        @Override
        public Forward<Tensor> visit(Op.GlobalAveragePool op, Fwd c) {
            return plain(PoolOps.globalAverageForward(c.node, c.in[0]));
        }

        @Override
        public Forward<Tensor> visit(Op.BatchNormalization op, Fwd c) {
            return plain(ShapeOps.batchNorm(c.node, c.in[0], c.in[1], c.in[2], c.in[3], c.in[4], op.epsilon()));
        }

        @Override
        public Forward<Tensor> visit(Op.Concat op, Fwd c) {
            return plain(ShapeOps.concat(c.node, c.in, op.axis()));
        }

        @Override
        public Forward<Tensor> visit(Op.Pad op, Fwd c) {
            Tensor x = c.in[0];
            int[] pads = op.forRank(x.rank());
            int[] out = new int[x.rank()];
            for (int d = 0; d < out.length; d++) {
                out[d] = x.dim(d) + pads[d] + pads[x.rank() + d];
            }
            return plain(ShapeOps.pad(x, pads, ShapeOps.padMode(op.mode()), op.value(), out));
        }

        @Override
        public Forward<Tensor> visit(Op.Div op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.DIV, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Pow op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.POW, c));
        }

        @Override
        public Forward<Tensor> visit(Op.Transpose op, Fwd c) {
            return plain(ShapeOps.transpose(c.in[0], dev.kxai.exec.ShapeInference.perm(op, c.in[0].rank())));
        }

        @Override
        public Forward<Tensor> visit(Op.Squeeze op, Fwd c) {
            return plain(c.in[0].reshape(dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in), null)));
        }

        @Override
        public Forward<Tensor> visit(Op.Unsqueeze op, Fwd c) {
            return plain(c.in[0].reshape(dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in), null)));
        }

        @Override
        public Forward<Tensor> visit(Op.Reduce op, Fwd c) {
            Tensor x = c.in[0];
            int[] out = dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in), null);
            if (op.kind() == Op.Reduce.Kind.MAX || op.kind() == Op.Reduce.Kind.MIN) {
                return plain(ShapeOps.reduceExtreme(x, op.reduced(x.rank()), op.kind() == Op.Reduce.Kind.MAX, out));
            }
            return plain(ShapeOps.reduce(x, op.reduced(x.rank()), op.kind() == Op.Reduce.Kind.MEAN, out));
        }

        @Override
        public Forward<Tensor> visit(Op.Unary op, Fwd c) {
            float[] kinks = kinks(op);
            if (kinks.length > 0) {
                ExactDecisions.repairKinks(c.in[0], kinks);
            }
            return plain(ElementwiseOps.unary(op, c.in[0]));
        }

        @Override
        public Forward<Tensor> visit(Op.Expand op, Fwd c) {
            int[] out = c.out != null ? c.out : dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in),
                    java.util.Map.of(c.node.inputs().get(1), c.in[1]));
            return plain(ShapeOps.expand(c.in[0], out));
        }

        @Override
        public Forward<Tensor> visit(Op.Select op, Fwd c) {
            return plain(ShapeOps.select(c.in[0], op, dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in), null)));
        }

        @Override
        public Forward<Tensor> visit(Op.Resize op, Fwd c) {
            int[] out = c.out != null ? c.out : dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in),
                    c.in.length > 1 ? java.util.Map.of(c.node.inputs().get(1), c.in[1]) : java.util.Map.of());
            return plain(ResizeOps.forward(op, c.in[0], out));
        }

        @Override
        public Forward<Tensor> visit(Op.Compare op, Fwd c) {
            return plain(binary(ElementwiseOps.Binary.valueOf(op.kind().name()), c));
        }

        @Override
        public Forward<Tensor> visit(Op.Where op, Fwd c) {
            return plain(ElementwiseOps.where(c.in[0], c.in[1], c.in[2],
                    dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in), null)));
        }

        @Override
        public Forward<Tensor> visit(Op.ConstantOfShape op, Fwd c) {
            int[] out = c.out != null ? c.out : dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in),
                    java.util.Map.of(c.node.inputs().get(0), c.in[0]));
            float[] v = new float[Shapes.intSize(out)];
            java.util.Arrays.fill(v, op.value());
            return plain(new Tensor(out, v));
        }

        @Override
        public Forward<Tensor> visit(Op.Gather op, Fwd c) {
            return plain(ShapeOps.select(c.in[0], ShapeOps.ids(c.node, op, c.in[0], c.in[1]),
                    dev.kxai.exec.ShapeInference.outputShape(c.node, shapes(c.in), null)));
        }
    };

    static final Op.Visitor<Bwd, Tensor[]> BACKWARD = new Op.Visitor<>() {
        @Override
        public Tensor[] visit(Op.Gemm op, Bwd c) {
            return DenseOps.gemmBackward(op, c.in[0], c.in[1], c.opt(2), c.g, c.need);
        }

        @Override
        public Tensor[] visit(Op.MatMul op, Bwd c) {
            return DenseOps.matmulBackward(c.node, c.in[0], c.in[1], c.g, c.need);
        }

        @Override
        public Tensor[] visit(Op.Add op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.ADD, c);
        }

        @Override
        public Tensor[] visit(Op.Sub op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.SUB, c);
        }

        @Override
        public Tensor[] visit(Op.Mul op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.MUL, c);
        }

        @Override
        public Tensor[] visit(Op.Relu op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.RELU, 0f, c);
        }

        @Override
        public Tensor[] visit(Op.LeakyRelu op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.LEAKY_RELU, op.alpha(), c);
        }

        @Override
        public Tensor[] visit(Op.Sigmoid op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.SIGMOID, 0f, c);
        }

        @Override
        public Tensor[] visit(Op.Tanh op, Bwd c) {
            return activationBackward(ElementwiseOps.Activation.TANH, 0f, c);
        }

        @Override
        public Tensor[] visit(Op.Softmax op, Bwd c) {
            Tensor y = c.y;
            int axis = ShapeOps.axis(c.node, op.axis(), y.rank(), false);
            if (op.flatten()) {
                int[] two = flat2d(y.shape(), axis);
                return one(ElementwiseOps.softmaxBackward(y.reshape(two), c.g.reshape(two), 1).reshape(y.shape()));
            }
            return one(ElementwiseOps.softmaxBackward(y, c.g, axis));
        }

        @Override
        public Tensor[] visit(Op.Flatten op, Bwd c) {
            return one(c.g.reshape(c.in[0].shape()));
        }

        @Override
        public Tensor[] visit(Op.Reshape op, Bwd c) {
            return new Tensor[] {c.g.reshape(c.in[0].shape()), null};
        }

        @Override
        public Tensor[] visit(Op.Identity op, Bwd c) {
            return one(c.g);
        }

        @Override
        public Tensor[] visit(Op.StraightThrough op, Bwd c) {
            return new Tensor[] {null, c.need(1) ? c.g : null}; // the value's side gets none
        }

        @Override
        public Tensor[] visit(Op.Conv op, Bwd c) {
            if (c.need(1)) {
                throw fromInput(c.node, "weights");
            }
            Tensor gx = c.need(0) ? ConvOps.inputGradient(c.node, op, c.in[0], c.in[1], c.g) : null;
            Tensor gb = c.need(2) ? ConvOps.biasGradient(c.g) : null;
            return new Tensor[] {gx, null, gb};
        }

        @Override
        public Tensor[] visit(Op.MaxPool op, Bwd c) {
            return one(PoolOps.maxBackward(c.in[0], (int[]) c.saved, c.g));
        }

        @Override
        public Tensor[] visit(Op.AveragePool op, Bwd c) {
            return one(PoolOps.averageBackward(c.node, op, c.in[0], c.g));
        }

        @Override
        public Tensor[] visit(Op.GlobalAveragePool op, Bwd c) {
            return one(PoolOps.globalAverageBackward(c.in[0], c.g));
        }

        @Override
        public Tensor[] visit(Op.BatchNormalization op, Bwd c) {
            if (c.need(1) || c.need(2) || c.need(3) || c.need(4)) {
                throw fromInput(c.node, "parameters");
            }
            return new Tensor[] {ShapeOps.batchNormBackward(c.node, c.in[0], c.in[1], c.in[2], c.in[3], c.in[4],
                    op.epsilon(), c.g), null, null, null, null};
        }

        @Override
        public Tensor[] visit(Op.Concat op, Bwd c) {
            return ShapeOps.concatBackward(c.node, c.in, op.axis(), c.g, c.need);
        }

        @Override
        public Tensor[] visit(Op.Pad op, Bwd c) {
            int[] in = c.in[0].shape();
            return one(ShapeOps.padBackward(in, op.forRank(in.length), ShapeOps.padMode(op.mode()), c.g));
        }

        @Override
        public Tensor[] visit(Op.Div op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.DIV, c);
        }

        @Override
        public Tensor[] visit(Op.Pow op, Bwd c) {
            return binaryBackward(ElementwiseOps.Binary.POW, c);
        }

        @Override
        public Tensor[] visit(Op.Transpose op, Bwd c) {
            int[] perm = dev.kxai.exec.ShapeInference.perm(op, c.g.rank());
            return one(ShapeOps.transpose(c.g, ShapeOps.inverse(perm)));
        }

        @Override
        public Tensor[] visit(Op.Squeeze op, Bwd c) {
            return one(c.g.reshape(c.in[0].shape()));
        }

        @Override
        public Tensor[] visit(Op.Unsqueeze op, Bwd c) {
            return one(c.g.reshape(c.in[0].shape()));
        }

        @Override
        public Tensor[] visit(Op.Reduce op, Bwd c) {
            int[] in = c.in[0].shape();
            if (op.kind() == Op.Reduce.Kind.MAX || op.kind() == Op.Reduce.Kind.MIN) {
                return one(ShapeOps.reduceExtremeBackward(c.in[0], c.y, op.reduced(in.length), c.g));
            }
            return one(ShapeOps.reduceBackward(in, op.reduced(in.length), op.kind() == Op.Reduce.Kind.MEAN, c.g));
        }

        @Override
        public Tensor[] visit(Op.Unary op, Bwd c) {
            return one(ElementwiseOps.unaryBackward(op, c.in[0], c.g));
        }
        @Override
        public Tensor[] visit(Op.Expand op, Bwd c) {
            return one(ShapeOps.expandBackward(c.in[0].shape(), c.g));
        }

        @Override
        public Tensor[] visit(Op.Select op, Bwd c) {
            return one(ShapeOps.selectBackward(c.in[0].shape(), op, c.g));
        }

        @Override
        public Tensor[] visit(Op.Resize op, Bwd c) {
            return new Tensor[] {ResizeOps.backward(op, c.in[0].shape(), c.g), null};
        }

        @Override
        public Tensor[] visit(Op.Compare op, Bwd c) {
            return new Tensor[] {null, null}; // piecewise constant
        }

        @Override
        public Tensor[] visit(Op.Where op, Bwd c) {
            return new Tensor[] {null, c.need(1) ? ElementwiseOps.whereBackward(c.in[0], c.in[1].shape(), c.g, true) : null,
                c.need(2) ? ElementwiseOps.whereBackward(c.in[0], c.in[2].shape(), c.g, false) : null};
        }

        @Override
        public Tensor[] visit(Op.ConstantOfShape op, Bwd c) {
            return new Tensor[] {null}; // its input is a shape: no gradient
        }

        @Override
        public Tensor[] visit(Op.Gather op, Bwd c) {
            // the table's gradient; the ids get none
            return new Tensor[] {c.need(0) ? ShapeOps.selectBackward(c.in[0].shape(),
                    ShapeOps.ids(c.node, op, c.in[0], c.in[1]), c.g) : null, null};
        }
    };
}
