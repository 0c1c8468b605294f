package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.List;

/**
 * ONNX operators kxai runs as several of its own: LayerNormalization (opset 17) as the
 * decomposition exporters write before 17 (ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div, Mul,
 * Add), so its gradient is the composition's, and Split as one {@link Op.Select} per output. The
 * intermediate values are named after the node ("NAME/mean", ...).
 */
final class Decompositions {
    /** Where the nodes and constants go, and the shapes they need. */
    interface Sink {
        void node(Node n);

        void constant(String name, Tensor t);

        int[] shape(String value, String node);

        /** A rewritten ONNX node, imported as any other (checked, parsed, possibly rewritten again). */
        void onnx(OnnxMl.NodeProto n, String name);
    }

    private Decompositions() {
    }

    /**
     * LayerNormalization: (x − mean) / sqrt(var + ε) · scale + bias over the axes from {@code axis}
     * to the last. Its optional Mean and InvStdDev outputs are refused when something reads them.
     */
    static void layerNormalization(OnnxMl.NodeProto n, String name, String source, OnnxMl.GraphProto g, Sink out) {
        Attrs a = new Attrs(n, name, source);
        if (n.getInputCount() < 2) {
            throw new ModelException(source + ": node '" + name + "' (LayerNormalization) has no scale input");
        }
        for (int k = 1; k < n.getOutputCount(); k++) {
            String extra = n.getOutput(k);
            if (!extra.isEmpty() && g.getNodeList().stream().anyMatch(o -> o.getInputList().contains(extra))) {
                throw new ModelException(source + ": node '" + name + "' (LayerNormalization): its output " + k
                        + " (mean or inverse standard deviation) is read by another node; kxai provides only Y");
            }
        }
        String x = n.getInput(0);
        int rank = out.shape(x, name).length;
        int axis = (int) a.i("axis", -1);
        int first = axis < 0 ? axis + rank : axis;
        if (first < 1 || first >= rank) {
            throw new ModelException(source + ": node '" + name + "' (LayerNormalization): axis " + axis + " of rank "
                    + rank + " would normalise over the batch axis or nothing");
        }
        int[] axes = new int[rank - first];
        for (int d = first; d < rank; d++) {
            axes[d - first] = d;
        }
        String p = n.getOutput(0) + "/";
        String normalized = standardize(x, axes, a.f("epsilon", 1e-5f), name, p, out);
        boolean bias = n.getInputCount() > 2 && !n.getInput(2).isEmpty();
        String scaled = bias ? p + "scaled" : n.getOutput(0);
        out.node(new Node(bias ? name + "/scale" : name, "Mul", new Op.Mul(), List.of(normalized, n.getInput(1)),
                scaled));
        if (bias) {
            out.node(new Node(name, "Add", new Op.Add(), List.of(scaled, n.getInput(2)), n.getOutput(0)));
        }
    }

    /**
     * (x − mean) / sqrt(var + ε) over {@code axes} (kept dims, the biased variance): the nodes
     * NAME/mean ... NAME/normalized writing values P + "mean" ... P + "normalized"; returns the last.
     * LayerNormalization, InstanceNormalization and GroupNormalization share it.
     */
    static String standardize(String x, int[] axes, float epsilon, String name, String p, Sink out) {
        String eps = name + "/epsilon";
        out.constant(eps, Tensor.scalar(epsilon));
        Op.Reduce mean = new Op.Reduce(Op.Reduce.Kind.MEAN, axes, true);
        out.node(new Node(name + "/mean", "ReduceMean", mean, List.of(x), p + "mean"));
        out.node(new Node(name + "/centered", "Sub", new Op.Sub(), List.of(x, p + "mean"), p + "centered"));
        out.node(new Node(name + "/squared", "Mul", new Op.Mul(), List.of(p + "centered", p + "centered"), p + "squared"));
        out.node(new Node(name + "/variance", "ReduceMean", mean, List.of(p + "squared"), p + "variance"));
        out.node(new Node(name + "/variance_eps", "Add", new Op.Add(), List.of(p + "variance", eps), p + "variance_eps"));
        out.node(new Node(name + "/std", "Sqrt", new Op.Unary(Op.Unary.Kind.SQRT), List.of(p + "variance_eps"), p + "std"));
        out.node(new Node(name + "/normalized", "Div", new Op.Div(), List.of(p + "centered", p + "std"), p + "normalized"));
        return p + "normalized";
    }

    /**
     * Split along an axis into the given sizes (attribute before opset 13, input from 13), or into
     * equal parts (the number of outputs, or opset 18's num_outputs: the last part may be smaller).
     */
    static void split(OnnxMl.NodeProto n, String name, String source, long opset, LoadTime lt, Sink out) {
        Attrs a = new Attrs(n, name, source);
        String x = n.getInput(0);
        int[] shape = out.shape(x, name);
        int axis = (int) a.i("axis", 0);
        int ax = axis < 0 ? axis + shape.length : axis;
        if (ax < 0 || ax >= shape.length) {
            throw new ModelException(source + ": node '" + name + "' (Split): axis " + axis + " is out of range for "
                    + Shapes.str(shape));
        }
        for (int b = 1; b < LoadTime.BATCHES; b++) {
            if (out.shape(x, name).length != lt.shapeAt(x, b, name).length || lt.shapeAt(x, b, name)[ax] != shape[ax]) {
                throw new ModelException(source + ": node '" + name + "' (Split): splits axis " + ax
                        + ", whose size depends on the batch");
            }
        }
        int parts = n.getOutputCount();
        int[] sizes;
        if (opset < 13) {
            sizes = a.ints("split", null);
        } else if (n.getInputCount() > 1 && !n.getInput(1).isEmpty()) {
            if (!lt.isConstant(n.getInput(1))) {
                throw new ModelException(source + ": node '" + name + "' (Split): split sizes '" + n.getInput(1)
                        + "' are computed per request; kxai needs them known at load");
            }
            float[] v = lt.valueAt(n.getInput(1), 0).data();
            sizes = new int[v.length];
            for (int i = 0; i < v.length; i++) {
                sizes[i] = (int) v[i];
            }
        } else {
            sizes = null;
        }
        if (sizes == null) {
            int each = (shape[ax] + parts - 1) / parts;
            sizes = new int[parts];
            for (int k = 0; k < parts; k++) {
                sizes[k] = Math.max(0, Math.min(each, shape[ax] - k * each));
            }
        }
        int total = 0;
        for (int s : sizes) {
            total += s;
        }
        if (sizes.length != parts || total != shape[ax]) {
            throw new ModelException(source + ": node '" + name + "' (Split): sizes " + java.util.Arrays.toString(sizes)
                    + " do not split axis " + ax + " of " + Shapes.str(shape) + " into " + parts + " outputs");
        }
        int offset = 0;
        for (int k = 0; k < parts; k++) {
            int[] idx = new int[sizes[k]];
            for (int i = 0; i < idx.length; i++) {
                idx[i] = offset + i;
            }
            offset += sizes[k];
            if (!n.getOutput(k).isEmpty()) {
                out.node(new Node(parts == 1 ? name : name + "/" + k, "Split", new Op.Select(ax, idx,
                        new int[] {idx.length}), List.of(x), n.getOutput(k)));
            }
        }
    }

    /**
     * MatMul with NumPy's rules where kxai's kernel does not take the operands as they are: a 1-D
     * operand gets a unit axis (removed from the result again), and batch dimensions that differ
     * are broadcast by Expand (its target a load-time value, batch-dependent where the batch is
     * among them), so that the product is an equal-batch MatMul. Returns false when the operands
     * need no rewriting ([..., M, K] × [K, N], or equal batch dimensions).
     */
    static boolean matMul(OnnxMl.NodeProto n, String name, String source, LoadTime lt, Sink out) {
        String a = n.getInput(0);
        String b = n.getInput(1);
        int[] as = out.shape(a, name);
        int[] bs = out.shape(b, name);
        boolean twoDRight = as.length >= 2 && bs.length == 2;
        boolean equalBatch = as.length == bs.length && as.length >= 3
                && java.util.Arrays.equals(java.util.Arrays.copyOf(as, as.length - 2), java.util.Arrays.copyOf(bs, bs.length - 2));
        if (twoDRight || equalBatch) {
            return false;
        }
        if (as.length == 0 || bs.length == 0) {
            throw new ModelException(source + ": node '" + name + "' (MatMul): a scalar operand");
        }
        String p = n.getOutput(0) + "/";
        String a2 = a;
        String b2 = b;
        if (as.length == 1) {
            a2 = p + "a_row";
            out.node(new Node(name + "/a_row", "Unsqueeze", new Op.Unsqueeze(new int[] {0}), List.of(a), a2));
        }
        if (bs.length == 1) {
            b2 = p + "b_column";
            out.node(new Node(name + "/b_column", "Unsqueeze", new Op.Unsqueeze(new int[] {1}), List.of(b), b2));
        }
        int ra = Math.max(as.length, 2);
        int rb = Math.max(bs.length, 2);
        int rank = Math.max(ra, rb);
        String product = p + "product";
        if (rank == 2 || (rb == 2 && ra >= 2)) {
            out.node(new Node(name + "/product", "MatMul", new Op.MatMul(), List.of(a2, b2), product));
        } else {
            // the broadcast batch dimensions, at each batch size (the batch may be among them)
            Tensor[] ta = new Tensor[LoadTime.BATCHES];
            Tensor[] tb = new Tensor[LoadTime.BATCHES];
            for (int k = 0; k < LoadTime.BATCHES; k++) {
                int[] x = matrixShape(lt.shapeAt(a, k, name), true);
                int[] y = matrixShape(lt.shapeAt(b, k, name), false);
                int[] batch = dev.kxai.tensor.Shapes.broadcast(java.util.Arrays.copyOf(x, x.length - 2),
                        java.util.Arrays.copyOf(y, y.length - 2));
                if (batch == null) {
                    throw new ModelException(source + ": node '" + name + "' (MatMul): batch dimensions of "
                            + dev.kxai.tensor.Shapes.str(x) + " and " + dev.kxai.tensor.Shapes.str(y) + " do not broadcast");
                }
                ta[k] = target(batch, x);
                tb[k] = target(batch, y);
            }
            lt.putComputed(p + "a_target", ta, true);
            lt.putComputed(p + "b_target", tb, true);
            out.node(new Node(name + "/a_expand", "Expand", new Op.Expand(), List.of(a2, p + "a_target"), p + "a_expanded"));
            out.node(new Node(name + "/b_expand", "Expand", new Op.Expand(), List.of(b2, p + "b_target"), p + "b_expanded"));
            out.node(new Node(name + "/product", "MatMul", new Op.MatMul(), List.of(p + "a_expanded", p + "b_expanded"),
                    product));
        }
        int outRank = bs.length == 1 && as.length == 1 ? 2 : Math.max(rank, 2);
        java.util.List<Integer> drop = new java.util.ArrayList<>();
        if (as.length == 1) {
            drop.add(outRank - 2);
        }
        if (bs.length == 1) {
            drop.add(outRank - 1);
        }
        Op last = drop.isEmpty() ? new Op.Identity()
                : new Op.Squeeze(drop.stream().mapToInt(Integer::intValue).toArray());
        out.node(new Node(name, "MatMul", last, List.of(product), n.getOutput(0)));
        return true;
    }

    /** A MatMul operand as a matrix (a 1-D one as a row or a column). */
    private static int[] matrixShape(int[] s, boolean left) {
        if (s.length >= 2) {
            return s;
        }
        return left ? new int[] {1, s[0]} : new int[] {s[0], 1};
    }

    /** The Expand target of an operand: the broadcast batch dimensions, then its own matrix dimensions. */
    private static Tensor target(int[] batch, int[] matrix) {
        float[] v = new float[batch.length + 2];
        for (int i = 0; i < batch.length; i++) {
            v[i] = batch[i];
        }
        v[batch.length] = matrix[matrix.length - 2];
        v[batch.length + 1] = matrix[matrix.length - 1];
        return new Tensor(new int[] {v.length}, v);
    }
}
