package dev.kxai.backend.cpu;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * Forward and backward of every operator on the CPU. The forward may return auxiliary state the
 * backward needs beyond inputs and output (max-pool winners); backward returns one gradient per
 * input, null where {@code need[i]} is false.
 */
final class CpuOps {
    private CpuOps() {
    }

    record Result(Tensor output, Object saved) {
    }

    /** [prod(shape[:axis]), prod(shape[axis:])]: the 2-D view of opset-12 Softmax. */
    private static int[] flat2d(int[] shape, int axis) {
        int outer = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        int total = 1;
        for (int d : shape) {
            total *= d;
        }
        return new int[] {outer, total / Math.max(1, outer)};
    }

    static Result forward(Node node, Tensor[] in) {
        Op op = node.op();
        if (op instanceof Op.Gemm g) {
            return plain(DenseOps.gemm(node, g, in[0], in[1], in.length > 2 ? in[2] : null));
        } else if (op instanceof Op.MatMul m) {
            return plain(DenseOps.matmul(node, in[0], in[1]));
        } else if (op instanceof Op.Add a) {
            return plain(binary(node, Elementwise.Binary.ADD, in));
        } else if (op instanceof Op.Sub s) {
            return plain(binary(node, Elementwise.Binary.SUB, in));
        } else if (op instanceof Op.Mul m) {
            return plain(binary(node, Elementwise.Binary.MUL, in));
        } else if (op instanceof Op.Relu r) {
            return plain(Elementwise.activation(Elementwise.Activation.RELU, 0f, in[0]));
        } else if (op instanceof Op.LeakyRelu l) {
            return plain(Elementwise.activation(Elementwise.Activation.LEAKY_RELU, l.alpha(), in[0]));
        } else if (op instanceof Op.Sigmoid s) {
            return plain(Elementwise.activation(Elementwise.Activation.SIGMOID, 0f, in[0]));
        } else if (op instanceof Op.Tanh t) {
            return plain(Elementwise.activation(Elementwise.Activation.TANH, 0f, in[0]));
        } else if (op instanceof Op.Softmax s) {
            int axis = ShapeOps.axis(node, s.axis(), in[0].rank(), false);
            if (s.flatten()) { // opsets 1-12: one distribution per trailing block
                return plain(Elementwise.softmax(in[0].reshape(flat2d(in[0].shape(), axis)), 1).reshape(in[0].shape()));
            }
            return plain(Elementwise.softmax(in[0], axis));
        } else if (op instanceof Op.Flatten f) {
            return plain(ShapeOps.flatten(node, in[0], f.axis()));
        } else if (op instanceof Op.Reshape r) {
            return plain(ShapeOps.reshape(node, in[0], in[1], r.allowZero()));
        } else if (op instanceof Op.Identity i) {
            return plain(in[0]);
        } else if (op instanceof Op.Conv c) {
            return plain(ConvOps.forward(node, c, in[0], in[1], in.length > 2 ? in[2] : null));
        } else if (op instanceof Op.MaxPool p) {
            PoolOps.MaxResult r = PoolOps.maxForward(node, p, in[0]);
            return new Result(r.output(), r.argmax());
        } else if (op instanceof Op.AveragePool p) {
            return plain(PoolOps.averageForward(node, p, in[0]));
        } else if (op instanceof Op.GlobalAveragePool p) {
            return plain(PoolOps.globalAverageForward(node, in[0]));
        } else if (op instanceof Op.BatchNormalization b) {
            return plain(ShapeOps.batchNorm(node, in[0], in[1], in[2], in[3], in[4], b.epsilon()));
        } else if (op instanceof Op.Concat c) {
            return plain(ShapeOps.concat(node, in, c.axis()));
        }
        throw new IllegalStateException("no CPU implementation for " + op);
    }

    static Tensor[] backward(Node node, Tensor[] in, Result fwd, Tensor gOut, boolean[] need) {
        Op op = node.op();
        Tensor y = fwd.output();
        if (op instanceof Op.Gemm g) {
            return DenseOps.gemmBackward(g, in[0], in[1], in.length > 2 ? in[2] : null, gOut, need);
        } else if (op instanceof Op.MatMul m) {
            return DenseOps.matmulBackward(node, in[0], in[1], gOut, need);
        } else if (op instanceof Op.Add a) {
            return Elementwise.binaryBackward(Elementwise.Binary.ADD, in[0], in[1], y.shape(), gOut, need[0], need[1]);
        } else if (op instanceof Op.Sub s) {
            return Elementwise.binaryBackward(Elementwise.Binary.SUB, in[0], in[1], y.shape(), gOut, need[0], need[1]);
        } else if (op instanceof Op.Mul m) {
            return Elementwise.binaryBackward(Elementwise.Binary.MUL, in[0], in[1], y.shape(), gOut, need[0], need[1]);
        } else if (op instanceof Op.Relu r) {
            return one(Elementwise.activationBackward(Elementwise.Activation.RELU, 0f, in[0], y, gOut));
        } else if (op instanceof Op.LeakyRelu l) {
            return one(Elementwise.activationBackward(Elementwise.Activation.LEAKY_RELU, l.alpha(), in[0], y, gOut));
        } else if (op instanceof Op.Sigmoid s) {
            return one(Elementwise.activationBackward(Elementwise.Activation.SIGMOID, 0f, in[0], y, gOut));
        } else if (op instanceof Op.Tanh t) {
            return one(Elementwise.activationBackward(Elementwise.Activation.TANH, 0f, in[0], y, gOut));
        } else if (op instanceof Op.Softmax s) {
            int axis = ShapeOps.axis(node, s.axis(), y.rank(), false);
            if (s.flatten()) {
                int[] two = flat2d(y.shape(), axis);
                return one(Elementwise.softmaxBackward(y.reshape(two), gOut.reshape(two), 1).reshape(y.shape()));
            }
            return one(Elementwise.softmaxBackward(y, gOut, axis));
        } else if (op instanceof Op.Flatten f) {
            return new Tensor[] {gOut.reshape(in[0].shape())};
        } else if (op instanceof Op.Reshape r) {
            return new Tensor[] {gOut.reshape(in[0].shape()), null};
        } else if (op instanceof Op.Identity i) {
            return new Tensor[] {gOut};
        } else if (op instanceof Op.Conv c) {
            if (need.length > 1 && need[1]) {
                throw new InvalidInputException("node '" + node.name()
                        + "' (Conv): weights computed from the input are not supported");
            }
            Tensor gx = need[0] ? ConvOps.inputGradient(node, c, in[0], in[1], gOut) : null;
            Tensor gb = need.length > 2 && need[2] ? ConvOps.biasGradient(gOut) : null;
            return new Tensor[] {gx, null, gb};
        } else if (op instanceof Op.MaxPool p) {
            return one(PoolOps.maxBackward(in[0], (int[]) fwd.saved(), gOut));
        } else if (op instanceof Op.AveragePool p) {
            return one(PoolOps.averageBackward(node, p, in[0], gOut));
        } else if (op instanceof Op.GlobalAveragePool p) {
            return one(PoolOps.globalAverageBackward(in[0], gOut));
        } else if (op instanceof Op.BatchNormalization b) {
            if (need.length > 1 && (need[1] || need[2] || need[3] || need[4])) {
                throw new InvalidInputException("node '" + node.name()
                        + "' (BatchNormalization): parameters computed from the input are not supported");
            }
            return new Tensor[] {ShapeOps.batchNormBackward(node, in[0], in[1], in[2], in[3], in[4], b.epsilon(), gOut),
                null, null, null, null};
        } else if (op instanceof Op.Concat c) {
            return ShapeOps.concatBackward(node, in, c.axis(), gOut, need);
        }
        throw new IllegalStateException("no CPU implementation for " + op);
    }

    private static Result plain(Tensor t) {
        return new Result(t, null);
    }

    private static Tensor[] one(Tensor t) {
        return new Tensor[] {t};
    }

    private static Tensor binary(Node node, Elementwise.Binary kind, Tensor[] in) {
        int[] out = Shapes.broadcast(in[0].shape(), in[1].shape());
        if (out == null) {
            throw new InvalidInputException("node '" + node.name() + "' (" + node.opType() + "): shapes "
                    + Shapes.str(in[0].shape()) + " and " + Shapes.str(in[1].shape()) + " do not broadcast");
        }
        return Elementwise.binary(kind, in[0], in[1], out);
    }
}
