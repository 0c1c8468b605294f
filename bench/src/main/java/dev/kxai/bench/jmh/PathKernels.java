package dev.kxai.bench.jmh;

import dev.kxai.attr.Quadrature;
import dev.kxai.backend.PathOps;
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
 * The Integrated Gradients path on the CPU ({@link PathOps}, the twins of kernels/path.cu) at
 * tinyvgg_course's size: batch 16 of 3×64×64, 50 Gauss–Legendre steps, all steps in one chunk.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class PathKernels {
    private static final int B = Sizes.PATH_BATCH;
    private static final int S = Sizes.PATH_STEPS;
    private static final int F = Sizes.PATH_FEATURES;

    private float[] x;
    private float[] base;
    private float[] alphas;
    private float[] weights;
    private float[] rows;
    private float[] grads;
    private float[] acc;

    @Setup
    public void setup() {
        Quadrature q = Quadrature.of(Quadrature.Rule.GAUSS_LEGENDRE, S);
        alphas = q.alphasF();
        weights = q.weightsF();
        x = Sizes.random((long) B * F, 0f, 1f, 1);
        base = new float[B * F];
        rows = new float[S * B * F];
        grads = Sizes.random((long) S * B * F, -1f, 1f, 2);
        acc = new float[B * F];
    }

    /** path_interpolate's twin: writes all 50 steps of the path. */
    @Benchmark
    public float[] pathInterpolate() {
        PathOps.interpolate(rows, x, base, alphas, 0, S, B, F);
        return rows;
    }

    /** path_accumulate's twin: acc += Σ_k w_k g_k over the 50 steps. */
    @Benchmark
    public float[] pathAccumulate() {
        PathOps.accumulate(acc, grads, weights, 0, S, B, F);
        return acc;
    }

    /** attribution_finish's twin: attr = acc ⊙ (x − b), a fresh output array as in the library. */
    @Benchmark
    public float[] attributionFinish() {
        return PathOps.finish(acc, x, base, true);
    }
}
