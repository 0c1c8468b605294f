package dev.kxai.bench;

import dev.kxai.backend.cuda.KernelCosts;
import dev.kxai.backend.cuda.KernelCosts.Structure;
import dev.kxai.backend.cuda.KernelCosts.Totals;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;

/**
 * The roofline of the CUDA backend's launches on named GPUs: from the FLOPs and bytes that
 * {@link KernelCosts} counted per kernel family, the time each family would need on a GPU at the
 * fraction of its peak that the kernel's structure allows. A MODEL from datasheet figures and the
 * kernels' source, never a measurement: no GPU ran anything to produce it.
 * <p>
 * Per family: t = max(F / (P · f_c), B / (BW · f_m), launches · t_launch), where P is the peak
 * FLOP/s of the family's precision, BW the DRAM bandwidth, and the fractions:
 * <ul>
 *   <li>{@link Structure#FP64_DIRECT} (conv2d_forward, conv2d_forward_f64, gemm_f64): one thread per
 *       output, no shared-memory tiling, FP64 accumulation, built with -fmad=false. Per multiply-add
 *       a thread issues a DMUL and a DADD (no DFMA: at most 1/2 of the FP64 peak, which counts a DFMA
 *       as 2 FLOPs), two cvt.f64.f32 (the float weight and input widened), two loads and about six
 *       integer/branch instructions (tap bounds, addresses): about 12 instructions. f_c = min(1/2,
 *       cvt64 / (2 · fp64), 128 / (12 · fp64)), the per-SM-per-clock rates of the GPU's compute
 *       capability: the conversions bind on A100 (1/4) and H100/H200 (1/8), the unfused DMUL+DADD on
 *       Ada (1/2 of an FP64 rate that is 1/64 of FP32). Reuse of inputs and weights is assumed to hit
 *       in L1/L2 (the memory term counts compulsory bytes only).</li>
 *   <li>{@link Structure#GEMM_FP32} (cuBLAS SGEMM, no TF32): f_c = {@value #SGEMM_FRACTION} of the
 *       FP32 peak (large shapes; small ones do worse). {@link Structure#GEMM_FP64}: {@value #DGEMM_FRACTION}
 *       of the FP64 (non-tensor) peak.</li>
 *   <li>{@link Structure#FP32_TILED} (conv2d_forward_f32: our implicit GEMM, 64×64 tiles in shared
 *       memory, 16×256 for few-channel layers, K slices of 32, a 4×4 register block per thread): per
 *       K step a thread issues 16 FFMA and 8 scalar shared-memory loads, so FFMA fills at most 2/3 of the issue slots; the tile loads
 *       (the implicit im2col's index arithmetic), two barriers per slice, no double buffering and 128
 *       registers (two blocks of 256 threads per SM) take about a quarter of the rest:
 *       f_c = {@value #TILED_FP32_FRACTION} of the FP32 peak. A model of the kernel's structure, not a
 *       measurement.</li>
 *   <li>{@link Structure#STREAM} and {@link Structure#STREAM_FP64} (element-wise, gathers, pooling,
 *       reductions; coalesced grid-stride loops): f_m = {@value #MEMORY_FRACTION} of the nominal DRAM
 *       bandwidth for every family; the compute term at 1/2 of the precision's peak (-fmad=false),
 *       which binds only for FP64 math on GPUs with slow FP64.</li>
 *   <li>Every launch costs at least t_launch = {@value #LAUNCH_SECONDS} s (back-to-back launches of
 *       small kernels on one stream; an assumption, CUDA graphs would lower it).</li>
 * </ul>
 * Families run one after another (one stream), so the run's time is the sum of the families'.
 */
public final class Roofline {
    private Roofline() {
    }

    /** Fraction of nominal DRAM bandwidth a coalesced streaming kernel reaches (assumption). */
    public static final double MEMORY_FRACTION = 0.8;
    /** Fraction of the FP32 peak cuBLAS SGEMM reaches on large shapes (assumption). */
    public static final double SGEMM_FRACTION = 0.75;

    /** Fraction of the FP32 peak of conv2d_forward_f32 (see the class comment). */
    public static final double TILED_FP32_FRACTION = 0.5;
    /** Fraction of the FP64 vector peak cuBLAS DGEMM is credited with (assumption). */
    public static final double DGEMM_FRACTION = 0.75;
    /** Fraction of a precision's FMA peak reached by code built with -fmad=false (mul and add issued apart). */
    public static final double UNFUSED_FRACTION = 0.5;
    /** Instructions issued per multiply-add by the FP64 direct kernels (see the class comment). */
    public static final double DIRECT_INSTRUCTIONS_PER_MAC = 12;
    /** Thread-instructions an SM issues per clock (4 schedulers × 32 lanes). */
    public static final double ISSUE_PER_CLOCK = 128;
    /** The least time of one launch (assumption). */
    public static final double LAUNCH_SECONDS = 2e-6;

    /**
     * A GPU's peaks: TFLOP/s (FP32 and FP64 without tensor cores; TF32 on tensor cores, dense),
     * DRAM GB/s, and the per-SM-per-clock results of FP64 add/multiply/FMA and of conversions to
     * and from 64-bit types for its compute capability.
     */
    public record Gpu(String name, String computeCapability, double fp32Tflops, double fp64Tflops,
            double tf32Tflops, double bandwidthGBs, int fp64PerClock, int cvt64PerClock) {
    }

    /*
     * Sources. Peaks: NVIDIA's datasheets (boost clock; tensor-core figures there are "with
     * sparsity", halved here for dense):
     *   H100 SXM5: "NVIDIA H100 Tensor Core GPU" datasheet: FP64 34, FP32 67, TF32 989 (sparse) TFLOPS, 3.35 TB/s.
     *   H200 SXM:  "NVIDIA H200 Tensor Core GPU" datasheet: FP64 34, FP32 67, TF32 989 (sparse) TFLOPS, 4.8 TB/s.
     *   A100 SXM4 80GB: "NVIDIA A100 Tensor Core GPU" datasheet: FP64 9.7, FP32 19.5, TF32 156 (dense) TFLOPS, 2,039 GB/s.
     *   L4: "NVIDIA L4 Tensor Core GPU" datasheet: FP32 30.3, TF32 120 (sparse) TFLOPS, 300 GB/s; FP64 is not in the
     *       datasheet: 1/64 of FP32 (compute capability 8.9, below) = 0.47.
     *   GeForce RTX 4090: "NVIDIA Ada GPU Architecture" whitepaper, appendix table: FP32 82.6, TF32 tensor 82.6
     *       (dense, FP32 accumulate), FP64 1.3 (1/64 of FP32) TFLOPS, 1,008 GB/s.
     * Per-clock rates: CUDA C++ Programming Guide, "Throughput of Native Arithmetic Instructions"
     *   (results per clock per SM): 64-bit floating-point add/multiply/multiply-add 32 (8.0), 2 (8.9), 64 (9.0);
     *   type conversions from and to 64-bit types 16 (8.0), 2 (8.9), 16 (9.0).
     */
    public static final List<Gpu> GPUS = List.of(
            new Gpu("H100 SXM", "9.0", 67.0, 34.0, 494.5, 3350, 64, 16),
            new Gpu("H200 SXM", "9.0", 67.0, 34.0, 494.5, 4800, 64, 16),
            new Gpu("A100 SXM 80GB", "8.0", 19.5, 9.7, 156.0, 2039, 32, 16),
            new Gpu("L4", "8.9", 30.3, 0.47, 60.0, 300, 2, 2),
            new Gpu("RTX 4090", "8.9", 82.6, 1.29, 82.6, 1008, 2, 2));

    /** The GPU of the table whose name matches (case, spaces, dashes and "SXM" ignored: "h200", "rtx4090", "4090"). */
    public static Gpu gpu(String name) {
        String want = key(name);
        if (want.isEmpty()) {
            throw new IllegalArgumentException("no GPU named '" + name + "'");
        }
        for (Gpu g : GPUS) {
            String k = key(g.name());
            if (k.equals(want) || k.startsWith(want) || k.replace("rtx", "").equals(want)) {
                return g;
            }
        }
        List<String> names = GPUS.stream().map(Gpu::name).toList();
        throw new IllegalArgumentException("no GPU named '" + name + "' in the roofline table; known: " + names);
    }

    private static String key(String s) {
        return s.toLowerCase(Locale.ROOT).replaceAll("[\\s_-]", "").replace("sxm", "").replace("80gb", "");
    }

    /** What limits a family on a GPU. */
    public enum Bound {
        FP32, FP64, MEMORY, LAUNCH
    }

    /** A family's predicted time on a GPU, what bounds it and the fraction of that resource's peak it uses. */
    public record Row(Totals totals, double seconds, Bound bound, double fractionOfPeak) {
    }

    private static boolean fp64(Structure s) {
        return s == Structure.FP64_DIRECT || s == Structure.GEMM_FP64 || s == Structure.STREAM_FP64;
    }

    /** The fraction of the precision's peak FLOP/s the structure allows on this GPU. */
    public static double computeFraction(Structure s, Gpu g) {
        return switch (s) {
            case FP64_DIRECT -> Math.min(UNFUSED_FRACTION, Math.min((double) g.cvt64PerClock() / (2.0 * g.fp64PerClock()),
                    ISSUE_PER_CLOCK / (DIRECT_INSTRUCTIONS_PER_MAC * g.fp64PerClock())));
            case GEMM_FP32 -> SGEMM_FRACTION;
            case FP32_TILED -> TILED_FP32_FRACTION;
            case GEMM_FP64 -> DGEMM_FRACTION;
            case STREAM, STREAM_FP64, UNKNOWN -> UNFUSED_FRACTION;
        };
    }

    /** The prediction for one family on one GPU. */
    public static Row predict(Totals t, Gpu g) {
        boolean f64 = fp64(t.structure());
        double peak = (f64 ? g.fp64Tflops() : g.fp32Tflops()) * 1e12;
        double bw = g.bandwidthGBs() * 1e9;
        double compute = t.flops() / (peak * computeFraction(t.structure(), g));
        double memory = t.bytes() / (bw * MEMORY_FRACTION);
        double launch = t.launches() * LAUNCH_SECONDS;
        double s = Math.max(compute, Math.max(memory, launch));
        Bound b = s == compute && compute > 0 ? (f64 ? Bound.FP64 : Bound.FP32) : s == memory && memory > 0
                ? Bound.MEMORY : Bound.LAUNCH;
        double frac = s <= 0 ? 0 : b == Bound.MEMORY ? t.bytes() / s / bw : b == Bound.LAUNCH
                ? Math.max(t.flops() / s / peak, t.bytes() / s / bw) : t.flops() / s / peak;
        return new Row(t, s, b, frac);
    }

    /** A run on one GPU: the predicted time, its FLOPs, and the times at the FP32 and the TF32 peak. */
    public record Summary(Gpu gpu, double seconds, double flops, double bytes, long launches) {
        public double fp32LimitSeconds() {
            return flops / (gpu.fp32Tflops() * 1e12);
        }

        public double tf32LimitSeconds() {
            return flops / (gpu.tf32Tflops() * 1e12);
        }
    }

    public static Summary summary(Collection<Totals> families, Gpu g) {
        double s = 0;
        double f = 0;
        double b = 0;
        long l = 0;
        for (Totals t : families) {
            s += predict(t, g).seconds();
            f += t.flops();
            b += t.bytes();
            l += t.launches();
        }
        return new Summary(g, s, f, b, l);
    }

    /**
     * The report {@code kxai bench --device cuda} prints: per family (most predicted time first)
     * launches, GFLOP, GB, structure, bound, fraction of peak and time on {@code named}; then per GPU
     * of the table the predicted time against the FP32 and TF32 limits.
     */
    public static String report(Collection<Totals> families, Gpu named) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "cost model: a MODEL from the launches' arguments and datasheet peaks, "
                + "not a measurement; per timed run, on %s (%s TFLOP/s FP32, %s FP64, %.0f GB/s)%n", named.name(),
                fmt(named.fp32Tflops()), fmt(named.fp64Tflops()), named.bandwidthGBs()));
        sb.append(String.format(Locale.ROOT, "%-24s %9s %11s %10s  %-28s %-6s %8s %12s%n", "family", "launches",
                "GFLOP", "GB", "structure", "bound", "of_peak", "model_ms"));
        List<Row> rows = new ArrayList<>();
        for (Totals t : families) {
            rows.add(predict(t, named));
        }
        rows.sort((a, b) -> Double.compare(b.seconds(), a.seconds()));
        for (Row r : rows) {
            Totals t = r.totals();
            sb.append(String.format(Locale.ROOT, "%-24s %9d %11.4f %10.4f  %-28s %-6s %7.1f%% %12.4f%n", t.family(),
                    t.launches(), t.flops() / 1e9, t.bytes() / 1e9, t.structure().label(),
                    r.bound().name().toLowerCase(Locale.ROOT), 100 * r.fractionOfPeak(), r.seconds() * 1e3));
        }
        Summary s = summary(families, named);
        sb.append(String.format(Locale.ROOT, "%-24s %9d %11.4f %10.4f  %-28s %-6s %8s %12.4f%n", "total", s.launches(),
                s.flops() / 1e9, s.bytes() / 1e9, "", "", "", s.seconds() * 1e3));
        sb.append(String.format(Locale.ROOT, "%-14s %12s %13s %13s %11s %11s%n", "roofline gpu", "model_ms",
                "fp32_limit_ms", "tf32_limit_ms", "of_fp32", "of_tf32"));
        for (Gpu g : GPUS) {
            Summary x = summary(families, g);
            sb.append(String.format(Locale.ROOT, "%-14s %12.4f %13.4f %13.4f %10.2f%% %10.2f%%%n", g.name(),
                    x.seconds() * 1e3, x.fp32LimitSeconds() * 1e3, x.tf32LimitSeconds() * 1e3,
                    x.seconds() > 0 ? 100 * x.fp32LimitSeconds() / x.seconds() : 0,
                    x.seconds() > 0 ? 100 * x.tf32LimitSeconds() / x.seconds() : 0));
        }
        return sb.toString();
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, v >= 10 ? "%.1f" : "%.2f", v);
    }
}
