package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kxai.InvalidInputException;
import org.junit.jupiter.api.Test;

/**
 * Alphas and weights for n = 2, 3 of every rule, as Captum 0.8.0 builds them: Riemann alphas
 * are float32 values from torch.linspace (so 1/3 is the float nearest 1/3, held as a double),
 * weights are Python doubles; Gauss–Legendre is float64 throughout.
 */
class QuadratureTest {
    private static void check(Quadrature.Rule rule, int n, double[] alphas, double[] weights, double tol) {
        Quadrature q = Quadrature.of(rule, n);
        assertArrayEquals(alphas, q.alphas(), tol, rule + " alphas n=" + n);
        assertArrayEquals(weights, q.weights(), tol, rule + " weights n=" + n);
    }

    private static double f(double v) {
        return (float) v;
    }

    @Test
    void riemannLeft() {
        check(Quadrature.Rule.RIEMANN_LEFT, 2, new double[] {0, 0.5}, new double[] {0.5, 0.5}, 0);
        check(Quadrature.Rule.RIEMANN_LEFT, 3, new double[] {0, f(1.0 / 3), f(2.0 / 3)},
                new double[] {1.0 / 3, 1.0 / 3, 1.0 / 3}, 0);
    }

    @Test
    void riemannRight() {
        check(Quadrature.Rule.RIEMANN_RIGHT, 2, new double[] {0.5, 1}, new double[] {0.5, 0.5}, 0);
        check(Quadrature.Rule.RIEMANN_RIGHT, 3, new double[] {f(1.0 / 3), f(2.0 / 3), 1},
                new double[] {1.0 / 3, 1.0 / 3, 1.0 / 3}, 0);
    }

    @Test
    void riemannMiddle() {
        check(Quadrature.Rule.RIEMANN_MIDDLE, 2, new double[] {0.25, 0.75}, new double[] {0.5, 0.5}, 0);
        check(Quadrature.Rule.RIEMANN_MIDDLE, 3, new double[] {f(1.0 / 6), 0.5, f(5.0 / 6)},
                new double[] {1.0 / 3, 1.0 / 3, 1.0 / 3}, 0);
    }

    @Test
    void riemannTrapezoid() {
        check(Quadrature.Rule.RIEMANN_TRAPEZOID, 2, new double[] {0, 1}, new double[] {0.25, 0.25}, 0);
        check(Quadrature.Rule.RIEMANN_TRAPEZOID, 3, new double[] {0, 0.5, 1},
                new double[] {1.0 / 6, 1.0 / 3, 1.0 / 6}, 0);
    }

    @Test
    void gaussLegendre() {
        double r = 1 / Math.sqrt(3);
        check(Quadrature.Rule.GAUSS_LEGENDRE, 2, new double[] {0.5 * (1 - r), 0.5 * (1 + r)},
                new double[] {0.5, 0.5}, 1e-15);
        double s = Math.sqrt(0.6);
        check(Quadrature.Rule.GAUSS_LEGENDRE, 3, new double[] {0.5 * (1 - s), 0.5, 0.5 * (1 + s)},
                new double[] {5.0 / 18, 8.0 / 18, 5.0 / 18}, 1e-15);
        check(Quadrature.Rule.GAUSS_LEGENDRE, 1, new double[] {0.5}, new double[] {1}, 1e-15);
    }

    @Test
    void gaussLegendreIntegratesPolynomialsExactly() {
        // n nodes integrate degree 2n−1 exactly: ∫0^1 x^k dx = 1/(k+1)
        for (int n : new int[] {5, 16, 50, 128}) {
            Quadrature q = Quadrature.of(Quadrature.Rule.GAUSS_LEGENDRE, n);
            for (int k = 0; k <= Math.min(2 * n - 1, 40); k++) {
                double s = 0;
                for (int i = 0; i < n; i++) {
                    s += q.weights()[i] * Math.pow(q.alphas()[i], k);
                }
                assertEquals(1.0 / (k + 1), s, 1e-13, "n=" + n + " degree " + k);
            }
            for (int i = 1; i < n; i++) {
                assertEquals(true, q.alphas()[i] > q.alphas()[i - 1], "ascending nodes");
            }
        }
    }

    @Test
    void linspaceMatchesTorchFloat32() {
        // torch.linspace(0, 1, 16)[k] for float32 (first half counts up, second half down from 1)
        float[] a = Quadrature.linspace(0, 1, 16);
        float step = 1f / 15;
        assertEquals(0f, a[0]);
        assertEquals(step * 7, a[7]);
        assertEquals(1f - step * 7, a[8]);
        assertEquals(1f, a[15]);
    }

    @Test
    void refusesTooFewSteps() {
        assertThrows(InvalidInputException.class, () -> Quadrature.of(Quadrature.Rule.GAUSS_LEGENDRE, 0));
        for (Quadrature.Rule r : Quadrature.Rule.values()) {
            if (r.isRiemann()) {
                InvalidInputException e = assertThrows(InvalidInputException.class, () -> Quadrature.of(r, 1));
                assertEquals(true, e.getMessage().contains("n_steps") && e.getMessage().contains("1"), e.getMessage());
            }
        }
    }

    @Test
    void parsesCaptumNames() {
        for (Quadrature.Rule r : Quadrature.Rule.values()) {
            if (r != Quadrature.Rule.CUSTOM) {
                assertEquals(r, Quadrature.Rule.parse(r.captumName()));
            }
        }
        assertThrows(InvalidInputException.class, () -> Quadrature.Rule.parse("simpson"));
        // user-given points are not a name: they come as alphas
        assertThrows(InvalidInputException.class, () -> Quadrature.Rule.parse("custom"));
        assertThrows(InvalidInputException.class, () -> Quadrature.of(Quadrature.Rule.CUSTOM, 8));
    }

    /**
     * Large n_steps (issue 13): the nodes beyond the ends come from an O(1)-per-node asymptotic
     * expansion; they must agree with the O(n²) recurrence, and still integrate polynomials exactly.
     */
    @Test
    void gaussLegendreForLargeNAgreesWithTheRecurrence() {
        for (int n : new int[] {401, 1000, 2001, 5000}) {
            double[][] fast = GaussLegendre.nodesAndWeights(n, true);
            double[][] slow = GaussLegendre.nodesAndWeights(n, false);
            double dx = 0;
            double dw = 0;
            for (int i = 0; i < n; i++) {
                dx = Math.max(dx, Math.abs(fast[0][i] - slow[0][i]));
                dw = Math.max(dw, Math.abs(fast[1][i] - slow[1][i]) / slow[1][i]);
            }
            System.out.printf("gauss-legendre n=%d: max |node diff| %.2e, max relative weight diff %.2e%n", n, dx, dw);
            assertTrue(dx < 1e-15, "n=" + n + ": nodes differ by " + dx);
            assertTrue(dw < 1e-12, "n=" + n + ": weights differ (relative) by " + dw);
        }
    }

    @Test
    void gaussLegendreAtTenToTheFiveStepsIsAccurate() {
        for (int n : new int[] {10_000, 100_000, 100_001}) {
            long t0 = System.nanoTime();
            Quadrature q = Quadrature.of(Quadrature.Rule.GAUSS_LEGENDRE, n);
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("gauss-legendre set-up at n=%d: %.3f s%n", n, seconds);
            // Σw = 1 and ∫0^1 x^k = 1/(k+1) for low degrees; nodes ascending inside (0, 1), symmetric
            for (int k = 0; k <= 12; k++) {
                double s = 0;
                for (int i = 0; i < n; i++) {
                    s += q.weights()[i] * Math.pow(q.alphas()[i], k);
                }
                assertEquals(1.0 / (k + 1), s, 1e-12, "n=" + n + " degree " + k);
            }
            for (int i = 0; i < n; i++) {
                assertTrue(q.alphas()[i] > 0 && q.alphas()[i] < 1 && q.weights()[i] > 0, "node " + i);
                assertTrue(i == 0 || q.alphas()[i] > q.alphas()[i - 1], "ascending at " + i);
                assertEquals(1.0, q.alphas()[i] + q.alphas()[n - 1 - i], 1e-15, "symmetric at " + i);
            }
        }
    }
}
