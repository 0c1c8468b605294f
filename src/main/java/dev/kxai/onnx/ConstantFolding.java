package dev.kxai.onnx;

import dev.kxai.ModelException;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Evaluates, at load, the data-movement nodes whose inputs are all constants: the small shape
 * and index computations exporters write around the real work (PyTorch's ZeroPad2d turns its pads
 * into ConstantOfShape → Concat → Reshape → Slice → Transpose → Reshape → Cast before Pad). Their
 * results become constants, so they cost nothing per request and the operators that read them
 * (Pad, Reshape, Clip) see constants. Values are kept as floats, like every constant; integers up
 * to 2^24 are exact, and larger ones (INT64_MAX as "to the end" in Slice) only ever act as bounds.
 */
final class ConstantFolding {
    /** Operator types this class evaluates when every input is a constant. */
    static final Set<String> FOLDABLE = union("ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast",
            "Unsqueeze", "Squeeze", "Gather", "Shape", "Size", "Identity", "Add", "Sub", "Mul", "Div", "Equal", "Less",
            "Greater", "Where", "Expand", "Range", "Neg", "Abs", "Sqrt", "Not", "Min", "Max", MoreFolding.OPS);

    /** ONNX TensorProto data types that are integers or bool (Cast truncates to them). */
    static final Set<Long> INTEGER_TYPES = Set.of(2L, 3L, 4L, 5L, 6L, 7L, 9L, 12L, 13L);

    /**
     * The most elements a folded constant may hold (issue 13: a ConstantOfShape of 19 M elements made a
     * 7 KiB file take seconds to refuse). Folding is for shape and index arithmetic; real weights come as
     * initializers. {@code -Dkxai.max.folded.elements} raises it.
     */
    static final long MAX_FOLDED_ELEMENTS = Long.getLong("kxai.max.folded.elements", 1L << 22);

    private ConstantFolding() {
    }

    /** The element count of a folded result of {@code shape}, refused beyond {@link #MAX_FOLDED_ELEMENTS}. */
    private static int foldedSize(Node n, int[] shape) {
        long size = 1;
        for (int d : shape) {
            if (d < 0) {
                throw bad(n, "negative dimension " + d + " in the shape " + Arrays.toString(shape));
            }
            size = d == 0 ? 0 : Math.min(size * d, MAX_FOLDED_ELEMENTS + 1);
        }
        if (size > MAX_FOLDED_ELEMENTS) {
            throw bad(n, "would fold into a constant of shape " + Arrays.toString(shape) + ", more than "
                    + MAX_FOLDED_ELEMENTS + " elements (raise it with -Dkxai.max.folded.elements=N)");
        }
        return (int) size;
    }

    /** Attribute access and the node's name, for messages. */
    interface Node {
        String name();

        String opType();

        long opset();

        long intAttr(String name, long dflt);

        int[] intsAttr(String name);

        Tensor tensorAttr(String name);

        /** Whether the node's data inputs are integer-typed (Div then truncates, as ONNX's integer Div). */
        boolean integer();

        /** A string attribute (ScatterND's reduction). */
        default String stringAttr(String name, String dflt) {
            return dflt;
        }
    }

    private static Set<String> union(Object... names) {
        java.util.Set<String> s = new java.util.HashSet<>();
        for (Object o : names) {
            if (o instanceof Set<?> more) {
                more.forEach(m -> s.add((String) m));
            } else {
                s.add((String) o);
            }
        }
        return Set.copyOf(s);
    }

    /** Inputs each folded operator needs (ONNX's required ones), checked before any is read. */
    static int requiredInputs(Node n) {
        return switch (n.opType()) {
            case "Reshape", "Gather", "Expand", "Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater" -> 2;
            case "Where", "Range" -> 3;
            case "Slice" -> n.opset() < 10 ? 1 : 3;
            default -> MoreFolding.OPS.contains(n.opType()) ? MoreFolding.requiredInputs(n) : 1; // Min/Max: 1 or more
        };
    }

    static Tensor fold(Node n, List<Tensor> in) {
        int need = requiredInputs(n);
        if (in.size() < need) {
            throw bad(n, "takes at least " + need + " input(s), got " + in.size());
        }
        for (int i = 0; i < need; i++) {
            if (in.get(i) == null) {
                throw bad(n, "required input " + i + " is empty");
            }
        }
        return switch (n.opType()) {
            case "ConstantOfShape" -> constantOfShape(n, in.get(0));
            case "Concat" -> concat(n, in, (int) n.intAttr("axis", 0));
            case "Reshape" -> reshape(n, in.get(0), in.get(1), n.intAttr("allowzero", 0) != 0);
            case "Slice" -> slice(n, in);
            case "Transpose" -> transpose(n, in.get(0), n.intsAttr("perm"));
            case "Cast" -> cast(in.get(0), n.intAttr("to", 1));
            case "Unsqueeze" -> unsqueeze(n, in.get(0), axes(n, in));
            case "Squeeze" -> squeeze(n, in.get(0), axes(n, in));
            case "Gather" -> gather(n, in.get(0), in.get(1), (int) n.intAttr("axis", 0));
            case "Shape" -> shapeOf(in.get(0).shape(), n.intAttr("start", 0), n.intAttr("end", Long.MAX_VALUE));
            case "Size" -> Tensor.scalar(in.get(0).size());
            case "Identity" -> in.get(0);
            case "Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "Min", "Max" -> binary(n, in.get(0), in.get(1));
            case "Where" -> where(n, in.get(0), in.get(1), in.get(2));
            case "Expand" -> expand(n, in.get(0), in.get(1));
            case "Range" -> range(n, in.get(0), in.get(1), in.get(2));
            case "Neg", "Abs", "Sqrt", "Not" -> unary(n, in.get(0));
            default -> MoreFolding.fold(n, in);
        };
    }

    static ModelException bad(Node n, String why) {
        return new ModelException("node '" + n.name() + "' (" + n.opType() + "): " + why);
    }

    static int[] ints(Tensor t) {
        int[] r = new int[t.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = (int) t.data()[i];
        }
        return r;
    }

    static int axis(Node n, long axis, int rank) {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) {
            throw bad(n, "axis " + axis + " is out of range for rank " + rank);
        }
        return (int) a;
    }

    /** Every element of the output from its multi-index: out[idx] = in[source(idx)]. */
    private interface Source {
        int of(int[] idx);
    }

    private static Tensor gatherInto(int[] outShape, float[] src, Source source) {
        float[] out = new float[Shapes.intSize(outShape)];
        int[] idx = new int[outShape.length];
        for (int e = 0; e < out.length; e++) {
            out[e] = src[source.of(idx)];
            for (int d = outShape.length - 1; d >= 0 && ++idx[d] == outShape[d]; d--) {
                idx[d] = 0;
            }
        }
        return new Tensor(outShape, out);
    }

    private static int flat(int[] idx, int[] strides) {
        int f = 0;
        for (int d = 0; d < idx.length; d++) {
            f += idx[d] * strides[d];
        }
        return f;
    }

    private static Tensor constantOfShape(Node n, Tensor shape) {
        int[] s = ints(shape);
        Tensor v = n.tensorAttr("value");
        float fill = v == null ? 0f : v.data()[0];
        float[] out = new float[foldedSize(n, s)];
        Arrays.fill(out, fill);
        return new Tensor(s, out);
    }

    private static Tensor concat(Node n, List<Tensor> in, int axis) {
        int rank = in.get(0).rank();
        int a = axis(n, axis, rank);
        int[] out = in.get(0).shape();
        out[a] = 0;
        for (Tensor t : in) {
            if (t.rank() != rank) {
                throw bad(n, "inputs of different rank");
            }
            out[a] += t.dim(a);
        }
        float[] all = new float[foldedSize(n, out)];
        int[] offsets = new int[in.size()];
        int off = 0;
        for (int j = 0; j < in.size(); j++) {
            offsets[j] = off;
            off += in.get(j).dim(a);
        }
        int[] idx = new int[rank];
        for (int e = 0; e < all.length; e++) {
            int j = 0;
            while (j + 1 < in.size() && idx[a] >= offsets[j + 1]) {
                j++;
            }
            Tensor t = in.get(j);
            int[] local = idx.clone();
            local[a] -= offsets[j];
            all[e] = t.data()[flat(local, Shapes.strides(t.shape()))];
            for (int d = rank - 1; d >= 0 && ++idx[d] == out[d]; d--) {
                idx[d] = 0;
            }
        }
        return new Tensor(out, all);
    }

    private static Tensor reshape(Node n, Tensor x, Tensor spec, boolean allowZero) {
        int[] s = ints(spec);
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == 0 && !allowZero) {
                s[i] = x.dim(i);
            }
            if (s[i] == -1) {
                infer = i;
            } else {
                known *= s[i];
            }
        }
        if (infer >= 0) {
            s[infer] = (int) (x.size() / Math.max(1, known));
        }
        if (Shapes.size(s) != x.size()) {
            throw bad(n, "cannot reshape " + Shapes.str(x.shape()) + " to " + Shapes.str(s));
        }
        return x.reshape(s);
    }

    /** ONNX Slice (inputs from opset 10, attributes before), negative steps and out-of-range bounds clamped. */
    private static Tensor slice(Node n, List<Tensor> in) {
        Tensor x = in.get(0);
        int rank = x.rank();
        int[][] spec = sliceSpec(n, x.shape(), in);
        int[] start = new int[rank];
        int[] step = new int[rank];
        int[] out = x.shape();
        Arrays.fill(step, 1);
        for (int a = 0; a < rank; a++) {
            if (spec[a] != null) {
                start[a] = spec[a][0];
                step[a] = spec[a][1];
                out[a] = spec[a][2];
            }
        }
        int[] strides = Shapes.strides(x.shape());
        return gatherInto(out, x.data(), idx -> {
            int f = 0;
            for (int d = 0; d < idx.length; d++) {
                f += (start[d] + idx[d] * step[d]) * strides[d];
            }
            return f;
        });
    }

    /** A Slice bound: negative counts from the end, then clamped to [lo, hi]. */
    private static long clampIndex(double v, long dim, long lo, long hi) {
        double i = v < 0 ? v + dim : v;
        return (long) Math.max(lo, Math.min(hi, i));
    }

    private static double[] doubles(Tensor t) {
        double[] r = new double[t.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = t.data()[i];
        }
        return r;
    }

    private static Tensor transpose(Node n, Tensor x, int[] perm) {
        int rank = x.rank();
        int[] p = perm;
        if (p != null) {
            boolean[] seen = new boolean[rank];
            boolean ok = p.length == rank;
            for (int d = 0; ok && d < rank; d++) {
                ok = p[d] >= 0 && p[d] < rank && !seen[p[d]];
                if (ok) {
                    seen[p[d]] = true;
                }
            }
            if (!ok) {
                throw bad(n, "perm " + Arrays.toString(p) + " is not a permutation of the " + rank + " axes of "
                        + Shapes.str(x.shape()));
            }
        }
        if (p == null) {
            p = new int[rank];
            for (int d = 0; d < rank; d++) {
                p[d] = rank - 1 - d;
            }
        }
        int[] out = new int[rank];
        for (int d = 0; d < rank; d++) {
            out[d] = x.dim(p[d]);
        }
        int[] strides = Shapes.strides(x.shape());
        int[] pp = p;
        return gatherInto(out, x.data(), idx -> {
            int f = 0;
            for (int d = 0; d < idx.length; d++) {
                f += idx[d] * strides[pp[d]];
            }
            return f;
        });
    }

    private static Tensor cast(Tensor x, long to) {
        if (!INTEGER_TYPES.contains(to)) {
            return x;
        }
        float[] out = new float[x.size()];
        for (int i = 0; i < out.length; i++) {
            float v = x.data()[i];
            out[i] = to == 9 ? (v != 0f ? 1f : 0f) : (float) (long) v; // bool, or truncation toward zero
        }
        return new Tensor(x.shape(), out);
    }

    /** Unsqueeze/Squeeze axes: an attribute before opset 13, the second input from 13. */
    private static int[] axes(Node n, List<Tensor> in) {
        if (n.opset() >= 13) {
            return in.size() > 1 && in.get(1) != null ? ints(in.get(1)) : null;
        }
        return n.intsAttr("axes");
    }

    private static Tensor unsqueeze(Node n, Tensor x, int[] axes) {
        if (axes == null) {
            throw bad(n, "no axes");
        }
        int rank = x.rank() + axes.length;
        boolean[] inserted = new boolean[rank];
        for (int a : axes) {
            inserted[axis(n, a, rank)] = true;
        }
        int[] out = new int[rank];
        for (int d = 0, j = 0; d < rank; d++) {
            out[d] = inserted[d] ? 1 : x.dim(j++);
        }
        return x.reshape(out);
    }

    private static Tensor squeeze(Node n, Tensor x, int[] axes) {
        boolean[] drop = new boolean[x.rank()];
        if (axes == null) {
            for (int d = 0; d < drop.length; d++) {
                drop[d] = x.dim(d) == 1;
            }
        } else {
            for (int a : axes) {
                int d = axis(n, a, x.rank());
                if (x.dim(d) != 1) {
                    throw bad(n, "axis " + a + " of " + Shapes.str(x.shape()) + " is not 1");
                }
                drop[d] = true;
            }
        }
        return x.reshape(Arrays.stream(range(x.rank())).filter(d -> !drop[d]).map(x::dim).toArray());
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }

    private static Tensor gather(Node n, Tensor data, Tensor indices, int axis) {
        int a = axis(n, axis, data.rank());
        int dim = data.dim(a);
        int[] idx = ints(indices);
        for (int i = 0; i < idx.length; i++) {
            if (idx[i] < -dim || idx[i] >= dim) {
                throw bad(n, "index " + idx[i] + " is out of range for axis " + a + " of size " + dim);
            }
            idx[i] = idx[i] < 0 ? idx[i] + dim : idx[i];
        }
        int[] ds = data.shape();
        int[] is = indices.shape();
        int[] out = new int[ds.length - 1 + is.length];
        System.arraycopy(ds, 0, out, 0, a);
        System.arraycopy(is, 0, out, a, is.length);
        System.arraycopy(ds, a + 1, out, a + is.length, ds.length - a - 1);
        int[] strides = Shapes.strides(ds);
        int[] iStrides = Shapes.strides(is);
        return gatherInto(out, data.data(), o -> {
            int f = 0;
            for (int d = 0; d < a; d++) {
                f += o[d] * strides[d];
            }
            int k = 0;
            for (int d = 0; d < is.length; d++) {
                k += o[a + d] * iStrides[d];
            }
            f += idx[k] * strides[a];
            for (int d = a + 1; d < ds.length; d++) {
                f += o[d - 1 + is.length] * strides[d];
            }
            return f;
        });
    }

    /** ONNX Shape of a value of this shape, with opset 15's start and end. */
    static Tensor shapeOf(int[] shape, long start, long end) {
        int rank = shape.length;
        int s = (int) Math.max(0, Math.min(rank, start < 0 ? start + rank : start));
        int e = (int) Math.max(0, Math.min(rank, end < 0 ? end + rank : end));
        float[] v = new float[Math.max(0, e - s)];
        for (int d = s; d < e; d++) {
            v[d - s] = shape[d];
        }
        return new Tensor(new int[] {v.length}, v);
    }

    /** Every element of {@code t} broadcast to {@code out} (row-major). */
    static float[] broadcastTo(Tensor t, int[] out) {
        int[] ts = t.shape();
        int[] st = Shapes.strides(ts);
        int r = out.length;
        return gatherInto(out, t.data(), idx -> {
            int f = 0;
            for (int d = 0; d < r; d++) {
                int sd = d - (r - ts.length);
                if (sd >= 0 && ts[sd] != 1) {
                    f += idx[d] * st[sd];
                }
            }
            return f;
        }).data();
    }

    static int[] broadcastShape(Node n, int[] a, int[] b) {
        int[] out = Shapes.broadcast(a, b);
        if (out == null) {
            throw bad(n, "shapes " + Shapes.str(a) + " and " + Shapes.str(b) + " do not broadcast");
        }
        return out;
    }

    /** Arithmetic and comparisons with NumPy broadcasting; Div on integers truncates toward zero. */
    private static Tensor binary(Node n, Tensor a, Tensor b) {
        int[] out = broadcastShape(n, a.shape(), b.shape());
        float[] p = broadcastTo(a, out);
        float[] q = broadcastTo(b, out);
        float[] r = new float[p.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = switch (n.opType()) {
                case "Add" -> p[i] + q[i];
                case "Sub" -> p[i] - q[i];
                case "Mul" -> p[i] * q[i];
                case "Div" -> {
                    if (n.integer()) {
                        if (q[i] == 0f) {
                            throw bad(n, "integer division by zero");
                        }
                        yield (float) ((long) p[i] / (long) q[i]);
                    }
                    yield p[i] / q[i];
                }
                case "Equal" -> p[i] == q[i] ? 1f : 0f;
                case "Less" -> p[i] < q[i] ? 1f : 0f;
                case "Greater" -> p[i] > q[i] ? 1f : 0f;
                case "Min" -> Math.min(p[i], q[i]);
                case "Max" -> Math.max(p[i], q[i]);
                default -> throw new IllegalArgumentException(n.opType());
            };
        }
        return new Tensor(out, r);
    }

    private static Tensor unary(Node n, Tensor x) {
        float[] v = x.data();
        float[] r = new float[v.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = switch (n.opType()) {
                case "Neg" -> -v[i];
                case "Abs" -> Math.abs(v[i]);
                case "Sqrt" -> (float) Math.sqrt(v[i]);
                case "Not" -> v[i] == 0f ? 1f : 0f;
                default -> throw new IllegalArgumentException(n.opType());
            };
        }
        return new Tensor(x.shape(), r);
    }

    private static Tensor where(Node n, Tensor c, Tensor x, Tensor y) {
        int[] out = broadcastShape(n, broadcastShape(n, c.shape(), x.shape()), y.shape());
        float[] cv = broadcastTo(c, out);
        float[] xv = broadcastTo(x, out);
        float[] yv = broadcastTo(y, out);
        float[] r = new float[cv.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = cv[i] != 0f ? xv[i] : yv[i];
        }
        return new Tensor(out, r);
    }

    private static Tensor expand(Node n, Tensor x, Tensor shape) {
        int[] target = ints(shape);
        int[] out = broadcastShape(n, x.shape(), target);
        foldedSize(n, out);
        return new Tensor(out, broadcastTo(x, out));
    }

    private static Tensor range(Node n, Tensor start, Tensor limit, Tensor delta) {
        double s = start.data()[0];
        double d = delta.data()[0];
        if (d == 0) {
            throw bad(n, "delta 0");
        }
        double steps = Math.max(0, Math.ceil((limit.data()[0] - s) / d));
        int count = foldedSize(n, new int[] {(int) Math.min(steps, Integer.MAX_VALUE)});
        float[] r = new float[count];
        for (int i = 0; i < count; i++) {
            r[i] = (float) (s + i * d);
        }
        return new Tensor(new int[] {count}, r);
    }

    /**
     * What a Slice selects on an input of {@code shape}: per axis {start, step, count}, null for
     * axes it leaves whole. Shared by the folding of constant slices and the importer's Slice on
     * activations.
     */
    static int[][] sliceSpec(Node n, int[] shape, List<Tensor> in) {
        int rank = shape.length;
        double[] starts;
        double[] ends;
        int[] axes;
        double[] steps;
        if (n.opset() < 10) {
            if (n.intsAttr("starts") == null || n.intsAttr("ends") == null) {
                throw bad(n, "needs the attributes 'starts' and 'ends' (opset " + n.opset() + ")");
            }
            starts = Arrays.stream(n.intsAttr("starts")).asDoubleStream().toArray();
            ends = Arrays.stream(n.intsAttr("ends")).asDoubleStream().toArray();
            axes = n.intsAttr("axes");
            steps = null;
        } else {
            if (in.size() < 3 || in.get(1) == null || in.get(2) == null) {
                throw bad(n, "needs the inputs 'starts' and 'ends' (opset " + n.opset() + ")");
            }
            starts = doubles(in.get(1));
            ends = doubles(in.get(2));
            axes = in.size() > 3 && in.get(3) != null ? ints(in.get(3)) : null;
            steps = in.size() > 4 && in.get(4) != null ? doubles(in.get(4)) : null;
        }
        if (ends.length != starts.length || (axes != null && axes.length != starts.length)
                || (steps != null && steps.length != starts.length)) {
            throw bad(n, "starts, ends, axes and steps differ in length");
        }
        int[][] spec = new int[rank][];
        for (int j = 0; j < starts.length; j++) {
            int a = axes == null ? j : axis(n, axes[j], rank);
            long dim = shape[a];
            long st = steps == null ? 1 : (long) steps[j];
            if (st == 0) {
                throw bad(n, "step 0 on axis " + a);
            }
            long s = clampIndex(starts[j], dim, st > 0 ? 0 : -1, st > 0 ? dim : dim - 1);
            long e = clampIndex(ends[j], dim, st > 0 ? 0 : -1, st > 0 ? dim : dim - 1);
            long count = st > 0 ? Math.max(0, (e - s + st - 1) / st) : Math.max(0, (s - e - st - 1) / -st);
            spec[a] = new int[] {(int) s, (int) st, (int) count};
        }
        return spec;
    }
}
