package dev.kxai.attr;

import dev.kxai.backend.Backend;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathGradients;
import dev.kxai.exec.ExecutionPlan;
import java.util.Map;
import java.util.Set;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A backend that wraps another and records the rows of every {@code forward} call its runners make
 * (the delta's extra forward pass), and how many path integrals ran. Everything else is delegated,
 * so the wrapped backend's own path (the device path on CUDA) runs. Shared by the CPU and the CUDA
 * tests of endpoint reuse.
 */
public final class CountingBackend implements Backend {
    private final Backend inner;
    /** Rows of each forward call, in order. */
    public final List<Integer> forwardRows = new CopyOnWriteArrayList<>();
    /** Path integrals run (openPath calls). */
    public final List<Integer> paths = new CopyOnWriteArrayList<>();

    public CountingBackend(Backend inner) {
        this.inner = inner;
    }

    public void reset() {
        forwardRows.clear();
        paths.clear();
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public String description() {
        return "counting " + inner.description();
    }

    @Override
    public ModelRunner prepare(Graph graph) {
        ModelRunner r = inner.prepare(graph);
        return new ModelRunner() {
            @Override
            public Graph graph() {
                return r.graph();
            }

            @Override
            public Backend backend() {
                return CountingBackend.this;
            }

            @Override
            public ExecutionPlan plan() {
                return r.plan();
            }

            @Override
            public long chunkBudgetBytes() {
                return r.chunkBudgetBytes();
            }

            @Override
            public String unusableReason() {
                return r.unusableReason();
            }

            @Override
            public Map<String, Tensor> evaluate(Map<String, Tensor> given, Set<String> taps) {
                forwardRows.add(given.values().iterator().next().dim(0)); // a forward pass, by its rows
                return r.evaluate(given, taps);
            }

            @Override
            public Map<String, Tensor> gradients(Map<String, Tensor> given, int[] targets, Set<String> wrt) {
                return r.gradients(given, targets, wrt);
            }

            @Override
            public Tensor forward(Tensor x) {
                forwardRows.add(x.dim(0));
                return r.forward(x);
            }

            @Override
            public Gradient gradient(Tensor x, int[] targets) {
                return r.gradient(x, targets);
            }

            @Override
            public PathGradients openPath(dev.kxai.backend.PathInputs p, float[] alphas, float[] weights, int[] targets,
                    boolean affineFirstLayer) {
                paths.add(alphas.length);
                return r.openPath(p, alphas, weights, targets, affineFirstLayer);
            }

            @Override
            public PathGradients openPath(dev.kxai.backend.PathInputs p, float[] alphas, float[] weights,
                    int[][] targets, boolean affineFirstLayer) {
                paths.add(alphas.length);
                return r.openPath(p, alphas, weights, targets, affineFirstLayer);
            }

            @Override
            public Map<String, Tensor> gradients(Map<String, Tensor> given, int[] targets, Set<String> wrt, ReluRule rule) {
                return r.gradients(given, targets, wrt, rule);
            }

            @Override
            public DeepLiftResult deepLift(Map<String, Tensor> given, Map<String, Tensor> reference, int[] targets,
                    Set<String> wrt, boolean maxPoolRule) {
                forwardRows.add(2 * given.values().iterator().next().dim(0));
                return r.deepLift(given, reference, targets, wrt, maxPoolRule);
            }

            @Override
            public DeepLiftResult deepLift(Map<String, Tensor> given, Map<String, Tensor> reference, String value,
                    int[] index, Set<String> wrt, boolean maxPoolRule) {
                forwardRows.add(2 * given.values().iterator().next().dim(0));
                return r.deepLift(given, reference, value, index, wrt, maxPoolRule);
            }

            @Override
            public Map<String, Tensor> neuronGradients(Map<String, Tensor> given, String value, int[] neuron,
                    Set<String> wrt, ReluRule rule) {
                return r.neuronGradients(given, value, neuron, wrt, rule);
            }

            @Override
            public Tensor evaluatePerturbed(dev.kxai.backend.Perturbation p, int s0, int s1, String value) {
                forwardRows.add(s1 - s0);
                return r.evaluatePerturbed(p, s0, s1, value);
            }

            @Override
            public LrpResult lrp(Map<String, Tensor> given, int[] targets, Set<String> wrt,
                    dev.kxai.backend.LrpRules rules) {
                forwardRows.add(given.values().iterator().next().dim(0));
                return r.lrp(given, targets, wrt, rules);
            }

            @Override
            public Map<String, Tensor> neuronGradients(Map<String, Tensor> given, String value, int[] neuron,
                    Set<String> wrt) {
                return r.neuronGradients(given, value, neuron, wrt);
            }

            @Override
            public Map<String, Tensor> seededGradients(Map<String, Tensor> given, String value, Tensor seed,
                    Set<String> wrt) {
                return r.seededGradients(given, value, seed, wrt);
            }

            @Override
            public java.util.List<Map<String, Tensor>> gradients(Map<String, Tensor> given, int[][] targets,
                    Set<String> wrt) {
                forwardRows.add(given.values().iterator().next().dim(0));
                return r.gradients(given, targets, wrt);
            }

            @Override
            public Tensor evaluatePerturbed(dev.kxai.backend.Perturbation p, int s0, int s1) {
                forwardRows.add(s1 - s0);
                return r.evaluatePerturbed(p, s0, s1);
            }

            @Override
            public void close() {
                r.close();
            }
        };
    }
}
