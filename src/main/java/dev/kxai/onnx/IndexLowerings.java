package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.List;

/**
 * Indexing operators of values computed per request, rewritten at load (see {@link Lowerings}) into
 * comparisons, selections and sums that both backends already run and differentiate:
 * <ul>
 * <li>GatherElements and GatherND: the index compared with an arange gives a one-hot mask, Where keeps
 * the data element at the index (0 elsewhere) and ReduceSum over the indexed axis adds it to zeros:
 * the forward is the element itself (exact, also for ±inf; NaN elsewhere in the data is not read), and
 * the gradient goes back to that element only, summed over repeated indices, as PyTorch's scatter-add.
 * Negative indices count from the end; an index out of range gives 0 (no mask bit). GatherND's indexed
 * axes are flattened into one linear index (Σ index·stride). Work and memory: the mask and the
 * selection have (gathered elements)·(indexed axis size) entries per example;</li>
 * <li>TopK: each element's rank along the axis, the number of elements that beat it (greater, for
 * largest; less otherwise) plus the equal ones at a lower index (ONNX's tie rule), from an [n, n]
 * comparison per row; output r takes the element of rank r (Where + ReduceSum, exact), so the values'
 * gradient goes to the chosen elements. The indices (integer, no gradient) are summed the same way
 * from an arange. Always sorted (allowed when sorted = 0). Work and memory: n² per row;</li>
 * <li>ArgMax and ArgMin of values computed per request: the extreme (ReduceMax/Min), Equal, then the
 * least (or, with select_last_index, the greatest) index where it is reached; Hardmax: Equal of an
 * arange with that index (a 0/1 tensor: its gradient is zero, as PyTorch's). Both integer-valued,
 * marked so (a Gather may take them as ids).</li>
 * </ul>
 * An axis whose size grows with the batch is refused: indexing along it would mix examples.
 */
final class IndexLowerings {
    /** The operator types this class adds to the importer's list. */
    static final List<String> OPS = List.of("GatherElements", "GatherND", "TopK", "Hardmax");
    /** Folded on constants by {@link MoreFolding}; per request rewritten here. */
    private static final List<String> PER_REQUEST = List.of("ArgMax", "ArgMin");

    private IndexLowerings() {
    }

    static boolean handles(String opType) {
        return OPS.contains(opType) || PER_REQUEST.contains(opType);
    }

    static void lower(OnnxMl.NodeProto n, String name, String source, long opset, LoadTime lt, Decompositions.Sink out) {
        Lowerings.Emit e = new Lowerings.Emit(n, name, source, lt, out);
        Attrs a = new Attrs(n, name, source);
        switch (n.getOpType()) {
            case "GatherElements" -> gatherElements(e, a);
            case "GatherND" -> gatherNd(e, a);
            case "TopK" -> topK(e, a, opset);
            case "ArgMax", "ArgMin" -> {
                e.inputs(1, 1);
                int[] x = shape(e, e.in(0));
                int axis = axis(e, a, "axis", 0, x.length);
                refuseBatchAxis(e, e.in(0), axis, "takes the extreme along");
                boolean keep = a.i("keepdims", 1) != 0;
                String idx = argExtreme(e, e.in(0), x, axis, n.getOpType().equals("ArgMax"),
                        a.i("select_last_index", 0) != 0, keep, n.getOutput(0));
                lt.markInteger(idx);
            }
            case "Hardmax" -> hardmax(e, a, opset);
            default -> throw new IllegalArgumentException(n.getOpType());
        }
    }

    /**
     * The index of the extreme along {@code axis}: ReduceMax/Min (kept), Equal, Where(arange, else a
     * sentinel), then ReduceMin (first) or ReduceMax (last). Writes {@code output} (null: an
     * intermediate value) and returns its name.
     */
    private static String argExtreme(Lowerings.Emit e, String x, int[] shape, int axis, boolean max, boolean last,
            boolean keep, String output) {
        int n = shape[axis];
        String m = e.node("extreme", max ? "ReduceMax" : "ReduceMin", new Op.Reduce(max ? Op.Reduce.Kind.MAX
                : Op.Reduce.Kind.MIN, new int[] {axis}, true), x);
        String hit = e.node("reached", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), x, m);
        int[] arShape = new int[shape.length - axis];
        Arrays.fill(arShape, 1);
        arShape[0] = n;
        String ar = arange(e, "positions", n, arShape);
        String cand = e.node("candidates", "Where", new Op.Where(), hit, ar, e.constant("none", last ? -1f : n));
        Op.Reduce pick = new Op.Reduce(last ? Op.Reduce.Kind.MAX : Op.Reduce.Kind.MIN, new int[] {axis}, keep);
        String type = last ? "ReduceMax" : "ReduceMin";
        if (output == null) {
            return e.node("index", type, pick, cand);
        }
        return e.last(type, pick, cand);
    }

    /** Hardmax: 1 at the first maximum along the axis (opset < 13: of the input flattened to 2-D at it). */
    private static void hardmax(Lowerings.Emit e, Attrs a, long opset) {
        e.inputs(1, 1);
        String x = e.in(0);
        int[] s = shape(e, x);
        int axis = axis(e, a, "axis", opset < 13 ? 1 : -1, s.length);
        int grows = growingAxis(e, x);
        if (opset < 13) {
            if (grows >= axis) {
                throw new ModelException(e.source + ": node '" + e.name + "' (Hardmax): opset " + opset
                        + " takes the maximum over the input flattened from axis " + axis + ", which includes the axis "
                        + grows + " that grows with the batch; that would mix examples");
            }
            int rows = 1;
            int cols = 1;
            for (int d = 0; d < s.length; d++) {
                if (d < axis) {
                    rows *= s[d];
                } else {
                    cols *= s[d];
                }
            }
            int[] flat = {rows, cols};
            String f = view(e, "flat", x, flat, grows >= 0 ? 0 : -1);
            String idx = argExtreme(e, f, flat, 1, true, false, true, null);
            String hot = e.node("hot", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), idx,
                    arange(e, "columns", cols, new int[] {cols}));
            e.last("Reshape", new Op.Reshape(false), hot, shapeConstant(e, "shape", s, grows));
            return;
        }
        refuseBatchAxis(e, x, axis, "takes the maximum along");
        String idx = argExtreme(e, x, s, axis, true, false, true, null);
        int[] arShape = new int[s.length - axis];
        Arrays.fill(arShape, 1);
        arShape[0] = s[axis];
        e.last("Equal", new Op.Compare(Op.Compare.Kind.EQUAL), idx, arange(e, "axis_positions", s[axis], arShape));
    }

    /** GatherElements(data, indices, axis): out[..., j, ...] = data[..., indices[..., j, ...], ...]. */
    private static void gatherElements(Lowerings.Emit e, Attrs a) {
        e.inputs(2, 2);
        String t = "GatherElements";
        String data = e.in(0);
        String idx = e.in(1);
        int[] d = shape(e, data);
        int[] ix = shape(e, idx);
        if (ix.length != d.length) {
            throw bad(e, "indices '" + idx + "' " + Shapes.str(ix) + " and data '" + data + "' " + Shapes.str(d)
                    + " differ in rank");
        }
        int r = d.length;
        int axis = axis(e, a, "axis", 0, r);
        refuseBatchAxis(e, data, axis, "gathers along");
        int gd = growingAxis(e, data);
        int gi = growingAxis(e, idx);
        String src = data;
        for (int k = 0; k < r; k++) {
            if (k == axis) {
                continue;
            }
            if ((gd == k) != (gi == k)) {
                throw bad(e, "axis " + k + " of " + (gd == k ? "data '" + data : "indices '" + idx)
                        + "' grows with the batch and the same axis of the other does not; " + t
                        + " needs the indices to cover the data's batch (expand them to it)");
            }
            if (ix[k] > d[k]) {
                throw bad(e, "indices " + Shapes.str(ix) + " exceed data " + Shapes.str(d) + " on axis " + k);
            }
            if (ix[k] < d[k]) {
                // PyTorch's gather reads the leading part of a larger axis
                int[] keep = Lowerings.range(0, ix[k]);
                src = e.node("cropped" + k, "Slice", new Op.Select(k, keep, new int[] {keep.length}), src);
            }
        }
        int p = 1;
        int q = 1;
        for (int k = 0; k < r; k++) {
            if (k < axis) {
                p *= ix[k];
            } else if (k > axis) {
                q *= ix[k];
            }
        }
        int n = d[axis];
        int m = ix[axis];
        // data as [P, 1, n, Q], indices as [P, m, 1, Q]; the group holding the batch axis is -1
        String dv = view(e, "data_view", src, new int[] {p, 1, n, q}, group(gd, axis, 0, 3));
        String mask;
        if (e.lt.isConstant(idx) && gi < 0) {
            float[] v = normalized(e, e.lt.valueAt(idx, 0).data(), n, t);
            float[] hot = new float[p * m * n * q];
            for (int pp = 0; pp < p; pp++) {
                for (int j = 0; j < m; j++) {
                    for (int qq = 0; qq < q; qq++) {
                        int at = (int) v[(pp * m + j) * q + qq];
                        hot[((pp * m + j) * n + at) * q + qq] = 1f;
                    }
                }
            }
            mask = e.constant("mask", new Tensor(new int[] {p, m, n, q}, hot));
        } else {
            String iv = view(e, "index_view", idx, new int[] {p, m, 1, q}, group(gi, axis, 1, 3));
            mask = e.node("mask", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), wrap(e, iv, n, "index"),
                    arange(e, "positions", n, new int[] {1, 1, n, 1}));
        }
        String picked = e.node("picked", "Where", new Op.Where(), mask, dv, e.constant("zero", 0f));
        String sum = e.node("gathered", "ReduceSum", new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {2}, false), picked);
        e.last("Reshape", new Op.Reshape(false), sum, shapeConstant(e, "shape", ix, gi));
    }

    /** GatherND(data, indices, batch_dims): the last axis of the indices addresses data's next axes. */
    private static void gatherNd(Lowerings.Emit e, Attrs a) {
        e.inputs(2, 2);
        String t = "GatherND";
        String data = e.in(0);
        String idx = e.in(1);
        int[] d = shape(e, data);
        int[] ix = shape(e, idx);
        int r = d.length;
        int q = ix.length;
        int b = a.i32("batch_dims", 0);
        if (q < 1 || b < 0 || b >= Math.min(q, r)) {
            throw a.bad(t, "batch_dims", b, "0 <= batch_dims < min(rank of data " + r + ", rank of indices " + q + ")");
        }
        int k = ix[q - 1];
        if (k < 1 || k > r - b) {
            throw bad(e, "indices " + Shapes.str(ix) + " address " + k + " axes; data " + Shapes.str(d) + " has " + (r - b)
                    + " after its " + b + " batch dims");
        }
        for (int j = 0; j < b; j++) {
            if (ix[j] != d[j]) {
                throw bad(e, "batch dim " + j + " of indices " + Shapes.str(ix) + " and data " + Shapes.str(d) + " differ");
            }
        }
        int gd = growingAxis(e, data);
        int gi = growingAxis(e, idx);
        if (gd >= b && gd < b + k) {
            throw bad(e, "its indices address axis " + gd + " of '" + data + "', whose size grows with the batch; that "
                    + "would mix examples (batch_dims >= 1 keeps them apart)");
        }
        if ((gd >= 0 && gd < b || gi >= 0 && gi < b) && gd != gi) {
            throw bad(e, "the batch dims of data '" + data + "' and indices '" + idx + "' must both grow with the batch");
        }
        if (gi == q - 1) {
            throw bad(e, "the last axis of indices '" + idx + "' grows with the batch");
        }
        int p = 1;
        int nn = 1;
        int rest = 1;
        for (int j = 0; j < r; j++) {
            if (j < b) {
                p *= d[j];
            } else if (j < b + k) {
                nn *= d[j];
            } else {
                rest *= d[j];
            }
        }
        int m = 1;
        for (int j = b; j < q - 1; j++) {
            m *= ix[j];
        }
        int[] strides = new int[k];
        for (int j = k - 1, s = 1; j >= 0; j--) {
            strides[j] = s;
            s *= d[b + j];
        }
        String mask;
        String arN = null;
        if (e.lt.isConstant(idx) && gi < 0) {
            float[] v = e.lt.valueAt(idx, 0).data();
            float[] hot = new float[p * m * nn];
            for (int row = 0; row < p * m; row++) {
                int lin = 0;
                for (int j = 0; j < k; j++) {
                    float c = v[row * k + j];
                    int size = d[b + j];
                    if (c < -size || c >= size) {
                        throw bad(e, "index " + (long) c + " is out of range for axis " + (b + j) + " of " + Shapes.str(d));
                    }
                    lin += (int) (c < 0 ? c + size : c) * strides[j];
                }
                hot[row * nn + lin] = 1f;
            }
            mask = e.constant("mask", new Tensor(new int[] {p, m, nn, 1}, hot));
        } else {
            String lin = null;
            for (int j = 0; j < k; j++) {
                String c = e.node("coordinate" + j, "Gather", new Op.Select(q - 1, new int[] {j}, new int[0]), idx);
                c = wrap(e, c, d[b + j], "coordinate" + j);
                if (strides[j] != 1) {
                    c = e.node("offset" + j, "Mul", new Op.Mul(), c, e.constant("stride" + j, strides[j]));
                }
                lin = lin == null ? c : e.node("linear" + j, "Add", new Op.Add(), lin, c);
            }
            // [P, M, 1, 1]: the batch dims first, then the gathered positions
            int[] shape = {p, m, 1, 1};
            String lv = view(e, "index_view", lin, shape, gi < 0 ? -1 : gi < b ? 0 : 1);
            arN = arange(e, "positions", nn, new int[] {1, 1, nn, 1});
            mask = e.node("mask", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), lv, arN);
        }
        String dv = view(e, "data_view", data, new int[] {p, 1, nn, rest}, gd < 0 ? -1 : gd < b ? 0 : 3);
        String picked = e.node("picked", "Where", new Op.Where(), mask, dv, e.constant("zero", 0f));
        String sum = e.node("gathered", "ReduceSum", new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {2}, false), picked);
        int[] outShape = new int[q - 1 + r - b - k];
        System.arraycopy(ix, 0, outShape, 0, q - 1);
        System.arraycopy(d, b + k, outShape, q - 1, r - b - k);
        int grows = gi >= 0 ? gi : gd >= b + k ? q - 1 + gd - b - k : -1;
        e.last("Reshape", new Op.Reshape(false), sum, shapeConstant(e, "shape", outShape, grows));
    }

    /** TopK(X, K): values (differentiable) and indices (integer) of the K largest or smallest along the axis. */
    private static void topK(Lowerings.Emit e, Attrs a, long opset) {
        String t = "TopK";
        int kk;
        if (opset < 10) {
            e.inputs(1, 1);
            kk = a.required("k", t);
        } else {
            e.inputs(2, 2);
            Tensor kt = e.constantInput(1, "K");
            if (kt.size() != 1) {
                throw bad(e, "K has " + kt.size() + " values; expected one");
            }
            kk = (int) kt.data()[0];
        }
        String x = e.in(0);
        int[] s = shape(e, x);
        int r = s.length;
        int axis = axis(e, a, "axis", -1, r);
        refuseBatchAxis(e, x, axis, "sorts along");
        int n = s[axis];
        if (kk < 1 || kk > n) {
            throw bad(e, "K = " + kk + " for an axis of " + n + " elements; kxai takes 1 <= K <= " + n);
        }
        boolean largest = a.i("largest", 1) != 0;
        int grows = growingAxis(e, x);
        // the axis moved last, the rest flattened into rows: [P, n]
        int[] perm = new int[r];
        int[] moved = new int[r];
        for (int j = 0, o = 0; j < r; j++) {
            if (j != axis) {
                perm[o] = j;
                moved[o++] = s[j];
            }
        }
        perm[r - 1] = axis;
        moved[r - 1] = n;
        int movedGrows = -1;
        for (int j = 0; j < r; j++) {
            if (perm[j] == grows) {
                movedGrows = j;
            }
        }
        boolean identity = axis == r - 1;
        String mv = identity ? x : e.node("moved", "Transpose", new Op.Transpose(perm), x);
        int rows = Shapes.intSize(moved) / n;
        String rv = view(e, "rows", mv, new int[] {rows, n}, grows >= 0 ? 0 : -1);
        String xi = e.node("as_i", "Unsqueeze", new Op.Unsqueeze(new int[] {2}), rv);
        String xj = e.node("as_j", "Unsqueeze", new Op.Unsqueeze(new int[] {1}), rv);
        // [P, i, j]: j beats i; ties go to the lower index
        String beats = e.node("beats", largest ? "Greater" : "Less", new Op.Compare(largest ? Op.Compare.Kind.GREATER
                : Op.Compare.Kind.LESS), xj, xi);
        String ties = e.node("ties", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), xj, xi);
        float[] lower = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) {
                lower[i * n + j] = 1f;
            }
        }
        String earlier = e.node("earlier_ties", "Mul", new Op.Mul(), ties, e.constant("earlier",
                new Tensor(new int[] {n, n}, lower)));
        String ahead = e.node("ahead", "Add", new Op.Add(), beats, earlier);
        String rank = e.node("rank", "ReduceSum", new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {2}, false), ahead);
        String rank3 = e.node("rank_row", "Unsqueeze", new Op.Unsqueeze(new int[] {1}), rank);
        String sel = e.node("chosen", "Equal", new Op.Compare(Op.Compare.Kind.EQUAL), rank3, arange(e, "ranks", kk,
                new int[] {kk, 1}));
        String zero = e.constant("zero", 0f);
        Op.Reduce across = new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {2}, false);
        String vals = e.node("values_rows", "ReduceSum", across, e.node("values_picked", "Where", new Op.Where(), sel, xj,
                zero));
        String idxs = e.node("indices_rows", "ReduceSum", across, e.node("indices_picked", "Where", new Op.Where(), sel,
                arange(e, "positions", n, new int[] {1, n}), zero));
        int[] back = moved.clone();
        back[r - 1] = kk;
        int[] inverse = new int[r];
        for (int j = 0; j < r; j++) {
            inverse[perm[j]] = j;
        }
        String shapeName = shapeConstant(e, "moved_shape", back, movedGrows);
        String[] outs = {e.n.getOutputCount() > 0 ? e.n.getOutput(0) : "", e.n.getOutputCount() > 1 ? e.n.getOutput(1)
                : ""};
        String[] from = {vals, idxs};
        String[] what = {"values", "indices"};
        for (int o = 0; o < 2; o++) {
            if (outs[o].isEmpty()) {
                continue;
            }
            String nodeName = o == 0 ? e.name : e.name + "/indices";
            if (identity) {
                e.out.node(new Node(nodeName, "Reshape", new Op.Reshape(false), List.of(from[o], shapeName), outs[o]));
            } else {
                String v = e.node(what[o] + "_moved", "Reshape", new Op.Reshape(false), from[o], shapeName);
                e.out.node(new Node(nodeName, "Transpose", new Op.Transpose(inverse), List.of(v), outs[o]));
            }
        }
        if (!outs[1].isEmpty()) {
            e.lt.markInteger(outs[1]);
        }
    }

    /** idx + size where idx < 0 (ONNX's negative indices), as Less, Mul and Add. */
    private static String wrap(Lowerings.Emit e, String idx, int size, String what) {
        String neg = e.node(what + "_negative", "Less", new Op.Compare(Op.Compare.Kind.LESS), idx, e.constant("zero_"
                + what, 0f));
        String shift = e.node(what + "_shift", "Mul", new Op.Mul(), neg, e.constant("size_" + what, size));
        return e.node(what + "_wrapped", "Add", new Op.Add(), idx, shift);
    }

    private static float[] normalized(Lowerings.Emit e, float[] v, int size, String t) {
        float[] r = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            if (v[i] < -size || v[i] >= size) {
                throw bad(e, "index " + (long) v[i] + " is out of range for an axis of " + size);
            }
            r[i] = v[i] < 0 ? v[i] + size : v[i];
        }
        return r;
    }

    /** Of the view groups [before axis | (inserted) | axis | after axis], which holds axis {@code grows} (-1: none). */
    private static int group(int grows, int axis, int atAxis, int after) {
        if (grows < 0) {
            return -1;
        }
        return grows < axis ? 0 : grows == axis ? atAxis : after;
    }

    /** A Reshape of v to dims, dims[growing] as -1 (the group holding the batch axis; -1: none). */
    private static String view(Lowerings.Emit e, String suffix, String v, int[] dims, int growing) {
        return e.node(suffix, "Reshape", new Op.Reshape(false), v, shapeConstant(e, suffix + "_shape", dims, growing));
    }

    private static String shapeConstant(Lowerings.Emit e, String suffix, int[] dims, int growing) {
        float[] f = new float[dims.length];
        for (int i = 0; i < dims.length; i++) {
            f[i] = i == growing ? -1 : dims[i];
        }
        return e.constant(suffix, new Tensor(new int[] {f.length}, f));
    }

    private static String arange(Lowerings.Emit e, String suffix, int n, int[] shape) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i;
        }
        return e.constant(suffix, new Tensor(shape, v));
    }

    private static int[] shape(Lowerings.Emit e, String v) {
        return e.out.shape(v, e.name);
    }

    /** The axis of v whose size changes with the batch, or -1. */
    private static int growingAxis(Lowerings.Emit e, String v) {
        int[] one = e.lt.shapeAt(v, 0, e.name);
        int[] two = e.lt.shapeAt(v, 1, e.name);
        for (int i = 0; i < one.length; i++) {
            if (one[i] != two[i]) {
                return i;
            }
        }
        return -1;
    }

    private static void refuseBatchAxis(Lowerings.Emit e, String v, int axis, String what) {
        if (growingAxis(e, v) == axis) {
            throw bad(e, what + " axis " + axis + " of '" + v + "', whose size grows with the batch; that would mix "
                    + "examples");
        }
    }

    private static int axis(Lowerings.Emit e, Attrs a, String attr, int dflt, int rank) {
        int axis = a.i32(attr, dflt);
        if (axis < -rank || axis >= rank) {
            throw a.bad(e.n.getOpType(), attr, axis, attr + " in [-" + rank + ", " + (rank - 1) + "] for an input of rank "
                    + rank);
        }
        return axis < 0 ? axis + rank : axis;
    }

    private static ModelException bad(Lowerings.Emit e, String why) {
        return new ModelException(e.source + ": node '" + e.name + "' (" + e.n.getOpType() + "): " + why);
    }
}
