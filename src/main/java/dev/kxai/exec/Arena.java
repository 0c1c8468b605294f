package dev.kxai.exec;

/**
 * Owns the memory of one piece of work (a pass, a chunk of path steps, a whole path's
 * accumulators) on a backend and frees it when closed, also when the work fails half way. On the
 * CPU the garbage collector does this ({@link #HEAP}); on CUDA it is a scope of device buffers.
 */
public interface Arena extends AutoCloseable {
    /** The CPU's arena: Java arrays, freed by the garbage collector. */
    Arena HEAP = () -> { };

    @Override
    void close();
}
