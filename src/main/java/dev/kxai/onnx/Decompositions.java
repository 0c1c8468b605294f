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
        String eps = name + "/epsilon";
        out.constant(eps, Tensor.scalar(a.f("epsilon", 1e-5f)));
        Op.Reduce mean = new Op.Reduce(Op.Reduce.Kind.MEAN, axes, true);
        String p = n.getOutput(0) + "/";
        out.node(new Node(name + "/mean", "ReduceMean", mean, List.of(x), p + "mean"));
        out.node(new Node(name + "/centered", "Sub", new Op.Sub(), List.of(x, p + "mean"), p + "centered"));
        out.node(new Node(name + "/squared", "Mul", new Op.Mul(), List.of(p + "centered", p + "centered"), p + "squared"));
        out.node(new Node(name + "/variance", "ReduceMean", mean, List.of(p + "squared"), p + "variance"));
        out.node(new Node(name + "/variance_eps", "Add", new Op.Add(), List.of(p + "variance", eps), p + "variance_eps"));
        out.node(new Node(name + "/std", "Sqrt", new Op.Unary(Op.Unary.Kind.SQRT), List.of(p + "variance_eps"), p + "std"));
        out.node(new Node(name + "/normalized", "Div", new Op.Div(), List.of(p + "centered", p + "std"), p + "normalized"));
        boolean bias = n.getInputCount() > 2 && !n.getInput(2).isEmpty();
        String scaled = bias ? p + "scaled" : n.getOutput(0);
        out.node(new Node(bias ? name + "/scale" : name, "Mul", new Op.Mul(), List.of(p + "normalized", n.getInput(1)),
                scaled));
        if (bias) {
            out.node(new Node(name, "Add", new Op.Add(), List.of(scaled, n.getInput(2)), n.getOutput(0)));
        }
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
}
