package dev.kxai.backend.cpu;

import dev.kxai.graph.Window;
import dev.kxai.tensor.ExactValues;
import dev.kxai.tensor.Tensor;
import java.util.concurrent.atomic.LongAdder;

/**
 * Exact decisions on float values. Convolutions run in float (sgemm); the discrete decisions taken
 * on their outputs — a ReLU's or Clip's side of a kink, a max-pool's winner — must be those of the
 * all-double path (each output accumulated in double and rounded once), or a near-tie resolves by
 * the BLAS's summation order and moves the gradient to another pixel (tinyvgg's α = 0.25 case).
 * A float sum of k terms lies within γ_k·Σ|terms| of the exact sum whatever the order
 * (γ_k = k·u / (1 − k·u), u = 2⁻²⁴): an element farther than that from a decision boundary is
 * decided as the exact path decides it, and the few within it are recomputed in double, in place,
 * before the decision — so every reader, the backward included, sees the same values.
 */
final class ExactDecisions {
    private ExactDecisions() {
    }

    /** Unit roundoff of float. */
    static final double U = 0x1p-24;

    /** Elements tested against a decision boundary, and those recomputed (for tests and the bench). */
    static final LongAdder CHECKED = new LongAdder();
    static final LongAdder RECOMPUTED = new LongAdder();

    /**
     * Off: every convolution accumulates in double (the exact path itself), for tests that compare
     * the two and for runs that want it ({@code -Dkxai.exact=true}).
     */
    static volatile boolean exactPath = Boolean.getBoolean("kxai.exact");

    /** γ_n of Higham's error analysis, doubled as a margin for the roundings outside the sum. */
    static double gamma(long terms) {
        double nu = terms * U;
        return nu >= 0.5 ? Double.POSITIVE_INFINITY : 2 * nu / (1 - nu);
    }

    /** The distance from v to the nearest kink (NaN: infinite, nothing to decide). */
    static float distance(float v, float[] kinks) {
        float d = Float.POSITIVE_INFINITY;
        for (float k : kinks) {
            float a = Math.abs(v - k);
            d = a < d ? a : d;
        }
        return d;
    }

    /**
     * Replaces, in place, the elements [from, to) of {@code y} that lie within their bound of one of
     * the kinks by their exact values. NaNs and infinities are left as they are.
     */
    static void repairKinks(float[] y, int from, int to, ExactValues e, float... kinks) {
        if (e instanceof ConvOps.Exact c) {
            c.repairKinks(y, from, to, kinks);
            return;
        }
        if (e instanceof DepthwiseConv.Exact d) {
            d.repairKinks(y, from, to, kinks);
            return;
        }
        long recomputed = 0;
        float most = kinks.length == 1 && e.knowsMaxBound() ? e.maxBound(y, from, to) : Float.NaN;
        if (most == most) {
            // one kink and a bound for the whole range: a SIMD scan finds the few elements within it
            SimdLoops loops = SimdLoops.get();
            for (int i = loops.nextWithin(y, from, to, kinks[0], most); i < to && most > 0f;
                    i = loops.nextWithin(y, i + 1, to, kinks[0], most)) {
                recomputed += repairOne(y, i, e, kinks);
            }
        } else {
            for (int i = from; i < to; i++) {
                recomputed += repairOne(y, i, e, kinks);
            }
        }
        CHECKED.add(to - from);
        if (recomputed > 0) {
            RECOMPUTED.add(recomputed);
        }
    }

    /** Element i replaced by its exact value (1) if within its bound of a kink, else left (0). */
    private static int repairOne(float[] y, int i, ExactValues e, float[] kinks) {
        float v = y[i];
        float dist = distance(v, kinks);
        float b = e.bound(i, v); // once per element, whatever the number of kinks
        if (b > 0f && dist <= b) { // a bound of 0: the value is the exact one
            y[i] = e.exact(i);
            return 1;
        }
        return 0;
    }

    /** {@link #repairKinks(float[], int, int, ExactValues, float...)} over a whole tensor, if it carries bounds. */
    static void repairKinks(Tensor x, float... kinks) {
        ExactValues e = x.exact();
        if (e == null) {
            return;
        }
        float[] d = x.data();
        Parallel.forRange(d.length, (from, to) -> repairKinks(d, from, to, e, kinks));
    }

    /**
     * Before a max-pool: in every window whose best float value has a rival within the two bounds,
     * recomputes the best and its rivals in place. The exact winner is among them (every other
     * element is below the best's exact value even at its bound), so the pool's ordinary float
     * comparison then picks the exact path's winner, first index on ties.
     */
    static void repairPoolTies(Tensor x, Window w) {
        ExactValues e = x.exact();
        if (e == null) {
            return;
        }
        float[] d = x.data();
        int h = w.inH();
        int wid = w.inW();
        int planes = x.size() / Math.max(1, h * wid);
        boolean three = w.kh() == 3 && w.kw() == 3 && w.dh() == 1 && w.dw() == 1;
        Parallel.forEach(planes, p -> {
            int in0 = p * h * wid;
            // the plane's largest bound: a window whose runner-up is farther than twice it below the
            // best has no rival, and needs no bound per element (the common case, one pass)
            float planeBound = e.maxBound(d, in0, in0 + h * wid);
            if (!(planeBound > 0f)) {
                return; // exact values (or NaN bounds, which decide nothing)
            }
            long recomputed = 0;
            for (int oy = 0; oy < w.outH(); oy++) {
                for (int ox = 0; ox < w.outW(); ox++) {
                    int y0 = oy * w.sh() - w.padTop();
                    int x0 = ox * w.sw() - w.padLeft();
                    // the window's maximum, then how many taps lie within 2·planeBound of it, both
                    // without branches: a window with one such tap (the maximum) has no rival
                    float top = Float.NEGATIVE_INFINITY;
                    int taps = 0;
                    if (three && y0 >= 0 && y0 + 2 < h && x0 >= 0 && x0 + 2 < wid) {
                        // a whole 3×3 window: a max tree of depth 4 instead of a chain of 9 (same value:
                        // a maximum does not depend on the order, NaN and ±0 included)
                        int r = in0 + y0 * wid + x0;
                        top = Math.max(Math.max(Math.max(d[r], d[r + 1]), Math.max(d[r + 2], d[r + wid])),
                                Math.max(Math.max(d[r + wid + 1], d[r + wid + 2]),
                                        Math.max(Math.max(d[r + 2 * wid], d[r + 2 * wid + 1]), d[r + 2 * wid + 2])));
                        taps = 9;
                    } else {
                        for (int i = 0; i < w.kh(); i++) {
                            int iy = y0 + i * w.dh();
                            if (iy < 0 || iy >= h) {
                                continue;
                            }
                            for (int j = 0; j < w.kw(); j++) {
                                int ix = x0 + j * w.dw();
                                if (ix >= 0 && ix < wid) {
                                    top = Math.max(top, d[in0 + iy * wid + ix]);
                                    taps++;
                                }
                            }
                        }
                    }
                    if (taps == 0 || !Float.isFinite(top)) {
                        continue;
                    }
                    float near = top - 2 * planeBound;
                    int rivals = 0;
                    int best = -1;
                    for (int i = 0; i < w.kh(); i++) {
                        int iy = y0 + i * w.dh();
                        if (iy < 0 || iy >= h) {
                            continue;
                        }
                        for (int j = 0; j < w.kw(); j++) {
                            int ix = x0 + j * w.dw();
                            if (ix >= 0 && ix < wid) {
                                float v = d[in0 + iy * wid + ix];
                                rivals += v >= near ? 1 : 0;
                                // the first tap holding the maximum (v > best would keep the first too)
                                best = best < 0 && v == top ? in0 + iy * wid + ix : best;
                            }
                        }
                    }
                    if (rivals < 2) {
                        continue;
                    }
                    recomputed += repairWindow(d, e, w, in0, y0, x0, best);
                }
            }
            CHECKED.add((long) w.outH() * w.outW());
            if (recomputed > 0) {
                RECOMPUTED.add(recomputed);
            }
        });
    }

    /** One window with a possible rival: its best and every element within the two bounds recomputed. */
    private static int repairWindow(float[] d, ExactValues e, Window w, int in0, int y0, int x0, int best) {
        int h = w.inH();
        int wid = w.inW();
        float top = d[best];
        float topBound = e.bound(best, top);
        int recomputed = 0;
        for (int i = 0; i < w.kh(); i++) {
            int iy = y0 + i * w.dh();
            for (int j = 0; j < w.kw(); j++) {
                int ix = x0 + j * w.dw();
                if (iy >= 0 && iy < h && ix >= 0 && ix < wid) {
                    int k = in0 + iy * wid + ix;
                    float v = d[k];
                    float b = e.bound(k, v);
                    // two exact values compare exactly (a tie keeps the first, as on the exact path)
                    if (k != best && (b > 0f || topBound > 0f) && v >= top - topBound - b) {
                        d[k] = e.exact(k);
                        recomputed++;
                    }
                }
            }
        }
        if (recomputed > 0) {
            d[best] = e.exact(best);
            recomputed++;
        }
        return recomputed;
    }

    /**
     * The bounds and exact values of a + b (same shape) when either carries them: the exact path
     * adds the exact values in float, and the float sum moves by at most both bounds plus the
     * roundings of the two additions.
     */
    static ExactValues sum(Tensor a, Tensor b, float[] out) {
        ExactValues ea = a.exact();
        ExactValues eb = b.exact();
        if (ea == null && eb == null || a.size() != b.size() || a.size() != out.length) {
            return null;
        }
        float[] ad = a.data();
        float[] bd = b.data();
        return new ExactValues() {
            @Override
            public float bound(int i, float value) {
                double ba = ea == null ? 0 : ea.bound(i, ad[i]);
                double bb = eb == null ? 0 : eb.bound(i, bd[i]);
                if (ba == 0 && bb == 0) {
                    return 0f; // both operands exact: the same float addition as the exact path's
                }
                return (float) ((ba + bb + 4 * U * (Math.abs(value) + ba + bb)) * (1 + 4 * U));
            }

            @Override
            public float exact(int i) {
                return (ea == null ? ad[i] : ea.exact(i)) + (eb == null ? bd[i] : eb.exact(i));
            }

            @Override
            public float maxBound(float[] data, int from, int to) {
                float ma = ea == null ? 0f : ea.maxBound(ad, from, to);
                float mb = eb == null ? 0f : eb.maxBound(bd, from, to);
                if (ma != ma || mb != mb) {
                    return Float.NaN;
                }
                if (ma == 0f && mb == 0f) {
                    return 0f;
                }
                float v = SimdLoops.get().maxAbs(data, from, to);
                return v != v ? Float.NaN
                        : (float) ((ma + mb + 4 * U * (v + ma + mb)) * (1 + 4 * U) * (1 + 1e-6));
            }

            @Override
            public boolean knowsMaxBound() {
                return (ea == null || ea.knowsMaxBound()) && (eb == null || eb.knowsMaxBound());
            }
        };
    }

    /**
     * The bounds and exact values of relu(x) after {@link #repairKinks} decided its kinks: a positive
     * output is the input (its bound and exact value); a zero output is exact (the input was below
     * the kink by more than its bound, or was recomputed there). Lets a max-pool or a Concat after a
     * separate ReLU still decide as the exact path (googlenet: branch ReLUs → Concat → MaxPool).
     */
    static ExactValues relu(Tensor x, float[] y) {
        ExactValues e = x.exact();
        if (e == null || x.size() != y.length) {
            return null;
        }
        float[] xd = x.data();
        return new ExactValues() {
            @Override
            public float bound(int i, float value) {
                return y[i] > 0f ? e.bound(i, xd[i]) : 0f;
            }

            @Override
            public float exact(int i) {
                return y[i] > 0f ? Math.max(0f, e.exact(i)) : y[i];
            }

            @Override
            public float maxBound(float[] data, int from, int to) {
                return e.maxBound(xd, from, to); // a zero output's bound is 0, a positive one its input's
            }

            @Override
            public boolean knowsMaxBound() {
                return e.knowsMaxBound();
            }
        };
    }

    /**
     * The bounds and exact values of elements picked from x (a max-pool's winners, {@code from[o]}
     * the input element of output o): after {@link #repairPoolTies} the winner is the exact path's,
     * so the output's exact value is the winner's.
     */
    static ExactValues picked(Tensor x, int[] from) {
        ExactValues e = x.exact();
        if (e == null) {
            return null;
        }
        float[] xd = x.data();
        return new ExactValues() {
            @Override
            public float bound(int o, float value) {
                return from[o] < 0 ? 0f : e.bound(from[o], xd[from[o]]);
            }

            @Override
            public float exact(int o) {
                return from[o] < 0 ? Float.NEGATIVE_INFINITY : e.exact(from[o]);
            }
        };
    }

    /**
     * The bounds and exact values of a Concat's output: each element's are its part's (a part
     * without bounds holds exact values). {@code outer} rows, each the parts' chunks in order.
     */
    static ExactValues concat(Tensor[] parts, int outer, float[] y) {
        boolean any = false;
        for (Tensor p : parts) {
            any |= p.exact() != null;
        }
        if (!any) {
            return null;
        }
        int[] chunk = new int[parts.length];
        int outRow = 0;
        for (int k = 0; k < parts.length; k++) {
            chunk[k] = parts[k].size() / Math.max(1, outer);
            outRow += chunk[k];
        }
        int row = outRow;
        return new ExactValues() {
            /** {part, index in the part} of output element i. */
            private long locate(int i) {
                int o = i / Math.max(1, row);
                int at = i - o * row;
                for (int k = 0; k < parts.length; k++) {
                    if (at < chunk[k]) {
                        return ((long) k << 32) | (o * chunk[k] + at);
                    }
                    at -= chunk[k];
                }
                throw new IllegalStateException("element " + i + " outside the Concat's output");
            }

            @Override
            public float bound(int i, float value) {
                long l = locate(i);
                ExactValues e = parts[(int) (l >>> 32)].exact();
                int j = (int) l;
                return e == null ? 0f : e.bound(j, parts[(int) (l >>> 32)].data()[j]);
            }

            @Override
            public float exact(int i) {
                long l = locate(i);
                ExactValues e = parts[(int) (l >>> 32)].exact();
                return e == null ? y[i] : e.exact((int) l);
            }
        };
    }
}
