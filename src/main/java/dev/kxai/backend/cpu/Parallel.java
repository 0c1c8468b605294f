package dev.kxai.backend.cpu;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/** Splits independent work items (images of a batch, rows) over the cores. */
final class Parallel {
    private Parallel() {
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
}
