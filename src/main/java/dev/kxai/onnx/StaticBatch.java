package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Models exported with a fixed batch: {@code torch.onnx.export(model, torch.rand(1, 3, 224, 224), f)}
 * without {@code dynamic_axes}, the tutorials' line. The exporter then writes the batch it traced
 * with into constants: {@code x.view(x.size(0), -1)} becomes Reshape to {@code [1, -1]}, a class
 * token's {@code expand(B, -1, -1)} a constant {@code [1, 1, D]} concatenated to the tokens,
 * {@code torch.zeros(B, …)} a constant added to an activation. kxai runs batches of any size (the
 * examples × path steps of Integrated Gradients, in chunks), so such a model would run one row at a
 * time at best. Where the graph's inputs all declare the same fixed batch N and a constant carries N
 * on its first axis where a per-request value carries the batch, the constant is made batch-free:
 * <ul>
 *   <li>Reshape / Expand targets {@code [N, …]} of a value whose first axis is the batch: the first
 *       entry becomes 0 (copy the batch; -1 where the value's first axis is the batch times k) for
 *       Reshape, 1 (broadcast) for Expand;</li>
 *   <li>a constant operand {@code [N, …]} of an element-wise operator: its first row, when all N
 *       rows are equal (a broadcast the exporter materialised); of a Concat along another axis:
 *       its first row expanded to the batch by an Expand node;</li>
 *   <li>N rows that differ: refused, naming the constant, the export's batch and the fix (export
 *       with {@code dynamic_axes}).</li>
 * </ul>
 * With a free batch (the input's first axis a name, as {@code dynamic_axes} writes it) nothing here applies.
 */
final class StaticBatch {
    private static final Set<String> ELEMENTWISE = Set.of("Add", "Sub", "Mul", "Div", "Pow", "Where", "Max", "Min",
            "Sum", "Mean", "PRelu", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor",
            "Mod", "BitShift");

    private StaticBatch() {
    }

    /** The batch every graph input declares on its first axis, or 0 when one leaves it free (or they differ). */
    static int exportBatch(List<OnnxMl.ValueInfoProto> inputs, LoadTime lt) {
        int n = 0;
        for (OnnxMl.ValueInfoProto in : inputs) {
            if (lt.isConstant(in.getName())) {
                continue;
            }
            List<OnnxMl.TensorShapeProto.Dimension> dims = in.getType().getTensorType().getShape().getDimList();
            if (dims.isEmpty() || !dims.get(0).hasDimValue() || dims.get(0).getDimValue() < 1
                    || dims.get(0).getDimValue() > Integer.MAX_VALUE) {
                return 0;
            }
            int d = (int) dims.get(0).getDimValue();
            if (n != 0 && d != n) {
                return 0;
            }
            n = d;
        }
        return n;
    }

    /**
     * The node with its batch-carrying constants replaced (new constants, or an Expand node added
     * through {@code out}); the node itself when nothing applies.
     */
    static OnnxMl.NodeProto rewrite(OnnxMl.NodeProto n, String name, String source, int batch, LoadTime lt,
            Set<String> known, Decompositions.Sink out) {
        if (batch < 1 || n.getInputCount() < 2) {
            return n;
        }
        String op = n.getOpType();
        if (op.equals("Reshape") || op.equals("Expand")) {
            String x = n.getInput(0);
            String target = n.getInput(1);
            int growth = perRequest(x, lt, known, name);
            if (growth == 0 || !lt.isConstant(target)) {
                return n;
            }
            float[] t = lt.valueAt(target, 0).data().clone();
            if (t.length == 0 || t[0] != batch) {
                return n;
            }
            if (op.equals("Expand")) {
                t[0] = 1;
            } else {
                boolean inferred = false;
                for (float v : t) {
                    inferred |= v == -1;
                }
                boolean allowZero = new Attrs(n, name, source).i("allowzero", 0) != 0;
                if (growth == 1 && !allowZero) {
                    t[0] = 0;
                } else if (!inferred) {
                    t[0] = -1;
                } else {
                    return n;
                }
            }
            String fixed = n.getOutput(0) + "/batch_free_target";
            out.constant(fixed, new Tensor(new int[] {t.length}, t));
            return n.toBuilder().setInput(1, fixed).build();
        }
        boolean concat = op.equals("Concat");
        if (!concat && !ELEMENTWISE.contains(op)) {
            return n;
        }
        // a per-request operand whose first axis is the batch, and the rank it has
        int rank = -1;
        for (String v : n.getInputList()) {
            if (!v.isEmpty() && perRequest(v, lt, known, name) == 1) {
                rank = Math.max(rank, lt.shapeAt(v, 0, name).length);
            }
        }
        if (rank < 1) {
            return n;
        }
        if (concat) {
            int axis = (int) new Attrs(n, name, source).i("axis", 0);
            if (axis == 0 || axis == -rank) {
                return n;
            }
        }
        OnnxMl.NodeProto.Builder b = null;
        for (int j = 0; j < n.getInputCount(); j++) {
            String v = n.getInput(j);
            if (v.isEmpty() || !lt.isConstant(v)) {
                continue;
            }
            Tensor c = lt.valueAt(v, 0);
            int[] s = c.shape();
            if (s.length != rank || s[0] != batch || (batch == 1 && !concat)) {
                continue; // a batch of 1 broadcasts in an element-wise operator as it is
            }
            int row = c.size() / batch;
            for (int r = 1; r < batch; r++) {
                if (!Arrays.equals(c.data(), 0, row, c.data(), r * row, (r + 1) * row)) {
                    throw new ModelException(source + ": node '" + name + "' (" + op + ") combines the batch with constant '"
                            + v + "' " + Shapes.str(s) + ", whose " + batch + " rows differ: the model was exported with a"
                            + " fixed batch of " + batch + " and this constant depends on it; export it with a free batch"
                            + " (torch.onnx.export(..., dynamic_axes={'<input>': {0: 'batch'}, '<output>': {0: 'batch'}}))");
                }
            }
            int[] one = s.clone();
            one[0] = 1;
            String first = n.getOutput(0) + "/batch_free_" + j;
            out.constant(first, new Tensor(one, Arrays.copyOf(c.data(), row)));
            String use = first;
            if (concat) {
                // expanded to the batch per request: the target's first entry is the batch size
                Tensor[] at = new Tensor[LoadTime.BATCHES];
                for (int bb = 0; bb < at.length; bb++) {
                    float[] dims = new float[one.length];
                    for (int d = 0; d < dims.length; d++) {
                        dims[d] = d == 0 ? bb + 1 : one[d];
                    }
                    at[bb] = new Tensor(new int[] {dims.length}, dims);
                }
                String shape = first + "/batch_shape";
                lt.putComputed(shape, at, true);
                use = first + "/expanded";
                out.node(new Node(name + "/batch_expand_" + j, "Expand", new Op.Expand(), List.of(first, shape), use));
            }
            if (b == null) {
                b = n.toBuilder();
            }
            b.setInput(j, use);
        }
        return b == null ? n : b.build();
    }

    /** k where the per-request value v's first axis holds k·B at every batch size B tried; 0 otherwise. */
    private static int perRequest(String v, LoadTime lt, Set<String> known, String node) {
        if (lt.isLoadTime(v) || !known.contains(v)) {
            return 0;
        }
        int[] one = lt.inferredShape(v, 0);
        if (one == null || one.length == 0 || one[0] < 1) {
            return 0;
        }
        int k = one[0];
        for (int b = 1; b < LoadTime.BATCHES; b++) {
            int[] s = lt.inferredShape(v, b);
            if (s == null || s.length == 0 || s[0] != (b + 1) * k) {
                return 0;
            }
        }
        return k;
    }
}
