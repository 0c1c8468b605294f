package dev.kxai.onnx;

import dev.kxai.ModelException;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;

/**
 * PyTorch's {@code h[torch.arange(B), idx]} — one element per row, at a per-row position (Hugging
 * Face's sequence classifiers over a decoder pick each row's last real token this way:
 * {@code logits[torch.arange(batch_size), sequence_lengths]}). {@code torch.onnx.export} writes it
 * over the batch flattened into the picked axis: {@code Gather(Flatten(h) [B·T, …], arange(B)·T + idx)},
 * with {@code arange(B)·T} a Range over the batch size (or, exported without dynamic axes, a constant
 * {@code [0, T, 2T, …]} for the export's batch). Read literally that Gather mixes rows, which kxai's
 * batches (examples × path steps, chunks) cannot allow; per row it is a select, and that is how it
 * is lowered: {@code ReduceSum(Where(idx == arange(T), h [B, T, …], 0), axis 1)}, its gradient reaching
 * only the picked element of each row.
 * <p>
 * Recognised in two steps: the offsets {@code r·T} of row r (a batch-dependent Range times T, or
 * the export's constant) added to a per-row index make a <em>row index</em> (no node yet); a Gather
 * along axis 0 of a value whose axis 0 grows as T per row, with a row index as its indices, becomes
 * the select. A row index read by anything else is refused, naming the pattern.
 */
final class BatchRowIndex {
    /** A per-row position {@code perRow} ([B], integer, per request) into rows of {@code stride} elements. */
    record Index(String perRow, int stride) {
    }

    private BatchRowIndex() {
    }

    /**
     * T where a batch-dependent load-time value is {@code arange(B)·T} at every batch size tried
     * (shape [B], element r = r·T, T ≥ 1); 0 otherwise.
     */
    static int stride(Tensor[] atBatch) {
        int t = 0;
        for (int b = 0; b < atBatch.length; b++) {
            Tensor v = atBatch[b];
            if (v.shape().length != 1 || v.shape()[0] != b + 1) {
                return 0;
            }
            if (b >= 1) {
                int s = strideOf(v);
                if (s <= 0 || (t != 0 && s != t)) {
                    return 0;
                }
                t = s;
            }
        }
        return t;
    }

    /** T where a constant is {@code [0, T, 2T, …]} with at least two rows (the export's batch); 0 otherwise. */
    static int strideOfConstant(Tensor c) {
        return c.shape().length == 1 && c.shape()[0] >= 2 ? Math.max(0, strideOf(c)) : 0;
    }

    private static int strideOf(Tensor v) {
        float[] d = v.data();
        float t = d[1];
        if (t < 1 || t != Math.rint(t) || t > Integer.MAX_VALUE) {
            return 0;
        }
        for (int r = 0; r < d.length; r++) {
            if (d[r] != r * t) {
                return 0;
            }
        }
        return (int) t;
    }

    /**
     * The select replacing {@code Gather(x, index, axis 0)}: x's axis 0 must hold {@code stride} elements
     * per row at every batch size, and the per-row positions one per row.
     */
    static void lower(Lowerings.Emit e, String x, int axis, Index index) {
        LoadTime lt = e.lt;
        int t = index.stride();
        int[] shape = lt.shapeAt(x, 0, e.name);
        int ax = axis < 0 ? axis + shape.length : axis;
        for (int b = 0; b < LoadTime.BATCHES; b++) {
            int[] s = lt.shapeAt(x, b, e.name);
            int[] p = lt.shapeAt(index.perRow(), b, e.name);
            if (ax != 0 || s[0] != (b + 1) * t || p.length != 1 || p[0] != b + 1) {
                throw new ModelException(e.source + ": node '" + e.name + "' (Gather): its indices are row r's offset r·"
                        + t + " plus a per-row position (PyTorch's h[torch.arange(B), idx]), which kxai takes along axis 0"
                        + " of a value with " + t + " entries per row and one position per row; here axis " + axis + " of "
                        + Shapes.str(s) + " and positions " + Shapes.str(p) + " at batch " + (b + 1));
            }
        }
        int[] rest = Arrays.copyOfRange(shape, 1, shape.length);
        int[] rowsShape = new int[rest.length + 2];
        rowsShape[0] = -1;
        rowsShape[1] = t;
        System.arraycopy(rest, 0, rowsShape, 2, rest.length);
        String rows = e.node("rows", "Reshape", new Op.Reshape(false), x, e.constant("rows_shape", shapeTensor(rowsShape)));
        String column = e.node("position_column", "Reshape", new Op.Reshape(false), index.perRow(),
                e.constant("column_shape", shapeTensor(new int[] {-1, 1})));
        float[] positions = new float[t];
        for (int i = 0; i < t; i++) {
            positions[i] = i;
        }
        String hot = e.node("picked", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), column,
                e.constant("positions", new Tensor(new int[] {t}, positions)));
        if (rest.length > 0) {
            int[] hotShape = new int[rowsShape.length];
            Arrays.fill(hotShape, 1);
            hotShape[0] = -1;
            hotShape[1] = t;
            hot = e.node("picked_broadcast", "Reshape", new Op.Reshape(false), hot,
                    e.constant("picked_shape", shapeTensor(hotShape)));
        }
        String kept = e.node("kept", "Where", new Op.Where(), hot, rows, e.constant("zero", 0f));
        e.last("ReduceSum", new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {1}, false), kept);
    }

    private static Tensor shapeTensor(int[] dims) {
        float[] f = new float[dims.length];
        for (int i = 0; i < dims.length; i++) {
            f[i] = dims[i];
        }
        return new Tensor(new int[] {f.length}, f);
    }
}
