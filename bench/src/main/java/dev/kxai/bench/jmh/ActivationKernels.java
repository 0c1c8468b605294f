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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Activations of the CPU backend ({@link ElementwiseOps}), forward y = act(x) and backward
 * gx = gy · act'(y), on [rows, 10, 64, 64] feature maps; outputs allocated as in the backend.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class ActivationKernels {
    @Param({"RELU", "SIGMOID", "TANH"})
    public ElementwiseOps.Activation kind;

    @Param(Sizes.ROWS_DEFAULT)
    public int rows;

    private Tensor x;
    private Tensor y;
    private Tensor gy;

    @Setup
    public void setup() {
        int[] shape = {rows, Sizes.FMAP_C, Sizes.FMAP_H, Sizes.FMAP_W};
        x = new Tensor(shape, Sizes.random(Sizes.fmapElements(rows), -3f, 3f, 1));
        y = ElementwiseOps.activation(kind, 0f, x);
        gy = new Tensor(shape, Sizes.random(Sizes.fmapElements(rows), -1f, 1f, 2));
    }

    @Benchmark
    public Tensor activationForward() {
        return ElementwiseOps.activation(kind, 0f, x);
    }

    @Benchmark
    public Tensor activationBackward() {
        return ElementwiseOps.activationBackward(kind, 0f, x, y, gy);
    }
}
