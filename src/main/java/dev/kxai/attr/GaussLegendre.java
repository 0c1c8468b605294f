package dev.kxai.attr;

/**
 * Gauss–Legendre nodes and weights on [−1, 1] in float64, ascending like
 * {@code numpy.polynomial.legendre.leggauss}: Newton's method on P_n from the classical cosine
 * guesses, weights 2 / ((1 − x²) P_n'(x)²), then symmetrised.
 */
final class GaussLegendre {
    private GaussLegendre() {
    }

    /** {nodes, weights}, nodes ascending. */
    static double[][] nodesAndWeights(int n) {
        double[] x = new double[n];
        double[] w = new double[n];
        int half = (n + 1) / 2;
        for (int i = 0; i < half; i++) {
            double z = Math.cos(Math.PI * (i + 0.75) / (n + 0.5));
            double dp = 0;
            for (int iter = 0; iter < 100; iter++) {
                double[] pd = legendre(n, z);
                dp = pd[1];
                double dz = pd[0] / dp;
                z -= dz;
                if (Math.abs(dz) <= 1e-16 * Math.max(1, Math.abs(z))) {
                    break;
                }
            }
            dp = legendre(n, z)[1];
            double wi = 2.0 / ((1 - z * z) * dp * dp);
            // cosine guesses run from the largest root down: place them symmetrically, ascending
            x[n - 1 - i] = z;
            x[i] = -z;
            w[n - 1 - i] = wi;
            w[i] = wi;
        }
        if (n % 2 == 1) {
            x[n / 2] = 0.0;
        }
        return new double[][] {x, w};
    }

    /** {P_n(z), P_n'(z)} by the three-term recurrence. */
    private static double[] legendre(int n, double z) {
        double p0 = 1;
        double p1 = z;
        if (n == 0) {
            return new double[] {1, 0};
        }
        for (int k = 2; k <= n; k++) {
            double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
            p0 = p1;
            p1 = p2;
        }
        double d = n * (z * p1 - p0) / (z * z - 1);
        return new double[] {p1, d};
    }
}
