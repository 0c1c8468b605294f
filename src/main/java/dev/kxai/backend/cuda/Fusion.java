package dev.kxai.backend.cuda;

import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.FusionGroup;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A Gemm, or a MatMul followed by an Add of a constant row bias, whose output is read only by an
 * activation: one kernel adds the bias and applies the activation on the GEMM's output
 * (bias_act_forward), and the activation's backward runs on what that kernel saved. The
 * intermediate values (the Gemm's, the MatMul's and the Add's outputs) are never materialised:
 * nothing else reads them. The {@link FusionGroup#detail()} of CUDA's groups.
 *
 * @param add  the Add node absorbed after a MatMul, or -1 (Gemm: its own C is the bias)
 * @param bias the constant row bias added by that Add, or null
 * @param act  the activation node absorbed
 */
record Fusion(int add, String bias, int act, int code, float alpha) {
    /** LeakyReLU with alpha < 0: the output's sign does not tell the input's, so keep the pre-activation. */
    boolean keepsInput() {
        return code == Kernels.ACT_LEAKY_RELU && alpha < 0f;
    }

    /** The activation kernel's code of an operator, or -1 where it is no activation. */
    static int code(Op op) {
        if (op instanceof Op.Relu) {
            return Kernels.ACT_RELU;
        } else if (op instanceof Op.LeakyRelu) {
            return Kernels.ACT_LEAKY_RELU;
        } else if (op instanceof Op.Sigmoid) {
            return Kernels.ACT_SIGMOID;
        } else if (op instanceof Op.Tanh) {
            return Kernels.ACT_TANH;
        }
        return -1;
    }

    /** The fusion groups of a plan: {gemm, act} or {matmul, add, act}. */
    static List<FusionGroup> plan(ExecutionPlan plan) {
        List<FusionGroup> out = new ArrayList<>();
        String graphOut = plan.graph().outputName();
        for (int i = 0; i < plan.nodes().size(); i++) {
            Node n = plan.node(i);
            if (!(n.op() instanceof Op.Gemm || n.op() instanceof Op.MatMul)) {
                continue;
            }
            String last = n.output();
            int add = -1;
            String bias = null;
            if (n.op() instanceof Op.MatMul) {
                List<Integer> r = plan.readers(last);
                if (r.size() != 1 || last.equals(graphOut)) {
                    continue;
                }
                Node a = plan.node(r.get(0));
                if (!(a.op() instanceof Op.Add)) {
                    continue;
                }
                String other = a.inputs().get(a.inputs().get(0).equals(last) ? 1 : 0);
                Tensor b = plan.graph().constants().get(other);
                Tensor w = plan.graph().constants().get(n.inputs().get(1));
                if (b == null || !isRowBias(b.shape())
                        || (w != null && (w.shape().length != 2 || w.dim(1) != b.size()))) {
                    continue; // (a right operand computed at run time is checked per pass)
                }
                add = r.get(0);
                bias = other;
                last = a.output();
            }
            int act = soleReader(plan, last);
            if (act < 0 || code(plan.node(act).op()) < 0) {
                continue;
            }
            Op op = plan.node(act).op();
            Fusion f = new Fusion(add, bias, act, code(op), op instanceof Op.LeakyRelu l ? l.alpha() : 0f);
            out.add(new FusionGroup(add >= 0 ? new int[] {i, add, act} : new int[] {i, act}, f));
        }
        return out;
    }

    /** The one node reading {@code value} (once, as its first input), unless the value is also the graph's output. */
    private static int soleReader(ExecutionPlan plan, String value) {
        List<Integer> r = plan.readers(value);
        if (r.size() != 1 || value.equals(plan.graph().outputName())) {
            return -1;
        }
        int j = r.get(0);
        return plan.node(j).inputs().get(0).equals(value) ? j : -1;
    }

    /** [N], [1, N], [1, 1, N]...: a bias added to every row. */
    private static boolean isRowBias(int[] shape) {
        for (int d = 0; d < shape.length - 1; d++) {
            if (shape[d] != 1) {
                return false;
            }
        }
        return shape.length >= 1;
    }
}
