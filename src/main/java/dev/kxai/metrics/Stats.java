package dev.kxai.metrics;

import java.util.SplittableRandom;

/** Small numeric helpers the metrics share (in double). */
final class Stats {
    private Stats() {
    }

    /** The mean of the finite values, NaN where there is none. */
    static double finiteMean(double[] v) {
        double sum = 0;
        int n = 0;
        for (double x : v) {
            if (Double.isFinite(x)) {
                sum += x;
                n++;
            }
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    /** Pearson's correlation of two samples; NaN where either has no variance (as scipy's pearsonr). */
    static double pearson(double[] a, double[] b) {
        int n = a.length;
        double ma = 0;
        double mb = 0;
        for (int i = 0; i < n; i++) {
            ma += a[i];
            mb += b[i];
        }
        ma /= n;
        mb /= n;
        double sab = 0;
        double saa = 0;
        double sbb = 0;
        for (int i = 0; i < n; i++) {
            double da = a[i] - ma;
            double db = b[i] - mb;
            sab += da * db;
            saa += da * da;
            sbb += db * db;
        }
        return saa == 0 || sbb == 0 ? Double.NaN : sab / Math.sqrt(saa * sbb);
    }

    /**
     * The random stream of example r under a seed: each example its own, so that a result does not
     * depend on how the work is chunked (the convention of the sampling methods, e.g. LIME's).
     */
    static SplittableRandom stream(long seed, int r) {
        return new SplittableRandom(seed * 1_000_003L + r);
    }

    /** A uniformly random permutation of 0..n−1. */
    static int[] permutation(int n, SplittableRandom rng) {
        return dev.kxai.attr.perturbation.RandomOrders.permutation(n, rng);
    }
}
