package dev.kxai.backend.cuda;

import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.Support;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;

/**
 * What CUDA does not run, decided when the plan is built (the model then runs on the CPU, and
 * results say so): broadcasting over more than 4 dimensions, weights, biases or batch-norm
 * parameters computed from the input, a 2-D right MatMul operand computed from the input, and
 * MatMul operand shapes other than [..., M, K] × [K, N] or equal-batch.
 */
final class CudaSupport implements Op.Visitor<CudaSupport.In, Support> {
    static final CudaSupport RULES = new CudaSupport();

    record In(Node node, int[][] shapes, ExecutionPlan plan) {
        boolean fromInput(int j) {
            return node.inputs().size() > j && plan.dependsOnInput(node.inputs().get(j));
        }
    }

    private CudaSupport() {
    }

    private static Support params(In c, String what) {
        for (int j = 1; j < c.node.inputs().size(); j++) {
            if (c.fromInput(j)) {
                return Support.no(what + " computed from the input is not supported on cuda");
            }
        }
        return Support.YES;
    }

    private static Support broadcast(In c) {
        int rank = Math.max(c.shapes[0].length, c.shapes[1].length);
        return rank > 4 ? Support.no("broadcasting over more than 4 dimensions is not supported on cuda") : Support.YES;
    }

    @Override
    public Support visit(Op.Gemm op, In c) {
        return params(c, "a weight or bias");
    }

    @Override
    public Support visit(Op.MatMul op, In c) {
        int[] as = c.shapes[0];
        int[] bs = c.shapes[1];
        boolean twoD = as.length >= 2 && bs.length == 2 && as[as.length - 1] == bs[0];
        if (!twoD && DenseOps.equalBatches(as, bs) <= 0) {
            return Support.no("operand shapes other than [..., M, K] × [K, N] and equal-batch [..., M, K] × [..., K, N]"
                    + " are not supported on cuda");
        }
        if (twoD && c.fromInput(1)) {
            return Support.no("a 2-D right operand computed from the input is not supported on cuda");
        }
        return Support.YES;
    }

    @Override
    public Support visit(Op.Add op, In c) {
        return broadcast(c);
    }

    @Override
    public Support visit(Op.Sub op, In c) {
        return broadcast(c);
    }

    @Override
    public Support visit(Op.Mul op, In c) {
        return broadcast(c);
    }

    @Override
    public Support visit(Op.Relu op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.LeakyRelu op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Sigmoid op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Tanh op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Softmax op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Flatten op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Reshape op, In c) {
        return Support.YES; // the plan requires a constant target shape
    }

    @Override
    public Support visit(Op.Identity op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.StraightThrough op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Conv op, In c) {
        return params(c, "a weight or bias");
    }

    @Override
    public Support visit(Op.MaxPool op, In c) {
        return Support.YES; // inputs of 2^31 elements or more: refused per pass
    }

    @Override
    public Support visit(Op.AveragePool op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.GlobalAveragePool op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.BatchNormalization op, In c) {
        for (int j = 1; j < c.node.inputs().size(); j++) {
            if (!c.plan.isConstant(c.node.inputs().get(j))) {
                return Support.no("parameters that are not constants are not supported on cuda (folded once at load)");
            }
        }
        return Support.YES;
    }

    @Override
    public Support visit(Op.Concat op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Pad op, In c) {
        return c.shapes()[0].length <= 4 ? Support.YES
                : Support.no("padding a tensor of rank " + c.shapes()[0].length + " (the kernel takes up to 4)");
    }

    @Override
    public Support visit(Op.Unary op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Div op, In c) {
        return broadcast(c);
    }

    @Override
    public Support visit(Op.Pow op, In c) {
        return broadcast(c);
    }

    private static Support upTo4d(In c, String what) {
        return c.shapes()[0].length <= 4 ? Support.YES
                : Support.no(what + " of a tensor of rank " + c.shapes()[0].length + " (the kernel takes up to 4)");
    }

    @Override
    public Support visit(Op.Transpose op, In c) {
        return c.shapes()[0].length <= 6 ? Support.YES
                : Support.no("a transpose of a tensor of rank " + c.shapes()[0].length + " (the kernel takes up to 6)");
    }

    @Override
    public Support visit(Op.Squeeze op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Unsqueeze op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Reduce op, In c) {
        return upTo4d(c, "a reduction");
    }

    @Override
    public Support visit(Op.Expand op, In c) {
        int rank = c.plan().shape(c.node().output(), 1).length;
        return rank <= 4 ? Support.YES
                : Support.no("an Expand to rank " + rank + " (its backward's reduction takes up to 4 axes)");
    }

    @Override
    public Support visit(Op.Select op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Gather op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.ConstantOfShape op, In c) {
        return Support.YES;
    }

    @Override
    public Support visit(Op.Where op, In c) {
        int rank = c.plan().shape(c.node().output(), 1).length;
        return rank <= 4 ? Support.YES : Support.no("a Where over " + rank + " dimensions (the kernel takes up to 4)");
    }

    @Override
    public Support visit(Op.Compare op, In c) {
        return broadcast(c);
    }

    @Override
    public Support visit(Op.Resize op, In c) {
        return Support.YES;
    }
}
