package dev.kxai.bench.jmh;

import dev.kxai.attr.Quadrature;
import dev.kxai.backend.cuda.CudaRuntime;
import dev.kxai.backend.cuda.DeviceBuffer;
import dev.kxai.backend.cuda.DeviceScope;
import dev.kxai.backend.cuda.Kernels;
import dev.kxai.graph.Window;
import java.util.concurrent.TimeUnit;
import jcuda.Pointer;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasOperation;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The CUDA kernels of kernels/*.cu, launched through the library's typed launchers
 * ({@link Kernels}) at the CPU benchmarks' sizes, plus a device-to-device copy (the GB/s
 * reference) and cuBLAS SGEMM (the GFLOP/s reference). Each operation records a CUDA event,
 * makes {@code launchesPerOp} launches (a parameter, default 10), records a second event and
 * waits for it; the elapsed event time and the launch count go to the {@link Timing} counters
 * (JMH secondary results {@code gpuMs} and {@code launches}), from which the report computes the
 * time per launch. JMH's own score is wall time per operation (launch overhead and the
 * synchronisation included).
 * <p>
 * Without a usable CUDA device (the library's probe says why) every method returns at once, the
 * setup prints the reason, and the counters stay 0: the report lists the rows as skipped and
 * prints no number. {@code bench/jmh.sh} excludes this class up front in that case. On the CPU
 * emulator of native-tests/ (KXAI_CUDA_EMULATOR) the kernels run and the timings mean nothing.
 * <p>
 * The pooling backward kernels add into dx, the accumulate kernel into acc: repeated launches keep
 * adding (the backend zeroes dx first; that memset is not timed here).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"}) // the CPU backend's SIMD loops
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class GpuKernels {
    /** Event time and launches of the iteration; JMH reports them as secondary results. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Timing {
        public double gpuMs;
        public long launches;

        @Setup(Level.Iteration)
        public void reset() {
            gpuMs = 0;
            launches = 0;
        }
    }

    /** The probed runtime, the launchers, two events, and the scope owning every buffer. */
    @State(Scope.Benchmark)
    public static class Device {
        /** Launches between the two events of one operation. */
        @Param("10")
        public int launchesPerOp;

        CudaRuntime rt;
        Kernels k;
        DeviceScope mem;
        private CUevent start;
        private CUevent stop;

        @Setup(Level.Trial)
        public void setup() {
            if (launchesPerOp < 1) {
                throw new IllegalArgumentException("launchesPerOp must be at least 1, got " + launchesPerOp);
            }
            CudaRuntime.Probe p = CudaRuntime.probe();
            if (p.runtime() == null) {
                System.out.println("GpuKernels: SKIPPED, no usable CUDA device: " + p.reason());
                return;
            }
            rt = p.runtime();
            rt.enter();
            System.out.println("GpuKernels: " + p.reason()
                    + (rt.emulated() ? " (the CPU EMULATOR of native-tests/: timings are meaningless)" : ""));
            k = new Kernels(rt);
            mem = new DeviceScope();
            start = new CUevent();
            stop = new CUevent();
            JCudaDriver.cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT);
            JCudaDriver.cuEventCreate(stop, CUevent_flags.CU_EVENT_DEFAULT);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            if (rt != null) {
                rt.enter();
                JCudaDriver.cuCtxSynchronize();
                JCudaDriver.cuEventDestroy(start);
                JCudaDriver.cuEventDestroy(stop);
                mem.close();
            }
        }

        boolean usable() {
            return rt != null;
        }

        DeviceBuffer upload(float[] data) {
            return mem.upload(data);
        }

        /** {@code launchesPerOp} launches of {@code launch} between two events, added to {@code t}. */
        void time(Timing t, Runnable launch) {
            if (rt == null) {
                return;
            }
            rt.enter();
            JCudaDriver.cuEventRecord(start, null);
            for (int i = 0; i < launchesPerOp; i++) {
                launch.run();
            }
            JCudaDriver.cuEventRecord(stop, null);
            JCudaDriver.cuEventSynchronize(stop);
            float[] ms = new float[1];
            JCudaDriver.cuEventElapsedTime(ms, start, stop);
            t.gpuMs += ms[0];
            t.launches += launchesPerOp;
        }
    }

    /** 64 MiB → 64 MiB device-to-device copy, the GB/s reference. */
    @State(Scope.Benchmark)
    public static class CopyData {
        DeviceBuffer src;
        DeviceBuffer dst;

        @Setup(Level.Trial)
        public void setup(Device d) {
            if (d.usable()) {
                src = d.upload(Sizes.random(Sizes.COPY_FLOATS, -1f, 1f, 1));
                dst = d.mem.floats(Sizes.COPY_FLOATS);
            }
        }
    }

    /** tinyvgg_course's path: batch 16 of 3×64×64, 50 Gauss–Legendre steps. */
    @State(Scope.Benchmark)
    public static class PathData {
        static final int B = Sizes.PATH_BATCH;
        static final int S = Sizes.PATH_STEPS;
        static final long F = Sizes.PATH_FEATURES;
        DeviceBuffer x;
        DeviceBuffer base;
        DeviceBuffer alphas;
        DeviceBuffer weights;
        DeviceBuffer rows;
        DeviceBuffer grads;
        DeviceBuffer acc;
        DeviceBuffer attr;

        @Setup(Level.Trial)
        public void setup(Device d) {
            if (!d.usable()) {
                return;
            }
            Quadrature q = Quadrature.of(Quadrature.Rule.GAUSS_LEGENDRE, S);
            alphas = d.upload(q.alphasF());
            weights = d.upload(q.weightsF());
            x = d.upload(Sizes.random(B * F, 0f, 1f, 1));
            base = d.upload(new float[(int) (B * F)]);
            rows = d.mem.floats(S * B * F);
            grads = d.upload(Sizes.random(S * B * F, -1f, 1f, 2));
            acc = d.upload(new float[(int) (B * F)]);
            attr = d.mem.floats(B * F);
        }
    }

    /** [rows, 10, 64, 64] feature maps, tinyvgg's 2×2 pooling and 3×3 pad-1 convolution. */
    @State(Scope.Benchmark)
    public static class FmapData {
        @Param(Sizes.ROWS_DEFAULT)
        public int rows;

        long e;
        long planes;
        int[] pool;
        int[] conv;
        DeviceBuffer x;
        DeviceBuffer y;
        DeviceBuffer gy;
        DeviceBuffer dx;
        DeviceBuffer pooled;
        DeviceBuffer argmax;
        DeviceBuffer gPooled;
        DeviceBuffer gap;
        DeviceBuffer gGap;
        DeviceBuffer w;
        DeviceBuffer dcols;

        @Setup(Level.Trial)
        public void setup(Device d) {
            if (!d.usable()) {
                return;
            }
            e = Sizes.fmapElements(rows);
            planes = (long) rows * Sizes.FMAP_C;
            Window pw = Sizes.pool2x2();
            Window cw = Sizes.conv3x3();
            pool = Kernels.geometry(pw);
            conv = Kernels.geometry(cw);
            long out = planes * pw.outH() * pw.outW();
            x = d.upload(Sizes.random(e, -3f, 3f, 1));
            y = d.mem.floats(e);
            gy = d.upload(Sizes.random(e, -1f, 1f, 2));
            dx = d.upload(new float[(int) e]);
            pooled = d.mem.floats(out);
            argmax = d.mem.ints(out);
            gPooled = d.upload(Sizes.random(out, -1f, 1f, 3));
            gap = d.mem.floats(planes);
            gGap = d.upload(Sizes.random(planes, -1f, 1f, 4));
            w = d.upload(Sizes.random((long) Sizes.FMAP_C * Sizes.FMAP_C * 9, -0.3f, 0.3f, 5));
            // the winners the max-pool backward scatters to
            d.k.maxpoolForward(pooled, argmax, x, planes, Sizes.FMAP_H, Sizes.FMAP_W, pool);
            JCudaDriver.cuCtxSynchronize();
        }

        /** The columns of im2col_input_grad, [rows, 90, 4096]: allocated on first use only. */
        DeviceBuffer dcols(Device d) {
            if (dcols == null) {
                long n = (long) rows * Sizes.FMAP_C * 9 * Sizes.FMAP_H * Sizes.FMAP_W;
                dcols = d.mem.floats(n);
                float[] chunk = Sizes.random(Sizes.FMAP_C * 9 * Sizes.FMAP_H * Sizes.FMAP_W, -1f, 1f, 6);
                long per = chunk.length;
                for (int img = 0; img < rows; img++) {
                    JCudaDriver.cuMemcpyHtoD(dcols.ptr().withByteOffset(img * per * 4), Pointer.to(chunk), per * 4);
                }
            }
            return dcols;
        }
    }

    /** The activation a benchmark runs, as the dense kernels' code. */
    @State(Scope.Benchmark)
    public static class Act {
        @Param({"RELU", "SIGMOID", "TANH"})
        public String kind;

        int code;

        @Setup(Level.Trial)
        public void setup(Device d, FmapData f) {
            code = switch (kind) {
                case "RELU" -> Kernels.ACT_RELU;
                case "SIGMOID" -> Kernels.ACT_SIGMOID;
                case "TANH" -> Kernels.ACT_TANH;
                default -> throw new IllegalArgumentException("kind must be RELU, SIGMOID or TANH, got " + kind);
            };
            if (d.usable()) {
                d.k.actForward(f.y, f.x, f.e, code, 0f); // the backward reads the forward's output
                JCudaDriver.cuCtxSynchronize();
            }
        }
    }

    /** Softmax over a 1000-class head, 4096 rows. */
    @State(Scope.Benchmark)
    public static class SoftmaxData {
        static final long N = (long) Sizes.SOFTMAX_ROWS * Sizes.SOFTMAX_CLASSES;
        DeviceBuffer x;
        DeviceBuffer y;
        DeviceBuffer gy;
        DeviceBuffer gx;

        @Setup(Level.Trial)
        public void setup(Device d) {
            if (!d.usable()) {
                return;
            }
            x = d.upload(Sizes.random(N, -5f, 5f, 1));
            y = d.mem.floats(N);
            gy = d.upload(Sizes.random(N, -1f, 1f, 2));
            gx = d.mem.floats(N);
            d.k.softmaxForward(y, x, Sizes.SOFTMAX_ROWS, Sizes.SOFTMAX_CLASSES, 1);
            JCudaDriver.cuCtxSynchronize();
        }
    }

    /**
     * cuBLAS SGEMM, row-major C[M×N] = A[M×K]·B[K×N] as the backend calls it (Cᵀ = Bᵀ·Aᵀ in
     * column-major). 4096³ is the GFLOP/s reference; the others as in the CPU {@link Sgemm}.
     */
    @State(Scope.Benchmark)
    public static class GemmData {
        @Param({"4096x4096x4096", "800x512x512", "90x4096x10"})
        public String gpuShape;

        int m;
        int n;
        int k;
        DeviceBuffer a;
        DeviceBuffer b;
        DeviceBuffer c;

        @Setup(Level.Trial)
        public void setup(Device d) {
            int[] s = Sizes.gemmShape(gpuShape);
            m = s[0];
            n = s[1];
            k = s[2];
            if (d.usable()) {
                a = d.upload(Sizes.random((long) m * k, -0.5f, 0.5f, 1));
                b = d.upload(Sizes.random((long) k * n, -0.5f, 0.5f, 2));
                c = d.mem.floats((long) m * n);
            }
        }
    }

    private static final Pointer ONE = Pointer.to(new float[] {1f});
    private static final Pointer ZERO = Pointer.to(new float[] {0f});

    @Benchmark
    public void memcpyDtoD(Device d, CopyData c, Timing t) {
        d.time(t, () -> JCudaDriver.cuMemcpyDtoD(c.dst.ptr(), c.src.ptr(), (long) Sizes.COPY_FLOATS * 4));
    }

    @Benchmark
    public void pathInterpolate(Device d, PathData p, Timing t) {
        d.time(t, () -> d.k.pathInterpolate(p.rows, p.x, p.base, p.alphas, PathData.S, PathData.B, PathData.F));
    }

    @Benchmark
    public void pathAccumulate(Device d, PathData p, Timing t) {
        d.time(t, () -> d.k.pathAccumulate(p.acc, p.grads, p.weights, PathData.S, PathData.B, PathData.F));
    }

    @Benchmark
    public void attributionFinish(Device d, PathData p, Timing t) {
        d.time(t, () -> d.k.attributionFinish(p.attr, p.acc, p.x, p.base, PathData.B, PathData.F, true));
    }

    /** The GPU's convolution forward: direct, accumulated in double (no im2col). */
    @Benchmark
    public void conv2dForward(Device d, FmapData f, Timing t) {
        d.time(t, () -> d.k.conv2dForward(f.y, f.x, f.w, null, f.rows, Sizes.FMAP_C, Sizes.FMAP_H, Sizes.FMAP_W,
                Sizes.FMAP_C, 1, f.conv));
    }

    /** col2im's twin: dx gathered from the Wᵀ·dY columns. */
    @Benchmark
    public void im2colInputGrad(Device d, FmapData f, Timing t) {
        if (!d.usable()) {
            return;
        }
        DeviceBuffer cols = f.dcols(d);
        d.time(t, () -> d.k.im2colInputGrad(f.dx, cols, f.rows, Sizes.FMAP_C, Sizes.FMAP_H, Sizes.FMAP_W, f.conv));
    }

    @Benchmark
    public void maxPoolForward(Device d, FmapData f, Timing t) {
        d.time(t, () -> d.k.maxpoolForward(f.pooled, f.argmax, f.x, f.planes, Sizes.FMAP_H, Sizes.FMAP_W, f.pool));
    }

    @Benchmark
    public void maxPoolBackward(Device d, FmapData f, Timing t) {
        d.time(t, () -> d.k.maxpoolBackward(f.dx, f.gPooled, f.argmax, f.e / 4));
    }

    @Benchmark
    public void avgPoolForward(Device d, FmapData f, Timing t) {
        d.time(t, () -> d.k.avgpoolForward(f.pooled, f.x, f.planes, Sizes.FMAP_H, Sizes.FMAP_W, f.pool, false));
    }

    @Benchmark
    public void avgPoolBackward(Device d, FmapData f, Timing t) {
        d.time(t, () -> d.k.avgpoolBackward(f.dx, f.gPooled, f.planes, Sizes.FMAP_H, Sizes.FMAP_W, f.pool, false));
    }

    @Benchmark
    public void globalAvgPoolForward(Device d, FmapData f, Timing t) {
        d.time(t, () -> d.k.globalAvgpoolForward(f.gap, f.x, f.planes, (long) Sizes.FMAP_H * Sizes.FMAP_W));
    }

    @Benchmark
    public void globalAvgPoolBackward(Device d, FmapData f, Timing t) {
        d.time(t, () -> d.k.globalAvgpoolBackward(f.dx, f.gGap, f.planes, (long) Sizes.FMAP_H * Sizes.FMAP_W));
    }

    @Benchmark
    public void activationForward(Device d, FmapData f, Act a, Timing t) {
        d.time(t, () -> d.k.actForward(f.dx, f.x, f.e, a.code, 0f));
    }

    @Benchmark
    public void activationBackward(Device d, FmapData f, Act a, Timing t) {
        d.time(t, () -> d.k.actBackward(f.dx, f.gy, f.y, f.e, a.code, 0f));
    }

    @Benchmark
    public void softmaxForward(Device d, SoftmaxData s, Timing t) {
        d.time(t, () -> d.k.softmaxForward(s.y, s.x, Sizes.SOFTMAX_ROWS, Sizes.SOFTMAX_CLASSES, 1));
    }

    @Benchmark
    public void softmaxBackward(Device d, SoftmaxData s, Timing t) {
        d.time(t, () -> d.k.softmaxBackward(s.gx, s.gy, s.y, Sizes.SOFTMAX_ROWS, Sizes.SOFTMAX_CLASSES, 1));
    }

    @Benchmark
    public void sgemm(Device d, GemmData g, Timing t) {
        d.time(t, () -> JCublas2.cublasSgemm(d.rt.cublas(), cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_N,
                g.n, g.m, g.k, ONE, g.b.ptr(), g.n, g.a.ptr(), g.k, ZERO, g.c.ptr(), g.n));
    }
}
