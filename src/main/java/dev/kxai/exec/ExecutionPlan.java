package dev.kxai.exec;

import dev.kxai.InvalidInputException;
import dev.kxai.ModelException;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.tensor.Shapes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Everything about running a graph on one backend that does not depend on the data, worked out
 * once when a model is loaded and immutable after (so request threads share it): every value's
 * shape as a function of the batch, which values depend on the model input, who reads each value
 * and when it is last read (liveness), the fusion groups the backend accepts, the node the
 * first-layer saving applies to, the working set per example, and whether the backend runs each
 * node (with the reason where it does not).
 *
 * <p>Shapes are inferred ({@link ShapeInference}) at batch 1 and batch 2; every dimension is then
 * a + b·batch, which holds for every operator kxai runs (the batch only ever scales one dimension
 * of a value, or a product of dimensions after a Reshape). A graph whose shapes only work at batch
 * 1 (a Reshape to a fixed [1, ...]) is refused for other batch sizes with the node named.
 */
public final class ExecutionPlan {
    private final Graph graph;
    private final List<Node> nodes;
    private final String device;
    private final Map<String, int[]> shapesAt1;
    private final Map<String, int[]> shapesAt2;
    /** Why batches other than 1 cannot run, or null. */
    private final String batchOneOnly;
    private final Set<String> dependsOnInput;
    private final Map<String, List<Integer>> readers;
    private final Map<String, Integer> producer;
    private final Map<String, Integer> lastUse;
    private final int affineFirstNode;
    private final long workingFloatsPerExample;
    private final long forwardFloatsPerExample;
    private final int[] exampleShape;
    private final int outputsPerExample;
    private final Support[] support;
    private final FusionGroup[] groupAtHead;
    private final FusionGroup[] groupOf;

    private ExecutionPlan(Graph graph, OpSet<?> ops, boolean fuse) {
        this.graph = graph;
        this.nodes = graph.nodes();
        this.device = ops.device();
        int[] declared = graph.inputShape();
        exampleShape = Arrays.copyOfRange(declared, 1, declared.length);
        for (Graph.Input in : graph.inputs()) {
            int[] d = in.shape();
            for (int i = 1; i < d.length; i++) {
                if (d[i] <= 0) {
                    throw new ModelException(graph.source() + ": input '" + in.name() + "' has a dynamic dimension " + i
                            + " " + Shapes.str(d) + "; kxai needs every dimension but the batch fixed");
                }
            }
        }
        try {
            shapesAt1 = Collections.unmodifiableMap(ShapeInference.infer(graph, 1));
        } catch (InvalidInputException e) {
            throw new ModelException(graph.source() + ": the graph cannot run on an input of shape "
                    + Shapes.str(Shapes.withBatch(declared, 1)) + ": " + e.getMessage(), e);
        }
        Map<String, int[]> two;
        String oneOnly = null;
        try {
            two = ShapeInference.infer(graph, 2);
        } catch (InvalidInputException e) {
            two = shapesAt1;
            oneOnly = e.getMessage();
        }
        shapesAt2 = Collections.unmodifiableMap(two);
        batchOneOnly = oneOnly;
        if (oneOnly == null) {
            keepsExamplesApart();
        }

        Set<String> dep = new HashSet<>();
        for (Graph.Input in : graph.inputs()) {
            dep.add(in.name());
        }
        Map<String, List<Integer>> r = new HashMap<>();
        Map<String, Integer> prod = new HashMap<>();
        Map<String, Integer> last = new HashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            for (String in : n.inputs()) {
                r.computeIfAbsent(in, k -> new ArrayList<>()).add(i);
                last.put(in, i);
            }
            prod.put(n.output(), i);
            if (n.inputs().stream().anyMatch(dep::contains)) {
                dep.add(n.output());
            }
        }
        last.put(graph.outputName(), nodes.size());
        r.replaceAll((k, v) -> List.copyOf(v));
        dependsOnInput = Set.copyOf(dep);
        readers = Map.copyOf(r);
        producer = Map.copyOf(prod);
        lastUse = Map.copyOf(last);
        affineFirstNode = FirstLayer.affineNode(graph);

        long floats = 0;
        for (Graph.Input in : graph.inputs()) {
            floats += Shapes.size(Arrays.copyOfRange(in.shape(), 1, in.shape().length)); // one example of each input
        }
        for (Node n : nodes) {
            floats += 2L * Shapes.size(shapesAt1.get(n.output())); // activation and its gradient
        }
        workingFloatsPerExample = floats;
        forwardFloatsPerExample = forwardPeak(graph, nodes, shapesAt1, last);
        outputsPerExample = Shapes.intSize(shapesAt1.get(graph.outputName()));

        support = new Support[nodes.size()];
        for (int i = 0; i < nodes.size(); i++) {
            support[i] = ops.support(nodes.get(i), inputShapes(nodes.get(i), 1), this);
        }
        groupAtHead = new FusionGroup[nodes.size()];
        groupOf = new FusionGroup[nodes.size()];
        if (fuse) {
            for (FusionGroup g : ops.fusions(this)) {
                groupAtHead[g.head()] = g;
                for (int i : g.nodes()) {
                    groupOf[i] = g;
                }
            }
        }
    }

    /**
     * Refuses a node that would mix the examples of a batch: a reduction or softmax over an axis
     * whose size grows with the batch (the batch axis, wherever transposes have moved it, or an
     * axis it was merged into).
     */
    private void keepsExamplesApart() {
        for (Node n : nodes) {
            int[] x1 = shapesAt1.get(n.inputs().get(0));
            int[] x2 = shapesAt2.get(n.inputs().get(0));
            boolean[] over = null;
            if (n.op() instanceof dev.kxai.graph.Op.Reduce r) {
                over = r.reduced(x1.length);
            } else if (n.op() instanceof dev.kxai.graph.Op.Softmax sm) {
                over = new boolean[x1.length];
                int a = sm.axis() < 0 ? sm.axis() + x1.length : sm.axis();
                for (int d = a; d < x1.length && d >= 0; d++) {
                    over[d] = d == a || sm.flatten();
                }
            }
            for (int d = 0; over != null && d < x1.length; d++) {
                if (over[d] && x1[d] != x2[d]) {
                    throw new ModelException(graph.source() + ": node '" + n.name() + "' (" + n.opType()
                            + ") works across axis " + d + " of " + Shapes.str(x1) + " (at batch 1), which grows with "
                            + "the batch: it would mix the examples of a batch");
                }
            }
        }
    }

    /** The plan of a graph on the backend whose operators are {@code ops}; {@code fuse} false plans no fusion (tests compare the two). */
    public static ExecutionPlan build(Graph graph, OpSet<?> ops, boolean fuse) {
        return new ExecutionPlan(graph, ops, fuse);
    }

    public Graph graph() {
        return graph;
    }

    public List<Node> nodes() {
        return nodes;
    }

    public Node node(int i) {
        return nodes.get(i);
    }

    /** The backend this plan was made for. */
    public String device() {
        return device;
    }

    /** The shape of one example of a model input (its shape without the batch axis). */
    public int[] exampleShape(String input) {
        for (Graph.Input in : graph.inputs()) {
            if (in.name().equals(input)) {
                return Arrays.copyOfRange(in.shape(), 1, in.shape().length);
            }
        }
        throw new InvalidInputException("no input '" + input + "' in " + graph.source());
    }

    /** The shape of one example of the first input (the input shape without the batch axis). */
    public int[] exampleShape() {
        return exampleShape.clone();
    }

    /** Output values per example: the range of valid targets. */
    public int outputsPerExample() {
        return outputsPerExample;
    }

    /** The shape of one example's output (the output shape without the batch axis). */
    public int[] outputExampleShape() {
        int[] s = shapesAt1.get(graph.outputName());
        return Arrays.copyOfRange(s, Math.min(1, s.length), s.length);
    }

    /** Whether a value (input, constant or node output) is known to the plan. */
    public boolean hasValue(String value) {
        return shapesAt1.containsKey(value);
    }

    /** The shape of a value for a batch of {@code batch} rows. */
    public int[] shape(String value, int batch) {
        int[] a = shapesAt1.get(value);
        if (a == null) {
            throw new InvalidInputException("no value '" + value + "' in " + graph.source());
        }
        if (batch != 1 && batchOneOnly != null) {
            throw new InvalidInputException(graph.source() + " runs only one row at a time (" + batchOneOnly
                    + " at batch 2); got " + batch + " rows");
        }
        int[] b = shapesAt2.get(value);
        int[] s = new int[a.length];
        for (int d = 0; d < a.length; d++) {
            long v = a[d] + (long) (b[d] - a[d]) * (batch - 1);
            if (v > Integer.MAX_VALUE) {
                throw new InvalidInputException("value '" + value + "' of " + graph.source() + " would have " + v
                        + " entries on axis " + d + " at a batch of " + batch + " rows; at most " + Integer.MAX_VALUE);
            }
            s[d] = (int) v;
        }
        return s;
    }

    /** The input shapes of a node for a batch. */
    public int[][] inputShapes(Node n, int batch) {
        int[][] s = new int[n.inputs().size()][];
        for (int j = 0; j < s.length; j++) {
            s[j] = shape(n.inputs().get(j), batch);
        }
        return s;
    }

    /** Whether a value depends on the model input (only those get gradients). */
    public boolean dependsOnInput(String value) {
        return dependsOnInput.contains(value);
    }

    /** The nodes reading a value, one entry per reading input, in order. */
    public List<Integer> readers(String value) {
        return readers.getOrDefault(value, List.of());
    }

    /** The node producing a value, or -1 (the input, a constant). */
    public int producer(String value) {
        return producer.getOrDefault(value, -1);
    }

    /** The last node reading a value ({@code nodes().size()} for the graph output), or -1 if none does. */
    public int lastUse(String value) {
        return lastUse.getOrDefault(value, -1);
    }

    public boolean isConstant(String value) {
        return graph.constants().containsKey(value);
    }

    /** The node the first-layer saving applies to ({@link FirstLayer}), or -1. */
    public int affineFirstNode() {
        return affineFirstNode;
    }

    /** Floats of activations and gradients one example needs in a forward and backward pass. */
    public long workingFloatsPerExample() {
        return workingFloatsPerExample;
    }

    /**
     * Floats of activations one example needs at the peak of a forward-only pass, in which the
     * executor drops each value after its last reader: the most that is alive at once, walking the
     * nodes in order (the inputs alive until their last reader, each output from its node to its
     * last reader, the graph's output to the end). No gradients, so a fraction of
     * {@link #workingFloatsPerExample()}.
     */
    public long forwardFloatsPerExample() {
        return forwardFloatsPerExample;
    }

    private static long forwardPeak(Graph graph, List<Node> nodes, Map<String, int[]> shapes, Map<String, Integer> last) {
        long live = 0;
        Map<Integer, Long> freedAfter = new HashMap<>();
        for (Graph.Input in : graph.inputs()) {
            long f = Shapes.size(Arrays.copyOfRange(in.shape(), 1, in.shape().length));
            live += f;
            freedAfter.merge(last.getOrDefault(in.name(), -1), f, Long::sum);
        }
        live -= freedAfter.getOrDefault(-1, 0L); // an input no node reads
        long peak = live;
        for (int i = 0; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            long f = Shapes.size(shapes.get(n.output()));
            live += f; // the output exists while the node's inputs are still alive
            peak = Math.max(peak, live);
            int end = last.getOrDefault(n.output(), i); // never read: dropped at once
            freedAfter.merge(end, f, Long::sum);
            live -= freedAfter.getOrDefault(i, 0L);
        }
        return Math.max(1, peak);
    }

    /** Whether this backend runs node i, and why not. */
    public Support support(int i) {
        return support[i];
    }

    /** The nodes this backend does not run, each as "node 'name' (Op): reason"; empty when it runs them all. */
    public List<String> unsupported() {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) {
            if (!support[i].supported()) {
                Node n = nodes.get(i);
                out.add("node '" + n.name() + "' (" + n.opType() + "): " + support[i].reason());
            }
        }
        return out;
    }

    /** The fusion group headed by node i, or null. */
    public FusionGroup groupAtHead(int i) {
        return groupAtHead[i];
    }

    /** Every fusion group, in node order. */
    public List<FusionGroup> fusions() {
        List<FusionGroup> out = new ArrayList<>();
        for (FusionGroup g : groupAtHead) {
            if (g != null) {
                out.add(g);
            }
        }
        return out;
    }

    /** A one-line summary per node (for {@code kxai info}-style listings and tests). */
    public Map<String, String> describe() {
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            String s = n.opType() + " " + Shapes.str(shapesAt1.get(n.output())) + (support[i].supported() ? ""
                    : " NOT RUN on " + device + ": " + support[i].reason()) + (groupOf[i] != null ? " fused" : "");
            out.put(n.name(), s);
        }
        return out;
    }
}
