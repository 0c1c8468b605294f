package dev.kxai.attr;

/**
 * Gauss–Legendre nodes and weights on [−1, 1] in float64, ascending like
 * {@code numpy.polynomial.legendre.leggauss}: Newton's method on P_n from the classical cosine
 * guesses, weights 2 / ((1 − x²) P_n'(x)²), then symmetrised.
 * <p>
 * P_n by its three-term recurrence costs O(n) per evaluation, O(n²) for all nodes (101 s at 10^5
 * steps). Up to {@link #RECURRENCE_UP_TO} nodes, and for the {@link #BOUNDARY} nodes nearest each end
 * at any n, that is what runs (the results at common step counts are unchanged, bit for bit). The
 * other nodes solve for θ (x = cos θ) with Newton's method on Stieltjes' asymptotic expansion of
 * P_n(cos θ) (Szegő 8.21.14; Hale &amp; Townsend, SIAM J. Sci. Comput. 35 (2013)), O(1) per
 * evaluation: O(n) in all. The expansion converges fast away from the ends (n sin θ large); near
 * them the recurrence takes over.
 */
final class GaussLegendre {
    /** Up to this many nodes, every node comes from the recurrence. */
    static final int RECURRENCE_UP_TO = 400;
    /** Nodes from each end computed with the recurrence beyond {@link #RECURRENCE_UP_TO}. */
    static final int BOUNDARY = 50;
    /** Terms of the interior expansion (fewer where they fall below double precision). */
    private static final int TERMS = 24;

    private GaussLegendre() {
    }

    /** {nodes, weights}, nodes ascending. */
    static double[][] nodesAndWeights(int n) {
        return nodesAndWeights(n, n > RECURRENCE_UP_TO);
    }

    /** With {@code asymptotic} false every node from the recurrence (O(n²): the tests' reference). */
    static double[][] nodesAndWeights(int n, boolean asymptotic) {
        double[] x = new double[n];
        double[] w = new double[n];
        int half = (n + 1) / 2;
        if (asymptotic) {
            interior(n, x, w);
        }
        for (int i = 0; i < half; i++) {
            if (asymptotic && i >= BOUNDARY) {
                continue;
            }
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

    /**
     * Nodes BOUNDARY..half−1 from the largest (and their mirror images): Newton in θ on
     * P_n(cos θ) = C_n Σ_m h_m cos(α_m) / (2 sin θ)^(m+1/2), α_m = (n+m+½)θ − (m+½)π/2,
     * h_0 = 1, h_m = h_{m−1} (m−½)² / (m (n+m+½)), C_n = (4/π) Π_{j≤n} j/(j+½); the weight is
     * 2 / (dP_n/dθ)² (= 2 / ((1 − x²) P_n'(x)²)).
     */
    private static void interior(int n, double[] x, double[] w) {
        double[] h = new double[TERMS];
        h[0] = 1;
        for (int m = 1; m < TERMS; m++) {
            h[m] = h[m - 1] * (m - 0.5) * (m - 0.5) / (m * (n + m + 0.5));
        }
        double c = 4 / Math.PI;
        for (int j = 1; j <= n; j++) {
            c *= j / (j + 0.5);
        }
        int half = (n + 1) / 2;
        double[] pd = new double[2];
        for (int i = BOUNDARY; i < half; i++) {
            if (n % 2 == 1 && i == half - 1) {
                continue; // the middle node, x = 0: set below with its weight from the recurrence-free formula
            }
            double theta = Math.PI * (i + 0.75) / (n + 0.5);
            for (int iter = 0; iter < 10; iter++) {
                stieltjes(n, theta, h, pd);
                double d = pd[0] / pd[1];
                theta -= d;
                if (Math.abs(d) <= 1e-17 * theta) {
                    break;
                }
            }
            stieltjes(n, theta, h, pd);
            double dp = c * pd[1];
            double z = Math.cos(theta);
            double wi = 2.0 / (dp * dp);
            x[n - 1 - i] = z;
            x[i] = -z;
            w[n - 1 - i] = wi;
            w[i] = wi;
        }
        if (n % 2 == 1) {
            stieltjes(n, Math.PI / 2, h, pd);
            double dp = c * pd[1];
            x[n / 2] = 0.0;
            w[n / 2] = 2.0 / (dp * dp);
        }
    }

    /** The expansion's sum and its θ-derivative, without the constant C_n: {S(θ), S'(θ)}. */
    private static void stieltjes(int n, double theta, double[] h, double[] out) {
        double twoSin = 2 * Math.sin(theta);
        double cot = Math.cos(theta) / Math.sin(theta);
        double p = 0;
        double dp = 0;
        double scale = 1 / Math.sqrt(twoSin);
        for (int m = 0; m < h.length; m++) {
            double rho = n + m + 0.5;
            double alpha = rho * theta - (m + 0.5) * Math.PI / 2;
            double term = h[m] * scale;
            double ca = Math.cos(alpha);
            p += term * ca;
            // d/dθ [cos α (2 sin θ)^−(m+½)] = −ρ sin α (2 sin θ)^−(m+½) − (m+½) cot θ cos α (2 sin θ)^−(m+½)
            dp += term * (-rho * Math.sin(alpha) - (m + 0.5) * cot * ca);
            if (term < 1e-18 * Math.abs(p) && m > 2) {
                break;
            }
            scale /= twoSin;
        }
        out[0] = p;
        out[1] = dp;
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
