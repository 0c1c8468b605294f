package dev.kxai.io;

import dev.kxai.KxaiException;
import dev.kxai.tensor.Tensor;

/** What every fuzz target asserts beyond "only typed exceptions". */
public final class FuzzChecks {
    private FuzzChecks() {
    }

    /** A tensor read from {@code bytes} bytes: its shape and data agree, and it fits in them. */
    public static void consistent(Tensor t, long bytes) {
        long n = 1;
        for (int d : t.shape()) {
            if (d < 0) {
                throw new AssertionError("negative dimension in " + java.util.Arrays.toString(t.shape()));
            }
            n = Math.multiplyExact(n, d);
        }
        if (n != t.data().length) {
            throw new AssertionError("shape " + java.util.Arrays.toString(t.shape()) + " holds " + n
                    + " elements, data " + t.data().length);
        }
        if (n > bytes) { // at least one byte per element (bool/u1), nothing invented
            throw new AssertionError(n + " elements from " + bytes + " bytes");
        }
    }

    /** A refusal says something: a message, not just a number or "null". */
    public static void named(KxaiException e) {
        String m = e.getMessage();
        if (m == null || m.isBlank() || m.equals("null")) {
            throw new AssertionError("refusal without a message", e);
        }
    }
}
