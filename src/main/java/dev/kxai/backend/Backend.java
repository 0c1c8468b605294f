package dev.kxai.backend;

import dev.kxai.graph.Graph;

/**
 * A place where models run: the CPU, or a CUDA device. Found through {@link BackendProvider}s
 * (ServiceLoader) and chosen by {@link Backends}. Thread-safe.
 */
public interface Backend {
    /** Short name used by {@code --device}: "cpu", "cuda". */
    String name();

    /** One line for {@code kxai info}: what it runs on (BLAS, device name, cores). */
    String description();

    /** Prepares a graph to run on this backend (weights uploaded, shapes checked). */
    ModelRunner prepare(Graph graph);
}
