package dev.kxai.backend.cpu;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link SimdLoops} with explicit SIMD over q (the machine's preferred vector width); the remainder
 * runs the scalar loop. Per lane it performs exactly {@link SimdLoops.Scalar}'s operations in the
 * same order, so the two agree bit for bit. Loaded by reflection only when the JVM has the
 * incubator module.
 */
final class VectorLoops extends SimdLoops {
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** The width of the machine's preferred vectors (the species these loops use). */
    static int preferredBits() {
        return D.vectorBitSize();
    }

    private final SimdLoops.Scalar tail = new SimdLoops.Scalar("tail");

    @Override
    void add(double[] acc, int a, int stride, int planes, double[] x, int p, int span, double[] w, int[] off) {
        int bound = D.loopBound(span);
        int j = 0;
        // Eight independent FMA chains keep both FMA pipes busy (latency 4, two per cycle): eight
        // planes at once, or fewer planes over several vectors of q at once.
        for (; j + 8 <= planes; j += 8) {
            add8(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        for (; j + 4 <= planes; j += 4) {
            add4(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        for (; j + 2 <= planes; j += 2) {
            add2(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        for (; j < planes; j++) {
            add1(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        if (bound < span) {
            tail.add(acc, a + bound, stride, planes, x, p + bound, span - bound, w, off);
        }
    }

    /**
     * Planes j0..j0+7: 8 independent FMA chains, each load of x
     * feeding 8 of them; then single vectors up to bound.
     */
    private static void add8(double[] acc, int a, int stride, double[] x, int p, int bound, double[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = D.length();
        int q = 0;
        for (; q < bound; q += vl) {
            DoubleVector s0 = DoubleVector.fromArray(D, acc, a + 0 * stride + q);
            DoubleVector s1 = DoubleVector.fromArray(D, acc, a + 1 * stride + q);
            DoubleVector s2 = DoubleVector.fromArray(D, acc, a + 2 * stride + q);
            DoubleVector s3 = DoubleVector.fromArray(D, acc, a + 3 * stride + q);
            DoubleVector s4 = DoubleVector.fromArray(D, acc, a + 4 * stride + q);
            DoubleVector s5 = DoubleVector.fromArray(D, acc, a + 5 * stride + q);
            DoubleVector s6 = DoubleVector.fromArray(D, acc, a + 6 * stride + q);
            DoubleVector s7 = DoubleVector.fromArray(D, acc, a + 7 * stride + q);
            for (int t = 0; t < taps; t++) {
                DoubleVector v = DoubleVector.fromArray(D, x, p + off[t] + q);
                s0 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 0]), s0);
                s1 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 1]), s1);
                s2 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 2]), s2);
                s3 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 3]), s3);
                s4 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 4]), s4);
                s5 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 5]), s5);
                s6 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 6]), s6);
                s7 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 7]), s7);
            }
            s0.intoArray(acc, a + 0 * stride + q);
            s1.intoArray(acc, a + 1 * stride + q);
            s2.intoArray(acc, a + 2 * stride + q);
            s3.intoArray(acc, a + 3 * stride + q);
            s4.intoArray(acc, a + 4 * stride + q);
            s5.intoArray(acc, a + 5 * stride + q);
            s6.intoArray(acc, a + 6 * stride + q);
            s7.intoArray(acc, a + 7 * stride + q);
        }
    }

    /**
     * Planes j0..j0+3, 2 vectors of q at a time: 8 independent FMA chains, each load of x
     * feeding 4 of them; then single vectors up to bound.
     */
    private static void add4(double[] acc, int a, int stride, double[] x, int p, int bound, double[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = D.length();
        int q = 0;
        for (; q + 2 * vl <= bound; q += 2 * vl) {
            DoubleVector s00 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 0 * vl);
            DoubleVector s01 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 1 * vl);
            DoubleVector s10 = DoubleVector.fromArray(D, acc, a + 1 * stride + q + 0 * vl);
            DoubleVector s11 = DoubleVector.fromArray(D, acc, a + 1 * stride + q + 1 * vl);
            DoubleVector s20 = DoubleVector.fromArray(D, acc, a + 2 * stride + q + 0 * vl);
            DoubleVector s21 = DoubleVector.fromArray(D, acc, a + 2 * stride + q + 1 * vl);
            DoubleVector s30 = DoubleVector.fromArray(D, acc, a + 3 * stride + q + 0 * vl);
            DoubleVector s31 = DoubleVector.fromArray(D, acc, a + 3 * stride + q + 1 * vl);
            for (int t = 0; t < taps; t++) {
                int xq = p + off[t] + q;
                DoubleVector v0 = DoubleVector.fromArray(D, x, xq + 0 * vl);
                DoubleVector v1 = DoubleVector.fromArray(D, x, xq + 1 * vl);
                DoubleVector w0 = DoubleVector.broadcast(D, w[t * planes + j0 + 0]);
                DoubleVector w1 = DoubleVector.broadcast(D, w[t * planes + j0 + 1]);
                DoubleVector w2 = DoubleVector.broadcast(D, w[t * planes + j0 + 2]);
                DoubleVector w3 = DoubleVector.broadcast(D, w[t * planes + j0 + 3]);
                s00 = v0.fma(w0, s00);
                s01 = v1.fma(w0, s01);
                s10 = v0.fma(w1, s10);
                s11 = v1.fma(w1, s11);
                s20 = v0.fma(w2, s20);
                s21 = v1.fma(w2, s21);
                s30 = v0.fma(w3, s30);
                s31 = v1.fma(w3, s31);
            }
            s00.intoArray(acc, a + 0 * stride + q + 0 * vl);
            s01.intoArray(acc, a + 0 * stride + q + 1 * vl);
            s10.intoArray(acc, a + 1 * stride + q + 0 * vl);
            s11.intoArray(acc, a + 1 * stride + q + 1 * vl);
            s20.intoArray(acc, a + 2 * stride + q + 0 * vl);
            s21.intoArray(acc, a + 2 * stride + q + 1 * vl);
            s30.intoArray(acc, a + 3 * stride + q + 0 * vl);
            s31.intoArray(acc, a + 3 * stride + q + 1 * vl);
        }
        for (; q < bound; q += vl) {
            DoubleVector s0 = DoubleVector.fromArray(D, acc, a + 0 * stride + q);
            DoubleVector s1 = DoubleVector.fromArray(D, acc, a + 1 * stride + q);
            DoubleVector s2 = DoubleVector.fromArray(D, acc, a + 2 * stride + q);
            DoubleVector s3 = DoubleVector.fromArray(D, acc, a + 3 * stride + q);
            for (int t = 0; t < taps; t++) {
                DoubleVector v = DoubleVector.fromArray(D, x, p + off[t] + q);
                s0 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 0]), s0);
                s1 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 1]), s1);
                s2 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 2]), s2);
                s3 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 3]), s3);
            }
            s0.intoArray(acc, a + 0 * stride + q);
            s1.intoArray(acc, a + 1 * stride + q);
            s2.intoArray(acc, a + 2 * stride + q);
            s3.intoArray(acc, a + 3 * stride + q);
        }
    }

    /**
     * Planes j0..j0+1, 4 vectors of q at a time: 8 independent FMA chains, each load of x
     * feeding 2 of them; then single vectors up to bound.
     */
    private static void add2(double[] acc, int a, int stride, double[] x, int p, int bound, double[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = D.length();
        int q = 0;
        for (; q + 4 * vl <= bound; q += 4 * vl) {
            DoubleVector s00 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 0 * vl);
            DoubleVector s01 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 1 * vl);
            DoubleVector s02 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 2 * vl);
            DoubleVector s03 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 3 * vl);
            DoubleVector s10 = DoubleVector.fromArray(D, acc, a + 1 * stride + q + 0 * vl);
            DoubleVector s11 = DoubleVector.fromArray(D, acc, a + 1 * stride + q + 1 * vl);
            DoubleVector s12 = DoubleVector.fromArray(D, acc, a + 1 * stride + q + 2 * vl);
            DoubleVector s13 = DoubleVector.fromArray(D, acc, a + 1 * stride + q + 3 * vl);
            for (int t = 0; t < taps; t++) {
                int xq = p + off[t] + q;
                DoubleVector v0 = DoubleVector.fromArray(D, x, xq + 0 * vl);
                DoubleVector v1 = DoubleVector.fromArray(D, x, xq + 1 * vl);
                DoubleVector v2 = DoubleVector.fromArray(D, x, xq + 2 * vl);
                DoubleVector v3 = DoubleVector.fromArray(D, x, xq + 3 * vl);
                DoubleVector w0 = DoubleVector.broadcast(D, w[t * planes + j0 + 0]);
                DoubleVector w1 = DoubleVector.broadcast(D, w[t * planes + j0 + 1]);
                s00 = v0.fma(w0, s00);
                s01 = v1.fma(w0, s01);
                s02 = v2.fma(w0, s02);
                s03 = v3.fma(w0, s03);
                s10 = v0.fma(w1, s10);
                s11 = v1.fma(w1, s11);
                s12 = v2.fma(w1, s12);
                s13 = v3.fma(w1, s13);
            }
            s00.intoArray(acc, a + 0 * stride + q + 0 * vl);
            s01.intoArray(acc, a + 0 * stride + q + 1 * vl);
            s02.intoArray(acc, a + 0 * stride + q + 2 * vl);
            s03.intoArray(acc, a + 0 * stride + q + 3 * vl);
            s10.intoArray(acc, a + 1 * stride + q + 0 * vl);
            s11.intoArray(acc, a + 1 * stride + q + 1 * vl);
            s12.intoArray(acc, a + 1 * stride + q + 2 * vl);
            s13.intoArray(acc, a + 1 * stride + q + 3 * vl);
        }
        for (; q < bound; q += vl) {
            DoubleVector s0 = DoubleVector.fromArray(D, acc, a + 0 * stride + q);
            DoubleVector s1 = DoubleVector.fromArray(D, acc, a + 1 * stride + q);
            for (int t = 0; t < taps; t++) {
                DoubleVector v = DoubleVector.fromArray(D, x, p + off[t] + q);
                s0 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 0]), s0);
                s1 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 1]), s1);
            }
            s0.intoArray(acc, a + 0 * stride + q);
            s1.intoArray(acc, a + 1 * stride + q);
        }
    }

    /**
     * Planes j0..j0+0, 4 vectors of q at a time: 4 independent FMA chains, each load of x
     * feeding 1 of them; then single vectors up to bound.
     */
    private static void add1(double[] acc, int a, int stride, double[] x, int p, int bound, double[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = D.length();
        int q = 0;
        for (; q + 4 * vl <= bound; q += 4 * vl) {
            DoubleVector s00 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 0 * vl);
            DoubleVector s01 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 1 * vl);
            DoubleVector s02 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 2 * vl);
            DoubleVector s03 = DoubleVector.fromArray(D, acc, a + 0 * stride + q + 3 * vl);
            for (int t = 0; t < taps; t++) {
                int xq = p + off[t] + q;
                DoubleVector v0 = DoubleVector.fromArray(D, x, xq + 0 * vl);
                DoubleVector v1 = DoubleVector.fromArray(D, x, xq + 1 * vl);
                DoubleVector v2 = DoubleVector.fromArray(D, x, xq + 2 * vl);
                DoubleVector v3 = DoubleVector.fromArray(D, x, xq + 3 * vl);
                DoubleVector w0 = DoubleVector.broadcast(D, w[t * planes + j0 + 0]);
                s00 = v0.fma(w0, s00);
                s01 = v1.fma(w0, s01);
                s02 = v2.fma(w0, s02);
                s03 = v3.fma(w0, s03);
            }
            s00.intoArray(acc, a + 0 * stride + q + 0 * vl);
            s01.intoArray(acc, a + 0 * stride + q + 1 * vl);
            s02.intoArray(acc, a + 0 * stride + q + 2 * vl);
            s03.intoArray(acc, a + 0 * stride + q + 3 * vl);
        }
        for (; q < bound; q += vl) {
            DoubleVector s0 = DoubleVector.fromArray(D, acc, a + 0 * stride + q);
            for (int t = 0; t < taps; t++) {
                DoubleVector v = DoubleVector.fromArray(D, x, p + off[t] + q);
                s0 = v.fma(DoubleVector.broadcast(D, w[t * planes + j0 + 0]), s0);
            }
            s0.intoArray(acc, a + 0 * stride + q);
        }
    }

    @Override
    void add(float[] acc, int a, int stride, int planes, float[] x, int p, int span, float[] w, int[] off) {
        int bound = F.loopBound(span);
        int j = 0;
        // Eight independent FMA chains keep both FMA pipes busy (latency 4, two per cycle): eight
        // planes at once, or fewer planes over several vectors of q at once.
        for (; j + 8 <= planes; j += 8) {
            add8(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        for (; j + 4 <= planes; j += 4) {
            add4(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        for (; j + 2 <= planes; j += 2) {
            add2(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        for (; j < planes; j++) {
            add1(acc, a + j * stride, stride, x, p, bound, w, j, planes, off);
        }
        if (bound < span) {
            tail.add(acc, a + bound, stride, planes, x, p + bound, span - bound, w, off);
        }
    }

    /**
     * Planes j0..j0+7: 8 independent FMA chains, each load of x
     * feeding 8 of them; then single vectors up to bound.
     */
    private static void add8(float[] acc, int a, int stride, float[] x, int p, int bound, float[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = F.length();
        int q = 0;
        for (; q < bound; q += vl) {
            FloatVector s0 = FloatVector.fromArray(F, acc, a + 0 * stride + q);
            FloatVector s1 = FloatVector.fromArray(F, acc, a + 1 * stride + q);
            FloatVector s2 = FloatVector.fromArray(F, acc, a + 2 * stride + q);
            FloatVector s3 = FloatVector.fromArray(F, acc, a + 3 * stride + q);
            FloatVector s4 = FloatVector.fromArray(F, acc, a + 4 * stride + q);
            FloatVector s5 = FloatVector.fromArray(F, acc, a + 5 * stride + q);
            FloatVector s6 = FloatVector.fromArray(F, acc, a + 6 * stride + q);
            FloatVector s7 = FloatVector.fromArray(F, acc, a + 7 * stride + q);
            for (int t = 0; t < taps; t++) {
                FloatVector v = FloatVector.fromArray(F, x, p + off[t] + q);
                s0 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 0]), s0);
                s1 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 1]), s1);
                s2 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 2]), s2);
                s3 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 3]), s3);
                s4 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 4]), s4);
                s5 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 5]), s5);
                s6 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 6]), s6);
                s7 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 7]), s7);
            }
            s0.intoArray(acc, a + 0 * stride + q);
            s1.intoArray(acc, a + 1 * stride + q);
            s2.intoArray(acc, a + 2 * stride + q);
            s3.intoArray(acc, a + 3 * stride + q);
            s4.intoArray(acc, a + 4 * stride + q);
            s5.intoArray(acc, a + 5 * stride + q);
            s6.intoArray(acc, a + 6 * stride + q);
            s7.intoArray(acc, a + 7 * stride + q);
        }
    }

    /**
     * Planes j0..j0+3, 2 vectors of q at a time: 8 independent FMA chains, each load of x
     * feeding 4 of them; then single vectors up to bound.
     */
    private static void add4(float[] acc, int a, int stride, float[] x, int p, int bound, float[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = F.length();
        int q = 0;
        for (; q + 2 * vl <= bound; q += 2 * vl) {
            FloatVector s00 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 0 * vl);
            FloatVector s01 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 1 * vl);
            FloatVector s10 = FloatVector.fromArray(F, acc, a + 1 * stride + q + 0 * vl);
            FloatVector s11 = FloatVector.fromArray(F, acc, a + 1 * stride + q + 1 * vl);
            FloatVector s20 = FloatVector.fromArray(F, acc, a + 2 * stride + q + 0 * vl);
            FloatVector s21 = FloatVector.fromArray(F, acc, a + 2 * stride + q + 1 * vl);
            FloatVector s30 = FloatVector.fromArray(F, acc, a + 3 * stride + q + 0 * vl);
            FloatVector s31 = FloatVector.fromArray(F, acc, a + 3 * stride + q + 1 * vl);
            for (int t = 0; t < taps; t++) {
                int xq = p + off[t] + q;
                FloatVector v0 = FloatVector.fromArray(F, x, xq + 0 * vl);
                FloatVector v1 = FloatVector.fromArray(F, x, xq + 1 * vl);
                FloatVector w0 = FloatVector.broadcast(F, w[t * planes + j0 + 0]);
                FloatVector w1 = FloatVector.broadcast(F, w[t * planes + j0 + 1]);
                FloatVector w2 = FloatVector.broadcast(F, w[t * planes + j0 + 2]);
                FloatVector w3 = FloatVector.broadcast(F, w[t * planes + j0 + 3]);
                s00 = v0.fma(w0, s00);
                s01 = v1.fma(w0, s01);
                s10 = v0.fma(w1, s10);
                s11 = v1.fma(w1, s11);
                s20 = v0.fma(w2, s20);
                s21 = v1.fma(w2, s21);
                s30 = v0.fma(w3, s30);
                s31 = v1.fma(w3, s31);
            }
            s00.intoArray(acc, a + 0 * stride + q + 0 * vl);
            s01.intoArray(acc, a + 0 * stride + q + 1 * vl);
            s10.intoArray(acc, a + 1 * stride + q + 0 * vl);
            s11.intoArray(acc, a + 1 * stride + q + 1 * vl);
            s20.intoArray(acc, a + 2 * stride + q + 0 * vl);
            s21.intoArray(acc, a + 2 * stride + q + 1 * vl);
            s30.intoArray(acc, a + 3 * stride + q + 0 * vl);
            s31.intoArray(acc, a + 3 * stride + q + 1 * vl);
        }
        for (; q < bound; q += vl) {
            FloatVector s0 = FloatVector.fromArray(F, acc, a + 0 * stride + q);
            FloatVector s1 = FloatVector.fromArray(F, acc, a + 1 * stride + q);
            FloatVector s2 = FloatVector.fromArray(F, acc, a + 2 * stride + q);
            FloatVector s3 = FloatVector.fromArray(F, acc, a + 3 * stride + q);
            for (int t = 0; t < taps; t++) {
                FloatVector v = FloatVector.fromArray(F, x, p + off[t] + q);
                s0 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 0]), s0);
                s1 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 1]), s1);
                s2 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 2]), s2);
                s3 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 3]), s3);
            }
            s0.intoArray(acc, a + 0 * stride + q);
            s1.intoArray(acc, a + 1 * stride + q);
            s2.intoArray(acc, a + 2 * stride + q);
            s3.intoArray(acc, a + 3 * stride + q);
        }
    }

    /**
     * Planes j0..j0+1, 4 vectors of q at a time: 8 independent FMA chains, each load of x
     * feeding 2 of them; then single vectors up to bound.
     */
    private static void add2(float[] acc, int a, int stride, float[] x, int p, int bound, float[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = F.length();
        int q = 0;
        for (; q + 4 * vl <= bound; q += 4 * vl) {
            FloatVector s00 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 0 * vl);
            FloatVector s01 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 1 * vl);
            FloatVector s02 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 2 * vl);
            FloatVector s03 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 3 * vl);
            FloatVector s10 = FloatVector.fromArray(F, acc, a + 1 * stride + q + 0 * vl);
            FloatVector s11 = FloatVector.fromArray(F, acc, a + 1 * stride + q + 1 * vl);
            FloatVector s12 = FloatVector.fromArray(F, acc, a + 1 * stride + q + 2 * vl);
            FloatVector s13 = FloatVector.fromArray(F, acc, a + 1 * stride + q + 3 * vl);
            for (int t = 0; t < taps; t++) {
                int xq = p + off[t] + q;
                FloatVector v0 = FloatVector.fromArray(F, x, xq + 0 * vl);
                FloatVector v1 = FloatVector.fromArray(F, x, xq + 1 * vl);
                FloatVector v2 = FloatVector.fromArray(F, x, xq + 2 * vl);
                FloatVector v3 = FloatVector.fromArray(F, x, xq + 3 * vl);
                FloatVector w0 = FloatVector.broadcast(F, w[t * planes + j0 + 0]);
                FloatVector w1 = FloatVector.broadcast(F, w[t * planes + j0 + 1]);
                s00 = v0.fma(w0, s00);
                s01 = v1.fma(w0, s01);
                s02 = v2.fma(w0, s02);
                s03 = v3.fma(w0, s03);
                s10 = v0.fma(w1, s10);
                s11 = v1.fma(w1, s11);
                s12 = v2.fma(w1, s12);
                s13 = v3.fma(w1, s13);
            }
            s00.intoArray(acc, a + 0 * stride + q + 0 * vl);
            s01.intoArray(acc, a + 0 * stride + q + 1 * vl);
            s02.intoArray(acc, a + 0 * stride + q + 2 * vl);
            s03.intoArray(acc, a + 0 * stride + q + 3 * vl);
            s10.intoArray(acc, a + 1 * stride + q + 0 * vl);
            s11.intoArray(acc, a + 1 * stride + q + 1 * vl);
            s12.intoArray(acc, a + 1 * stride + q + 2 * vl);
            s13.intoArray(acc, a + 1 * stride + q + 3 * vl);
        }
        for (; q < bound; q += vl) {
            FloatVector s0 = FloatVector.fromArray(F, acc, a + 0 * stride + q);
            FloatVector s1 = FloatVector.fromArray(F, acc, a + 1 * stride + q);
            for (int t = 0; t < taps; t++) {
                FloatVector v = FloatVector.fromArray(F, x, p + off[t] + q);
                s0 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 0]), s0);
                s1 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 1]), s1);
            }
            s0.intoArray(acc, a + 0 * stride + q);
            s1.intoArray(acc, a + 1 * stride + q);
        }
    }

    /**
     * Planes j0..j0+0, 4 vectors of q at a time: 4 independent FMA chains, each load of x
     * feeding 1 of them; then single vectors up to bound.
     */
    private static void add1(float[] acc, int a, int stride, float[] x, int p, int bound, float[] w, int j0, int planes,
            int[] off) {
        int taps = off.length;
        int vl = F.length();
        int q = 0;
        for (; q + 4 * vl <= bound; q += 4 * vl) {
            FloatVector s00 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 0 * vl);
            FloatVector s01 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 1 * vl);
            FloatVector s02 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 2 * vl);
            FloatVector s03 = FloatVector.fromArray(F, acc, a + 0 * stride + q + 3 * vl);
            for (int t = 0; t < taps; t++) {
                int xq = p + off[t] + q;
                FloatVector v0 = FloatVector.fromArray(F, x, xq + 0 * vl);
                FloatVector v1 = FloatVector.fromArray(F, x, xq + 1 * vl);
                FloatVector v2 = FloatVector.fromArray(F, x, xq + 2 * vl);
                FloatVector v3 = FloatVector.fromArray(F, x, xq + 3 * vl);
                FloatVector w0 = FloatVector.broadcast(F, w[t * planes + j0 + 0]);
                s00 = v0.fma(w0, s00);
                s01 = v1.fma(w0, s01);
                s02 = v2.fma(w0, s02);
                s03 = v3.fma(w0, s03);
            }
            s00.intoArray(acc, a + 0 * stride + q + 0 * vl);
            s01.intoArray(acc, a + 0 * stride + q + 1 * vl);
            s02.intoArray(acc, a + 0 * stride + q + 2 * vl);
            s03.intoArray(acc, a + 0 * stride + q + 3 * vl);
        }
        for (; q < bound; q += vl) {
            FloatVector s0 = FloatVector.fromArray(F, acc, a + 0 * stride + q);
            for (int t = 0; t < taps; t++) {
                FloatVector v = FloatVector.fromArray(F, x, p + off[t] + q);
                s0 = v.fma(FloatVector.broadcast(F, w[t * planes + j0 + 0]), s0);
            }
            s0.intoArray(acc, a + 0 * stride + q);
        }
    }

    // Widening and narrowing stay scalar: HotSpot 17 does not intrinsify convertShape between
    // shapes (measured: a tinyvgg batch went from 0.36 s to 1.0-1.4 s with it).
    @Override
    void widen(float[] src, int s, double[] dst, int d, int n) {
        tail.widen(src, s, dst, d, n);
    }

    @Override
    void narrow(double[] src, int s, float[] dst, int d, int n) {
        tail.narrow(src, s, dst, d, n);
    }

    @Override
    void addTo(float[] src, int s, double[] dst, int d, int n) {
        tail.addTo(src, s, dst, d, n); // the JIT vectorises the scalar loop
    }

    @Override
    void relu(float[] in, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, in, i);
            VectorMask<Float> positive = v.compare(VectorOperators.GT, 0f);
            FloatVector.zero(F).blend(v, positive).intoArray(out, i);
        }
        tail.relu(in, out, i, to);
    }

    @Override
    void reluBackward(float[] y, float[] g, float[] gi, int from, int to) {
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += F.length()) {
            VectorMask<Float> positive = FloatVector.fromArray(F, y, i).compare(VectorOperators.GT, 0f);
            FloatVector.zero(F).blend(FloatVector.fromArray(F, g, i), positive).intoArray(gi, i);
        }
        tail.reluBackward(y, g, gi, i, to);
    }

    @Override
    float maxAbs(float[] x, int from, int to) {
        // lanewise MAX is Math.max per lane (a NaN lane stays NaN), and so is the reduction
        FloatVector mx = FloatVector.zero(F);
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += F.length()) {
            mx = mx.max(FloatVector.fromArray(F, x, i).abs());
        }
        return Math.max(mx.reduceLanes(VectorOperators.MAX), tail.maxAbs(x, i, to));
    }

    @Override
    void maxAbsInto(float[] x, int p, float[] acc, int a, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += F.length()) {
            // lanewise MAX is Math.max per lane: a NaN lane stays NaN
            FloatVector.fromArray(F, acc, a + i).max(FloatVector.fromArray(F, x, p + i).abs()).intoArray(acc, a + i);
        }
        tail.maxAbsInto(x, p + i, acc, a + i, n - i);
    }

    @Override
    int nextWithin(float[] x, int from, int to, float center, float t) {
        int i = from;
        for (int bound = from + F.loopBound(to - from); i < bound; i += F.length()) {
            // a NaN lane compares false, as in the scalar loop
            VectorMask<Float> near = FloatVector.fromArray(F, x, i).sub(center).abs().compare(VectorOperators.LE, t);
            if (near.anyTrue()) {
                return i + near.firstTrue();
            }
        }
        return tail.nextWithin(x, i, to, center, t);
    }

    @Override
    String describe() {
        return "SIMD loops (jdk.incubator.vector, " + D.vectorBitSize() + "-bit: " + D.length() + " doubles, "
                + F.length() + " floats)";
    }
}
