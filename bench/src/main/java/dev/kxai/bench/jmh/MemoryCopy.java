package dev.kxai.bench.jmh;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The memory-copy baseline: {@code System.arraycopy} of 64 MiB of floats into another 64 MiB, far
 * beyond the caches; bytes = read + write = 128 MiB. The report divides every CPU kernel's GB/s by
 * this rate.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class MemoryCopy {
    private float[] src;
    private float[] dst;

    @Setup
    public void setup() {
        src = Sizes.random(Sizes.COPY_FLOATS, -1f, 1f, 1);
        dst = new float[Sizes.COPY_FLOATS];
    }

    @Benchmark
    public float[] arraycopy() {
        System.arraycopy(src, 0, dst, 0, src.length);
        return dst;
    }
}
