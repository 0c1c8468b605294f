package dev.kxai.exec;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Node;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Runs an {@link ExecutionPlan} with a backend's {@link OpSet}: one interpreter for every backend.
 * A forward pass starts from any given values (the model input, or any intermediate value: a
 * layer's output) and computes what the requested values need, keeping named taps; a backward
 * pass starts from a seed at any value and returns the gradients with respect to any set of
 * values, each node's backward going through a {@link BackwardRule} (the gradient by default).
 * Thread-safe: a pass's state lives in its {@link Pass}; which nodes run for a given set of start
 * and wanted values is worked out once and cached.
 *
 * @param <T> the backend's tensor type
 */
public final class Executor<T> {
    private final ExecutionPlan plan;
    private final OpSet<T> ops;
    private final Map<String, BitSet> schedules = new ConcurrentHashMap<>();
    private final Map<String, Set<String>> flows = new ConcurrentHashMap<>();

    public Executor(ExecutionPlan plan, OpSet<T> ops) {
        this.plan = plan;
        this.ops = ops;
    }

    public ExecutionPlan plan() {
        return plan;
    }

    public OpSet<T> ops() {
        return ops;
    }

    /** The values and per-node saved state of one forward pass. */
    public static final class Pass<T> {
        private final Map<String, T> values;
        private final Object[] saved;
        private final BitSet ran;
        private final int batch;

        Pass(Map<String, T> values, int nodes, BitSet ran, int batch) {
            this.values = values;
            this.saved = new Object[nodes];
            this.ran = ran;
            this.batch = batch;
        }

        /** A value computed (or given) in this pass; null if it was not kept. */
        public T value(String name) {
            return values.get(name);
        }

        public int batch() {
            return batch;
        }

        /** Whether node i ran in this pass. */
        public boolean ran(int i) {
            return ran.get(i);
        }
    }

    /**
     * A forward pass from {@code given} (value name → tensor; rows = {@code batch}) to the graph
     * output and the {@code taps}. With {@code forBackward} every computed value and saved state
     * is kept for {@link #backward}; without, each value is dropped after its last reader (the
     * output, the given values and the taps stay).
     */
    public Pass<T> forward(Arena a, Map<String, T> given, int batch, Set<String> taps, boolean forBackward) {
        for (String name : given.keySet()) {
            if (!plan.hasValue(name)) {
                throw new InvalidInputException("no value '" + name + "' in " + plan.graph().source());
            }
        }
        for (String name : taps) {
            if (!plan.hasValue(name)) {
                throw new InvalidInputException("no value '" + name + "' to tap in " + plan.graph().source());
            }
        }
        BitSet run = schedule(given.keySet(), taps);
        Map<String, T> values = new HashMap<>(given);
        Pass<T> p = new Pass<>(values, plan.nodes().size(), run, batch);
        Set<String> keep = new HashSet<>(taps);
        keep.add(plan.graph().outputName());
        keep.addAll(given.keySet());
        BitSet fusedAhead = new BitSet();
        for (int i = run.nextSetBit(0); i >= 0; i = run.nextSetBit(i + 1)) {
            if (fusedAhead.get(i)) {
                continue; // computed by the fusion group it belongs to
            }
            Node n = plan.node(i);
            T[] in = inputs(p, n);
            FusionGroup g = plan.groupAtHead(i);
            if (g != null && fusable(g, run, keep)) {
                OpSet.Forward<T>[] r = ops.forwardFused(a, plan, g, in, batch);
                if (r != null) {
                    for (int m = 0; m < g.nodes().length; m++) {
                        int idx = g.nodes()[m];
                        p.saved[idx] = r[m].saved();
                        if (r[m].output() != null) {
                            values.put(plan.node(idx).output(), r[m].output());
                        }
                    }
                    for (int idx : g.nodes()) {
                        fusedAhead.set(idx);
                    }
                    release(p, g, i, keep, forBackward);
                    continue;
                }
            }
            OpSet.Forward<T> r = ops.forward(a, n, in, plan.shape(n.output(), batch));
            p.saved[i] = r.saved();
            values.put(n.output(), r.output());
            if (!forBackward) {
                releaseInputs(p, n, i, keep);
            }
        }
        return p;
    }

    /** After a fusion group ran at its head's position: nodes between its members may still read values. */
    private void release(Pass<T> p, FusionGroup g, int at, Set<String> keep, boolean forBackward) {
        if (!forBackward) {
            for (int idx : g.nodes()) {
                releaseInputs(p, plan.node(idx), at, keep);
            }
        }
    }

    /** Drops the inputs of node n that no node after {@code at} reads (forward-only passes). */
    private void releaseInputs(Pass<T> p, Node n, int at, Set<String> keep) {
        for (String in : n.inputs()) {
            if (!keep.contains(in) && plan.lastUse(in) <= at && !plan.isConstant(in)) {
                p.values.remove(in);
            }
        }
    }

    /** A group runs fused when all its nodes run and none but the last has a value someone wants to see. */
    private boolean fusable(FusionGroup g, BitSet run, Set<String> keep) {
        for (int m = 0; m < g.nodes().length; m++) {
            int idx = g.nodes()[m];
            if (!run.get(idx) || (m < g.nodes().length - 1 && keep.contains(plan.node(idx).output()))) {
                return false;
            }
        }
        return true;
    }

    private T[] inputs(Pass<T> p, Node n) {
        T[] in = ops.array(n.inputs().size());
        for (int j = 0; j < in.length; j++) {
            String name = n.inputs().get(j);
            T v = p.values.get(name);
            in[j] = v != null ? v : plan.isConstant(name) ? ops.constant(name) : null;
        }
        return in;
    }

    /**
     * The nodes to run: those whose output the wanted values need and that are not given. Every
     * value such a node reads must be given, a constant, or computed by another of them.
     */
    private BitSet schedule(Set<String> given, Set<String> taps) {
        String key = new TreeSet<>(given) + "->" + new TreeSet<>(taps);
        return schedules.computeIfAbsent(key, k -> {
            BitSet run = new BitSet();
            List<String> todo = new ArrayList<>(taps);
            todo.add(plan.graph().outputName());
            Set<String> seen = new HashSet<>();
            while (!todo.isEmpty()) {
                String v = todo.remove(todo.size() - 1);
                if (!seen.add(v) || given.contains(v) || plan.isConstant(v)) {
                    continue;
                }
                int i = plan.producer(v);
                if (i < 0) {
                    throw new InvalidInputException("value '" + v + "' is needed but not given (given: " + new TreeSet<>(given)
                            + ")");
                }
                run.set(i);
                todo.addAll(plan.node(i).inputs());
            }
            return run;
        });
    }

    /**
     * A backward pass: from {@code seed} at value {@code seedAt} back to the gradients with respect
     * to each of {@code wrt} (zeros where the seed does not reach one), through the nodes that ran
     * in {@code p}, each node's backward given by {@code rule}.
     */
    public Map<String, T> backward(Arena a, Pass<T> p, String seedAt, T seed, Set<String> wrt, BackwardRule<T> rule) {
        Set<String> flow = flow(wrt);
        Map<String, T> grads = new HashMap<>();
        grads.put(seedAt, seed);
        int start = plan.producer(seedAt);
        for (int i = start; i >= 0; i--) {
            if (!p.ran(i)) {
                continue;
            }
            Node n = plan.node(i);
            T g = wrt.contains(n.output()) ? grads.get(n.output()) : grads.remove(n.output());
            if (g == null) {
                continue;
            }
            boolean[] need = new boolean[n.inputs().size()];
            boolean any = false;
            for (int j = 0; j < need.length; j++) {
                need[j] = flow.contains(n.inputs().get(j));
                any |= need[j];
            }
            if (!any) {
                continue;
            }
            T[] in = inputs(p, n);
            T out = p.values.get(n.output());
            int node = i;
            BackwardRule.Call<T> call = new BackwardRule.Call<>(a, n, i, in, out, p.saved[i], g, need,
                    () -> ops.backward(a, n, in, plan.inputShapes(n, p.batch), out, p.saved[node], g, need));
            T[] gi = rule.backward(call);
            if (gi == null) {
                gi = call.gradient().get();
            }
            for (int j = 0; j < need.length; j++) {
                if (need[j] && gi[j] != null) {
                    String name = n.inputs().get(j);
                    T prev = grads.get(name);
                    grads.put(name, prev == null ? gi[j] : ops.add(a, prev, gi[j]));
                }
            }
        }
        Map<String, T> out = new HashMap<>();
        for (String w : wrt) {
            T g = grads.get(w);
            out.put(w, g != null ? g : ops.zeros(a, plan.shape(w, p.batch)));
        }
        return out;
    }

    /** The values through which a gradient flows to one of {@code wrt}: those that depend on one of them. */
    private Set<String> flow(Set<String> wrt) {
        return flows.computeIfAbsent(new TreeSet<>(wrt).toString(), k -> {
            Set<String> f = new HashSet<>(wrt);
            for (Node n : plan.nodes()) {
                if (n.inputs().stream().anyMatch(f::contains)) {
                    f.add(n.output());
                }
            }
            return Set.copyOf(f);
        });
    }
}
