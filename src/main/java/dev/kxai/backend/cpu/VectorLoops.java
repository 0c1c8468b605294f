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
    private final SimdLoops.Scalar tail = new SimdLoops.Scalar("tail");

    @Override
    void add(double[] acc, int a, double[] x, int p, int span, double[] w, int[] off) {
        int taps = w.length;
        int bound = D.loopBound(span);
        int q = 0;
        for (; q < bound; q += D.length()) {
            DoubleVector s = DoubleVector.fromArray(D, acc, a + q);
            for (int t = 0; t < taps; t++) {
                s = s.add(DoubleVector.fromArray(D, x, p + off[t] + q).mul(w[t]));
            }
            s.intoArray(acc, a + q);
        }
        if (q < span) {
            tail.add(acc, a + q, x, p + q, span - q, w, off);
        }
    }

    @Override
    void add(float[] acc, int a, float[] x, int p, int span, float[] w, int[] off) {
        int taps = w.length;
        int bound = F.loopBound(span);
        int q = 0;
        for (; q < bound; q += F.length()) {
            FloatVector s = FloatVector.fromArray(F, acc, a + q);
            for (int t = 0; t < taps; t++) {
                s = s.add(FloatVector.fromArray(F, x, p + off[t] + q).mul(w[t]));
            }
            s.intoArray(acc, a + q);
        }
        if (q < span) {
            tail.add(acc, a + q, x, p + q, span - q, w, off);
        }
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
    String describe() {
        return "SIMD loops (jdk.incubator.vector, " + D.vectorBitSize() + "-bit: " + D.length() + " doubles, "
                + F.length() + " floats)";
    }
}
