package dev.kxai.backend.cuda;

import dev.kxai.exec.OpSet.Forward;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;

/**
 * CUDA's forward and backward of every operator, dispatched through the exhaustive
 * {@link Op.Visitor} to the families ({@link DenseOps}, {@link ConvOps}, {@link PoolOps},
 * {@link ElementwiseOps}, {@link ShapeOps}). Output shapes are the plan's ({@code out}).
 */
final class OpDispatch {
    private OpDispatch() {
    }

    /** One node's forward: the arena, the node, its inputs, its planned output shape. */
    record Fwd(DeviceScope s, Node node, DTensor[] in, int[] out) {
    }

    /**
     * One node's backward. {@code in[j]} and {@code y} are null where a fusion did not materialise
     * them; {@code saved} is what the forward kept (an argmax, a fused activation's buffer).
     */
    record Bwd(DeviceScope s, Node node, DTensor[] in, int[][] inShapes, DTensor y, Object saved, DTensor g,
            boolean[] need) {
        boolean need(int j) {
            return need.length > j && need[j];
        }
    }

    private static Forward<DTensor> plain(DTensor t) {
        return new Forward<>(t, null);
    }

    private static DTensor[] one(DTensor t) {
        return new DTensor[] {t};
    }

    static final class Forwards implements Op.Visitor<Fwd, Forward<DTensor>> {
        private final CudaOpSet ops;

        Forwards(CudaOpSet ops) {
            this.ops = ops;
        }

        private Forward<DTensor> act(Fwd c, int code, float alpha) {
            return plain(ops.elementwise.activation(c.s, c.in[0], code, alpha));
        }

        private Forward<DTensor> binary(Fwd c, int code) {
            return plain(ops.elementwise.binary(c.s, code, c.in[0], c.in[1], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Gemm op, Fwd c) {
            return plain(ops.dense.gemmForward(c.s, op, c.in, c.out, null).out());
        }

        @Override
        public Forward<DTensor> visit(Op.MatMul op, Fwd c) {
            return plain(ops.dense.matmul(c.s, c.in[0], c.in[1], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Add op, Fwd c) {
            DTensor y = ops.elementwise.binary(c.s, ElementwiseOps.ADD, c.in[0], c.in[1], c.out);
            // a residual sum before its ReLU keeps its operands' bounds (ConvOps.Sum)
            ConvOps.Sum sum = ConvOps.Sum.of(c.in[0], c.in[1], y);
            return plain(sum == null ? y : new DTensor(y.shape(), y.buf(), sum));
        }

        @Override
        public Forward<DTensor> visit(Op.Sub op, Fwd c) {
            return binary(c, ElementwiseOps.SUB);
        }

        @Override
        public Forward<DTensor> visit(Op.Mul op, Fwd c) {
            return binary(c, ElementwiseOps.MUL);
        }

        @Override
        public Forward<DTensor> visit(Op.Relu op, Fwd c) {
            // a float convolution's outputs near 0 recomputed in double first; the ReLU'd tensor keeps
            // the bounds (its zeros exact) for a max-pool after it
            ops.conv.repairKinks(c.s, c.in[0], 0f);
            DTensor y = ops.elementwise.activation(c.s, c.in[0], Kernels.ACT_RELU, 0f);
            return plain(c.in[0].exact() instanceof ConvOps.Exact e ? new DTensor(y.shape(), y.buf(), e.relu(true)) : y);
        }

        @Override
        public Forward<DTensor> visit(Op.LeakyRelu op, Fwd c) {
            ops.conv.repairKinks(c.s, c.in[0], 0f);
            return act(c, Kernels.ACT_LEAKY_RELU, op.alpha());
        }

        @Override
        public Forward<DTensor> visit(Op.Sigmoid op, Fwd c) {
            return act(c, Kernels.ACT_SIGMOID, 0f);
        }

        @Override
        public Forward<DTensor> visit(Op.Tanh op, Fwd c) {
            return act(c, Kernels.ACT_TANH, 0f);
        }

        @Override
        public Forward<DTensor> visit(Op.Softmax op, Fwd c) {
            return plain(ops.elementwise.softmax(c.s, op, c.in[0]));
        }

        @Override
        public Forward<DTensor> visit(Op.Flatten op, Fwd c) {
            return plain(ShapeOps.view(c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Reshape op, Fwd c) {
            return plain(ShapeOps.view(c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Identity op, Fwd c) {
            return plain(c.in[0]);
        }

        @Override
        public Forward<DTensor> visit(Op.StraightThrough op, Fwd c) {
            return plain(c.in[0]);
        }

        @Override
        public Forward<DTensor> visit(Op.Conv op, Fwd c) {
            return plain(ops.conv.forward(c.s, c.node, op, c.in, ops.convWeights(c.node, c.in, false),
                    ops.fp32(c.node, false), false, c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.MaxPool op, Fwd c) {
            DTensor x = c.in[0];
            if (x.exact() instanceof ConvOps.Exact e && x.rank() == 4 && x.dim(0) == e.n() && x.dim(1) == e.m()) {
                ops.conv.repairPoolTies(c.s, x, PoolOps.maxGeometry(c.node, op, x.shape()));
            }
            PoolOps.Max r = ops.pool.maxForward(c.s, c.node, op, c.in[0], c.out);
            return new Forward<>(r.out(), r.argmax());
        }

        @Override
        public Forward<DTensor> visit(Op.AveragePool op, Fwd c) {
            return plain(ops.pool.averageForward(c.s, c.node, op, c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.GlobalAveragePool op, Fwd c) {
            return plain(ops.pool.globalAverageForward(c.s, c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.BatchNormalization op, Fwd c) {
            return plain(ops.elementwise.channelAffine(c.s, c.in[0], ops.batchNorm(c.node)));
        }

        @Override
        public Forward<DTensor> visit(Op.Concat op, Fwd c) {
            return plain(ShapeOps.concat(c.s, op.axis(), c.in, c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Pad op, Fwd c) {
            return plain(ShapeOps.pad(ops.kernels(), c.s, op, c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Div op, Fwd c) {
            return binary(c, ElementwiseOps.DIV);
        }

        @Override
        public Forward<DTensor> visit(Op.Pow op, Fwd c) {
            return binary(c, ElementwiseOps.POW);
        }

        @Override
        public Forward<DTensor> visit(Op.Transpose op, Fwd c) {
            return plain(ShapeOps.transpose(ops.kernels(), c.s, c.in[0],
                    dev.kxai.exec.ShapeInference.perm(op, c.in[0].rank())));
        }

        @Override
        public Forward<DTensor> visit(Op.Squeeze op, Fwd c) {
            return plain(ShapeOps.view(c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Unsqueeze op, Fwd c) {
            return plain(ShapeOps.view(c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Reduce op, Fwd c) {
            return plain(ShapeOps.reduce(ops.kernels(), c.s, op, c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Unary op, Fwd c) {
            float[] kinks = ConvPlan.kinks(op);
            if (kinks != null) {
                ops.conv.repairKinks(c.s, c.in[0], kinks);
            }
            return plain(ops.elementwise.unary(c.s, op, c.in[0]));
        }

        @Override
        public Forward<DTensor> visit(Op.Expand op, Fwd c) {
            return plain(ShapeOps.expand(ops.kernels(), c.s, c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Select op, Fwd c) {
            return plain(ShapeOps.select(ops.kernels(), c.s, op, c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Resize op, Fwd c) {
            return plain(ShapeOps.resize(ops.kernels(), c.s, op, c.in[0], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.Compare op, Fwd c) {
            return binary(c, op.kind().code);
        }

        @Override
        public Forward<DTensor> visit(Op.Where op, Fwd c) {
            return plain(ops.elementwise.where(c.s, c.in[0], c.in[1], c.in[2], c.out));
        }

        @Override
        public Forward<DTensor> visit(Op.ConstantOfShape op, Fwd c) {
            DTensor y = new DTensor(c.out.clone(), c.s.floats(dev.kxai.tensor.Shapes.size(c.out)));
            if (op.value() == 0f) {
                y.buf().zero();
            } else {
                float[] v = new float[(int) y.size()];
                java.util.Arrays.fill(v, op.value());
                y.buf().upload(v);
            }
            return plain(y);
        }

        @Override
        public Forward<DTensor> visit(Op.Gather op, Fwd c) {
            return plain(ShapeOps.gather(ops.kernels(), c.s, op, c.in[0], c.in[1], c.out));
        }
    }

    static final class Backwards implements Op.Visitor<Bwd, DTensor[]> {
        private final CudaOpSet ops;

        Backwards(CudaOpSet ops) {
            this.ops = ops;
        }

        /**
         * An activation's backward reads what the fused forward saved when it ran absorbed into a
         * Gemm/MatMul; else LeakyReLU its input (the slope follows the input's sign, as on the CPU;
         * the output's sign agrees only for alpha > 0) and the others their output.
         */
        private DTensor[] act(Bwd c, int code, float alpha, boolean readsInput) {
            DeviceBuffer saved = c.saved instanceof DeviceBuffer b ? b : readsInput ? c.in[0].buf() : c.y.buf();
            return one(ops.elementwise.activationBackward(c.s, c.g, saved, code, alpha));
        }

        private DTensor[] binary(Bwd c, int code) {
            return ops.elementwise.binaryBackward(c.s, code, c.in, c.inShapes, c.g, c.need);
        }

        private static DTensor[] view(Bwd c) {
            DTensor[] r = new DTensor[c.in.length];
            r[0] = c.g.reshape(c.inShapes[0]);
            return r;
        }

        @Override
        public DTensor[] visit(Op.Gemm op, Bwd c) {
            return ops.dense.gemmBackward(c.s, op, c.in, c.g, c.need);
        }

        @Override
        public DTensor[] visit(Op.MatMul op, Bwd c) {
            return ops.dense.matmulBackward(c.s, c.in[0], c.in[1], c.g, c.need);
        }

        @Override
        public DTensor[] visit(Op.Add op, Bwd c) {
            return binary(c, ElementwiseOps.ADD);
        }

        @Override
        public DTensor[] visit(Op.Sub op, Bwd c) {
            return binary(c, ElementwiseOps.SUB);
        }

        @Override
        public DTensor[] visit(Op.Mul op, Bwd c) {
            return binary(c, ElementwiseOps.MUL);
        }

        @Override
        public DTensor[] visit(Op.Relu op, Bwd c) {
            return act(c, Kernels.ACT_RELU, 0f, false);
        }

        @Override
        public DTensor[] visit(Op.LeakyRelu op, Bwd c) {
            return act(c, Kernels.ACT_LEAKY_RELU, op.alpha(), true);
        }

        @Override
        public DTensor[] visit(Op.Sigmoid op, Bwd c) {
            return act(c, Kernels.ACT_SIGMOID, 0f, false);
        }

        @Override
        public DTensor[] visit(Op.Tanh op, Bwd c) {
            return act(c, Kernels.ACT_TANH, 0f, false);
        }

        @Override
        public DTensor[] visit(Op.Softmax op, Bwd c) {
            return one(ops.elementwise.softmaxBackward(c.s, op, c.y, c.g));
        }

        @Override
        public DTensor[] visit(Op.Flatten op, Bwd c) {
            return view(c);
        }

        @Override
        public DTensor[] visit(Op.Reshape op, Bwd c) {
            return view(c);
        }

        @Override
        public DTensor[] visit(Op.Identity op, Bwd c) {
            return view(c);
        }

        @Override
        public DTensor[] visit(Op.StraightThrough op, Bwd c) {
            return new DTensor[] {null, c.need(1) ? c.g.reshape(c.inShapes[1]) : null};
        }

        @Override
        public DTensor[] visit(Op.Conv op, Bwd c) {
            if (c.need(1) || c.need(2)) {
                throw new IllegalStateException("Conv weights or bias computed from the input reached cuda");
            }
            return new DTensor[] {ops.conv.inputGrad(c.s, c.node, op, c.in[0], c.in[1], c.g), null, null};
        }

        @Override
        public DTensor[] visit(Op.MaxPool op, Bwd c) {
            return one(ops.pool.maxBackward(c.s, c.inShapes[0], (DeviceBuffer) c.saved, c.g));
        }

        @Override
        public DTensor[] visit(Op.AveragePool op, Bwd c) {
            return one(ops.pool.averageBackward(c.s, c.node, op, c.inShapes[0], c.g));
        }

        @Override
        public DTensor[] visit(Op.GlobalAveragePool op, Bwd c) {
            return one(ops.pool.globalAverageBackward(c.s, c.inShapes[0], c.g));
        }

        @Override
        public DTensor[] visit(Op.BatchNormalization op, Bwd c) {
            for (int j = 1; j < c.need.length; j++) {
                if (c.need[j]) {
                    throw new IllegalStateException("BatchNormalization parameters computed from the input reached cuda");
                }
            }
            return new DTensor[] {ops.elementwise.channelAffineBackward(c.s, c.inShapes[0], c.g, ops.batchNorm(c.node)),
                    null, null, null, null};
        }

        @Override
        public DTensor[] visit(Op.Concat op, Bwd c) {
            return ShapeOps.concatBackward(c.s, op.axis(), c.inShapes, c.g, c.need);
        }

        @Override
        public DTensor[] visit(Op.Pad op, Bwd c) {
            return one(ShapeOps.padBackward(ops.kernels(), c.s, op, c.inShapes[0], c.g));
        }

        @Override
        public DTensor[] visit(Op.Div op, Bwd c) {
            return binary(c, ElementwiseOps.DIV);
        }

        @Override
        public DTensor[] visit(Op.Pow op, Bwd c) {
            return binary(c, ElementwiseOps.POW);
        }

        @Override
        public DTensor[] visit(Op.Transpose op, Bwd c) {
            int[] perm = dev.kxai.exec.ShapeInference.perm(op, c.g.rank());
            int[] inverse = new int[perm.length];
            for (int d = 0; d < perm.length; d++) {
                inverse[perm[d]] = d;
            }
            return one(ShapeOps.transpose(ops.kernels(), c.s, c.g, inverse));
        }

        @Override
        public DTensor[] visit(Op.Squeeze op, Bwd c) {
            return view(c);
        }

        @Override
        public DTensor[] visit(Op.Unsqueeze op, Bwd c) {
            return view(c);
        }

        @Override
        public DTensor[] visit(Op.Reduce op, Bwd c) {
            return one(ShapeOps.reduceBackward(ops.kernels(), c.s, op, c.in[0], c.y, c.inShapes[0], c.g));
        }

        @Override
        public DTensor[] visit(Op.Unary op, Bwd c) {
            return one(ops.elementwise.unaryBackward(c.s, op, c.in[0], c.g));
        }
        @Override
        public DTensor[] visit(Op.Expand op, Bwd c) {
            return one(ShapeOps.expandBackward(ops.kernels(), c.s, c.inShapes[0], c.g));
        }

        @Override
        public DTensor[] visit(Op.Select op, Bwd c) {
            return one(ShapeOps.selectBackward(ops.kernels(), c.s, op, c.inShapes[0], c.g));
        }

        @Override
        public DTensor[] visit(Op.Resize op, Bwd c) {
            return new DTensor[] {ShapeOps.resizeBackward(ops.kernels(), c.s, op, c.inShapes[0], c.g), null};
        }

        @Override
        public DTensor[] visit(Op.Compare op, Bwd c) {
            return new DTensor[] {null, null}; // piecewise constant
        }

        @Override
        public DTensor[] visit(Op.Where op, Bwd c) {
            return new DTensor[] {null, c.need(1) ? ops.elementwise.whereBackward(c.s, c.in[0], c.inShapes[1], c.g, 0) : null,
                c.need(2) ? ops.elementwise.whereBackward(c.s, c.in[0], c.inShapes[2], c.g, 1) : null};
        }

        @Override
        public DTensor[] visit(Op.ConstantOfShape op, Bwd c) {
            return new DTensor[] {null}; // its input is a shape: no gradient
        }

        @Override
        public DTensor[] visit(Op.Gather op, Bwd c) {
            // the table's gradient; the ids get none
            return new DTensor[] {c.need(0) ? ShapeOps.gatherBackward(ops.kernels(), c.s, op, c.inShapes[0], c.in[1], c.g)
                    : null, null};
        }
    }
}
