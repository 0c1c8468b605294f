package dev.kxai.backend;

import dev.kxai.InvalidInputException;
import dev.kxai.ModelClosedException;
import dev.kxai.exec.Arena;
import dev.kxai.exec.BackwardRule;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.Executor;
import dev.kxai.exec.OpSet;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * A {@link ModelRunner} for any backend: its {@link OpSet} run through the one {@link Executor}.
 * Every entry point checks its arguments against the plan first, so that no backend sees a batch
 * or target that does not fit, then runs under {@link OpSet#onDevice} (CUDA's lock and context).
 *
 * @param <T> the backend's tensor type
 */
public final class GraphRunner<T> implements ModelRunner {
    private final Backend backend;
    private final ExecutionPlan plan;
    private final OpSet<T> ops;
    private final Executor<T> exec;
    /** Set by {@link #close()} (under the op set's device lock): later calls are refused, never run on freed weights. */
    private volatile boolean closed;

    public GraphRunner(Backend backend, ExecutionPlan plan, OpSet<T> ops) {
        this.backend = backend;
        this.plan = plan;
        this.ops = ops;
        this.exec = new Executor<>(plan, ops);
    }

    /** The executor, for callers that need a backward rule of their own (rule-based methods). */
    public Executor<T> executor() {
        return exec;
    }

    @Override
    public Graph graph() {
        return plan.graph();
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public ExecutionPlan plan() {
        return plan;
    }

    @Override
    public long chunkBudgetBytes() {
        return ops.chunkBudgetBytes();
    }

    @Override
    public String unusableReason() {
        return ops.unusableReason();
    }

    private String input() {
        return plan.graph().inputName();
    }

    private String output() {
        return plan.graph().outputName();
    }

    /** The batch of a tensor given for a value, checked against the plan's shape of that value. */
    private int batchOf(String value, Tensor t) {
        int[] s = t.shape();
        int[] one = plan.shape(value, 1);
        boolean fits = s.length == one.length && s.length > 0;
        for (int d = 1; fits && d < s.length; d++) {
            fits = s[d] == one[d];
        }
        if (!fits || (one[0] != 1 && s[0] % one[0] != 0)) {
            boolean isInput = plan.graph().inputs().stream().anyMatch(i -> i.name().equals(value));
            String want = isInput ? Shapes.str(Shapes.withBatch(one, -1)).replace("-1", "batch")
                    : Shapes.str(one) + " per row";
            throw new InvalidInputException((isInput ? "input" : "value '" + value + "'") + " of shape "
                    + Shapes.str(s) + " does not fit " + (isInput ? "model input '" + value + "'" : "it") + " of shape "
                    + want + " (" + plan.graph().source() + ")");
        }
        if (s[0] == 0) {
            throw new InvalidInputException("empty batch: input of shape " + Shapes.str(s) + " has no rows");
        }
        return s[0] / Math.max(1, one[0]);
    }

    private int batchOf(Map<String, Tensor> given) {
        int batch = -1;
        for (Map.Entry<String, Tensor> e : given.entrySet()) {
            int b = batchOf(e.getKey(), e.getValue());
            if (batch >= 0 && b != batch) {
                throw new InvalidInputException("given values hold different batch sizes (" + batch + " and " + b + ")");
            }
            batch = b;
        }
        if (batch < 0) {
            throw new InvalidInputException("no values given");
        }
        return batch;
    }

    private void checkTargets(int[] targets, int rows) {
        if (targets.length != rows) {
            throw new IllegalArgumentException(targets.length + " targets for " + rows + " rows");
        }
        int per = plan.outputsPerExample();
        for (int r = 0; r < rows; r++) {
            if (targets[r] < 0 || targets[r] >= per) {
                throw new InvalidInputException("target " + targets[r] + " of row " + r + " is outside the model's "
                        + per + " outputs (valid: 0.." + (per - 1) + ")");
            }
        }
    }

    private Map<String, T> upload(Arena a, Map<String, Tensor> given) {
        Map<String, T> in = new HashMap<>();
        given.forEach((k, v) -> in.put(k, ops.upload(a, v)));
        return in;
    }

    /** The given values' names and shapes, in name order (a {@link OpSet#repeatedWork} key). */
    private static String shapes(Map<String, Tensor> given) {
        StringBuilder b = new StringBuilder();
        new java.util.TreeMap<>(given).forEach((k, v) -> b.append(k).append(java.util.Arrays.toString(v.shape())).append(';'));
        return b.toString();
    }

    @Override
    public Tensor forward(Tensor x) {
        return evaluate(Map.of(input(), x), Set.of()).get(output());
    }

    @Override
    public Map<String, Tensor> evaluate(Map<String, Tensor> given, Set<String> taps) {
        int batch = batchOf(given);
        return live(() -> {
            try (Arena a = ops.arena()) {
                ops.repeatedWork(a, java.util.List.of("evaluate", shapes(given), new java.util.TreeSet<>(taps)));
                Executor.Pass<T> p = exec.forward(a, upload(a, given), batch, taps, false);
                Map<String, Tensor> out = new HashMap<>();
                out.put(output(), ops.download(p.value(output())));
                for (String t : taps) {
                    out.put(t, ops.download(p.value(t)));
                }
                return out;
            }
        });
    }

    @Override
    public Gradient gradient(Tensor x, int[] targets) {
        Map<String, Tensor> g = gradients(Map.of(input(), x), targets, Set.of(input(), output()));
        return new Gradient(g.get(output()), g.get(input()));
    }

    /**
     * As {@link ModelRunner#gradients}; asking for the output's own "gradient" returns the output
     * (so that one pass gives both, as {@link #gradient} needs).
     */
    @Override
    public Map<String, Tensor> gradients(Map<String, Tensor> given, int[] targets, Set<String> wrt) {
        return gradients(given, targets, wrt, BackwardRule.gradient());
    }

    /** As {@link #gradients(Map, int[], Set)}, each node's backward through {@code rule}. */
    public Map<String, Tensor> gradients(Map<String, Tensor> given, int[] targets, Set<String> wrt,
            BackwardRule<T> rule) {
        int batch = batchOf(given);
        checkTargets(targets, plan.shape(output(), batch)[0]);
        return live(() -> {
            try (Arena a = ops.arena()) {
                ops.repeatedWork(a, java.util.List.of("gradients", shapes(given), new java.util.TreeSet<>(wrt), rule.getClass()));
                Executor.Pass<T> p = exec.forward(a, upload(a, given), batch, Set.of(), true);
                T y = p.value(output());
                T seed = ops.seedOneHot(a, ops.shape(y), ops.indices(a, targets));
                Set<String> grads = new java.util.HashSet<>(wrt);
                grads.remove(output());
                Map<String, T> g = exec.backward(a, p, output(), seed, grads, rule);
                Map<String, Tensor> out = new HashMap<>();
                g.forEach((k, v) -> out.put(k, ops.download(v)));
                if (wrt.contains(output())) {
                    out.put(output(), ops.download(y));
                }
                return out;
            }
        });
    }

    @Override
    public java.util.List<Map<String, Tensor>> gradients(Map<String, Tensor> given, int[][] targets, Set<String> wrt) {
        int batch = batchOf(given);
        for (int[] t : targets) {
            checkTargets(t, plan.shape(output(), batch)[0]);
        }
        return live(() -> {
            try (Arena a = ops.arena()) {
                Executor.Pass<T> p = exec.forward(a, upload(a, given), batch, Set.of(), true);
                T y = p.value(output());
                java.util.List<Map<String, Tensor>> all = new java.util.ArrayList<>();
                for (int[] t : targets) {
                    try (Arena each = ops.arena()) {
                        T seed = ops.seedOneHot(each, ops.shape(y), ops.indices(each, t));
                        Map<String, T> g = exec.backward(each, p, output(), seed, new java.util.HashSet<>(wrt),
                                BackwardRule.gradient());
                        Map<String, Tensor> out = new HashMap<>();
                        g.forEach((k, v) -> out.put(k, ops.download(v)));
                        all.add(out);
                    }
                }
                return all;
            }
        });
    }

    @Override
    public Map<String, Tensor> neuronGradients(Map<String, Tensor> given, String value, int[] neuron, Set<String> wrt) {
        return seededGradients(given, value, neuronSeed(given, value, neuron), wrt);
    }

    /** One-hot at the flat element {@code neuron[r]} of each row of {@code value}, checked. */
    private Tensor neuronSeed(Map<String, Tensor> given, String value, int[] neuron) {
        int batch = batchOf(given);
        int[] shape = plan.shape(value, batch);
        int per = (int) (Shapes.size(shape) / shape[0]);
        if (neuron.length != shape[0]) {
            throw new IllegalArgumentException(neuron.length + " neurons for " + shape[0] + " rows");
        }
        for (int r = 0; r < neuron.length; r++) {
            if (neuron[r] < 0 || neuron[r] >= per) {
                throw new InvalidInputException("neuron " + neuron[r] + " of row " + r + " is outside '" + value + "' of "
                        + per + " elements per example (" + Shapes.str(shape) + ")");
            }
        }
        float[] seed = new float[shape[0] * per];
        for (int r = 0; r < neuron.length; r++) {
            seed[r * per + neuron[r]] = 1f;
        }
        return new Tensor(shape, seed);
    }

    @Override
    public Map<String, Tensor> seededGradients(Map<String, Tensor> given, String value, Tensor seed, Set<String> wrt) {
        return seededGradients(given, value, seed, wrt, BackwardRule.gradient());
    }

    @Override
    public Map<String, Tensor> neuronGradients(Map<String, Tensor> given, String value, int[] neuron, Set<String> wrt,
            ReluRule rule) {
        return seededGradients(given, value, neuronSeed(given, value, neuron), wrt, reluRule(rule));
    }

    /** As {@link #seededGradients(Map, String, Tensor, Set)}, each node's backward through {@code rule}. */
    public Map<String, Tensor> seededGradients(Map<String, Tensor> given, String value, Tensor seed, Set<String> wrt,
            BackwardRule<T> rule) {
        int batch = batchOf(given);
        int[] shape = plan.shape(value, batch);
        if (!java.util.Arrays.equals(shape, seed.shape())) {
            throw new IllegalArgumentException("seed of shape " + Shapes.str(seed.shape()) + " for '" + value
                    + "' of shape " + Shapes.str(shape));
        }
        return live(() -> {
            try (Arena a = ops.arena()) {
                Executor.Pass<T> p = exec.forward(a, upload(a, given), batch, Set.of(value), true);
                Set<String> grads = new java.util.HashSet<>(wrt);
                grads.remove(value);
                Map<String, T> g = exec.backward(a, p, value, ops.upload(a, seed), grads, rule);
                Map<String, Tensor> out = new HashMap<>();
                g.forEach((k, v) -> out.put(k, ops.download(v)));
                out.put(value, ops.download(p.value(value)));
                return out;
            }
        });
    }

    /** A Relu node for applying relu to a gradient through the op set's own kernel. */
    private static final Node RELU = new Node("relu_of_gradient", "Relu", new Op.Relu(), java.util.List.of("g"), "relu_g");

    @Override
    public Map<String, Tensor> gradients(Map<String, Tensor> given, int[] targets, Set<String> wrt, ReluRule rule) {
        return gradients(given, targets, wrt, reluRule(rule));
    }

    /** Every Relu node's backward replaced: guided backprop or deconvolution. */
    private BackwardRule<T> reluRule(ReluRule rule) {
        return BackwardRule.<T>forOp(Op.Relu.class, c -> {
            T[] g = rule == ReluRule.GUIDED_BACKPROP ? c.gradient().get() : ops.array(1);
            T base = rule == ReluRule.GUIDED_BACKPROP ? g[0] : c.gradOut();
            T[] one = ops.array(1);
            one[0] = base;
            g[0] = ops.forward(c.arena(), RELU, one, ops.shape(base)).output();
            return g;
        });
    }

    /** [a; b] along the batch axis. */
    private static Tensor stacked(Tensor a, Tensor b) {
        float[] d = java.util.Arrays.copyOf(a.data(), a.size() + b.size());
        System.arraycopy(b.data(), 0, d, a.size(), b.size());
        int[] s = a.shape();
        s[0] += b.dim(0);
        return new Tensor(s, d);
    }

    /** {@code value} and every value it is computed from. */
    private Set<String> upstreamValues(String value) {
        Set<String> seen = new java.util.HashSet<>();
        java.util.ArrayDeque<String> todo = new java.util.ArrayDeque<>(java.util.List.of(value));
        while (!todo.isEmpty()) {
            String v = todo.pop();
            if (seen.add(v)) {
                int p = plan.producer(v);
                if (p >= 0) {
                    todo.addAll(plan.node(p).inputs());
                }
            }
        }
        return seen;
    }

    /** The operators DeepLift's rescale rule replaces (Captum's nonlinear modules), and the max-pool rule. */
    private static boolean rescaled(Op op) {
        return op instanceof Op.Relu || op instanceof Op.LeakyRelu || op instanceof Op.Sigmoid || op instanceof Op.Tanh
                || (op instanceof Op.Unary u && (u.kind() == Op.Unary.Kind.ELU || u.kind() == Op.Unary.Kind.SOFTPLUS));
    }

    @Override
    public DeepLiftResult deepLift(Map<String, Tensor> given, Map<String, Tensor> reference, int[] targets,
            Set<String> wrt, boolean maxPoolRule) {
        return deepLift(given, reference, output(), targets, wrt, maxPoolRule);
    }

    @Override
    public DeepLiftResult deepLift(Map<String, Tensor> given, Map<String, Tensor> reference, String value, int[] index,
            Set<String> wrt, boolean maxPoolRule) {
        int batch = batchOf(given);
        boolean atOutput = value.equals(output());
        if (atOutput) {
            checkTargets(index, plan.shape(output(), batch)[0]);
        } else {
            neuronSeed(given, value, index); // checks the neurons
        }
        Map<String, Tensor> both = new HashMap<>();
        given.forEach((k, v) -> {
            Tensor ref = reference.get(k);
            if (ref == null || !java.util.Arrays.equals(ref.shape(), v.shape())) {
                throw new IllegalArgumentException("reference of '" + k + "' missing or of another shape");
            }
            both.put(k, stacked(v, ref));
        });
        int rows = 2 * batch;
        // seeded at a neuron, only the nodes it is computed from take part (a Softmax after it is no concern)
        Set<String> upstream = atOutput ? null : upstreamValues(value);
        // the inputs and outputs of every replaced node must exist (not fused away)
        Set<String> keep = new java.util.HashSet<>();
        for (Node n : plan.nodes()) {
            if (rescaled(n.op()) || maxPoolRule && n.op() instanceof Op.MaxPool) {
                keep.add(n.inputs().get(0));
                keep.add(n.output());
            } else if (n.op() instanceof Op.Softmax && (upstream == null || upstream.contains(n.output()))) {
                throw new dev.kxai.InvalidInputException("DeepLift: node '" + n.name() + "' is a Softmax, whose rule "
                        + "(Captum's softmax rule) kxai does not implement; explain the logits before it");
            }
        }
        keep.add(value);
        for (String w : wrt) {
            if (!both.containsKey(w)) {
                keep.add(w); // LayerDeepLift reads the layer at both halves
            }
        }
        keep.removeIf(plan::isConstant);
        return live(() -> {
            try (Arena a = ops.arena()) {
                Executor.Pass<T> p = exec.forward(a, upload(a, both), rows, keep, true);
                T y = p.value(value);
                Tensor yHost = ops.download(y);
                int outs = yHost.rowSize();
                float[] seed = new float[rows * outs];
                double[] atInput = new double[batch];
                double[] atRef = new double[batch];
                for (int r = 0; r < batch; r++) {
                    // both halves seeded, as Captum's stacked [x, x_ref] output is: the max-pool rule sums them
                    seed[r * outs + index[r]] = 1f;
                    seed[(batch + r) * outs + index[r]] = 1f;
                    atInput[r] = yHost.data()[r * outs + index[r]];
                    atRef[r] = yHost.data()[(batch + r) * outs + index[r]];
                }
                Map<String, Tensor> valuesAtInput = new HashMap<>();
                Map<String, Tensor> valuesAtRef = new HashMap<>();
                for (String w : wrt) {
                    Tensor full = both.containsKey(w) ? both.get(w) : w.equals(value) ? yHost : ops.download(p.value(w));
                    int per = full.rowSize();
                    int[] s = full.shape();
                    s[0] = batch;
                    valuesAtInput.put(w, new Tensor(s, java.util.Arrays.copyOf(full.data(), batch * per)));
                    valuesAtRef.put(w, new Tensor(s.clone(), java.util.Arrays.copyOfRange(full.data(), batch * per,
                            2 * batch * per)));
                }
                T seedT = ops.upload(a, new Tensor(yHost.shape(), seed));
                BackwardRule<T> rule = c -> {
                    Op op = c.node().op();
                    boolean pool = maxPoolRule && op instanceof Op.MaxPool;
                    if (!(rescaled(op) || pool) || !c.need()[0]) {
                        return null;
                    }
                    T[] g = c.gradient().get();
                    T num = ops.deepLiftScale(c.arena(), c.gradOut(), c.output(), pool);
                    if (pool) {
                        boolean[] first = new boolean[c.inputs().length];
                        first[0] = true;
                        num = ops.backward(c.arena(), c.node(), c.inputs(), plan.inputShapes(c.node(), rows), c.output(),
                                c.saved(), num, first)[0];
                    }
                    g[0] = ops.deepLiftRescale(c.arena(), g[0], num, c.inputs()[0], pool);
                    return g;
                };
                Map<String, T> g = exec.backward(a, p, value, seedT, wrt, rule);
                Map<String, Tensor> out = new HashMap<>();
                g.forEach((k, v) -> {
                    Tensor full = ops.download(v);
                    int per = full.rowSize();
                    int[] s = full.shape();
                    s[0] = batch;
                    out.put(k, new Tensor(s, java.util.Arrays.copyOf(full.data(), batch * per)));
                });
                return new DeepLiftResult(out, atInput, atRef, valuesAtInput, valuesAtRef);
            }
        });
    }

    // ---------------------------------------------------------------- LRP

    /** How a node treats relevance: a layer with a rule, the two halves of MatMul + bias Add, passed on, moved. */
    private enum LrpRole {
        LAYER, MATMUL_OF_PAIR, BIAS_OF_PAIR, PASS, MOVE
    }

    /** R_in = a ⊙ g through the op set's own Mul (no new kernel). */
    private static final Node MUL = new Node("lrp_times_input", "Mul", new Op.Mul(), java.util.List.of("a", "g"), "r");

    private static boolean moves(Op op) {
        return op instanceof Op.Flatten || op instanceof Op.Reshape || op instanceof Op.Transpose
                || op instanceof Op.Squeeze || op instanceof Op.Unsqueeze || op instanceof Op.Concat;
    }

    private static boolean hasWeight(Op op) {
        return op instanceof Op.Conv || op instanceof Op.Gemm || op instanceof Op.MatMul
                || op instanceof Op.BatchNormalization;
    }

    private String lrpWhere(Node n) {
        return "LRP: node '" + n.name() + "' (" + n.opType() + ")";
    }

    /** Whether the node's inputs after the first are all constants (weights), the first not. */
    private boolean weightsConstant(Node n) {
        if (plan.isConstant(n.inputs().get(0))) {
            return false;
        }
        for (int j = 1; j < n.inputs().size(); j++) {
            if (!plan.isConstant(n.inputs().get(j))) {
                return false;
            }
        }
        return true;
    }

    /** The MatMul an Add with one constant operand completes (its bias), or -1. */
    private int pairedMatMul(Node add) {
        if (!(add.op() instanceof Op.Add) || add.inputs().size() != 2) {
            return -1;
        }
        boolean c0 = plan.isConstant(add.inputs().get(0));
        boolean c1 = plan.isConstant(add.inputs().get(1));
        if (c0 == c1) {
            return -1;
        }
        String act = add.inputs().get(c0 ? 1 : 0);
        int mm = plan.producer(act);
        if (mm < 0 || !(plan.node(mm).op() instanceof Op.MatMul) || plan.readers(act).size() != 1
                || !weightsConstant(plan.node(mm))
                || !java.util.Arrays.equals(plan.shape(act, 1), plan.shape(add.output(), 1))) {
            return -1;
        }
        return mm;
    }

    /** The role of every node the relevance crosses (null elsewhere), each checked against its rule. */
    private LrpRole[] lrpRoles(Set<String> wrt, LrpRules rules) {
        int count = plan.nodes().size();
        Set<String> flow = new java.util.HashSet<>(wrt);
        for (Node n : plan.nodes()) {
            if (n.inputs().stream().anyMatch(flow::contains)) {
                flow.add(n.output());
            }
        }
        Set<String> up = new java.util.HashSet<>(Set.of(output()));
        for (int i = count - 1; i >= 0; i--) {
            if (up.contains(plan.node(i).output())) {
                up.addAll(plan.node(i).inputs());
            }
        }
        LrpRole[] roles = new LrpRole[count];
        for (int i = 0; i < count; i++) {
            Node n = plan.node(i);
            if (!up.contains(n.output()) || n.inputs().stream().noneMatch(flow::contains)) {
                continue;
            }
            Op op = n.op();
            LrpRole role;
            if (op instanceof Op.Relu || op instanceof Op.Tanh || op instanceof Op.Identity) {
                role = LrpRole.PASS;
            } else if (moves(op)) {
                role = LrpRole.MOVE;
            } else if (op instanceof Op.MaxPool || op instanceof Op.AveragePool || op instanceof Op.GlobalAveragePool) {
                role = LrpRole.LAYER;
            } else if (op instanceof Op.Conv || op instanceof Op.Gemm || op instanceof Op.MatMul
                    || op instanceof Op.BatchNormalization) {
                if (!weightsConstant(n) || (op instanceof Op.Gemm gm && gm.transA())) {
                    throw new InvalidInputException(lrpWhere(n) + ": LRP needs an activation as the first input and "
                            + "constant weights (and no transA) after it");
                }
                int reader = plan.readers(n.output()).size() == 1 ? plan.readers(n.output()).get(0) : -1;
                role = op instanceof Op.MatMul && reader >= 0 && pairedMatMul(plan.node(reader)) == i
                        ? LrpRole.MATMUL_OF_PAIR : LrpRole.LAYER;
            } else if (op instanceof Op.Add && n.inputs().size() == 2) {
                boolean constants = plan.isConstant(n.inputs().get(0)) || plan.isConstant(n.inputs().get(1));
                if (!constants) {
                    role = LrpRole.LAYER; // Captum's Addition_Module
                } else if (pairedMatMul(n) >= 0) {
                    role = LrpRole.BIAS_OF_PAIR;
                } else {
                    throw new InvalidInputException(lrpWhere(n) + " adds a constant to a value no MatMul computes: LRP "
                            + "takes Add as the bias of a MatMul (a linear layer) or as the sum of two activations");
                }
            } else {
                throw new InvalidInputException(lrpWhere(n) + " has no LRP rule: Captum's LRP propagates through "
                        + new java.util.TreeSet<>(LrpRules.LAYER_OPS) + " with a rule, passes relevance through Relu, Tanh, "
                        + "Dropout and Identity and moves it through Flatten, Reshape, Transpose, Squeeze, Unsqueeze, "
                        + "Concat" + (op instanceof Op.Softmax ? "; explain the logits before the Softmax" : ""));
            }
            roles[i] = role;
        }
        for (String w : wrt) {
            int i = plan.producer(w);
            Node n = i >= 0 ? plan.node(i) : null;
            if (n != null && n.op() instanceof Op.MatMul && plan.readers(w).size() == 1
                    && pairedMatMul(plan.node(plan.readers(w).get(0))) == i) {
                throw new InvalidInputException("LayerLRP at '" + w + "': the output of MatMul '" + n.name()
                        + "' before its bias Add, inside one linear layer; take the Add's output");
            }
        }
        for (int i = 0; i < count; i++) {
            if (roles[i] == LrpRole.LAYER && lrpRule(i, rules).kind() == LrpRule.Kind.IDENTITY) {
                Node n = plan.node(i);
                for (String act : n.inputs()) {
                    if (!plan.isConstant(act) && !java.util.Arrays.equals(plan.shape(act, 1), plan.shape(n.output(), 1))) {
                        throw new InvalidInputException(lrpWhere(n) + ": the identity rule needs input and output of one "
                                + "shape, here " + Shapes.str(plan.shape(act, 1)) + " -> "
                                + Shapes.str(plan.shape(n.output(), 1)));
                    }
                }
            }
            if (roles[i] == LrpRole.BIAS_OF_PAIR && lrpRule(i, rules).kind() == LrpRule.Kind.IDENTITY) {
                Node mm = plan.node(pairedMatMul(plan.node(i)));
                if (!java.util.Arrays.equals(plan.shape(mm.inputs().get(0), 1), plan.shape(mm.output(), 1))) {
                    throw new InvalidInputException(lrpWhere(mm) + ": the identity rule needs input and output of one "
                            + "shape, here " + Shapes.str(plan.shape(mm.inputs().get(0), 1)) + " -> "
                            + Shapes.str(plan.shape(mm.output(), 1)));
                }
            }
        }
        return roles;
    }

    /**
     * A node's rule; the two nodes of a MatMul + bias Add pair take one rule: the Add's if it is named,
     * else the MatMul's (by name, or the MatMul op type).
     */
    private LrpRule lrpRule(int i, LrpRules rules) {
        Node n = plan.node(i);
        int add = -1;
        int mm = pairedMatMul(n);
        if (mm >= 0) {
            add = i;
        } else if (n.op() instanceof Op.MatMul && plan.readers(n.output()).size() == 1
                && pairedMatMul(plan.node(plan.readers(n.output()).get(0))) == i) {
            add = plan.readers(n.output()).get(0);
            mm = i;
        }
        if (add < 0) {
            return rules.ruleFor(n);
        }
        LrpRule named = rules.named(plan.node(add));
        return named != null ? named : rules.ruleFor(plan.node(mm));
    }

    /** The node's inputs with the rule's weight (and bias) uploaded in place of the constants. */
    private T[] modifiedInputs(Arena a, Node n, T[] in, LrpRule rule) {
        T[] out = in.clone();
        Tensor w = plan.graph().constants().get(n.inputs().get(1));
        float[] wd = new float[w.size()];
        for (int k = 0; k < wd.length; k++) {
            wd[k] = rule.weight(w.data()[k]);
        }
        out[1] = ops.upload(a, new Tensor(w.shape(), wd));
        if (rule.zeroBias() && in.length > 2 && !(n.op() instanceof Op.MatMul)) {
            Tensor b = plan.graph().constants().get(n.inputs().get(2));
            out[2] = ops.zeros(a, b.shape());
        }
        return out;
    }

    @Override
    public LrpResult lrp(Map<String, Tensor> given, int[] targets, Set<String> wrt, LrpRules rules) {
        int batch = batchOf(given);
        checkTargets(targets, plan.shape(output(), batch)[0]);
        rules.check(plan.graph());
        for (String w : wrt) {
            if (!plan.hasValue(w)) {
                throw new InvalidInputException("no value '" + w + "' in " + plan.graph().source());
            }
        }
        LrpRole[] roles = lrpRoles(wrt, rules);
        // the inputs and outputs of every layer must exist (not fused away)
        Set<String> keep = new java.util.HashSet<>();
        for (int i = 0; i < roles.length; i++) {
            if (roles[i] != null && roles[i] != LrpRole.PASS && roles[i] != LrpRole.MOVE) {
                keep.addAll(plan.node(i).inputs());
                keep.add(plan.node(i).output());
            }
        }
        keep.removeIf(plan::isConstant);
        keep.removeAll(given.keySet());
        return live(() -> {
            try (Arena a = ops.arena()) {
                Executor.Pass<T> p = exec.forward(a, upload(a, given), batch, keep, true);
                T y = p.value(output());
                T targetsT = ops.indices(a, targets);
                double[] atTarget = ops.gatherTargets(a, y, targetsT, 0, batch);
                T seed = ops.seedOneHot(a, ops.shape(y), targetsT);
                BackwardRule<T> rule = c -> {
                    LrpRole role = roles[c.index()];
                    if (role == null || role == LrpRole.MOVE) {
                        return null;
                    }
                    Node n = c.node();
                    T[] g = ops.array(c.need().length);
                    if (role == LrpRole.PASS) {
                        g[0] = c.gradOut();
                        return g;
                    }
                    LrpRule r = lrpRule(c.index(), rules);
                    Arena ar = c.arena();
                    if (role == LrpRole.BIAS_OF_PAIR) {
                        int act = plan.isConstant(n.inputs().get(0)) ? 1 : 0;
                        T z = c.output();
                        if (r.modifiesWeights()) {
                            Node mm = plan.node(pairedMatMul(n));
                            T[] mmIn = ops.array(2);
                            mmIn[0] = p.value(mm.inputs().get(0));
                            mmIn[1] = ops.constant(mm.inputs().get(1));
                            mmIn = modifiedInputs(ar, mm, mmIn, r);
                            T[] addIn = c.inputs().clone();
                            addIn[act] = ops.forward(ar, mm, mmIn, ops.shape(c.inputs()[act])).output();
                            if (r.zeroBias()) {
                                addIn[1 - act] = ops.zeros(ar, ops.shape(c.inputs()[1 - act]));
                            }
                            z = ops.forward(ar, n, addIn, ops.shape(c.output())).output();
                        }
                        g[act] = r.kind() == LrpRule.Kind.IDENTITY ? c.gradOut()
                                : ops.lrpStabilize(ar, c.gradOut(), z, r.epsilon());
                        return g;
                    }
                    if (r.kind() == LrpRule.Kind.IDENTITY) {
                        for (int j = 0; j < g.length; j++) {
                            g[j] = c.need()[j] ? c.gradOut() : null;
                        }
                        return g;
                    }
                    T[] in = c.inputs();
                    T z = c.output();
                    Object saved = c.saved();
                    if (r.modifiesWeights() && hasWeight(n.op())) {
                        in = modifiedInputs(ar, n, in, r);
                        OpSet.Forward<T> f = ops.forward(ar, n, in, ops.shape(c.output()));
                        z = f.output();
                        saved = f.saved();
                    }
                    T gz = role == LrpRole.LAYER ? ops.lrpStabilize(ar, c.gradOut(), z, r.epsilon()) : c.gradOut();
                    T[] gi = ops.backward(ar, n, in, plan.inputShapes(n, batch), z, saved, gz, c.need());
                    for (int j = 0; j < gi.length; j++) {
                        if (c.need()[j] && gi[j] != null) {
                            T[] two = ops.array(2);
                            two[0] = c.inputs()[j];
                            two[1] = gi[j];
                            gi[j] = ops.forward(ar, MUL, two, ops.shape(gi[j])).output();
                        }
                    }
                    return gi;
                };
                Set<String> grads = new java.util.HashSet<>(wrt);
                boolean atOutput = grads.remove(output());
                Map<String, T> g = exec.backward(a, p, output(), seed, grads, rule);
                Map<String, Tensor> out = new HashMap<>();
                g.forEach((k, v) -> out.put(k, scaledRows(ops.download(v), atTarget)));
                if (atOutput) {
                    out.put(output(), scaledRows(ops.download(seed), atTarget));
                }
                return new LrpResult(out, atTarget);
            }
        });
    }

    /** Each row times its target output (Captum's {@code normalized_relevance * output}, in float). */
    private static Tensor scaledRows(Tensor t, double[] perRow) {
        float[] d = t.data().clone();
        int per = d.length / perRow.length;
        for (int r = 0; r < perRow.length; r++) {
            float f = (float) perRow[r];
            for (int k = r * per; k < (r + 1) * per; k++) {
                d[k] = d[k] * f;
            }
        }
        return new Tensor(t.shape(), d);
    }

    @Override
    public Tensor evaluatePerturbed(Perturbation p, int s0, int s1) {
        return evaluatePerturbed(p, s0, s1, output());
    }

    @Override
    public Tensor evaluatePerturbed(Perturbation p, int s0, int s1, String value) {
        batchOf(p.inputs());
        int n = s1 - s0;
        int[] home = java.util.Arrays.copyOfRange(p.home(), s0, s1);
        return live(() -> {
            try (Arena a = ops.arena()) {
                Map<String, T> given = new HashMap<>();
                T homeT = ops.indices(a, home);
                for (Map.Entry<String, Tensor> e : p.inputs().entrySet()) {
                    T x = ops.upload(a, e.getValue());
                    Perturbation.Rule rule = p.rules().get(e.getKey());
                    T out;
                    if (rule == null) {
                        // copied unchanged: ablation of no group
                        int[] none = new int[n];
                        java.util.Arrays.fill(none, -1);
                        out = ops.perturbSingle(a, x, x, ops.indices(a, new int[e.getValue().rowSize()]), homeT,
                                ops.indices(a, none));
                    } else {
                        T base = ops.upload(a, rule.baseline());
                        if (rule instanceof Perturbation.Single r) {
                            out = ops.perturbSingle(a, x, base, ops.indices(a, r.mask()), homeT,
                                    ops.indices(a, java.util.Arrays.copyOfRange(r.group(), s0, s1)));
                        } else if (rule instanceof Perturbation.Coalition r) {
                            out = ops.perturbCoalition(a, x, base, ops.indices(a, r.mask()), homeT,
                                    ops.indices(a, java.util.Arrays.copyOfRange(r.take(), s0 * r.groups(), s1 * r.groups())),
                                    r.groups());
                        } else {
                            int axes = e.getValue().rank() - 1;
                            out = ops.perturbBox(a, x, base, homeT, ops.indices(a, java.util.Arrays.copyOfRange(
                                    ((Perturbation.Box) rule).boxes(), s0 * 2 * axes, s1 * 2 * axes)));
                        }
                    }
                    given.put(e.getKey(), out);
                }
                Executor.Pass<T> pass = exec.forward(a, given, n, value.equals(output()) ? Set.of() : Set.of(value), false);
                return ops.download(pass.value(value));
            }
        });
    }

    @Override
    public PathGradients openPath(PathInputs spec, float[] alphas, float[] weights, int[] targets,
            boolean affineFirstLayer) {
        return openPath(spec, alphas, weights, new int[][] {targets}, affineFirstLayer);
    }

    @Override
    public PathGradients openPath(PathInputs spec, float[] alphas, float[] weights, int[][] targetSets,
            boolean affineFirstLayer) {
        Map<String, Tensor> all = new HashMap<>(spec.fixed());
        for (int i = 0; i < spec.names().size(); i++) {
            all.put(spec.names().get(i), spec.inputs().get(i));
        }
        int batch = batchOf(all);
        if (targetSets.length == 0) {
            throw new IllegalArgumentException("no target sets");
        }
        for (int[] t : targetSets) {
            checkTargets(t, batch);
        }
        boolean firstInputOnly = spec.names().equals(java.util.List.of(input())) && spec.fixed().isEmpty();
        int first = affineFirstLayer && firstInputOnly ? plan.affineFirstNode() : -1;
        return live(() -> new Path(spec, batch, alphas, weights, targetSets, first));
    }

    /** The path of one call: what lives for the whole path in one arena, each chunk in its own. */
    private final class Path implements PathGradients {
        private final Arena keep = ops.arena();
        private final int batch;
        private final PathInputs spec;
        private final float[] alphas;
        private final Node layer;
        private final java.util.List<T> xs = new java.util.ArrayList<>();
        private final java.util.List<T> bases = new java.util.ArrayList<>();
        private final Map<String, T> fixed = new HashMap<>();
        private final T alphasT;
        private final T weightsT;
        /**
         * Per target set: the example targets (made row targets per chunk, so that nothing of the path is
         * n_steps × batch long: flat memory in n_steps, issue 13), and the accumulator of each start value.
         */
        private final int[][] targets;
        private final java.util.List<java.util.List<T>> accs = new java.util.ArrayList<>();
        private final OpSet.AffineEndpoints<T> endpoints;
        /** The values the path runs in: the path values, or the first layer's output. */
        private final java.util.List<String> starts;
        private final double[][] atBase;
        private final double[][] atInput;

        Path(PathInputs spec, int batch, float[] alphas, float[] weights, int[][] hostTargets, int first) {
            this.batch = batch;
            this.spec = spec;
            this.alphas = alphas;
            try {
                for (int i = 0; i < spec.names().size(); i++) {
                    xs.add(ops.upload(keep, spec.inputs().get(i)));
                    bases.add(ops.upload(keep, spec.baselines().get(i)));
                }
                spec.fixed().forEach((k, v) -> fixed.put(k, ops.upload(keep, v)));
                alphasT = ops.upload(keep, new Tensor(new int[] {alphas.length}, alphas));
                weightsT = ops.upload(keep, new Tensor(new int[] {weights.length}, weights));
                targets = hostTargets;
                atBase = new double[hostTargets.length][];
                atInput = new double[hostTargets.length][];
                layer = first >= 0 ? plan.node(first) : null;
                starts = layer != null ? java.util.List.of(layer.output()) : spec.names();
                endpoints = layer != null ? ops.affineEndpoints(keep, layer, xs.get(0), bases.get(0),
                        plan.shape(layer.output(), batch)) : null;
                for (int j = 0; j < hostTargets.length; j++) {
                    java.util.List<T> perStart = new java.util.ArrayList<>();
                    for (String s : starts) {
                        perStart.add(ops.zeros(keep, plan.shape(s, batch)));
                    }
                    accs.add(perStart);
                }
            } catch (RuntimeException e) {
                keep.close();
                throw e;
            }
        }

        @Override
        public void run(int k0, int k1) {
            live(() -> {
                int rows = (k1 - k0) * batch;
                try (Arena a = ops.arena()) {
                    Map<String, T> given = new HashMap<>();
                    if (endpoints != null) {
                        given.put(starts.get(0), endpoints.interpolate(a, alphasT, k0, k1));
                    } else {
                        for (int i = 0; i < starts.size(); i++) {
                            given.put(starts.get(i), ops.interpolate(a, xs.get(i), bases.get(i), alphasT, k0, k1));
                        }
                    }
                    // a fixed value repeated for each step: b + α(b − b) is b exactly
                    fixed.forEach((k, v) -> given.put(k, ops.interpolate(a, v, v, alphasT, k0, k1)));
                    // one forward for every target set, then a backward per set (Captum: a call per target)
                    Executor.Pass<T> p = exec.forward(a, given, rows, Set.of(), true);
                    T y = p.value(output());
                    int sets = targets.length;
                    java.util.List<Map<String, T>> gs = new java.util.ArrayList<>();
                    double[][] chunkBase = new double[sets][];
                    double[][] chunkInput = new double[sets][];
                    for (int j = 0; j < sets; j++) {
                        int[] rowTargets = new int[rows];
                        for (int r = 0; r < rows; r++) {
                            rowTargets[r] = targets[j][r % batch];
                        }
                        T rowT = ops.indices(a, rowTargets);
                        T seed = ops.seedOneHot(a, ops.shape(y), rowT);
                        gs.add(exec.backward(a, p, output(), seed, new java.util.HashSet<>(starts), BackwardRule.gradient()));
                        for (int k = k0; k < k1; k++) {
                            if (alphas[k] == 0f) {
                                chunkBase[j] = ops.gatherTargets(a, y, rowT, (k - k0) * batch, batch);
                            } else if (alphas[k] == 1f) {
                                chunkInput[j] = ops.gatherTargets(a, y, rowT, (k - k0) * batch, batch);
                            }
                        }
                    }
                    // last, so that an out-of-memory retry of this chunk never finds it accumulated already
                    for (int j = 0; j < sets; j++) {
                        for (int i = 0; i < starts.size(); i++) {
                            ops.accumulate(accs.get(j).get(i), gs.get(j).get(starts.get(i)), weightsT, k0, k1);
                        }
                        atBase[j] = chunkBase[j] != null ? chunkBase[j] : atBase[j];
                        atInput[j] = chunkInput[j] != null ? chunkInput[j] : atInput[j];
                    }
                }
                return null;
            });
        }

        @Override
        public Result result() {
            return results().get(0);
        }

        @Override
        public java.util.List<Result> results() {
            java.util.List<Result> out = new java.util.ArrayList<>();
            for (int j = 0; j < accs.size(); j++) {
                out.add(result(j));
            }
            return out;
        }

        private Result result(int j) {
            return live(() -> {
                java.util.List<Tensor> sums = new java.util.ArrayList<>();
                for (int i = 0; i < accs.get(j).size(); i++) {
                    T sum = accs.get(j).get(i);
                    if (layer != null) {
                        // Σ_k w_k Wᵀ g_k = Wᵀ Σ_k w_k g_k: the layer's transpose once per example
                        T[] in = layerInputs();
                        boolean[] need = new boolean[in.length];
                        need[0] = true;
                        sum = ops.backward(keep, layer, in, plan.inputShapes(layer, batch), null, null, sum, need)[0];
                    }
                    Tensor g = ops.download(sum);
                    sums.add(new Tensor(spec.inputs().get(i).shape(), g.data()));
                }
                return new Result(sums, atBase[j], atInput[j]);
            });
        }

        private T[] layerInputs() {
            T[] in = ops.array(layer.inputs().size());
            in[0] = xs.get(0);
            for (int j = 1; j < in.length; j++) {
                in[j] = ops.constant(layer.inputs().get(j));
            }
            return in;
        }

        @Override
        public void close() {
            ops.onDevice(() -> {
                keep.close();
                return null;
            });
        }
    }

    /** Frees the backend's copy of the model (idempotent); later calls throw {@link ModelClosedException}. */
    @Override
    public void close() {
        ops.onDevice(() -> {
            if (!closed) {
                closed = true;
                ops.close();
            }
            return null;
        });
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return closed;
    }

    /**
     * Work under the op set's device lock, refused once the runner is closed: on CUDA its weights are
     * freed, and a kernel reading them would fault and leave the context (shared by every model of the
     * process) unusable.
     */
    private <R> R live(java.util.function.Supplier<R> work) {
        if (closed) {
            throw closedError();
        }
        return ops.onDevice(() -> {
            if (closed) {
                throw closedError();
            }
            return work.get();
        });
    }

    private ModelClosedException closedError() {
        return new ModelClosedException("model " + plan.graph().source() + " is closed (on " + plan.device()
                + "): its weights are freed; load it again");
    }
}
