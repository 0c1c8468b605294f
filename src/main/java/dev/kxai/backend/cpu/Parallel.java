package dev.kxai.backend.cpu;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/** Splits independent work items (images of a batch, rows) over the cores. */
final class Parallel {
    private Parallel() {
    }

    /** Threads that work on a parallel loop started here: the current pool's, or the common pool's. */
    static int parallelism() {
        java.util.concurrent.ForkJoinPool pool = java.util.concurrent.ForkJoinTask.getPool();
        return pool != null ? pool.getParallelism() : java.util.concurrent.ForkJoinPool.getCommonPoolParallelism();
    }

    /**
     * Threads a parallel loop started here runs on, the calling thread included: the current pool's
     * parallelism inside a pool, else the common pool's plus the caller (which works too). What a
     * native library with its own threads (oneDNN) should use to take the same cores.
     */
    static int threads() {
        java.util.concurrent.ForkJoinPool pool = java.util.concurrent.ForkJoinTask.getPool();
        return pool != null ? pool.getParallelism() : java.util.concurrent.ForkJoinPool.getCommonPoolParallelism() + 1;
    }

    /** Runs body(i) for i in [0, n); in parallel when there is more than one item. */
    static void forEach(int n, IntConsumer body) {
        if (n <= 1) {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
            return;
        }
        IntStream.range(0, n).parallel().forEach(body);
    }

    /** A range [from, to) of a loop split by {@link #forRange}. */
    @FunctionalInterface
    interface RangeBody {
        void run(int from, int to);
    }

    /** Elements per task of an elementwise loop: big enough that a task outweighs its scheduling. */
    static final int GRAIN = 1 << 15;

    /** Runs body over [0, n) in blocks of {@link #GRAIN} elements, in parallel when there are several. */
    static void forRange(int n, RangeBody body) {
        int blocks = (n + GRAIN - 1) / GRAIN;
        forEach(blocks, b -> body.run(b * GRAIN, Math.min(n, (b + 1) * GRAIN)));
    }
}
