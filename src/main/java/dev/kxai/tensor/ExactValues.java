package dev.kxai.tensor;

/**
 * The values of a tensor computed in float where the exact path accumulates in double: a bound on
 * each element's distance from the exact path's value, and that value on demand. Operators that
 * take a discrete decision on an element (a ReLU's sign, a max-pool's winner) decide directly where
 * the float value is farther than its bound from the decision boundary, and recompute the element
 * otherwise, so that every decision is the one the all-double path would take on the same inputs.
 */
public interface ExactValues {
    /**
     * An upper bound on |{@code value} − {@link #exact}(i)|, where {@code value} is the tensor's
     * element i as computed (the bound may grow with the magnitude of the value).
     */
    float bound(int i, float value);

    /** The exact path's value of element i (double accumulation rounded once to float). */
    float exact(int i);

    /**
     * An upper bound on {@link #bound}(i, data[i]) over i in [from, to), NaN if some bound is NaN:
     * lets a decision pass scan for the few elements near a boundary with one threshold (SIMD)
     * instead of one bound per element. The default asks each element; implementations that know
     * their bounds per plane answer from those.
     */
    default float maxBound(float[] data, int from, int to) {
        // asks each element: callers that only want a shortcut check knowsMaxBound() first
        float m = 0f;
        for (int i = from; i < to; i++) {
            float b = bound(i, data[i]);
            if (b != b) {
                return Float.NaN;
            }
            m = Math.max(m, b);
        }
        return m;
    }

    /** Whether {@link #maxBound} answers without asking each element (then a scan with it pays). */
    default boolean knowsMaxBound() {
        return false;
    }
}
