package dev.kxai.bench.jmh;

import dev.kxai.backend.cpu.ConvOps;
import dev.kxai.graph.Window;
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
 * im2col and col2im of the CPU backend ({@link ConvOps}) for tinyvgg's 3×3 pad-1 convolution of
 * 10 channels over 64×64, image by image over {@code rows} images, into one per-image column
 * buffer as the backend does (each task reuses its own; 2.8 MiB of doubles, 1.4 MiB of floats).
 * Single-threaded: the backend spreads images over the cores, this times one core's loop.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class ConvKernels {
    @Param(Sizes.ROWS_DEFAULT)
    public int rows;

    private Window win;
    private int chw;
    private float[] x;
    private double[] colsD;
    private float[] colsF;
    private float[] dx;
    private float[] w;
    private double[] xPad;
    private double[] acc;
    private float[] gPad;
    private float[] dxPad;

    @Setup
    public void setup() {
        win = Sizes.conv3x3();
        chw = Sizes.FMAP_C * Sizes.FMAP_H * Sizes.FMAP_W;
        int cols = Sizes.FMAP_C * win.kh() * win.kw() * win.outH() * win.outW();
        x = Sizes.random(Sizes.fmapElements(rows), -1f, 1f, 1);
        colsD = new double[cols];
        colsF = Sizes.random(cols, -1f, 1f, 2);
        dx = new float[x.length];
        w = Sizes.random(Sizes.FMAP_C * Sizes.FMAP_C * 9, -1f, 1f, 3);
        xPad = new double[ConvOps.paddedInputLength(Sizes.FMAP_C, win)];
        acc = new double[Sizes.FMAP_C * win.outH() * ConvOps.paddedWidth(win)];
        gPad = new float[ConvOps.paddedGradientLength(Sizes.FMAP_C, win)];
        dxPad = new float[Sizes.FMAP_C * win.inH() * (win.inW() + 2)];
    }

    /**
     * The CPU forward as it runs for these small layers: the direct convolution (pad to double,
     * then every tap of every input channel summed per output plane; SIMD loops when the JVM has
     * jdk.incubator.vector, which jmh.sh gives it). Counted in multiply-adds, like conv2dForward.
     */
    @Benchmark
    public double[] conv2dForward() {
        for (int img = 0; img < rows; img++) {
            ConvOps.padForward(x, img * chw, Sizes.FMAP_C, win, xPad);
            ConvOps.directForward(xPad, w, 0, Sizes.FMAP_C, Sizes.FMAP_C, win, acc);
        }
        return acc;
    }

    /** The CPU input gradient of those layers: the direct convolution's adjoint, float. */
    @Benchmark
    public float[] conv2dInputGrad() {
        for (int img = 0; img < rows; img++) {
            ConvOps.padBackward(x, img * chw, Sizes.FMAP_C, win, gPad);
            ConvOps.directBackward(gPad, w, 0, Sizes.FMAP_C, Sizes.FMAP_C, win, dxPad);
        }
        return dxPad;
    }

    /** The forward's im2col (double columns: the forward accumulates in double). */
    @Benchmark
    public double[] im2col() {
        for (int img = 0; img < rows; img++) {
            ConvOps.im2col(x, img * chw, Sizes.FMAP_C, win, colsD);
        }
        return colsD;
    }

    /** The input gradient's col2im: dx += fold(Wᵀ·dY columns), float. */
    @Benchmark
    public float[] col2im() {
        for (int img = 0; img < rows; img++) {
            ConvOps.col2im(colsF, Sizes.FMAP_C, win, dx, img * chw);
        }
        return dx;
    }
}
