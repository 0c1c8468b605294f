package dev.kxai.bench;

import dev.kxai.exec.ExecutionPlan;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Multiply-adds (MACs) of the matrix work in one forward and one input-gradient pass of a graph,
 * per example row, at the execution plan's shapes for one row (the plan infers them once).
 *
 * <ul>
 *   <li>Conv: N·M·OH·OW·(C/group)·kH·kW (N = 1 row); its input gradient (Wᵀ·dY, col2im) costs
 *       the same.</li>
 *   <li>Gemm: M·N·K; MatMul: batches·M·N·K; each operand's gradient costs the same again.</li>
 *   <li>Everything else (pools, elementwise, reshapes) is not counted.</li>
 * </ul>
 *
 * The forward counts every Conv/Gemm/MatMul node whose data depends on the model input. The
 * backward counts, per such node, one gradient per operand that depends on the model input
 * (constants, i.e. weights, get no gradient), and only for nodes whose output reaches the model
 * output. The first layer's input gradient is counted: it is the attribution.
 */
public final class FlopCounter {
    private FlopCounter() {
    }

    /** One counted node: its output shape at batch 1 and its MACs per row. */
    public record NodeCount(String node, String opType, int[] outputShape, long forwardMacs, long backwardMacs) {
    }

    /** The MACs per example row of a forward pass and of an input-gradient (backward) pass. */
    public record Count(List<NodeCount> nodes, long forwardMacs, long backwardMacs) {
        public Count {
            nodes = List.copyOf(nodes);
        }

        /** Forward plus backward MACs of one row (one path point of one example). */
        public long gradientMacs() {
            return forwardMacs + backwardMacs;
        }

        /**
         * Floating-point operations (2 per MAC) of {@code gradientRows} forward+backward rows and
         * {@code forwardOnlyRows} forward-only rows (the convergence delta's extra pass).
         */
        public double flops(long gradientRows, long forwardOnlyRows) {
            return 2.0 * ((double) gradientMacs() * gradientRows + (double) forwardMacs * forwardOnlyRows);
        }

        /**
         * As {@link #flops(long, long)} with the first-layer saving on {@code savedNode}: that node runs
         * forward for 2 rows per example (x and the baseline) instead of every gradient row, and its
         * input gradient once per example.
         */
        public double flops(long gradientRows, long forwardOnlyRows, String savedNode, long examples) {
            NodeCount saved = nodes.stream().filter(n -> n.node().equals(savedNode)).findFirst().orElse(null);
            if (saved == null) {
                return flops(gradientRows, forwardOnlyRows);
            }
            double rest = (double) (gradientMacs() - saved.forwardMacs() - saved.backwardMacs()) * gradientRows;
            double first = (double) saved.forwardMacs() * 2 * examples + (double) saved.backwardMacs() * examples;
            return 2.0 * (rest + first + (double) forwardMacs * forwardOnlyRows);
        }
    }

    /** Counts the MACs of a planned graph per example row, at the plan's shapes for one row. */
    public static Count count(ExecutionPlan plan) {
        Graph g = plan.graph();
        Set<String> reaches = reachesOutput(g);
        List<NodeCount> counted = new ArrayList<>();
        long fwd = 0;
        long bwd = 0;
        for (Node n : g.nodes()) {
            if (!plan.dependsOnInput(n.output())) {
                continue; // a constant subexpression: computed once per pass, not per row
            }
            long macs = macs(n, plan);
            if (macs < 0) {
                continue; // not a matrix operator
            }
            long back = 0;
            if (reaches.contains(n.output())) {
                int operands = n.op() instanceof Op.Conv ? 1 : 2; // Conv weights never get a gradient
                for (int j = 0; j < operands && j < n.inputs().size(); j++) {
                    if (plan.dependsOnInput(n.inputs().get(j))) {
                        back += macs;
                    }
                }
            }
            counted.add(new NodeCount(n.name(), n.opType(), plan.shape(n.output(), 1), macs, back));
            fwd += macs;
            bwd += back;
        }
        return new Count(counted, fwd, bwd);
    }

    /** MACs of one matrix node at the inferred shapes, or −1 if it is not Conv, Gemm or MatMul. */
    private static long macs(Node n, ExecutionPlan plan) {
        Op op = n.op();
        if (op instanceof Op.Conv c) {
            int[] x = plan.shape(n.inputs().get(0), 1);
            int[] w = plan.shape(n.inputs().get(1), 1);
            int[] y = plan.shape(n.output(), 1);
            // N·M·OH·OW·(C/g)·kH·kW, with W = [M, C/g, kH, kW]
            return (long) y[0] * y[1] * y[2] * y[3] * ((long) x[1] / c.group()) * w[2] * w[3];
        } else if (op instanceof Op.Gemm gm) {
            int[] a = plan.shape(n.inputs().get(0), 1);
            int[] y = plan.shape(n.output(), 1);
            long k = gm.transA() ? a[0] : a[1];
            return (long) y[0] * y[1] * k;
        } else if (op instanceof Op.MatMul) {
            int[] a = plan.shape(n.inputs().get(0), 1);
            int[] y = plan.shape(n.output(), 1);
            long k = a[a.length - 1];
            return Shapes.size(y) * k; // batches·M·N outputs, K MACs each
        }
        return -1;
    }

    /** Values from which the graph output is reachable (a gradient flows back to them). */
    static Set<String> reachesOutput(Graph g) {
        Set<String> live = new HashSet<>();
        live.add(g.outputName());
        List<Node> nodes = g.nodes();
        for (int i = nodes.size() - 1; i >= 0; i--) {
            Node n = nodes.get(i);
            if (live.contains(n.output())) {
                live.addAll(n.inputs());
            }
        }
        return live;
    }
}
