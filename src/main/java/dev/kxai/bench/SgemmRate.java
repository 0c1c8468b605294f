package dev.kxai.bench;

import dev.kxai.InvalidInputException;
import java.util.Random;

/**
 * The machine's single-precision GEMM rate through the BLAS the CPU backend uses (netlib's
 * choice: the system OpenBLAS through JNI when it loads, else pure Java): a size×size×size
 * {@code sgemm} repeated until at least {@code minSeconds} have passed, after one untimed call.
 * OpenBLAS's own threads are governed by {@code OPENBLAS_NUM_THREADS}, not by this process.
 */
public final class SgemmRate {
    private SgemmRate() {
    }

    /**
     * @param streams concurrent sgemm streams (one per thread) whose rates add up
     * @param gflops  2·size³·calls / seconds / 1e9, summed over the streams
     */
    public record Rate(int size, int calls, double seconds, double gflops, String implementation, int streams) {
    }

    public static Rate measure(int size, double minSeconds) {
        return measure(size, minSeconds, 1);
    }

    /**
     * The rate of {@code streams} threads each running its own sgemm at once: the machine's peak
     * as kxai uses it, with a single-threaded OpenBLAS on every core (with a multi-threaded
     * OpenBLAS, one stream already spreads over the cores).
     */
    public static Rate measure(int size, double minSeconds, int streams) {
        if (streams < 1) {
            throw new InvalidInputException("sgemm streams must be at least 1, got " + streams);
        }
        if (streams == 1) {
            return measureOne(size, minSeconds);
        }
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(streams);
        try {
            java.util.List<java.util.concurrent.Future<Rate>> parts = new java.util.ArrayList<>();
            for (int i = 0; i < streams; i++) {
                parts.add(pool.submit(() -> measureOne(size, minSeconds)));
            }
            int calls = 0;
            double seconds = 0;
            double gflops = 0;
            String impl = "";
            for (java.util.concurrent.Future<Rate> f : parts) {
                Rate r = f.get();
                calls += r.calls();
                seconds = Math.max(seconds, r.seconds());
                gflops += r.gflops();
                impl = r.implementation();
            }
            return new Rate(size, calls, seconds, gflops, impl, streams);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring the sgemm rate", e);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException(e.getCause());
        } finally {
            pool.shutdownNow();
        }
    }

    private static Rate measureOne(int size, double minSeconds) {
        if (size < 1) {
            throw new InvalidInputException("sgemm size must be at least 1, got " + size);
        }
        if (!(minSeconds >= 0)) {
            throw new InvalidInputException("sgemm minimum time must be at least 0 s, got " + minSeconds);
        }
        dev.ludovic.netlib.blas.BLAS blas = dev.ludovic.netlib.blas.BLAS.getInstance();
        int len = Math.multiplyExact(size, size);
        float[] a = new float[len];
        float[] b = new float[len];
        float[] c = new float[len];
        Random r = new Random(42);
        for (int i = 0; i < len; i++) {
            a[i] = r.nextFloat() - 0.5f;
            b[i] = r.nextFloat() - 0.5f;
        }
        blas.sgemm("N", "N", size, size, size, 1f, a, 0, size, b, 0, size, 0f, c, 0, size); // warm up
        int calls = 0;
        long t0 = System.nanoTime();
        long minNanos = (long) (minSeconds * 1e9);
        long elapsed;
        do {
            blas.sgemm("N", "N", size, size, size, 1f, a, 0, size, b, 0, size, 0f, c, 0, size);
            calls++;
            elapsed = System.nanoTime() - t0;
        } while (elapsed < minNanos);
        double seconds = elapsed / 1e9;
        double flops = 2.0 * size * (double) size * size * calls;
        return new Rate(size, calls, seconds, flops / seconds / 1e9, blas.getClass().getName(), 1);
    }
}
