package dev.kxai.onnx;

import dev.kxai.InvalidInputException;
import dev.kxai.ModelException;
import dev.kxai.exec.ShapeInference;
import dev.kxai.graph.Node;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the importer knows about values at load: constants, and values computed from the shapes
 * of activations (PyTorch's {@code x.size(0)} in a {@code view} or {@code expand}), which depend
 * on the batch size. Those are evaluated at batch sizes 1, 2 and 3, from every value's shape at
 * those batch sizes (tracked node by node as the graph is read); a value that is the same at all
 * three is a constant, one that changes must change linearly with the batch (checked where a node
 * reads it) and reaches the graph as its value at batch 1 plus its change per row
 * ({@link dev.kxai.graph.Graph#perRow}). So shape arithmetic costs nothing per request, and the
 * operators that read a shape see a known one.
 */
final class LoadTime {
    static final int BATCHES = 3;

    private final String source;
    /** Batch-independent values: initializers, Constant nodes, folded results. */
    private final Map<String, Tensor> constants = new LinkedHashMap<>();
    /** Batch-dependent load-time values at batch 1, 2, 3. */
    private final Map<String, Tensor[]> symbolic = new HashMap<>();
    /** Per batch size: every constant and batch-dependent value at that batch (what shape inference reads). */
    private final List<Map<String, Tensor>> valuesAt = new ArrayList<>();
    /** Per batch size: the shape of every graph input and node output. */
    private final List<Map<String, int[]>> shapesAt = new ArrayList<>();
    /** Why activation shapes stopped being known (a node shape inference refused), or null. */
    private String shapesLost;
    /** Values of integer or bool element type (ONNX Div truncates on them). */
    private final Set<String> integers = new HashSet<>();

    LoadTime(String source) {
        this.source = source;
        for (int b = 0; b < BATCHES; b++) {
            valuesAt.add(new HashMap<>());
            shapesAt.add(new HashMap<>());
        }
    }

    void putConstant(String name, Tensor t, boolean integer) {
        constants.put(name, t);
        for (Map<String, Tensor> m : valuesAt) {
            m.put(name, t);
        }
        if (integer) {
            integers.add(name);
        }
    }

    Map<String, Tensor> constants() {
        return constants;
    }

    boolean isConstant(String v) {
        return constants.containsKey(v);
    }

    /** A constant or a batch-dependent load-time value. */
    boolean isLoadTime(String v) {
        return constants.containsKey(v) || symbolic.containsKey(v);
    }

    boolean isBatchDependent(String v) {
        return symbolic.containsKey(v);
    }

    boolean isInteger(String v) {
        return integers.contains(v);
    }

    /** Marks a value computed per request as integer-valued (indices a lowering computes: ArgMax, TopK's). */
    void markInteger(String v) {
        integers.add(v);
    }

    /** A load-time value at batch index b (0 → batch 1). */
    Tensor valueAt(String v, int b) {
        return valuesAt.get(b).get(v);
    }

    void addInput(String name, int[] declared, boolean integer) {
        for (int b = 0; b < BATCHES; b++) {
            shapesAt.get(b).put(name, Shapes.withBatch(declared, b + 1));
        }
        if (integer) {
            integers.add(name);
        }
    }

    /** A node output's or input's inferred shape at batch index b (0 → batch 1), or null where it is not known. */
    int[] inferredShape(String v, int b) {
        return shapesAt.get(b).get(v);
    }

    /** A value's shape at batch 1 where it is known at load (a constant, or an inferred activation), else null. */
    int[] knownShape(String v) {
        Tensor t = valueAt(v, 0);
        return t != null ? t.shape() : shapesAt.get(0).get(v);
    }

    /** The shape of a value at batch index b; a node's name is given for the message when unknown. */
    int[] shapeAt(String v, int b, String node) {
        Tensor t = valueAt(v, b);
        if (t != null) {
            return t.shape();
        }
        int[] s = shapesAt.get(b).get(v);
        if (s == null) {
            throw new ModelException(source + ": node '" + node + "' needs the shape of '" + v + "', which is not known at load"
                    + (shapesLost != null ? " (" + shapesLost + ")" : ""));
        }
        return s;
    }

    /** Records a load-time result computed at every batch size: a constant if it does not change. */
    void putComputed(String name, Tensor[] perBatch, boolean integer) {
        boolean same = true;
        for (int b = 1; b < BATCHES; b++) {
            same &= Arrays.equals(perBatch[b].shape(), perBatch[0].shape())
                    && Arrays.equals(perBatch[b].data(), perBatch[0].data());
        }
        if (same) {
            putConstant(name, perBatch[0], integer);
            return;
        }
        symbolic.put(name, perBatch.clone());
        for (int b = 0; b < BATCHES; b++) {
            valuesAt.get(b).put(name, perBatch[b]);
        }
        if (integer) {
            integers.add(name);
        }
    }

    /** {@code v} (a value with no node of its own) has the shapes {@code like} has at every batch size. */
    void shapeLike(String v, String like) {
        for (int b = 0; b < BATCHES; b++) {
            int[] s = shapesAt.get(b).get(like);
            if (s != null) {
                shapesAt.get(b).put(v, s);
            }
        }
    }

    /** A graph node was added: its output's shape at each batch size (unknown from the first node inference refuses). */
    void nodeAdded(Node n) {
        if (shapesLost != null) {
            return;
        }
        for (int b = 0; b < BATCHES; b++) {
            int[][] in = new int[n.inputs().size()][];
            for (int j = 0; j < in.length; j++) {
                String v = n.inputs().get(j);
                Tensor t = valueAt(v, b);
                in[j] = t != null ? t.shape() : shapesAt.get(b).get(v);
                if (in[j] == null) {
                    shapesLost = "the shape of '" + v + "' is unknown";
                    return;
                }
            }
            try {
                shapesAt.get(b).put(n.output(), ShapeInference.outputShape(n, in, valuesAt.get(b)));
            } catch (InvalidInputException e) {
                shapesLost = e.getMessage() + " at batch " + (b + 1);
                return;
            }
        }
    }

    /**
     * The change per row of a batch-dependent value a node reads, checked to be linear in the
     * batch (values at batch 1, 2, 3 equally spaced, same shape).
     */
    Tensor perRow(String v, String node) {
        Tensor[] at = symbolic.get(v);
        float[] d = new float[at[0].size()];
        for (int b = 1; b < BATCHES; b++) {
            if (!Arrays.equals(at[b].shape(), at[0].shape())) {
                throw new ModelException(source + ": node '" + node + "' reads '" + v + "', whose shape changes with the "
                        + "batch size (" + Shapes.str(at[0].shape()) + " at batch 1, " + Shapes.str(at[b].shape())
                        + " at batch " + (b + 1) + "); kxai supports batch-dependent shapes, not batch-dependent tensors");
            }
        }
        for (int i = 0; i < d.length; i++) {
            d[i] = at[1].data()[i] - at[0].data()[i];
            if (at[2].data()[i] - at[1].data()[i] != d[i]) {
                throw new ModelException(source + ": node '" + node + "' reads '" + v + "', which is not linear in the batch "
                        + "size (" + Arrays.toString(at[0].data()) + ", " + Arrays.toString(at[1].data()) + ", "
                        + Arrays.toString(at[2].data()) + " at batch 1, 2, 3)");
            }
        }
        return new Tensor(at[0].shape(), d);
    }
}
