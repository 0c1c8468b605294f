package dev.kxai.onnx;

import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Operators {@link ConstantFolding} evaluates at load when every input is a constant, beyond its
 * shape arithmetic: positional encodings (Sin, Cos over a Range), masks and index arithmetic
 * (comparisons, logic, Mod, ArgMax, CumSum, Trilu, OneHot, NonZero, ScatterND, Tile) and reductions
 * of constants. Functions are computed in double and rounded once; integers are floats holding
 * them, as everywhere at load. Several of these (Tan, Mod, ArgMax, ...) run only here: on a
 * value computed per request they are refused by the importer with the node named.
 */
final class MoreFolding {
    static final Set<String> OPS = Set.of("Sin", "Cos", "Tan", "Exp", "Log", "Floor", "Ceil", "Round", "Reciprocal",
            "Sign", "Pow", "Mod", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Sum", "Mean", "ArgMax",
            "ArgMin", "CumSum", "Tile", "Trilu", "OneHot", "NonZero", "ScatterND", "ReduceProd", "ReduceSum",
            "ReduceMean", "ReduceMax", "ReduceMin");

    /** The operators this class adds to the importer's list (Sin and Cos also run per request: Op.Unary). */
    static final List<String> LISTED = List.of("Sin", "Cos", "Tan", "Mod", "ArgMax", "ArgMin", "Trilu",
            "OneHot", "NonZero", "ScatterND", "ReduceProd");

    private MoreFolding() {
    }

    /** Inputs ONNX requires. */
    static int requiredInputs(ConstantFolding.Node n) {
        return switch (n.opType()) {
            case "Pow", "Mod", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "CumSum", "Tile" -> 2;
            case "OneHot", "ScatterND" -> 3;
            default -> 1;
        };
    }

    static Tensor fold(ConstantFolding.Node n, List<Tensor> in) {
        return switch (n.opType()) {
            case "Sin", "Cos", "Tan", "Exp", "Log", "Floor", "Ceil", "Round", "Reciprocal", "Sign" -> unary(n, in.get(0));
            case "Pow", "Mod", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor" -> binary(n, in.get(0), in.get(1));
            case "Sum", "Mean" -> sum(n, in);
            case "ArgMax", "ArgMin" -> argExtreme(n, in.get(0));
            case "CumSum" -> cumSum(n, in.get(0), in.get(1));
            case "Tile" -> tile(n, in.get(0), in.get(1));
            case "Trilu" -> trilu(n, in.get(0), in.size() > 1 ? in.get(1) : null);
            case "OneHot" -> oneHot(n, in.get(0), in.get(1), in.get(2));
            case "NonZero" -> nonZero(in.get(0));
            case "ScatterND" -> scatterNd(n, in.get(0), in.get(1), in.get(2));
            default -> reduce(n, in);
        };
    }

    private static Tensor unary(ConstantFolding.Node n, Tensor x) {
        float[] v = x.data();
        float[] r = new float[v.length];
        for (int i = 0; i < r.length; i++) {
            double a = v[i];
            r[i] = (float) switch (n.opType()) {
                case "Sin" -> Math.sin(a);
                case "Cos" -> Math.cos(a);
                case "Tan" -> Math.tan(a);
                case "Exp" -> Math.exp(a);
                case "Log" -> Math.log(a);
                case "Floor" -> Math.floor(a);
                case "Ceil" -> Math.ceil(a);
                case "Round" -> Math.rint(a);
                case "Reciprocal" -> 1 / a;
                default -> Math.signum(a);
            };
        }
        return new Tensor(x.shape(), r);
    }

    private static Tensor binary(ConstantFolding.Node n, Tensor a, Tensor b) {
        int[] out = ConstantFolding.broadcastShape(n, a.shape(), b.shape());
        float[] p = ConstantFolding.broadcastTo(a, out);
        float[] q = ConstantFolding.broadcastTo(b, out);
        boolean fmod = n.intAttr("fmod", 0) != 0;
        float[] r = new float[p.length];
        for (int i = 0; i < r.length; i++) {
            double x = p[i];
            double y = q[i];
            r[i] = (float) switch (n.opType()) {
                case "Pow" -> Math.pow(x, y);
                case "Mod" -> {
                    if (y == 0 && (n.integer() || !fmod)) {
                        throw ConstantFolding.bad(n, "modulo by zero");
                    }
                    // fmod: the sign of the dividend (C's fmod); otherwise the divisor's (Python's %)
                    double m = x % y;
                    yield fmod || m == 0 || (m < 0) == (y < 0) ? m : m + y;
                }
                case "GreaterOrEqual" -> x >= y ? 1 : 0;
                case "LessOrEqual" -> x <= y ? 1 : 0;
                case "And" -> x != 0 && y != 0 ? 1 : 0;
                case "Or" -> x != 0 || y != 0 ? 1 : 0;
                default -> (x != 0) != (y != 0) ? 1 : 0;
            };
        }
        return new Tensor(out, r);
    }

    private static Tensor sum(ConstantFolding.Node n, List<Tensor> in) {
        int[] out = in.get(0).shape();
        for (Tensor t : in) {
            out = ConstantFolding.broadcastShape(n, out, t.shape());
        }
        double[] acc = new double[Shapes.intSize(out)];
        for (Tensor t : in) {
            float[] v = ConstantFolding.broadcastTo(t, out);
            for (int i = 0; i < acc.length; i++) {
                acc[i] += v[i];
            }
        }
        float[] r = new float[acc.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = (float) (n.opType().equals("Mean") ? acc[i] / in.size() : acc[i]);
        }
        return new Tensor(out, r);
    }

    /** A tensor seen as [outer, axis, inner] around one axis. */
    private record Around(int outer, int size, int inner) {
        static Around of(int[] s, int axis) {
            int outer = 1;
            int inner = 1;
            for (int d = 0; d < axis; d++) {
                outer *= s[d];
            }
            for (int d = axis + 1; d < s.length; d++) {
                inner *= s[d];
            }
            return new Around(outer, s[axis], inner);
        }
    }

    private static int[] dropAxis(int[] s, int axis, boolean keep) {
        if (keep) {
            int[] r = s.clone();
            r[axis] = 1;
            return r;
        }
        int[] r = new int[s.length - 1];
        for (int d = 0, k = 0; d < s.length; d++) {
            if (d != axis) {
                r[k++] = s[d];
            }
        }
        return r;
    }

    private static Tensor argExtreme(ConstantFolding.Node n, Tensor x) {
        int axis = ConstantFolding.axis(n, n.intAttr("axis", 0), x.shape().length);
        boolean last = n.intAttr("select_last_index", 0) != 0;
        boolean max = n.opType().equals("ArgMax");
        Around g = Around.of(x.shape(), axis);
        if (g.size == 0) {
            throw ConstantFolding.bad(n, "empty axis " + axis);
        }
        float[] v = x.data();
        float[] r = new float[g.outer * g.inner];
        for (int o = 0; o < g.outer; o++) {
            for (int i = 0; i < g.inner; i++) {
                int best = 0;
                for (int k = 1; k < g.size; k++) {
                    float c = v[(o * g.size + k) * g.inner + i];
                    float b = v[(o * g.size + best) * g.inner + i];
                    boolean better = max ? c > b : c < b;
                    if (better || last && c == b) {
                        best = k;
                    }
                }
                r[o * g.inner + i] = best;
            }
        }
        return new Tensor(dropAxis(x.shape(), axis, n.intAttr("keepdims", 1) != 0), r);
    }

    private static Tensor cumSum(ConstantFolding.Node n, Tensor x, Tensor axisT) {
        if (axisT.size() != 1) {
            throw ConstantFolding.bad(n, "axis must be one value, got " + axisT.size());
        }
        int axis = ConstantFolding.axis(n, (long) axisT.data()[0], x.shape().length);
        boolean exclusive = n.intAttr("exclusive", 0) != 0;
        boolean reverse = n.intAttr("reverse", 0) != 0;
        Around g = Around.of(x.shape(), axis);
        float[] v = x.data();
        float[] r = new float[v.length];
        for (int o = 0; o < g.outer; o++) {
            for (int i = 0; i < g.inner; i++) {
                double acc = 0;
                for (int s = 0; s < g.size; s++) {
                    int k = reverse ? g.size - 1 - s : s;
                    int at = (o * g.size + k) * g.inner + i;
                    if (exclusive) {
                        r[at] = (float) acc;
                        acc += v[at];
                    } else {
                        acc += v[at];
                        r[at] = (float) acc;
                    }
                }
            }
        }
        return new Tensor(x.shape(), r);
    }

    private static Tensor tile(ConstantFolding.Node n, Tensor x, Tensor repeats) {
        int[] s = x.shape();
        int[] rep = ConstantFolding.ints(repeats);
        if (rep.length != s.length) {
            throw ConstantFolding.bad(n, rep.length + " repeats for rank " + s.length);
        }
        int[] out = new int[s.length];
        for (int d = 0; d < s.length; d++) {
            if (rep[d] < 0) {
                throw ConstantFolding.bad(n, "negative repeat " + rep[d]);
            }
            out[d] = s[d] * rep[d];
        }
        int[] st = Shapes.strides(s);
        float[] r = new float[Shapes.intSize(out)];
        int[] idx = new int[out.length];
        for (int e = 0; e < r.length; e++) {
            int f = 0;
            for (int d = 0; d < s.length; d++) {
                f += idx[d] % s[d] * st[d];
            }
            r[e] = x.data()[f];
            for (int d = out.length - 1; d >= 0 && ++idx[d] == out[d]; d--) {
                idx[d] = 0;
            }
        }
        return new Tensor(out, r);
    }

    private static Tensor trilu(ConstantFolding.Node n, Tensor x, Tensor kT) {
        int[] s = x.shape();
        if (s.length < 2) {
            throw ConstantFolding.bad(n, "input of rank " + s.length + "; Trilu takes matrices");
        }
        long k = kT == null ? 0 : (long) kT.data()[0];
        boolean upper = n.intAttr("upper", 1) != 0;
        int rows = s[s.length - 2];
        int cols = s[s.length - 1];
        float[] r = x.data().clone();
        for (int e = 0; e < r.length; e++) {
            int j = e % cols;
            int i = e / cols % rows;
            boolean keep = upper ? j - i >= k : j - i <= k;
            if (!keep) {
                r[e] = 0;
            }
        }
        return new Tensor(s, r);
    }

    private static Tensor oneHot(ConstantFolding.Node n, Tensor indices, Tensor depthT, Tensor values) {
        int depth = (int) depthT.data()[0];
        if (depth < 1 || values.size() != 2) {
            throw ConstantFolding.bad(n, "depth " + depth + " and " + values.size() + " values (depth >= 1, two values)");
        }
        int[] s = indices.shape();
        int axis = ConstantFolding.axis(n, n.intAttr("axis", -1), s.length + 1);
        int[] out = new int[s.length + 1];
        for (int d = 0, k = 0; d < out.length; d++) {
            out[d] = d == axis ? depth : s[k++];
        }
        Around g = Around.of(out, axis);
        float[] r = new float[Shapes.intSize(out)];
        for (int o = 0; o < g.outer; o++) {
            for (int i = 0; i < g.inner; i++) {
                long idx = (long) indices.data()[o * g.inner + i];
                idx = idx < 0 ? idx + depth : idx;
                for (int c = 0; c < depth; c++) {
                    r[(o * depth + c) * g.inner + i] = values.data()[c == idx ? 1 : 0];
                }
            }
        }
        return new Tensor(out, r);
    }

    private static Tensor nonZero(Tensor x) {
        int[] s = x.shape();
        List<Integer> hits = new ArrayList<>();
        for (int e = 0; e < x.size(); e++) {
            if (x.data()[e] != 0f) {
                hits.add(e);
            }
        }
        int[] st = Shapes.strides(s);
        float[] r = new float[s.length * hits.size()];
        for (int h = 0; h < hits.size(); h++) {
            int e = hits.get(h);
            for (int d = 0; d < s.length; d++) {
                r[d * hits.size() + h] = e / st[d] % s[d];
            }
        }
        return new Tensor(new int[] {s.length, hits.size()}, r);
    }

    private static Tensor scatterNd(ConstantFolding.Node n, Tensor data, Tensor indices, Tensor updates) {
        int[] s = data.shape();
        int[] is = indices.shape();
        int q = is[is.length - 1];
        if (q > s.length) {
            throw ConstantFolding.bad(n, "indices of depth " + q + " for data of rank " + s.length);
        }
        int[] st = Shapes.strides(s);
        int slice = 1;
        for (int d = q; d < s.length; d++) {
            slice *= s[d];
        }
        int count = indices.size() / Math.max(q, 1);
        if (updates.size() != count * slice) {
            throw ConstantFolding.bad(n, "updates of shape " + Shapes.str(updates.shape()) + " do not fit");
        }
        String reduction = n.stringAttr("reduction", "none");
        float[] r = data.data().clone();
        for (int u = 0; u < count; u++) {
            int base = 0;
            for (int d = 0; d < q; d++) {
                long v = (long) indices.data()[u * q + d];
                v = v < 0 ? v + s[d] : v;
                if (v < 0 || v >= s[d]) {
                    throw ConstantFolding.bad(n, "index " + v + " is out of range for axis " + d + " of " + Shapes.str(s));
                }
                base += (int) v * st[d];
            }
            for (int k = 0; k < slice; k++) {
                float up = updates.data()[u * slice + k];
                r[base + k] = switch (reduction) {
                    case "add" -> r[base + k] + up;
                    case "mul" -> r[base + k] * up;
                    case "max" -> Math.max(r[base + k], up);
                    case "min" -> Math.min(r[base + k], up);
                    case "none" -> up;
                    default -> throw ConstantFolding.bad(n, "reduction '" + reduction + "' (none, add, mul, max, min)");
                };
            }
        }
        return new Tensor(s, r);
    }

    /** ReduceProd/Sum/Mean/Max/Min of a constant: axes an attribute or (ReduceSum from 13, the rest from 18) an input. */
    private static Tensor reduce(ConstantFolding.Node n, List<Tensor> in) {
        Tensor x = in.get(0);
        int rank = x.shape().length;
        boolean axesInput = n.opset() >= (n.opType().equals("ReduceSum") ? 13 : 18);
        int[] axes = axesInput ? (in.size() > 1 && in.get(1) != null ? ConstantFolding.ints(in.get(1)) : null)
                : n.intsAttr("axes");
        if (axes == null || axes.length == 0) {
            if (n.intAttr("noop_with_empty_axes", 0) != 0) {
                return x;
            }
            axes = new int[rank];
            for (int d = 0; d < rank; d++) {
                axes[d] = d;
            }
        }
        boolean[] reduced = new boolean[rank];
        for (int a : axes) {
            reduced[ConstantFolding.axis(n, a, rank)] = true;
        }
        boolean keep = n.intAttr("keepdims", 1) != 0;
        int[] s = x.shape();
        int[] full = new int[rank];
        List<Integer> kept = new ArrayList<>();
        for (int d = 0; d < rank; d++) {
            full[d] = reduced[d] ? 1 : s[d];
            if (keep || !reduced[d]) {
                kept.add(full[d]);
            }
        }
        int[] fst = Shapes.strides(full);
        int size = Shapes.intSize(full);
        double[] acc = new double[size];
        int[] count = new int[size];
        String t = n.opType();
        java.util.Arrays.fill(acc, t.equals("ReduceProd") ? 1 : t.equals("ReduceMax") ? Double.NEGATIVE_INFINITY
                : t.equals("ReduceMin") ? Double.POSITIVE_INFINITY : 0);
        int[] idx = new int[rank];
        for (int e = 0; e < x.size(); e++) {
            int o = 0;
            for (int d = 0; d < rank; d++) {
                o += reduced[d] ? 0 : idx[d] * fst[d];
            }
            double v = x.data()[e];
            acc[o] = switch (t) {
                case "ReduceProd" -> acc[o] * v;
                case "ReduceMax" -> Math.max(acc[o], v);
                case "ReduceMin" -> Math.min(acc[o], v);
                default -> acc[o] + v;
            };
            count[o]++;
            for (int d = rank - 1; d >= 0 && ++idx[d] == s[d]; d--) {
                idx[d] = 0;
            }
        }
        float[] r = new float[size];
        for (int i = 0; i < size; i++) {
            r[i] = (float) (t.equals("ReduceMean") ? acc[i] / count[i] : acc[i]);
        }
        return new Tensor(kept.stream().mapToInt(Integer::intValue).toArray(), r);
    }
}
