package dev.kxai.backend.cpu;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link TapSum} with explicit SIMD over q (the machine's preferred vector width); the remainder
 * runs the scalar loop. Per lane it performs exactly {@link TapSum.Scalar}'s operations in the
 * same order, so the two agree bit for bit. Loaded by reflection only when the JVM has the
 * incubator module.
 */
final class VectorTapSum extends TapSum {
    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private final TapSum.Scalar tail = new TapSum.Scalar("tail");

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
    String describe() {
        return "SIMD loops (jdk.incubator.vector, " + D.vectorBitSize() + "-bit: " + D.length() + " doubles, "
                + F.length() + " floats)";
    }
}
