package dev.kxai.bench;

import dev.kxai.ModelException;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Multiply-adds (MACs) of the matrix work in one forward and one input-gradient pass of a graph,
 * per example row, from shape inference over the graph with batch 1.
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

    /** Counts the MACs of a graph per example row. */
    public static Count count(Graph g) {
        Map<String, int[]> shapes = shapes(g);
        Set<String> dependent = dependsOnInput(g);
        Set<String> reaches = reachesOutput(g);
        List<NodeCount> counted = new ArrayList<>();
        long fwd = 0;
        long bwd = 0;
        for (Node n : g.nodes()) {
            if (!dependent.contains(n.output())) {
                continue; // a constant subexpression: computed once per pass, not per row
            }
            long macs = macs(n, shapes);
            if (macs < 0) {
                continue; // not a matrix operator
            }
            long back = 0;
            if (reaches.contains(n.output())) {
                int operands = n.op() instanceof Op.Conv ? 1 : 2; // Conv weights never get a gradient
                for (int j = 0; j < operands && j < n.inputs().size(); j++) {
                    if (dependent.contains(n.inputs().get(j))) {
                        back += macs;
                    }
                }
            }
            counted.add(new NodeCount(n.name(), n.opType(), shapes.get(n.output()), macs, back));
            fwd += macs;
            bwd += back;
        }
        return new Count(counted, fwd, bwd);
    }

    /** MACs of one matrix node at the inferred shapes, or −1 if it is not Conv, Gemm or MatMul. */
    private static long macs(Node n, Map<String, int[]> shapes) {
        Op op = n.op();
        if (op instanceof Op.Conv c) {
            int[] x = shapes.get(n.inputs().get(0));
            int[] w = shapes.get(n.inputs().get(1));
            int[] y = shapes.get(n.output());
            // N·M·OH·OW·(C/g)·kH·kW, with W = [M, C/g, kH, kW]
            return (long) y[0] * y[1] * y[2] * y[3] * ((long) x[1] / c.group()) * w[2] * w[3];
        } else if (op instanceof Op.Gemm gm) {
            int[] a = shapes.get(n.inputs().get(0));
            int[] y = shapes.get(n.output());
            long k = gm.transA() ? a[0] : a[1];
            return (long) y[0] * y[1] * k;
        } else if (op instanceof Op.MatMul) {
            int[] a = shapes.get(n.inputs().get(0));
            int[] y = shapes.get(n.output());
            long k = a[a.length - 1];
            return Shapes.size(y) * k; // batches·M·N outputs, K MACs each
        }
        return -1;
    }

    /** Values computed from the model input (the input itself included). */
    static Set<String> dependsOnInput(Graph g) {
        Set<String> dep = new HashSet<>();
        dep.add(g.inputName());
        for (Node n : g.nodes()) {
            if (n.inputs().stream().anyMatch(dep::contains)) {
                dep.add(n.output());
            }
        }
        return dep;
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

    /** The shape of every value (constants, input with batch 1, node outputs). */
    public static Map<String, int[]> shapes(Graph g) {
        Map<String, int[]> s = new HashMap<>();
        for (Map.Entry<String, Tensor> e : g.constants().entrySet()) {
            s.put(e.getKey(), e.getValue().shape());
        }
        int[] in = g.inputShape().clone();
        in[0] = 1;
        for (int i = 1; i < in.length; i++) {
            if (in[i] <= 0) {
                throw new ModelException(g.source() + ": input '" + g.inputName() + "' has a dynamic dimension "
                        + Shapes.str(g.inputShape()) + "; the flop count needs every dimension but the batch fixed");
            }
        }
        s.put(g.inputName(), in);
        for (Node n : g.nodes()) {
            int[][] ins = new int[n.inputs().size()][];
            for (int j = 0; j < ins.length; j++) {
                ins[j] = s.get(n.inputs().get(j));
            }
            s.put(n.output(), infer(g, n, ins));
        }
        return s;
    }

    private static int[] infer(Graph g, Node n, int[][] in) {
        Op op = n.op();
        int[] x = in[0];
        if (op instanceof Op.Gemm gm) {
            int[] b = in[1];
            need(n, x.length == 2 && b.length == 2, in);
            return new int[] {gm.transA() ? x[1] : x[0], gm.transB() ? b[0] : b[1]};
        } else if (op instanceof Op.MatMul) {
            int[] b = in[1];
            need(n, x.length >= 2 && b.length >= 2 && x[x.length - 1] == b[b.length - 2], in);
            int[] out = x.length >= b.length ? x.clone() : b.clone();
            out[out.length - 1] = b[b.length - 1];
            out[out.length - 2] = x[x.length - 2];
            return out;
        } else if (op instanceof Op.Add || op instanceof Op.Sub || op instanceof Op.Mul) {
            int[] out = Shapes.broadcast(x, in[1]);
            need(n, out != null, in);
            return out;
        } else if (op instanceof Op.Flatten f) {
            int a = f.axis() < 0 ? f.axis() + x.length : f.axis();
            need(n, a >= 0 && a <= x.length, in);
            long outer = 1;
            for (int d = 0; d < a; d++) {
                outer *= x[d];
            }
            return new int[] {(int) outer, (int) (Shapes.size(x) / Math.max(1, outer))};
        } else if (op instanceof Op.Reshape r) {
            Tensor target = g.constants().get(n.inputs().get(1));
            if (target == null) {
                throw new ModelException(g.source() + ": node '" + n.name()
                        + "' (Reshape): the flop count needs a constant target shape");
            }
            return reshape(n, x, target.data(), r.allowZero());
        } else if (op instanceof Op.Conv c) {
            int[] w = in[1];
            need(n, x.length == 4 && w.length == 4, in);
            int[] k = c.kernel() != null ? c.kernel() : new int[] {w[2], w[3]};
            int[] hw = window(n, x, k, c.strides(), c.pads(), c.dilations(), c.autoPad(), false);
            return new int[] {x[0], w[0], hw[0], hw[1]};
        } else if (op instanceof Op.MaxPool p) {
            need(n, x.length == 4, in);
            int[] hw = window(n, x, p.kernel(), p.strides(), p.pads(), p.dilations(), p.autoPad(), p.ceilMode());
            return new int[] {x[0], x[1], hw[0], hw[1]};
        } else if (op instanceof Op.AveragePool p) {
            need(n, x.length == 4, in);
            int[] hw = window(n, x, p.kernel(), p.strides(), p.pads(), null, p.autoPad(), p.ceilMode());
            return new int[] {x[0], x[1], hw[0], hw[1]};
        } else if (op instanceof Op.GlobalAveragePool) {
            need(n, x.length >= 3, in);
            int[] out = x.clone();
            for (int d = 2; d < out.length; d++) {
                out[d] = 1;
            }
            return out;
        } else if (op instanceof Op.Concat c) {
            int a = c.axis() < 0 ? c.axis() + x.length : c.axis();
            int[] out = x.clone();
            out[a] = 0;
            for (int[] p : in) {
                need(n, p.length == x.length, in);
                out[a] += p[a];
            }
            return out;
        }
        // Relu, LeakyRelu, Sigmoid, Tanh, Softmax, Identity, BatchNormalization: shape of input 0
        return x.clone();
    }

    private static int[] reshape(Node n, int[] x, float[] sv, boolean allowZero) {
        int[] s = new int[sv.length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            int v = (int) sv[i];
            if (v == 0 && !allowZero && i < x.length) {
                v = x[i];
            }
            if (v == -1) {
                infer = i;
            } else {
                known *= v;
            }
            s[i] = v;
        }
        if (infer >= 0) {
            s[infer] = (int) (Shapes.size(x) / Math.max(1, known));
        }
        need(n, Shapes.size(s) == Shapes.size(x), new int[][] {x, s});
        return s;
    }

    /** Output height and width of a 2-D window (ONNX auto_pad and PyTorch's ceil_mode rule). */
    private static int[] window(Node n, int[] x, int[] kernel, int[] strides, int[] pads, int[] dilations,
            String autoPad, boolean ceil) {
        int[] out = new int[2];
        for (int d = 0; d < 2; d++) {
            int in = x[2 + d];
            int k = kernel[d];
            int s = strides == null || strides.length < 2 ? 1 : strides[d];
            int dil = dilations == null || dilations.length < 2 ? 1 : dilations[d];
            int p0 = pads != null && pads.length == 4 ? pads[d] : 0;
            int p1 = pads != null && pads.length == 4 ? pads[d + 2] : 0;
            int ek = (k - 1) * dil + 1;
            switch (autoPad == null ? "NOTSET" : autoPad) {
                case "VALID" -> { p0 = 0; p1 = 0; }
                case "SAME_UPPER", "SAME_LOWER" -> {
                    int o = (in + s - 1) / s;
                    int t = Math.max(0, (o - 1) * s + ek - in);
                    p0 = autoPad.equals("SAME_UPPER") ? t / 2 : t - t / 2;
                    p1 = t - p0;
                }
                default -> { }
            }
            int span = in + p0 + p1 - ek;
            int o = span < 0 ? 0 : (ceil ? (span + s - 1) / s : span / s) + 1;
            if (ceil && o > 0 && (o - 1) * s >= in + p0) {
                o--;
            }
            need(n, o > 0, new int[][] {x});
            out[d] = o;
        }
        return out;
    }

    private static void need(Node n, boolean ok, int[][] in) {
        if (!ok) {
            StringBuilder sb = new StringBuilder();
            for (int[] s : in) {
                sb.append(sb.length() == 0 ? "" : ", ").append(s == null ? "?" : Arrays.toString(s));
            }
            throw new ModelException("node '" + n.name() + "' (" + n.opType() + "): cannot infer the output shape from "
                    + sb + " for the flop count");
        }
    }
}
