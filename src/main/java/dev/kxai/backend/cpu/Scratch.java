package dev.kxai.backend.cpu;

/**
 * Per-thread work buffers reused across calls, so the step loop does not allocate (and the
 * collector does not clear) an im2col matrix or an accumulator per image and per layer.
 * A buffer may be longer than asked for: callers index within the length they asked for.
 * A task must not hold a buffer across a call that can run other pool tasks on its thread (a
 * nested parallel call): those tasks would take the same buffer.
 */
final class Scratch {
    /**
     * Buffers above this many bytes are not kept, so an idle pool thread pins at most four of them
     * (64 MiB). resnet18 at 224×224 uses im2col buffers of up to 15 MiB, which are kept.
     */
    static final long KEEP_BYTES = 16L << 20;
    private static final ThreadLocal<Scratch> LOCAL = ThreadLocal.withInitial(Scratch::new);

    private final double[][] doubles = new double[2][];
    private final float[][] floats = new float[2][];

    private Scratch() {
    }

    static Scratch get() {
        return LOCAL.get();
    }

    /** A buffer of at least len doubles in the given slot (0 or 1); contents undefined. */
    double[] doubles(int slot, int len) {
        double[] b = doubles[slot];
        if (b != null && b.length >= len) {
            return b;
        }
        b = new double[len];
        if (8L * len <= KEEP_BYTES) {
            doubles[slot] = b;
        }
        return b;
    }

    /** A buffer of at least len floats in the given slot (0 or 1); contents undefined. */
    float[] floats(int slot, int len) {
        float[] b = floats[slot];
        if (b != null && b.length >= len) {
            return b;
        }
        b = new float[len];
        if (4L * len <= KEEP_BYTES) {
            floats[slot] = b;
        }
        return b;
    }
}
