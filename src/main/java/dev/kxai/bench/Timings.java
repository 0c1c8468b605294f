package dev.kxai.bench;

import java.util.Arrays;

/** Statistics of repeated timings, in seconds. */
public final class Timings {
    private Timings() {
    }

    /** The median (mean of the middle two for an even count). */
    public static double median(double[] seconds) {
        if (seconds.length == 0) {
            throw new IllegalArgumentException("no timings");
        }
        double[] s = seconds.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }
}
