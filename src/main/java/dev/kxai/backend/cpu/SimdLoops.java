package dev.kxai.backend.cpu;

import java.util.logging.Logger;

/**
 * The CPU backend's hot loops that HotSpot 17 does not vectorise by itself. The tap sum is the
 * inner loop of the direct convolution and its adjoint: acc[a + q] += Σ_t w[t] · x[p + off[t] + q]
 * for q in [0, span); one call sums every tap of every input channel for one output plane, so
 * the accumulator is loaded and stored once per element, not once per tap. ReLU and its backward
 * are selects, which HotSpot 17 leaves scalar.
 *
 * <p>Two implementations with bitwise-equal results: {@link VectorLoops} (explicit SIMD through
 * {@code jdk.incubator.vector}, used when the JVM runs with {@code --add-modules
 * jdk.incubator.vector}, as {@code ./kxai} does) and {@link Scalar}, its plain-Java twin. Both add
 * the taps in order t = 0, 1, ... to the running sum by fused multiply-add (Math.fma in the
 * scalar loop), so a lane of the vector loop does exactly the scalar loop's operations. In the
 * double loops the product of two floats is exact, so the FMA rounds exactly as a multiply then
 * an add would. HotSpot 17 does not vectorise the scalar loops (their loads sit at different
 * invariant offsets), which is why the vector form exists. Measured on this project's AVX-512
 * machines (10 channels of 66×66 planes): scalar tap loops about 0.16 ns per multiply-add, the
 * SIMD loops 0.023 (double) and 0.012 (float).
 */
abstract class SimdLoops {
    /** System property that forces the scalar loops (for comparison): {@code -Dkxai.simd=false}. */
    static final String DISABLE_PROPERTY = "kxai.simd";

    /**
     * System property: how many multiply-adds (and elements of the other loops) a process runs
     * through the scalar loops before it switches to the SIMD loops ({@link Warming}); 0 switches
     * at once. Default {@value #DEFAULT_WARMUP}.
     */
    static final String WARMUP_PROPERTY = "kxai.simd.warmup";
    /**
     * 2^28 multiply-adds: about 0.05 s of the scalar loops once compiled. The bundled digits
     * example (50 steps of IG over 10 images) stays below it and never pays for the vector loops'
     * compilation; any workload where SIMD matters passes it within its first fraction of a second.
     */
    static final long DEFAULT_WARMUP = 1L << 28;

    private static final SimdLoops INSTANCE = pick();

    static SimdLoops get() {
        return INSTANCE;
    }

    /**
     * For each of {@code planes} accumulator planes j (at a + j·stride):
     * acc[a + j·stride + q] += Σ_t w[t·planes + j] · x[p + off[t] + q], q in [0, span), t in order.
     * The planes share the loads of x (the output channels of one convolution), which is what
     * makes the loop compute-bound rather than load-bound.
     */
    abstract void add(double[] acc, int a, int stride, int planes, double[] x, int p, int span, double[] w, int[] off);

    /** Float twin of the double {@code add}. */
    abstract void add(float[] acc, int a, int stride, int planes, float[] x, int p, int span, float[] w, int[] off);

    /** dst[d + i] = src[s + i] widened to double, i in [0, n). */
    abstract void widen(float[] src, int s, double[] dst, int d, int n);

    /** dst[d + i] = (float) src[s + i] (round to nearest), i in [0, n). */
    abstract void narrow(double[] src, int s, float[] dst, int d, int n);

    /** dst[d + i] += src[s + i] in double, i in [0, n): the float forward's blocks summed. */
    abstract void addTo(float[] src, int s, double[] dst, int d, int n);

    /** out[i] = in[i] &gt; 0 ? in[i] : 0 for i in [from, to) (NaN and −0 give 0). */
    abstract void relu(float[] in, float[] out, int from, int to);

    /**
     * max |x[i]| over [from, to) (0 for an empty range), NaN if any element is NaN: the float
     * convolutions' bounds per input plane (a NaN bound decides nothing). A maximum is exact, so
     * every order gives the same value.
     */
    abstract float maxAbs(float[] x, int from, int to);

    /**
     * The first i in [from, to) with |x[i] − center| ≤ t, or {@code to}: the scan for outputs near a
     * kink, which are rare (a NaN is never near).
     */
    abstract int nextWithin(float[] x, int from, int to, float center, float t);

    /** acc[a + i] = max(acc[a + i], |x[p + i]|) for i in [0, n), NaN propagating (a 1×1 layer's position bounds). */
    abstract void maxAbsInto(float[] x, int p, float[] acc, int a, int n);

    /** gi[i] = y[i] &gt; 0 ? g[i] : 0 for i in [from, to): ReLU's backward from its output. */
    abstract void reluBackward(float[] y, float[] g, float[] gi, int from, int to);

    /** What runs, for {@code kxai info}. */
    abstract String describe();

    private static SimdLoops pick() {
        if ("false".equalsIgnoreCase(System.getProperty(DISABLE_PROPERTY))) {
            return new Scalar("scalar loops (-D" + DISABLE_PROPERTY + "=false)");
        }
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return new Scalar("scalar loops (start the JVM with --add-modules jdk.incubator.vector for SIMD)");
        }
        long warmup = warmup();
        return warmup == 0 ? vectorOrScalar() : new Warming(warmup);
    }

    private static long warmup() {
        String v = System.getProperty(WARMUP_PROPERTY);
        if (v == null) {
            return DEFAULT_WARMUP;
        }
        try {
            return Math.max(0, Long.parseLong(v.trim()));
        } catch (NumberFormatException e) {
            Logger.getLogger(SimdLoops.class.getName()).warning("-D" + WARMUP_PROPERTY + "=" + v
                    + " is not a number of multiply-adds; using " + DEFAULT_WARMUP);
            return DEFAULT_WARMUP;
        }
    }

    /** The SIMD loops where the CPU and the JVM support them, else the scalar ones with the reason. */
    static SimdLoops vectorOrScalar() {
        try {
            // below 256-bit vectors the loops gain little over scalar code and the JIT's support is thinnest
            // (by reflection: this class must load where the incubator module is absent)
            Class<?> vector = Class.forName("dev.kxai.backend.cpu.VectorLoops");
            int bits = (Integer) vector.getDeclaredMethod("preferredBits").invoke(null);
            if (bits < 256) {
                return new Scalar("scalar loops (the CPU's preferred vectors are " + bits + "-bit)");
            }
            return (SimdLoops) vector.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | LinkageError e) {
            Logger.getLogger(SimdLoops.class.getName()).warning("SIMD loops unavailable, using scalar ones: " + e);
            return new Scalar("scalar loops (SIMD failed to load: " + e + ")");
        }
    }

    /**
     * The scalar loops first, then the SIMD loops. In a fresh JVM the vector loops run interpreted
     * (every Vector API operation an allocation) until C2 compiles them, which on the bundled
     * digits example costs over a second, 30 times the attribution itself; the scalar loops are
     * fast as soon as C1 compiles them. So a process runs its first {@code threshold}
     * multiply-adds scalar and only then loads and uses the vector loops: short runs never pay
     * for their warm-up, long ones pay it as before. Both give the same bits (see the class
     * comment), so where the switch falls changes nothing in the results. The work count is
     * shared by all threads and updated without synchronisation: it only has to be about right.
     */
    static final class Warming extends SimdLoops {
        private final long threshold;
        private final SimdLoops scalar = new Scalar("scalar");
        private long work;
        private volatile SimdLoops hot;

        Warming(long threshold) {
            this.threshold = threshold;
        }

        /** The loops for a call of {@code n} units of work. */
        private SimdLoops loops(long n) {
            SimdLoops h = hot;
            if (h != null) {
                return h;
            }
            long w = work + n;
            work = w;
            if (w < threshold) {
                return scalar;
            }
            return hot = Holder.VECTOR;
        }

        /** Whether the SIMD loops have taken over (tests). */
        boolean switched() {
            return hot != null;
        }

        @Override
        void add(double[] acc, int a, int stride, int planes, double[] x, int p, int span, double[] w, int[] off) {
            loops((long) planes * span * off.length).add(acc, a, stride, planes, x, p, span, w, off);
        }

        @Override
        void add(float[] acc, int a, int stride, int planes, float[] x, int p, int span, float[] w, int[] off) {
            loops((long) planes * span * off.length).add(acc, a, stride, planes, x, p, span, w, off);
        }

        @Override
        void widen(float[] src, int s, double[] dst, int d, int n) {
            loops(n).widen(src, s, dst, d, n);
        }

        @Override
        void narrow(double[] src, int s, float[] dst, int d, int n) {
            loops(n).narrow(src, s, dst, d, n);
        }

        @Override
        void addTo(float[] src, int s, double[] dst, int d, int n) {
            loops(n).addTo(src, s, dst, d, n);
        }

        @Override
        void relu(float[] in, float[] out, int from, int to) {
            loops(to - from).relu(in, out, from, to);
        }

        @Override
        void reluBackward(float[] y, float[] g, float[] gi, int from, int to) {
            loops(to - from).reluBackward(y, g, gi, from, to);
        }

        @Override
        float maxAbs(float[] x, int from, int to) {
            return loops(to - from).maxAbs(x, from, to);
        }

        @Override
        int nextWithin(float[] x, int from, int to, float center, float t) {
            return loops(to - from).nextWithin(x, from, to, center, t);
        }

        @Override
        void maxAbsInto(float[] x, int p, float[] acc, int a, int n) {
            loops(n).maxAbsInto(x, p, acc, a, n);
        }

        @Override
        String describe() {
            String v = Holder.VECTOR.describe();
            return v.startsWith("SIMD") ? v + ", after the first " + threshold + " multiply-adds of a process (scalar "
                    + "while the JIT would still be compiling them; -D" + WARMUP_PROPERTY + "=0: from the start)" : v;
        }

        /** Loaded on first use: the vector classes cost start-up time that short runs need not pay. */
        private static final class Holder {
            static final SimdLoops VECTOR = vectorOrScalar();
        }
    }

    /** The plain-Java loops: the reference the vector loops are tested against. */
    static final class Scalar extends SimdLoops {
        private final String why;

        Scalar(String why) {
            this.why = why;
        }

        @Override
        void add(double[] acc, int a, int stride, int planes, double[] x, int p, int span, double[] w, int[] off) {
            int taps = off.length;
            for (int j = 0; j < planes; j++) {
                int aj = a + j * stride;
                for (int q = 0; q < span; q++) {
                    double s = acc[aj + q];
                    for (int t = 0; t < taps; t++) {
                        s = Math.fma(x[p + off[t] + q], w[t * planes + j], s);
                    }
                    acc[aj + q] = s;
                }
            }
        }

        @Override
        void add(float[] acc, int a, int stride, int planes, float[] x, int p, int span, float[] w, int[] off) {
            int taps = off.length;
            for (int j = 0; j < planes; j++) {
                int aj = a + j * stride;
                for (int q = 0; q < span; q++) {
                    float s = acc[aj + q];
                    for (int t = 0; t < taps; t++) {
                        s = Math.fma(x[p + off[t] + q], w[t * planes + j], s);
                    }
                    acc[aj + q] = s;
                }
            }
        }

        @Override
        void widen(float[] src, int s, double[] dst, int d, int n) {
            for (int i = 0; i < n; i++) {
                dst[d + i] = src[s + i];
            }
        }

        @Override
        void narrow(double[] src, int s, float[] dst, int d, int n) {
            for (int i = 0; i < n; i++) {
                dst[d + i] = (float) src[s + i];
            }
        }

        @Override
        void addTo(float[] src, int s, double[] dst, int d, int n) {
            for (int i = 0; i < n; i++) {
                dst[d + i] += src[s + i];
            }
        }

        @Override
        void relu(float[] in, float[] out, int from, int to) {
            for (int i = from; i < to; i++) {
                out[i] = in[i] > 0f ? in[i] : 0f;
            }
        }

        @Override
        void reluBackward(float[] y, float[] g, float[] gi, int from, int to) {
            for (int i = from; i < to; i++) {
                gi[i] = y[i] > 0f ? g[i] : 0f;
            }
        }

        @Override
        float maxAbs(float[] x, int from, int to) {
            float mx = 0f;
            for (int i = from; i < to; i++) {
                mx = Math.max(mx, Math.abs(x[i])); // Math.max keeps a NaN
            }
            return mx;
        }

        @Override
        void maxAbsInto(float[] x, int p, float[] acc, int a, int n) {
            for (int i = 0; i < n; i++) {
                acc[a + i] = Math.max(acc[a + i], Math.abs(x[p + i])); // Math.max keeps a NaN
            }
        }

        @Override
        int nextWithin(float[] x, int from, int to, float center, float t) {
            for (int i = from; i < to; i++) {
                if (Math.abs(x[i] - center) <= t) {
                    return i;
                }
            }
            return to;
        }

        @Override
        String describe() {
            return why;
        }
    }
}
