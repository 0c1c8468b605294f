package dev.kxai.bench.jmh;

import dev.kxai.backend.cpu.Blas;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Row-major SGEMM C[M×N] = A[M×K]·B[K×N] through the CPU backend's {@link Blas} wrapper (netlib:
 * the system OpenBLAS when it loads, else pure Java). Shapes "MxNxK": 1024³ is the reference
 * (the sgemm rate {@code kxai bench} measures); 800×512×512 is one 512-wide MLP layer over
 * 16 examples × 50 steps; 90×4096×10 is tinyvgg's conv input gradient per image (Wᵀ·dY).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class Sgemm {
    @Param({"1024x1024x1024", "800x512x512", "90x4096x10"})
    public String shape;

    private int m;
    private int n;
    private int k;
    private float[] a;
    private float[] b;
    private float[] c;

    @Setup
    public void setup() {
        int[] s = Sizes.gemmShape(shape);
        m = s[0];
        n = s[1];
        k = s[2];
        a = Sizes.random((long) m * k, -0.5f, 0.5f, 1);
        b = Sizes.random((long) k * n, -0.5f, 0.5f, 2);
        c = new float[m * n];
    }

    @Benchmark
    public float[] sgemm() {
        Blas.gemm(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, c, 0, n);
        return c;
    }
}
