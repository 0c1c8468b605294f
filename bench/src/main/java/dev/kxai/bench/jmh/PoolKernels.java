package dev.kxai.bench.jmh;

import dev.kxai.backend.cpu.PoolOps;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
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
 * Max, average and global average pooling of the CPU backend ({@link PoolOps}), forward and
 * backward, on [rows, 10, 64, 64] feature maps with tinyvgg's 2×2 stride-2 window. The methods
 * allocate their outputs, as in the backend; max-pool forward runs images in parallel (common
 * pool), the others on one thread.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class PoolKernels {
    @Param(Sizes.ROWS_DEFAULT)
    public int rows;

    private Node maxNode;
    private Op.MaxPool maxOp;
    private Node avgNode;
    private Op.AveragePool avgOp;
    private Node gapNode;
    private Tensor x;
    private int[] argmax;
    private Tensor gPooled;
    private Tensor gGlobal;

    @Setup
    public void setup() {
        maxOp = new Op.MaxPool(Sizes.POOL_KERNEL, Sizes.POOL_STRIDES, Sizes.POOL_PADS, null, false, "NOTSET");
        maxNode = new Node("bench_maxpool", "MaxPool", maxOp, List.of("x"), "y");
        avgOp = new Op.AveragePool(Sizes.POOL_KERNEL, Sizes.POOL_STRIDES, Sizes.POOL_PADS, false, false, "NOTSET");
        avgNode = new Node("bench_avgpool", "AveragePool", avgOp, List.of("x"), "y");
        gapNode = new Node("bench_gap", "GlobalAveragePool", new Op.GlobalAveragePool(), List.of("x"), "y");
        int[] shape = {rows, Sizes.FMAP_C, Sizes.FMAP_H, Sizes.FMAP_W};
        x = new Tensor(shape, Sizes.random(Sizes.fmapElements(rows), -1f, 1f, 1));
        PoolOps.MaxResult r = PoolOps.maxForward(maxNode, maxOp, x);
        argmax = r.argmax();
        gPooled = new Tensor(r.output().shape(), Sizes.random(r.output().size(), -1f, 1f, 2));
        gGlobal = new Tensor(new int[] {rows, Sizes.FMAP_C, 1, 1}, Sizes.random((long) rows * Sizes.FMAP_C, -1f, 1f, 3));
    }

    @Benchmark
    public PoolOps.MaxResult maxPoolForward() {
        return PoolOps.maxForward(maxNode, maxOp, x);
    }

    @Benchmark
    public Tensor maxPoolBackward() {
        return PoolOps.maxBackward(x, argmax, gPooled);
    }

    @Benchmark
    public Tensor avgPoolForward() {
        return PoolOps.averageForward(avgNode, avgOp, x);
    }

    @Benchmark
    public Tensor avgPoolBackward() {
        return PoolOps.averageBackward(avgNode, avgOp, x, gPooled);
    }

    @Benchmark
    public Tensor globalAvgPoolForward() {
        return PoolOps.globalAverageForward(gapNode, x);
    }

    @Benchmark
    public Tensor globalAvgPoolBackward() {
        return PoolOps.globalAverageBackward(x, gGlobal);
    }
}
