package dev.kxai.backend.cpu;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/** Flatten, Reshape, Concat and Pad (data movement only), and batch norm in inference mode. */
final class ShapeOps {
    private ShapeOps() {
    }

    static int axis(Node node, int axis, int rank, boolean inclusiveEnd) {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a > rank || (!inclusiveEnd && a == rank)) {
            throw new InvalidInputException("node '" + node.name() + "' (" + node.opType() + "): axis " + axis
                    + " is out of range for rank " + rank);
        }
        return a;
    }

    static Tensor flatten(Node node, Tensor x, int axis) {
        int a = axis(node, axis, x.rank(), true);
        int outer = 1;
        for (int d = 0; d < a; d++) {
            outer *= x.dim(d);
        }
        return x.reshape(outer, outer == 0 ? 0 : x.size() / outer);
    }

    static Tensor reshape(Node node, Tensor x, Tensor shapeTensor, boolean allowZero) {
        float[] sv = shapeTensor.data();
        int[] s = new int[sv.length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            int v = (int) sv[i];
            if (v == 0 && !allowZero) {
                if (i >= x.rank()) {
                    throw bad(node, x, s);
                }
                v = x.dim(i);
            }
            if (v == -1) {
                if (infer >= 0) {
                    throw bad(node, x, s);
                }
                infer = i;
            } else {
                known *= v;
            }
            s[i] = v;
        }
        if (infer >= 0) {
            if (known == 0 || x.size() % known != 0) {
                throw bad(node, x, s);
            }
            s[infer] = (int) (x.size() / known);
        }
        if (Shapes.size(s) != x.size()) {
            throw bad(node, x, s);
        }
        return x.reshape(s);
    }

    /** Reshape to a shape the plan inferred (a batch-dependent target is only known there). */
    static Tensor reshapeTo(Node node, Tensor x, int[] target) {
        if (Shapes.size(target) != x.size()) {
            throw bad(node, x, target);
        }
        return x.reshape(target);
    }

    /** Expand: every output element reads the input element it broadcasts from. */
    static Tensor expand(Tensor x, int[] out) {
        int[] idx = ElementwiseOps.broadcastIndex(x.shape(), out);
        float[] y = new float[idx.length];
        float[] xv = x.data();
        for (int i = 0; i < y.length; i++) {
            y[i] = xv[idx[i]];
        }
        return new Tensor(out, y);
    }

    /** Expand's backward: the gradient summed (in double, as ReduceSum) over the broadcast axes. */
    static Tensor expandBackward(int[] in, Tensor g) {
        boolean[] r = Shapes.broadcastAxes(in, g.shape());
        int[] kept = g.shape();
        for (int d = 0; d < kept.length; d++) {
            kept[d] = r[d] ? 1 : kept[d];
        }
        return reduce(g, r, false, kept).reshape(in);
    }

    /** [outer, dim, inner] around a Select's axis. */
    private static int[] around(int[] shape, int axis) {
        int a = axis < 0 ? axis + shape.length : axis;
        long outer = 1;
        long inner = 1;
        for (int d = 0; d < a; d++) {
            outer *= shape[d];
        }
        for (int d = a + 1; d < shape.length; d++) {
            inner *= shape[d];
        }
        return new int[] {Math.toIntExact(outer), shape[a], Math.toIntExact(inner)};
    }

    /** A Gather's per-request ids as the Select they make (negative ids from the end; out of range refused). */
    static Op.Select ids(Node node, Op.Gather op, Tensor table, Tensor ids) {
        int axis = op.axis() < 0 ? op.axis() + table.rank() : op.axis();
        int dim = table.dim(axis);
        float[] v = ids.data();
        int[] idx = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            if (!(v[i] >= -dim && v[i] < dim) || v[i] != Math.rint(v[i])) {
                throw new InvalidInputException("node '" + node.name() + "' (Gather): id " + v[i] + " at flat index " + i
                        + " is not an integer in [" + (-dim) + ", " + dim + ")");
            }
            idx[i] = (int) (v[i] < 0 ? v[i] + dim : v[i]);
        }
        return new Op.Select(axis, idx, ids.shape());
    }

    /** Select (constant-index Gather, Slice along one axis): y[o, j, i] = x[o, idx[j], i]. */
    static Tensor select(Tensor x, Op.Select op, int[] out) {
        int[] oi = around(x.shape(), op.axis());
        int[] idx = op.indices();
        float[] xv = x.data();
        float[] y = new float[Shapes.intSize(out)];
        int inner = oi[2];
        for (int o = 0; o < oi[0]; o++) {
            for (int j = 0; j < idx.length; j++) {
                System.arraycopy(xv, (o * oi[1] + idx[j]) * inner, y, (o * idx.length + j) * inner, inner);
            }
        }
        return new Tensor(out, y);
    }

    /** Select's backward: each output gradient added back at its index (indices may repeat). */
    static Tensor selectBackward(int[] inShape, Op.Select op, Tensor g) {
        int[] oi = around(inShape, op.axis());
        int[] idx = op.indices();
        float[] gv = g.data();
        float[] gx = new float[Shapes.intSize(inShape)];
        int inner = oi[2];
        if (inner == 1) { // a Slice of the last axis (ViT's q, k, v out of one projection)
            for (int o = 0; o < oi[0]; o++) {
                int to = o * oi[1];
                for (int j = 0, from = o * idx.length; j < idx.length; j++, from++) {
                    gx[to + idx[j]] += gv[from];
                }
            }
            return new Tensor(inShape, gx);
        }
        for (int o = 0; o < oi[0]; o++) {
            for (int j = 0; j < idx.length; j++) {
                int to = (o * oi[1] + idx[j]) * inner;
                int from = (o * idx.length + j) * inner;
                for (int i = 0; i < inner; i++) {
                    gx[to + i] += gv[from + i];
                }
            }
        }
        return new Tensor(inShape, gx);
    }

    private static InvalidInputException bad(Node node, Tensor x, int[] target) {
        return new InvalidInputException("node '" + node.name() + "' (Reshape): cannot reshape " + Shapes.str(x.shape())
                + " to " + Shapes.str(target));
    }

    static Tensor concat(Node node, Tensor[] parts, int axis) {
        int rank = parts[0].rank();
        int a = axis(node, axis, rank, false);
        int[] out = parts[0].shape();
        out[a] = 0;
        for (Tensor p : parts) {
            if (p.rank() != rank) {
                throw new InvalidInputException("node '" + node.name() + "' (Concat): inputs of different rank "
                        + Shapes.str(parts[0].shape()) + " and " + Shapes.str(p.shape()));
            }
            for (int d = 0; d < rank; d++) {
                if (d != a && p.dim(d) != parts[0].dim(d)) {
                    throw new InvalidInputException("node '" + node.name() + "' (Concat): shapes " + Shapes.str(parts[0].shape())
                            + " and " + Shapes.str(p.shape()) + " differ outside axis " + a);
                }
            }
            out[a] += p.dim(a);
        }
        int outer = 1;
        for (int d = 0; d < a; d++) {
            outer *= out[d];
        }
        float[] y = new float[Shapes.intSize(out)];
        int outRow = y.length / Math.max(1, outer);
        int at = 0;
        for (Tensor p : parts) {
            int chunk = p.size() / Math.max(1, outer);
            for (int o = 0; o < outer; o++) {
                System.arraycopy(p.data(), o * chunk, y, o * outRow + at, chunk);
            }
            at += chunk;
        }
        Tensor result = new Tensor(out, y);
        // float convolutions' bounds carried to a decision after the Concat (googlenet's pools)
        dev.kxai.tensor.ExactValues e = ExactDecisions.concat(parts, outer, y);
        return e == null ? result : result.withExact(e);
    }

    static Tensor[] concatBackward(Node node, Tensor[] parts, int axis, Tensor gOut, boolean[] need) {
        int a = axis(node, axis, parts[0].rank(), false);
        int outer = 1;
        for (int d = 0; d < a; d++) {
            outer *= gOut.dim(d);
        }
        int outRow = gOut.size() / Math.max(1, outer);
        Tensor[] grads = new Tensor[parts.length];
        int at = 0;
        for (int i = 0; i < parts.length; i++) {
            int chunk = parts[i].size() / Math.max(1, outer);
            if (need[i]) {
                float[] g = new float[parts[i].size()];
                for (int o = 0; o < outer; o++) {
                    System.arraycopy(gOut.data(), o * outRow + at, g, o * chunk, chunk);
                }
                grads[i] = new Tensor(parts[i].shape(), g);
            }
            at += chunk;
        }
        return grads;
    }

    /** Per-channel scale and shift of inference-mode batch norm: y = x·scale + shift. */
    private static float[][] bnCoefficients(Node node, Tensor x, Tensor gamma, Tensor beta, Tensor mean, Tensor var,
            float eps) {
        if (x.rank() < 2) {
            throw new InvalidInputException("node '" + node.name() + "' (BatchNormalization): input " + Shapes.str(x.shape())
                    + " has no channel axis");
        }
        int c = x.dim(1);
        for (Tensor t : new Tensor[] {gamma, beta, mean, var}) {
            if (t.size() != c) {
                throw new InvalidInputException("node '" + node.name() + "' (BatchNormalization): parameter of shape "
                        + Shapes.str(t.shape()) + " does not match " + c + " channels");
            }
        }
        float[] scale = new float[c];
        float[] shift = new float[c];
        for (int ch = 0; ch < c; ch++) {
            float inv = (float) (1.0 / Math.sqrt(var.data()[ch] + eps));
            scale[ch] = gamma.data()[ch] * inv;
            shift[ch] = beta.data()[ch] - mean.data()[ch] * scale[ch];
        }
        return new float[][] {scale, shift};
    }

    static Tensor batchNorm(Node node, Tensor x, Tensor gamma, Tensor beta, Tensor mean, Tensor var, float eps) {
        float[][] k = bnCoefficients(node, x, gamma, beta, mean, var, eps);
        int c = x.dim(1);
        int inner = x.size() / Math.max(1, x.dim(0) * c);
        float[] xd = x.data();
        float[] y = new float[xd.length];
        for (int i = 0; i < xd.length; i++) {
            int ch = (i / inner) % c;
            y[i] = xd[i] * k[0][ch] + k[1][ch];
        }
        Tensor out = new Tensor(x.shape(), y);
        dev.kxai.tensor.ExactValues in = x.exact();
        if (in == null) {
            return out;
        }
        // a float convolution's bounds carried through the affine map (Conv → BN → Relu, unfolded):
        // the exact path applies the same float ops to its own input values
        return out.withExact(new dev.kxai.tensor.ExactValues() {
            @Override
            public float bound(int i, float value) {
                float scale = k[0][(i / inner) % c];
                double b = in.bound(i, xd[i]);
                if (b == 0) {
                    return 0f; // an exact input: the same float ops as the exact path's
                }
                return (float) ((Math.abs(scale) * b + 2 * ExactDecisions.U * (Math.abs(xd[i] * scale) + Math.abs(value)
                        + Math.abs(scale) * b)) * (1 + 4 * ExactDecisions.U)) + Float.MIN_NORMAL;
            }

            @Override
            public float exact(int i) {
                int ch = (i / inner) % c;
                return in.exact(i) * k[0][ch] + k[1][ch];
            }
        });
    }

    static Tensor batchNormBackward(Node node, Tensor x, Tensor gamma, Tensor beta, Tensor mean, Tensor var, float eps,
            Tensor gOut) {
        float[] scale = bnCoefficients(node, x, gamma, beta, mean, var, eps)[0];
        int c = x.dim(1);
        int inner = x.size() / Math.max(1, x.dim(0) * c);
        float[] g = gOut.data();
        float[] dx = new float[g.length];
        for (int i = 0; i < g.length; i++) {
            dx[i] = g[i] * scale[(i / inner) % c];
        }
        return new Tensor(x.shape(), dx);
    }

    /** Pad modes by number, as the kernels take them (kernels/dense.cu). */
    static final int PAD_CONSTANT = 0;
    static final int PAD_REFLECT = 1;
    static final int PAD_EDGE = 2;
    static final int PAD_WRAP = 3;

    static int padMode(String mode) {
        return switch (mode) {
            case "constant" -> PAD_CONSTANT;
            case "reflect" -> PAD_REFLECT;
            case "edge" -> PAD_EDGE;
            case "wrap" -> PAD_WRAP;
            default -> throw new IllegalArgumentException("unknown pad mode " + mode);
        };
    }

    /**
     * The input index that output coordinate {@code o} reads on an axis of size {@code n} with
     * {@code begin} padded before it, or -1 where constant mode writes the fill value. The same
     * expression as {@code kx_pad_source} in kernels/dense.cu.
     */
    static int padSource(int o, int begin, int n, int mode) {
        int s = o - begin;
        if (s >= 0 && s < n) {
            return s;
        }
        return switch (mode) {
            case PAD_REFLECT -> s < 0 ? -s : 2 * (n - 1) - s;
            case PAD_EDGE -> s < 0 ? 0 : n - 1;
            case PAD_WRAP -> Math.floorMod(s, n);
            default -> -1;
        };
    }

    /** Pad forward: every output element copies its source element, or the fill value. */
    static Tensor pad(Tensor x, int[] pads, int mode, float value, int[] outShape) {
        int rank = x.rank();
        int[] in = x.shape();
        int[] inStrides = Shapes.strides(in);
        float[] xd = x.data();
        float[] y = new float[Shapes.intSize(outShape)];
        int[] o = new int[rank];
        for (int e = 0; e < y.length; e++) {
            int src = 0;
            boolean fill = false;
            for (int d = 0; d < rank; d++) {
                int s = padSource(o[d], pads[d], in[d], mode);
                fill |= s < 0;
                src += s * inStrides[d];
            }
            y[e] = fill ? value : xd[src];
            for (int d = rank - 1; d >= 0 && ++o[d] == outShape[d]; d--) {
                o[d] = 0; // the next output coordinate, last axis fastest
            }
        }
        return new Tensor(outShape, y);
    }

    /**
     * Pad backward as a gather: each input element sums the gradients of the outputs that read it,
     * in ascending output order (axis 0 outermost), as the kernel does: deterministic, no atomics.
     */
    static Tensor padBackward(int[] inShape, int[] pads, int mode, Tensor gOut) {
        int rank = inShape.length;
        int[] out = gOut.shape();
        int[] outStrides = Shapes.strides(out);
        // per axis and input coordinate: the output coordinates reading it, ascending
        int[][][] readers = new int[rank][][];
        for (int d = 0; d < rank; d++) {
            int[] count = new int[inShape[d]];
            for (int od = 0; od < out[d]; od++) {
                int s = padSource(od, pads[d], inShape[d], mode);
                if (s >= 0) {
                    count[s]++;
                }
            }
            readers[d] = new int[inShape[d]][];
            for (int s = 0; s < inShape[d]; s++) {
                readers[d][s] = new int[count[s]];
                count[s] = 0;
            }
            for (int od = 0; od < out[d]; od++) {
                int s = padSource(od, pads[d], inShape[d], mode);
                if (s >= 0) {
                    readers[d][s][count[s]++] = od;
                }
            }
        }
        float[] g = gOut.data();
        float[] dx = new float[Shapes.intSize(inShape)];
        int[] i = new int[rank];
        for (int e = 0; e < dx.length; e++) {
            dx[e] = gather(g, readers, outStrides, i, 0, 0, 0f);
            for (int d = rank - 1; d >= 0 && ++i[d] == inShape[d]; d--) {
                i[d] = 0;
            }
        }
        return new Tensor(inShape, dx);
    }

    /** Σ over the readers of input coordinate i on axes d.. (ascending), added to {@code acc} in that order. */
    private static float gather(float[] g, int[][][] readers, int[] outStrides, int[] i, int d, int offset, float acc) {
        if (d == i.length) {
            return acc + g[offset];
        }
        for (int o : readers[d][i[d]]) {
            acc = gather(g, readers, outStrides, i, d + 1, offset + o * outStrides[d], acc);
        }
        return acc;
    }

    /**
     * Transpose: output axis d is input axis perm[d] (its backward is the inverse permutation). Axes
     * of size 1 are dropped and axes that stay neighbours are merged first, so ViT's [197, 1, 768] →
     * [1, 197, 768] is one copy and [197, 12, 64] → [12, 197, 64] copies runs of 64; the innermost
     * remaining output axis is a tight strided loop. A copy: the bits are the input's.
     */
    static Tensor transpose(Tensor x, int[] perm) {
        int rank = x.rank();
        int[] in = x.shape();
        int[] out = new int[rank];
        for (int d = 0; d < rank; d++) {
            out[d] = in[perm[d]];
        }
        float[] xd = x.data();
        float[] y = new float[xd.length];
        if (y.length == 0) {
            return new Tensor(out, y);
        }
        // the output's axes, without size-1 axes, merged where output axis d + 1 is the input axis
        // right after output axis d's: sizes and input strides of the reduced output axes
        int[] inStrides = Shapes.strides(in);
        int[] size = new int[rank];
        int[] stride = new int[rank];
        int r = 0;
        int lastAxis = -2;
        for (int d = 0; d < rank; d++) {
            int a = perm[d];
            if (in[a] == 1) {
                continue;
            }
            if (r > 0 && a == lastAxis + 1) { // contiguous in the input after the previous one: merge
                size[r - 1] *= in[a];
                stride[r - 1] = inStrides[a];
            } else {
                size[r] = in[a];
                stride[r] = inStrides[a];
                r++;
            }
            lastAxis = a;
        }
        if (r <= 1) { // one axis left: the elements in their order
            System.arraycopy(xd, 0, y, 0, y.length);
            return new Tensor(out, y);
        }
        int run = size[r - 1];
        int runStride = stride[r - 1];
        int runs = y.length / run;
        int[] o = new int[r - 1];
        int src = 0;
        for (int e = 0, dst = 0; e < runs; e++, dst += run) {
            if (runStride == 1) {
                System.arraycopy(xd, src, y, dst, run);
            } else {
                for (int j = 0, s = src; j < run; j++, s += runStride) {
                    y[dst + j] = xd[s];
                }
            }
            for (int d = r - 2; d >= 0; d--) { // the next run's coordinates, its source offset with them
                src += stride[d];
                if (++o[d] < size[d]) {
                    break;
                }
                src -= stride[d] * size[d];
                o[d] = 0;
            }
        }
        return new Tensor(out, y);
    }

    static int[] inverse(int[] perm) {
        int[] inv = new int[perm.length];
        for (int d = 0; d < perm.length; d++) {
            inv[perm[d]] = d;
        }
        return inv;
    }

    /**
     * ReduceMean / ReduceSum over the axes marked in {@code reduced}: each output sums its inputs in
     * double in ascending input order, then divides (mean) and rounds once, as reduce_forward does.
     */
    static Tensor reduce(Tensor x, boolean[] reduced, boolean mean, int[] outShape) {
        int[] in = x.shape();
        float[] xd = x.data();
        int block = trailingBlock(in, reduced);
        if (block > 0 && xd.length > 0) {
            // the reduced axes are the trailing ones (LayerNorm's mean over the last axis): each output
            // sums one contiguous block, in ascending order, in double; outputs split over the cores
            int outs = xd.length / block;
            double count = block;
            float[] y = new float[outs];
            int per = Math.max(1, Parallel.GRAIN / block);
            Parallel.forEach((outs + per - 1) / per, p -> {
                for (int o = p * per, e = Math.min(outs, o + per); o < e; o++) {
                    double sum = 0;
                    for (int i = o * block, end = i + block; i < end; i++) {
                        sum += xd[i];
                    }
                    y[o] = (float) (mean ? sum / count : sum);
                }
            });
            return new Tensor(outShape, y);
        }
        int[] outIndex = reducedIndex(in, reduced);
        double[] sums = new double[Shapes.intSize(outShape)];
        for (int i = 0; i < xd.length; i++) {
            sums[outIndex[i]] += xd[i];
        }
        double count = (double) xd.length / Math.max(1, sums.length);
        float[] y = new float[sums.length];
        for (int o = 0; o < y.length; o++) {
            y[o] = (float) (mean ? sums[o] / count : sums[o]);
        }
        return new Tensor(outShape, y);
    }

    /**
     * The number of input elements per output when exactly the trailing axes are reduced (every
     * reduced axis after every kept one, ignoring axes of size 1), else 0.
     */
    static int trailingBlock(int[] in, boolean[] reduced) {
        int block = 1;
        boolean inReduced = true;
        for (int d = in.length - 1; d >= 0; d--) {
            if (in[d] == 1) {
                continue;
            }
            if (reduced[d]) {
                if (!inReduced) {
                    return 0;
                }
                block *= in[d];
            } else {
                inReduced = false;
            }
        }
        return block;
    }

    /** ReduceMax/ReduceMin: the extreme of each output's inputs, exact; NaN propagates. */
    static Tensor reduceExtreme(Tensor x, boolean[] reduced, boolean max, int[] outShape) {
        int[] outIndex = reducedIndex(x.shape(), reduced);
        float[] y = new float[Shapes.intSize(outShape)];
        boolean[] seen = new boolean[y.length];
        float[] xd = x.data();
        for (int i = 0; i < xd.length; i++) {
            int o = outIndex[i];
            float v = xd[i];
            if (!seen[o] || Float.isNaN(v) || (!Float.isNaN(y[o]) && (max ? v > y[o] : v < y[o]))) {
                y[o] = v;
                seen[o] = true;
            }
        }
        return new Tensor(outShape, y);
    }

    /** Their backward: dy split evenly among the inputs equal to the output (none where it is NaN). */
    static Tensor reduceExtremeBackward(Tensor x, Tensor y, boolean[] reduced, Tensor gOut) {
        int[] outIndex = reducedIndex(x.shape(), reduced);
        float[] ties = new float[y.size()];
        float[] xd = x.data();
        float[] yd = y.data();
        for (int i = 0; i < xd.length; i++) {
            ties[outIndex[i]] += xd[i] == yd[outIndex[i]] ? 1f : 0f;
        }
        float[] dx = new float[xd.length];
        for (int i = 0; i < xd.length; i++) {
            int o = outIndex[i];
            dx[i] = xd[i] == yd[o] ? gOut.data()[o] / ties[o] : 0f;
        }
        return new Tensor(x.shape(), dx);
    }

    /** dx[i] = dy[the output i reduces into], divided by the count for a mean. */
    static Tensor reduceBackward(int[] inShape, boolean[] reduced, boolean mean, Tensor gOut) {
        float[] g = gOut.data();
        int block = trailingBlock(inShape, reduced);
        if (block > 0) {
            float[] dx = new float[Shapes.intSize(inShape)];
            double count = (double) dx.length / Math.max(1, g.length);
            for (int o = 0; o < g.length; o++) {
                float v = mean ? (float) (g[o] / count) : g[o];
                java.util.Arrays.fill(dx, o * block, (o + 1) * block, v);
            }
            return new Tensor(inShape, dx);
        }
        int[] outIndex = reducedIndex(inShape, reduced);
        float[] dx = new float[outIndex.length];
        double count = (double) dx.length / Math.max(1, g.length);
        for (int i = 0; i < dx.length; i++) {
            dx[i] = mean ? (float) (g[outIndex[i]] / count) : g[outIndex[i]];
        }
        return new Tensor(inShape, dx);
    }

    /** For each input element (row-major), the flat index of the output element it reduces into. */
    private static int[] reducedIndex(int[] in, boolean[] reduced) {
        int rank = in.length;
        int[] outStride = new int[rank];
        int acc = 1;
        for (int d = rank - 1; d >= 0; d--) {
            outStride[d] = reduced[d] ? 0 : acc;
            acc *= reduced[d] ? 1 : in[d];
        }
        int[] idx = new int[Shapes.intSize(in)];
        int[] c = new int[rank];
        int off = 0;
        for (int e = 0; e < idx.length; e++) {
            idx[e] = off;
            for (int d = rank - 1; d >= 0; d--) {
                off += outStride[d];
                if (++c[d] < in[d]) {
                    break;
                }
                off -= outStride[d] * in[d];
                c[d] = 0;
            }
        }
        return idx;
    }
}
