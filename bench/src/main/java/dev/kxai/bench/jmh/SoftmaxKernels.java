package dev.kxai.bench.jmh;

import dev.kxai.backend.cpu.ElementwiseOps;
import dev.kxai.tensor.Tensor;
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

/** Softmax of the CPU backend ({@link ElementwiseOps}) over a 1000-class head, 4096 rows, forward and backward. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class SoftmaxKernels {
    private Tensor x;
    private Tensor y;
    private Tensor gy;

    @Setup
    public void setup() {
        int[] shape = {Sizes.SOFTMAX_ROWS, Sizes.SOFTMAX_CLASSES};
        long n = (long) Sizes.SOFTMAX_ROWS * Sizes.SOFTMAX_CLASSES;
        x = new Tensor(shape, Sizes.random(n, -5f, 5f, 1));
        y = ElementwiseOps.softmax(x, 1);
        gy = new Tensor(shape, Sizes.random(n, -1f, 1f, 2));
    }

    @Benchmark
    public Tensor softmaxForward() {
        return ElementwiseOps.softmax(x, 1);
    }

    @Benchmark
    public Tensor softmaxBackward() {
        return ElementwiseOps.softmaxBackward(y, gy, 1);
    }
}
