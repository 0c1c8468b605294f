package dev.kxai.attr;

import dev.kxai.InvalidInputException;

/**
 * Documented limits on the counts a caller gives (issue 13: 2^31 − 1 samples or iterations ended in an
 * OutOfMemoryError or a NegativeArraySizeException). Each can be raised with its system property. The
 * integration steps' limit is {@link Quadrature#MAX_STEPS}.
 */
public final class Limits {
    /** Samples of the sampling methods (Shapley sampling, LIME, KernelSHAP, GradientSHAP, noise tunnel). */
    public static final int MAX_SAMPLES = Integer.getInteger("kxai.max.samples", 100_000);
    /** Iterations of activation maximisation. */
    public static final int MAX_ITERATIONS = Integer.getInteger("kxai.max.iterations", 100_000);

    private Limits() {
    }

    /** Refuses {@code n} samples beyond {@link #MAX_SAMPLES}, naming the method and parameter. */
    public static void samples(String method, String parameter, long n) {
        check(method, parameter, n, MAX_SAMPLES, "kxai.max.samples");
    }

    /** Refuses {@code n} iterations beyond {@link #MAX_ITERATIONS}. */
    public static void iterations(String method, long n) {
        check(method, "iterations", n, MAX_ITERATIONS, "kxai.max.iterations");
    }

    private static void check(String method, String parameter, long n, long max, String property) {
        if (n > max) {
            throw new InvalidInputException(method + ": " + parameter + " " + n + " exceeds the limit of " + max
                    + " (raise it with -D" + property + "=N)");
        }
    }
}
