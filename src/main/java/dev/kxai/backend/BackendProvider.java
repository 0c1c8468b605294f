package dev.kxai.backend;

/**
 * ServiceLoader entry for a backend. {@link #probe()} must never throw: a missing native library
 * or driver is an answer ("unavailable, because ..."), not an error.
 */
public interface BackendProvider {
    String name();

    /** Higher is preferred by {@code auto}. */
    int rank();

    Availability probe();

    Backend create();

    /** Whether a backend can run here, and if not, why. */
    record Availability(boolean available, String reason) {
        public static Availability yes(String reason) {
            return new Availability(true, reason);
        }

        public static Availability no(String reason) {
            return new Availability(false, reason);
        }
    }
}
