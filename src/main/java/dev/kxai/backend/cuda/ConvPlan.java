package dev.kxai.backend.cuda;

import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.FusionGroup;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The load-time decisions about a model's convolutions on CUDA:
 * <ul>
 *   <li><b>Batch norm folded into the conv</b>: a BatchNormalization with constant parameters whose
 *       input is a Conv output that nothing else reads (and that is not the graph's output), after
 *       a Conv with constant weights, is folded into that Conv's weights and bias at load
 *       (w' = w·s, b' = b·s + t with s = γ/√(var + ε), t = β − mean·s, in double, rounded once); the
 *       two run as one fusion group ({@link ConvGroup}): one kernel and one tensor less per layer.
 *       Where the executor runs them apart (a method that reads the conv's own output), the conv
 *       runs in double and the batch norm as its own kernel.</li>
 *   <li><b>Which convolutions run in FP32</b>: those whose output's decisions the device can repair
 *       ({@link ConvOps}): every path from the output to a decision (ReLU, LeakyReLU, Clip /
 *       HardSigmoid / HardSwish / Abs, max-pool) passes only through views, the folded batch norm,
 *       ReLUs (their output keeps the bounds, ReLU'd) and Adds ({@link CudaOpSet}: a residual sum
 *       before its ReLU); decisions the device cannot repair (ReduceMax/Min, comparisons, Floor and
 *       the other piecewise-constant functions, a max-pool of a sum) or bounds it does not carry (an
 *       unfolded batch norm before a decision) keep the layer in double (conv2d_forward), which
 *       needs no repair. Readers that take no decision (another Conv, Gemm, pooling averages,
 *       smooth activations) read the float values as they are, as on the CPU.</li>
 *   <li><b>Conv + Relu in one kernel</b> ({@link #reluFusions}): an FP32 Conv (with its folded batch
 *       norm) read only by a Relu runs as one kernel, bias and ReLU in the epilogue.</li>
 * </ul>
 */
final class ConvPlan {
    /**
     * The {@link FusionGroup#detail()} of a Conv group: with its batch norm folded into the weights
     * ({@code bn}) and/or the ReLU in its epilogue ({@code relu}). Only the forward is fused: the
     * backward runs per node (the batch norm's input gradient, then the conv's with its own weights:
     * W'ᵀ·g = Wᵀ·(s ⊙ g)), so every node keeps its meaning for the methods that read one node.
     */
    record ConvGroup(boolean bn, boolean relu) {
        @Override
        public String toString() {
            return "Conv" + (bn ? "+BatchNormalization" : "") + (relu ? "+Relu" : "");
        }
    }

    private final Graph graph;
    private final Map<String, List<Node>> readers = new HashMap<>();
    /** Conv node name → the BatchNormalization node folded into it. */
    private final Map<String, Node> folds = new HashMap<>();
    private final Set<String> foldedBn = new HashSet<>();

    ConvPlan(Graph graph) {
        this.graph = graph;
        for (Node n : graph.nodes()) {
            for (String in : n.inputs()) {
                readers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
            }
        }
        Map<String, Node> producer = new HashMap<>();
        for (Node n : graph.nodes()) {
            producer.put(n.output(), n);
        }
        for (Node n : graph.nodes()) {
            if (!(n.op() instanceof Op.BatchNormalization) || n.inputs().size() < 5
                    || !n.inputs().stream().skip(1).allMatch(graph.constants()::containsKey)) {
                continue;
            }
            String v = n.inputs().get(0);
            Node conv = producer.get(v);
            if (conv == null || !(conv.op() instanceof Op.Conv) || v.equals(graph.outputName())
                    || readers.get(v).size() != 1 || constantWeights(conv) == null) {
                continue;
            }
            int m = graph.constants().get(conv.inputs().get(1)).dim(0);
            if (n.inputs().stream().skip(1).allMatch(p -> graph.constants().get(p).size() == m)) {
                folds.put(conv.name(), n);
                foldedBn.add(n.name());
            }
        }
    }

    /** The conv's constant weight (rank 4) and bias (or null); null when they are not constants. */
    private float[][] constantWeights(Node conv) {
        Tensor w = graph.constants().get(conv.inputs().get(1));
        if (w == null || w.shape().length != 4) {
            return null;
        }
        Tensor b = null;
        if (conv.inputs().size() > 2 && !conv.inputs().get(2).isEmpty()) {
            b = graph.constants().get(conv.inputs().get(2));
            if (b == null) {
                return null;
            }
        }
        return new float[][] {w.data(), b == null ? null : b.data()};
    }

    /** Whether this batch norm is folded into its conv. */
    boolean folds(Node bn) {
        return foldedBn.contains(bn.name());
    }

    /** The batch norm folded into this conv, or null. */
    Node foldedInto(Node conv) {
        return folds.get(conv.name());
    }

    /**
     * The conv's weights and bias (null: none) as the device runs them: with its batch norm
     * folded in; null when they are not constants.
     */
    float[][] weights(Node conv, boolean folded) {
        float[][] wb = constantWeights(conv);
        Node bn = folds.get(conv.name());
        if (wb == null || bn == null || !folded) {
            return wb;
        }
        float eps = ((Op.BatchNormalization) bn.op()).epsilon();
        float[][] p = new float[4][];
        for (int j = 0; j < 4; j++) {
            p[j] = graph.constants().get(bn.inputs().get(j + 1)).data();
        }
        int m = p[0].length;
        float[] w = wb[0];
        int per = w.length / m;
        float[] fw = new float[w.length];
        float[] fb = new float[m];
        for (int oc = 0; oc < m; oc++) {
            double s = p[0][oc] / Math.sqrt((double) p[3][oc] + eps);
            double t = p[1][oc] - p[2][oc] * s;
            for (int i = oc * per; i < (oc + 1) * per; i++) {
                fw[i] = (float) (w[i] * s);
            }
            fb[oc] = (float) ((wb[1] == null ? 0 : wb[1][oc]) * s + t);
        }
        return new float[][] {fw, fb};
    }

    // ---------------------------------------------------------------- which convs run in FP32

    private static boolean view(Op op) {
        return op instanceof Op.Reshape || op instanceof Op.Flatten || op instanceof Op.Squeeze
                || op instanceof Op.Unsqueeze || op instanceof Op.Identity;
    }

    /** The kinks of a unary function whose derivative jumps (as the CPU's CpuDispatch.kinks), or null. */
    static float[] kinks(Op.Unary op) {
        return switch (op.kind()) {
            case CLIP -> new float[] {op.alpha(), op.beta()};
            case HARD_SIGMOID -> op.alpha() == 0f ? new float[0]
                    : new float[] {-op.beta() / op.alpha(), (1f - op.beta()) / op.alpha()};
            case HARD_SWISH -> new float[] {-3f, 3f};
            case ABS -> new float[] {0f};
            default -> null;
        };
    }

    /** A decision the device cannot repair on a float convolution's output. */
    private static boolean unrepairable(Op op) {
        if (op instanceof Op.Reduce r) {
            return r.kind() == Op.Reduce.Kind.MAX || r.kind() == Op.Reduce.Kind.MIN;
        }
        if (op instanceof Op.Unary u) {
            return switch (u.kind()) {
                case TRUNC, FLOOR, CEIL, ROUND, SIGN -> true;
                default -> false;
            };
        }
        return op instanceof Op.Compare;
    }

    private static boolean decides(Op op) {
        return op instanceof Op.Relu || op instanceof Op.LeakyRelu || op instanceof Op.MaxPool
                || op instanceof Op.Unary u && kinks(u) != null || unrepairable(op);
    }

    private List<Node> readersOf(String v) {
        return readers.getOrDefault(v, List.of());
    }

    /**
     * Whether every decision on {@code v} (a conv's output carrying its bounds, possibly through
     * views, the folded batch norm or ReLUs; {@code sum}: an Add's output) can be repaired.
     */
    private boolean repairable(String v, boolean sum, int depth) {
        if (depth > 64) {
            return false;
        }
        for (Node r : readersOf(v)) {
            Op op = r.op();
            boolean first = r.inputs().get(0).equals(v);
            if (foldedBn.contains(r.name()) || view(op)) {
                if (!repairable(r.output(), sum, depth + 1)) {
                    return false;
                }
            } else if (op instanceof Op.Relu) {
                // a ReLU'd float conv output keeps its bounds (its zeros exact); a ReLU'd sum does not
                if (!sum && !repairable(r.output(), false, depth + 1)) {
                    return false;
                }
            } else if (op instanceof Op.LeakyRelu || op instanceof Op.Unary u && kinks(u) != null) {
                if (!first) {
                    return false;
                }
            } else if (op instanceof Op.MaxPool) {
                if (sum || !first) {
                    return false;
                }
            } else if (op instanceof Op.Add) {
                if (sum || !sameShapeOperands(r) ? !noDecisions(r.output(), depth + 1)
                        : !repairable(r.output(), true, depth + 1)) {
                    return false;
                }
            } else if (op instanceof Op.BatchNormalization || op instanceof Op.Sub || op instanceof Op.Concat) {
                // carries the bounds on the CPU, not here: the layer stays exact if a decision follows
                if (!noDecisions(r.output(), depth + 1)) {
                    return false;
                }
            } else if (unrepairable(op)) {
                return false;
            }
        }
        return true;
    }

    /** No decision on v, directly or through views and the ops whose outputs differ by a bound. */
    private boolean noDecisions(String v, int depth) {
        if (depth > 64) {
            return false;
        }
        for (Node r : readersOf(v)) {
            Op op = r.op();
            if (decides(op)) {
                return false;
            }
            if ((view(op) || foldedBn.contains(r.name()) || op instanceof Op.Add || op instanceof Op.Sub
                    || op instanceof Op.BatchNormalization || op instanceof Op.Concat)
                    && !noDecisions(r.output(), depth + 1)) {
                return false;
            }
        }
        return true;
    }

    /**
     * An Add the device's sum repair handles: two computed operands of the output's shape (the
     * plan's shapes at batch 1, recorded by {@link CudaOpSet#support}: {@code broadcastAdds} lists the others).
     */
    private boolean sameShapeOperands(Node add) {
        return ADD_REPAIR && add.inputs().size() == 2 && !graph.constants().containsKey(add.inputs().get(0))
                && !graph.constants().containsKey(add.inputs().get(1)) && !broadcastAdds.contains(add.name());
    }

    /** Add nodes whose operands differ in shape (set before {@link #fp32}). */
    final Set<String> broadcastAdds = new HashSet<>();

    /** Whether Adds carry the bounds on the device (the sum repair of {@link ConvOps}). */
    static final boolean ADD_REPAIR = true;

    /** The convs (among those with device weights) that run in FP32. */
    Set<String> fp32(Set<String> withWeights) {
        Set<String> out = new HashSet<>();
        for (Node n : graph.nodes()) {
            if (n.op() instanceof Op.Conv && withWeights.contains(n.name())) {
                String v = n.output();
                Node bn = folds.get(n.name());
                if (repairable(bn != null ? v : v, false, 0)) {
                    out.add(n.name());
                }
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- Conv + Relu fusion

    /**
     * {conv, folded bn} for every conv with a foldable batch norm; then + relu (and {conv, relu})
     * for every FP32 conv whose output (after its folded batch norm) only a Relu reads.
     */
    static List<FusionGroup> convFusions(ExecutionPlan plan, Set<String> fp32, Set<String> foldedBn) {
        List<FusionGroup> out = new ArrayList<>();
        String graphOut = plan.graph().outputName();
        for (int i = 0; i < plan.nodes().size(); i++) {
            Node n = plan.node(i);
            if (!(n.op() instanceof Op.Conv)) {
                continue;
            }
            List<Integer> group = new ArrayList<>();
            group.add(i);
            String last = n.output();
            int next = soleReader(plan, last, graphOut);
            boolean bn = false;
            if (next >= 0 && foldedBn.contains(plan.node(next).name())) {
                group.add(next);
                bn = true;
                last = plan.node(next).output();
                next = soleReader(plan, last, graphOut);
            }
            boolean relu = next >= 0 && plan.node(next).op() instanceof Op.Relu && fp32.contains(n.name());
            if (relu) {
                group.add(next);
            }
            if (bn || relu) {
                out.add(new FusionGroup(group.stream().mapToInt(Integer::intValue).toArray(), new ConvGroup(bn, relu)));
            }
        }
        return out;
    }

    private static int soleReader(ExecutionPlan plan, String value, String graphOut) {
        List<Integer> r = plan.readers(value);
        if (r.size() != 1 || value.equals(graphOut)) {
            return -1;
        }
        int j = r.get(0);
        return plan.node(j).inputs().get(0).equals(value) ? j : -1;
    }
}
