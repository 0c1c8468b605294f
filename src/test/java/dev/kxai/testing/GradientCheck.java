package dev.kxai.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The finite-difference gradient checker shared by the CPU operator tests and the CUDA backend's
 * emulator tests, so both backends are held to the same rule.
 */
public final class GradientCheck {
    private GradientCheck() {
    }

    /** Outcome of comparing an analytic gradient with a finite-difference one. */
    public record Report(boolean ok, double relativeError, int worstIndex, double worstAnalytic, double worstFd) {
        @Override
        public String toString() {
            return String.format("||a-fd||/||fd|| = %.3g; worst element %d: analytic %.6g vs fd %.6g", relativeError,
                    worstIndex, worstAnalytic, worstFd);
        }
    }

    /**
     * Fails on either a large overall error (a scale or sign slip) or one bad element (a gradient
     * routed to the wrong place), which the norm alone would dilute in a large tensor.
     */
    public static Report compare(double[] analytic, double[] fd, double rtol, double atolFraction) {
        assertEquals(fd.length, analytic.length, "gradient length");
        double num = 0;
        double den = 0;
        double maxFd = 0;
        for (int i = 0; i < fd.length; i++) {
            num += (analytic[i] - fd[i]) * (analytic[i] - fd[i]);
            den += fd[i] * fd[i];
            maxFd = Math.max(maxFd, Math.abs(fd[i]));
        }
        double rel = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        boolean ok = rel <= rtol && !Double.isNaN(rel);
        int worst = -1;
        double worstExcess = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < fd.length; i++) {
            double diff = Math.abs(analytic[i] - fd[i]);
            double allowed = rtol * Math.abs(fd[i]) + atolFraction * maxFd + 1e-9;
            if (diff - allowed > worstExcess || Double.isNaN(diff)) {
                worstExcess = Double.isNaN(diff) ? Double.POSITIVE_INFINITY : diff - allowed;
                worst = i;
            }
        }
        ok &= worstExcess <= 0;
        return new Report(ok, rel, worst, worst < 0 ? 0 : analytic[worst], worst < 0 ? 0 : fd[worst]);
    }
}
