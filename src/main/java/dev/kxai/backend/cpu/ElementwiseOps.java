package dev.kxai.backend.cpu;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * Activations, the unary functions ({@link Op.Unary}) and broadcasting arithmetic: forward, and
 * backward given the saved output (or the input).
 * <p>
 * Public, with {@link Activation} and the activation and softmax methods, only so that the JMH
 * kernel benchmarks ({@code bench/}) can time the real twins: exposed for benchmarks, not part of
 * kxai's API.
 */
public final class ElementwiseOps {
    private ElementwiseOps() {
    }

    /** The arithmetic operators, and the comparisons (1 or 0, no gradient). */
    enum Binary { ADD, SUB, MUL, DIV, POW, EQUAL, LESS, GREATER, NOT_EQUAL }

    static Tensor binary(Binary kind, Tensor a, Tensor b, int[] outShape) {
        float[] out = new float[Shapes.intSize(outShape)];
        float[] x = a.data();
        float[] y = b.data();
        // every loop computes out[i] = x[.] op y[.] for each i on its own: splitting the elements over
        // the cores (tasks of at least Parallel.GRAIN elements) changes no bit
        if (x.length == out.length && y.length == out.length) {
            Parallel.forRange(out.length, (from, to) -> {
                switch (kind) { // the common kinds as plain loops the JIT vectorises: the same float operations
                    case ADD -> {
                        for (int i = from; i < to; i++) {
                            out[i] = x[i] + y[i];
                        }
                    }
                    case MUL -> {
                        for (int i = from; i < to; i++) {
                            out[i] = x[i] * y[i];
                        }
                    }
                    default -> {
                        for (int i = from; i < to; i++) {
                            out[i] = apply(kind, x[i], y[i]);
                        }
                    }
                }
            });
        } else if (x.length == out.length && y.length == 1) {
            float v = y[0];
            Parallel.forRange(out.length, (from, to) -> {
                switch (kind) {
                    case ADD -> {
                        for (int i = from; i < to; i++) {
                            out[i] = x[i] + v;
                        }
                    }
                    case MUL -> {
                        for (int i = from; i < to; i++) {
                            out[i] = x[i] * v;
                        }
                    }
                    default -> {
                        for (int i = from; i < to; i++) {
                            out[i] = apply(kind, x[i], v);
                        }
                    }
                }
            });
        } else if (y.length == out.length && x.length == 1) {
            float v = x[0];
            Parallel.forRange(out.length, (from, to) -> {
                for (int i = from; i < to; i++) {
                    out[i] = apply(kind, v, y[i]);
                }
            });
        } else if (x.length == out.length && y.length > 0 && isTrailing(b.shape(), outShape)) {
            // b repeats along the leading axes (a bias row): out[i] = x[i] op y[i mod |y|]
            int n = y.length;
            forRows(out.length / n, n, (r0, r1) -> {
                for (int r = r0; r < r1; r++) {
                    for (int j = 0, i = r * n; j < n; j++, i++) {
                        out[i] = apply(kind, x[i], y[j]);
                    }
                }
            });
        } else if (y.length == out.length && x.length > 0 && isTrailing(a.shape(), outShape)) {
            // the bias first (PyTorch's Linear exports Add(bias, MatMul(x, W))): x[i mod |x|] op y[i]
            int n = x.length;
            forRows(out.length / n, n, (r0, r1) -> {
                for (int r = r0; r < r1; r++) {
                    if (kind == Binary.ADD) {
                        for (int j = 0, i = r * n; j < n; j++, i++) {
                            out[i] = x[j] + y[i];
                        }
                    } else {
                        for (int j = 0, i = r * n; j < n; j++, i++) {
                            out[i] = apply(kind, x[j], y[i]);
                        }
                    }
                }
            });
        } else if (x.length == out.length && block(b.shape(), outShape) != null) {
            // b is constant over whole runs of `inner` elements (a squeeze-excitation scale [N, C, 1, 1],
            // a per-channel [C, 1, 1]): y[(i / inner) mod |y|], no index arrays
            int inner = block(b.shape(), outShape)[0];
            int n = y.length;
            forRows(out.length / inner, inner, (r0, r1) -> {
                for (int r = r0; r < r1; r++) {
                    float v = y[r % n];
                    for (int i = r * inner; i < (r + 1) * inner; i++) {
                        out[i] = apply(kind, x[i], v);
                    }
                }
            });
        } else if (y.length == out.length && block(a.shape(), outShape) != null) {
            int inner = block(a.shape(), outShape)[0];
            int n = x.length;
            forRows(out.length / inner, inner, (r0, r1) -> {
                for (int r = r0; r < r1; r++) {
                    float v = x[r % n];
                    for (int i = r * inner; i < (r + 1) * inner; i++) {
                        out[i] = apply(kind, v, y[i]);
                    }
                }
            });
        } else {
            int[] ia = broadcastIndex(a.shape(), outShape);
            int[] ib = broadcastIndex(b.shape(), outShape);
            for (int i = 0; i < out.length; i++) {
                out[i] = apply(kind, x[ia[i]], y[ib[i]]);
            }
        }
        return new Tensor(outShape, out);
    }

    /** Runs body over [0, rows) rows of rowLength elements, in tasks of at least {@link Parallel#GRAIN} elements. */
    private static void forRows(int rows, int rowLength, Parallel.RangeBody body) {
        int per = Math.max(1, Parallel.GRAIN / Math.max(1, rowLength));
        Parallel.forEach((rows + per - 1) / per, p -> body.run(p * per, Math.min(rows, (p + 1) * per)));
    }

    /**
     * {inner} when {@code shape}, right-aligned to {@code outShape} and padded with leading 1s, is 1
     * everywhere except one contiguous run of axes equal to outShape's (then element i of the output
     * reads element (i / inner) mod size of the operand, inner the product of the axes after the run);
     * null otherwise, and for a run that ends at the last axis (the trailing case has its own loop).
     */
    static int[] block(int[] shape, int[] outShape) {
        int r = outShape.length;
        if (shape.length > r || Shapes.intSize(shape) == 0) {
            return null;
        }
        int[] p = new int[r];
        java.util.Arrays.fill(p, 1);
        System.arraycopy(shape, 0, p, r - shape.length, shape.length);
        int lo = 0;
        while (lo < r && p[lo] == 1) {
            lo++;
        }
        int hi = lo;
        while (hi < r && p[hi] == outShape[hi] && p[hi] != 1) {
            hi++;
        }
        for (int d = hi; d < r; d++) {
            if (p[d] != 1) {
                return null;
            }
        }
        if (lo == r || hi == r) {
            return null;
        }
        int inner = 1;
        for (int d = hi; d < r; d++) {
            inner *= outShape[d];
        }
        return new int[] {inner};
    }

    /** Whether shape, without its leading 1s, equals the trailing axes of outShape. */
    static boolean isTrailing(int[] shape, int[] outShape) {
        int lead = 0;
        while (lead < shape.length && shape[lead] == 1) {
            lead++;
        }
        int k = shape.length - lead;
        if (k > outShape.length) {
            return false;
        }
        for (int d = 0; d < k; d++) {
            if (shape[lead + d] != outShape[outShape.length - k + d]) {
                return false;
            }
        }
        return true;
    }

    static float apply(Binary kind, float p, float q) {
        return switch (kind) {
            case ADD -> p + q;
            case SUB -> p - q;
            case MUL -> p * q;
            case DIV -> p / q;
            case POW -> (float) Math.pow(p, q);
            case EQUAL -> p == q ? 1f : 0f;
            case LESS -> p < q ? 1f : 0f;
            case GREATER -> p > q ? 1f : 0f;
            case NOT_EQUAL -> p != q ? 1f : 0f;
        };
    }

    /** For each element of outShape (row-major), the offset of the element of shape it reads. */
    static int[] broadcastIndex(int[] shape, int[] outShape) {
        int n = Shapes.intSize(outShape);
        int r = outShape.length;
        int[] strides = new int[r];
        int[] own = Shapes.strides(shape);
        for (int d = 0; d < r; d++) {
            int sd = d - (r - shape.length);
            strides[d] = sd < 0 || shape[sd] == 1 ? 0 : own[sd];
        }
        int[] idx = new int[n];
        int[] counter = new int[r];
        int off = 0;
        for (int i = 0; i < n; i++) {
            idx[i] = off;
            for (int d = r - 1; d >= 0; d--) {
                counter[d]++;
                off += strides[d];
                if (counter[d] < outShape[d]) {
                    break;
                }
                off -= strides[d] * counter[d];
                counter[d] = 0;
            }
        }
        return idx;
    }

    /** d(a op b)/d(operand) · g for Div and Pow, in double: operand 0 is a, 1 is b (PyTorch's rules at 0). */
    static double binaryGradient(Binary kind, int operand, double a, double b, double g) {
        if (kind == Binary.DIV) {
            return operand == 0 ? g / b : -g * a / (b * b);
        }
        if (operand == 0) {
            // pow(a, 1.0) is a by Math.pow's contract: the square's gradient skips the call, same bits
            return b == 0.0 ? 0.0 : g * b * (b == 2.0 ? a : Math.pow(a, b - 1.0));
        }
        return a == 0.0 && b >= 0.0 ? 0.0 : g * Math.pow(a, b) * Math.log(a);
    }

    /** Where: c ≠ 0 ? x : y, all three broadcast to {@code out}. */
    static Tensor where(Tensor c, Tensor x, Tensor y, int[] out) {
        int[] ci = broadcastIndex(c.shape(), out);
        int[] xi = broadcastIndex(x.shape(), out);
        int[] yi = broadcastIndex(y.shape(), out);
        float[] r = new float[ci.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = c.data()[ci[i]] != 0f ? x.data()[xi[i]] : y.data()[yi[i]];
        }
        return new Tensor(out, r);
    }

    /** Where's gradient for x ({@code forX}) or y: g where the condition picks it, summed onto its shape. */
    static Tensor whereBackward(Tensor c, int[] shape, Tensor g, boolean forX) {
        int[] ci = broadcastIndex(c.shape(), g.shape());
        float[] picked = new float[g.size()];
        for (int i = 0; i < picked.length; i++) {
            picked[i] = (c.data()[ci[i]] != 0f) == forX ? g.data()[i] : 0f;
        }
        return reduceTo(picked, g.shape(), shape, 1f);
    }

    /**
     * How the elements of a broadcast output read an operand without an index array: element i reads
     * ((i / inner) mod n). Covers an operand of the output's size (inner 1, n its size), a scalar (n 1),
     * a trailing operand (a bias row: inner 1) and a {@link #block} operand; null for any other
     * broadcast (those keep the index arrays).
     */
    record Runs(int inner, int n) {
        static Runs of(int[] shape, int[] outShape) {
            int size = Shapes.intSize(shape);
            int outSize = Shapes.intSize(outShape);
            if (size == outSize || size == 1 || (size > 0 && isTrailing(shape, outShape))) {
                return new Runs(1, Math.max(1, size));
            }
            int[] blk = block(shape, outShape);
            return blk == null ? null : new Runs(blk[0], size);
        }

        int index(int i) {
            return (i / inner) % n;
        }

        int phase(int i) {
            return i % inner;
        }
    }

    /**
     * Sums a gradient of the broadcast output shape back to an operand's shape: each operand element
     * sums its output elements in ascending order, in float (the index-array loop's order, whatever
     * loop and thread split computes it).
     */
    static Tensor reduceTo(float[] g, int[] outShape, int[] shape, float scale) {
        float[] r = new float[Shapes.intSize(shape)];
        if (r.length == g.length) {
            for (int i = 0; i < g.length; i++) {
                r[i] = scale * g[i];
            }
        } else if (r.length == 1) {
            float acc = 0f;
            for (int i = 0; i < g.length; i++) {
                acc += scale * g[i];
            }
            r[0] = acc;
        } else if (r.length > 0 && (isTrailing(shape, outShape) || block(shape, outShape) != null)) {
            // element j of the operand sums the runs rb ≡ j (mod n) of `inner` elements, in ascending
            // order; operand elements split over the cores (each sum stays on one thread, in one order)
            int inner = isTrailing(shape, outShape) ? 1 : block(shape, outShape)[0];
            int n = r.length;
            int runs = g.length / inner;
            int per = Math.max(1, Parallel.GRAIN / Math.max(1, g.length / n));
            Parallel.forEach((n + per - 1) / per, p -> {
                int j1 = Math.min(n, (p + 1) * per);
                if (inner == 1) { // row by row, a range of columns: both arrays read in order
                    for (int rb = 0; rb < runs; rb += n) {
                        for (int j = p * per, i = rb + j; j < j1; j++, i++) {
                            r[j] += scale * g[i];
                        }
                    }
                    return;
                }
                for (int j = p * per; j < j1; j++) {
                    float acc = 0f;
                    for (int rb = j; rb < runs; rb += n) {
                        for (int i = rb * inner, e = i + inner; i < e; i++) {
                            acc += scale * g[i];
                        }
                    }
                    r[j] = acc;
                }
            });
        } else {
            int[] idx = broadcastIndex(shape, outShape);
            for (int i = 0; i < g.length; i++) {
                r[idx[i]] += scale * g[i];
            }
        }
        return new Tensor(shape, r);
    }

    /** Gradients of a broadcasting binary op for the operands that need one (others null). */
    static Tensor[] binaryBackward(Binary kind, Tensor a, Tensor b, int[] outShape, Tensor gOut, boolean needA,
            boolean needB) {
        float[] g = gOut.data();
        Tensor ga = null;
        Tensor gb = null;
        switch (kind) {
            case ADD, SUB -> {
                if (needA) {
                    ga = reduceTo(g, outShape, a.shape(), 1f);
                }
                if (needB) {
                    gb = reduceTo(g, outShape, b.shape(), kind == Binary.ADD ? 1f : -1f);
                }
            }
            case MUL -> {
                if (needA) {
                    ga = reduceTo(binary(Binary.MUL, gOut, b, outShape).data(), outShape, a.shape(), 1f);
                }
                if (needB) {
                    gb = reduceTo(binary(Binary.MUL, gOut, a, outShape).data(), outShape, b.shape(), 1f);
                }
            }
            case DIV, POW -> {
                // each output element's contribution, in double and rounded once (the kernel's
                // binary_grad), then summed onto the operand's broadcast axes
                float[] ca = needA ? new float[g.length] : null;
                float[] cb = needB ? new float[g.length] : null;
                Runs ra = Runs.of(a.shape(), outShape);
                Runs rb = Runs.of(b.shape(), outShape);
                if (kind == Binary.DIV && ra != null && rb != null && ra.inner == 1 && ra.n == g.length) {
                    // a / b with a of the output's shape and b constant over runs (a scalar: GELU's
                    // x / √2, attention's q / √d; LayerNorm's (x − μ) / σ): plain loops per run
                    float[] x = a.data();
                    float[] y = b.data();
                    int run = rb.n == 1 ? g.length : rb.inner;
                    forRows(g.length / Math.max(1, run), run, (r0, r1) -> {
                        for (int r = r0; r < r1; r++) {
                            float yf = y[rb.index(r * run)];
                            double yy = (double) yf * yf;
                            int i0 = r * run;
                            int i1 = i0 + run;
                            if (ca != null) {
                                // (float) (g / y) in double is the float quotient g / y: double has more than
                                // 2·24 + 2 bits, so rounding first to double then to float is innocuous for a
                                // quotient of floats (Figueroa, "When is double rounding innocuous?", 1995)
                                for (int i = i0; i < i1; i++) {
                                    ca[i] = g[i] / yf;
                                }
                            }
                            if (cb != null) {
                                for (int i = i0; i < i1; i++) {
                                    cb[i] = (float) (-(double) g[i] * x[i] / yy);
                                }
                            }
                        }
                    });
                } else if (ra != null && rb != null) {
                    float[] x = a.data();
                    float[] y = b.data();
                    Parallel.forRange(g.length, (from, to) -> {
                        int ja = ra.index(from);
                        int ka = ra.phase(from);
                        int jb = rb.index(from);
                        int kb = rb.phase(from);
                        for (int i = from; i < to; i++) {
                            double xv = x[ja];
                            double yv = y[jb];
                            if (kind == Binary.DIV) { // binaryGradient's expressions, written out
                                double gv = g[i];
                                if (ca != null) {
                                    ca[i] = (float) (gv / yv);
                                }
                                if (cb != null) {
                                    cb[i] = (float) (-gv * xv / (yv * yv));
                                }
                            } else {
                                if (ca != null) {
                                    ca[i] = (float) binaryGradient(kind, 0, xv, yv, g[i]);
                                }
                                if (cb != null) {
                                    cb[i] = (float) binaryGradient(kind, 1, xv, yv, g[i]);
                                }
                            }
                            if (++ka == ra.inner) {
                                ka = 0;
                                if (++ja == ra.n) {
                                    ja = 0;
                                }
                            }
                            if (++kb == rb.inner) {
                                kb = 0;
                                if (++jb == rb.n) {
                                    jb = 0;
                                }
                            }
                        }
                    });
                } else {
                    int[] ia = broadcastIndex(a.shape(), outShape);
                    int[] ib = broadcastIndex(b.shape(), outShape);
                    for (int i = 0; i < g.length; i++) {
                        double x = a.data()[ia[i]];
                        double y = b.data()[ib[i]];
                        if (ca != null) {
                            ca[i] = (float) binaryGradient(kind, 0, x, y, g[i]);
                        }
                        if (cb != null) {
                            cb[i] = (float) binaryGradient(kind, 1, x, y, g[i]);
                        }
                    }
                }
                ga = ca != null ? reduceTo(ca, outShape, a.shape(), 1f) : null;
                gb = cb != null ? reduceTo(cb, outShape, b.shape(), 1f) : null;
            }
        }
        return new Tensor[] {ga, gb};
    }

    public enum Activation { RELU, LEAKY_RELU, SIGMOID, TANH }

    public static Tensor activation(Activation kind, float alpha, Tensor x) {
        float[] in = x.data();
        float[] out = new float[in.length];
        Parallel.forRange(in.length, (from, to) -> activation(kind, alpha, in, out, from, to));
        return new Tensor(x.shape(), out);
    }

    private static void activation(Activation kind, float alpha, float[] in, float[] out, int from, int to) {
        switch (kind) {
            case RELU -> SimdLoops.get().relu(in, out, from, to);
            case LEAKY_RELU -> {
                for (int i = from; i < to; i++) {
                    out[i] = in[i] > 0f ? in[i] : in[i] * alpha;
                }
            }
            case SIGMOID -> {
                for (int i = from; i < to; i++) {
                    out[i] = sigmoid(in[i]);
                }
            }
            case TANH -> {
                for (int i = from; i < to; i++) {
                    out[i] = (float) Math.tanh(in[i]);
                }
            }
        }
    }

    /** Logistic function, stable for large |v| (no overflow of exp). */
    static float sigmoid(float v) {
        if (v >= 0f) {
            return (float) (1.0 / (1.0 + Math.exp(-v)));
        }
        double e = Math.exp(v);
        return (float) (e / (1.0 + e));
    }

    /**
     * Backward of an activation from its input x and output y, with PyTorch's choices at the kink:
     * ReLU passes gradient only where y &gt; 0, LeakyReLU uses alpha where x &lt;= 0.
     */
    public static Tensor activationBackward(Activation kind, float alpha, Tensor x, Tensor y, Tensor gOut) {
        float[] g = gOut.data();
        float[] xi = x.data();
        float[] yo = y.data();
        float[] gi = new float[g.length];
        Parallel.forRange(g.length, (from, to) -> activationBackward(kind, alpha, g, xi, yo, gi, from, to));
        return new Tensor(x.shape(), gi);
    }

    private static void activationBackward(Activation kind, float alpha, float[] g, float[] xi, float[] yo, float[] gi,
            int from, int to) {
        switch (kind) {
            case RELU -> SimdLoops.get().reluBackward(yo, g, gi, from, to);
            case LEAKY_RELU -> {
                for (int i = from; i < to; i++) {
                    gi[i] = xi[i] > 0f ? g[i] : g[i] * alpha;
                }
            }
            case SIGMOID -> {
                for (int i = from; i < to; i++) {
                    gi[i] = g[i] * (1f - yo[i]) * yo[i];
                }
            }
            case TANH -> {
                for (int i = from; i < to; i++) {
                    gi[i] = g[i] * (1f - yo[i] * yo[i]);
                }
            }
        }
    }

    /** Softmax along one axis, max-subtracted for stability; the distributions split over the cores. */
    public static Tensor softmax(Tensor x, int axis) {
        int[] s = x.shape();
        int n = s[axis];
        int inner = 1;
        for (int d = axis + 1; d < s.length; d++) {
            inner *= s[d];
        }
        int outer = x.size() / Math.max(1, n * inner);
        float[] in = x.data();
        float[] out = new float[in.length];
        int stride = inner;
        forDistributions(outer, inner, n, (o, j) -> {
            int base = o * n * stride + j;
            float max = Float.NEGATIVE_INFINITY;
            for (int c = 0; c < n; c++) {
                max = Math.max(max, in[base + c * stride]);
            }
            double sum = 0;
            for (int c = 0; c < n; c++) {
                float e = (float) Math.exp(in[base + c * stride] - max);
                out[base + c * stride] = e;
                sum += e;
            }
            float inv = (float) (1.0 / sum);
            for (int c = 0; c < n; c++) {
                out[base + c * stride] *= inv;
            }
        });
        return new Tensor(s, out);
    }

    /** One distribution of a softmax: outer index o, inner index j. */
    @FunctionalInterface
    private interface Distribution {
        void run(int o, int j);
    }

    /**
     * Runs body over the outer × inner distributions of n elements each, in blocks of at least
     * {@link Parallel#GRAIN} elements split over the cores; each distribution is computed whole by one
     * thread, in its own fixed order, so the result does not depend on the split.
     */
    private static void forDistributions(int outer, int inner, int n, Distribution body) {
        int count = outer * inner;
        int per = Math.max(1, Parallel.GRAIN / Math.max(1, n));
        Parallel.forEach((count + per - 1) / per, p -> {
            for (int d = p * per, e = Math.min(count, d + per); d < e; d++) {
                body.run(d / inner, d % inner);
            }
        });
    }

    /** dx = y ⊙ (g − Σ_axis g ⊙ y). */
    public static Tensor softmaxBackward(Tensor y, Tensor gOut, int axis) {
        int[] s = y.shape();
        int n = s[axis];
        int inner = 1;
        for (int d = axis + 1; d < s.length; d++) {
            inner *= s[d];
        }
        int outer = y.size() / Math.max(1, n * inner);
        float[] yo = y.data();
        float[] g = gOut.data();
        float[] gi = new float[g.length];
        int stride = inner;
        forDistributions(outer, inner, n, (o, j) -> {
            int base = o * n * stride + j;
            double dot = 0;
            for (int c = 0; c < n; c++) {
                dot += (double) g[base + c * stride] * yo[base + c * stride];
            }
            for (int c = 0; c < n; c++) {
                int k = base + c * stride;
                gi[k] = (float) (yo[k] * (g[k] - dot));
            }
        });
        return new Tensor(s, gi);
    }

    private static final double SQRT_2 = Math.sqrt(2.0);
    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);
    private static final double TWO_OVER_SQRT_PI = 2.0 / Math.sqrt(Math.PI);
    private static final double ONE_OVER_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);

    /**
     * y = f(x) for the unary family ({@link Op.Unary}), each element computed in double and rounded
     * once: the same expressions as unary_forward in kernels/dense.cu.
     */
    static Tensor unary(Op.Unary op, Tensor x) {
        float[] in = x.data();
        float[] out = new float[in.length];
        Parallel.forRange(in.length, (from, to) -> {
            for (int i = from; i < to; i++) {
                out[i] = (float) unary(op.kind(), op.alpha(), op.beta(), in[i]);
            }
        });
        return new Tensor(x.shape(), out);
    }

    static double unary(Op.Unary.Kind kind, double a, double b, double x) {
        return switch (kind) {
            case CLIP -> Math.min(Math.max(x, a), b);
            case HARD_SIGMOID -> Math.max(0.0, Math.min(1.0, a * x + b));
            case HARD_SWISH -> x * Math.max(0.0, Math.min(1.0, x / 6.0 + 0.5));
            case SQRT -> Math.sqrt(x);
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case ERF -> ErrorFunction.erf(x);
            case SOFTPLUS -> x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
            case ELU -> x > 0 ? x : a * Math.expm1(x);
            case SELU -> b * (x > 0 ? x : a * Math.expm1(x));
            case GELU -> 0.5 * x * (1.0 + ErrorFunction.erf(x / SQRT_2));
            case GELU_TANH -> 0.5 * x * (1.0 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case TRUNC -> x < 0 ? Math.ceil(x) : Math.floor(x);
            case FLOOR -> Math.floor(x);
            case CEIL -> Math.ceil(x);
            case ROUND -> Math.rint(x);
            case SIGN -> Math.signum(x);
            case RECIPROCAL -> 1.0 / x;
            case SIN -> Math.sin(x);
            case COS -> Math.cos(x);
        };
    }

    /** dL/dx = g · f'(x), in double from x, rounded once (unary_backward in kernels/dense.cu). */
    static Tensor unaryBackward(Op.Unary op, Tensor x, Tensor gOut) {
        float[] in = x.data();
        float[] g = gOut.data();
        float[] out = new float[in.length];
        Parallel.forRange(in.length, (from, to) -> {
            for (int i = from; i < to; i++) {
                out[i] = (float) unaryGradient(op.kind(), op.alpha(), op.beta(), in[i], g[i]);
            }
        });
        return new Tensor(x.shape(), out);
    }

    static double unaryGradient(Op.Unary.Kind kind, double a, double b, double x, double g) {
        return switch (kind) {
            // hardtanh's rule (ReLU6, PyTorch): no gradient at the bounds, as ReLU has none at 0
            case CLIP -> x > a && x < b ? g : 0.0;
            case HARD_SIGMOID -> {
                double t = a * x + b;
                yield t > 0.0 && t < 1.0 ? g * a : 0.0;
            }
            case HARD_SWISH -> x < -3.0 ? 0.0 : x <= 3.0 ? g * (x / 3.0 + 0.5) : g;
            case SQRT -> g * 0.5 / Math.sqrt(x);
            case EXP -> g * Math.exp(x);
            case LOG -> g / x;
            case ERF -> g * TWO_OVER_SQRT_PI * Math.exp(-x * x);
            case SOFTPLUS -> g / (1.0 + Math.exp(-x));
            case ELU -> x > 0 ? g : g * a * Math.exp(x);
            case SELU -> b * (x > 0 ? g : g * a * Math.exp(x));
            case GELU -> g * (0.5 * (1.0 + ErrorFunction.erf(x / SQRT_2)) + x * Math.exp(-0.5 * x * x) * ONE_OVER_SQRT_2PI);
            case GELU_TANH -> {
                double t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
                yield g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x));
            }
            case NEG -> -g;
            case ABS -> x > 0 ? g : x < 0 ? -g : 0.0;
            case TRUNC, FLOOR, CEIL, ROUND, SIGN -> 0.0;
            case RECIPROCAL -> -g / (x * x);
            case SIN -> g * Math.cos(x);
            case COS -> -g * Math.sin(x);
        };
    }
}
