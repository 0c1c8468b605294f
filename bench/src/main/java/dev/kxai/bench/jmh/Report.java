package dev.kxai.bench.jmh;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns JMH's JSON result file ({@code -rf json -rff result.json}) into the kernel table: per
 * benchmark the time per operation, the rate (GB/s from {@link Work#bytes}, or GFLOP/s from
 * {@link Work#flops}) and that rate as a fraction of the run's reference: the memory copy's GB/s
 * for memory-bound kernels, the square SGEMM's GFLOP/s for GEMM (the largest square shape run).
 * CPU rows use JMH's average time per operation; CUDA rows use the CUDA-event time per launch
 * (JMH secondary results {@code gpuMs / launches}), with JMH's wall time per launch beside it
 * (its time per operation over {@code launchesPerOp}: launch overhead and synchronisation included).
 * <p>
 * Usage: {@code Report result.json [--gpu-note TEXT]}; the note (from {@link CudaCheck}) heads
 * the CUDA table, or says why there is none.
 */
public final class Report {
    private Report() {
    }

    private static final String PKG = "dev.kxai.bench.jmh.";
    private static final String GPU_CLASS = "GpuKernels.";

    /** One JMH result with its work. */
    record Row(String name, String params, double seconds, double relError, double wallSeconds, Work work,
            boolean skipped) {
        double rate() {
            if (work == null || skipped || !(seconds > 0)) {
                return Double.NaN;
            }
            return (work.bytes() > 0 ? work.bytes() : work.flops()) / seconds / 1e9;
        }

        boolean memoryBound() {
            return work != null && work.bytes() > 0;
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1 || args[0].startsWith("-")) {
            System.err.println("usage: Report result.json [--gpu-note TEXT]");
            System.exit(2);
        }
        String gpuNote = null;
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--gpu-note") && i + 1 < args.length) {
                gpuNote = args[++i];
            } else {
                System.err.println("Report: unknown argument '" + args[i] + "'");
                System.exit(2);
            }
        }
        JsonNode root = new ObjectMapper().readTree(Files.readString(Path.of(args[0])));
        List<Row> cpu = new ArrayList<>();
        List<Row> gpu = new ArrayList<>();
        for (JsonNode r : root) {
            Row row = row(r);
            (row.name().startsWith(GPU_CLASS) ? gpu : cpu).add(row);
        }
        System.out.print(format(cpu, gpu, gpuNote));
    }

    private static Row row(JsonNode r) {
        String full = r.path("benchmark").asText();
        String name = full.startsWith(PKG) ? full.substring(PKG.length()) : full;
        Map<String, String> params = new LinkedHashMap<>();
        r.path("params").fields().forEachRemaining(e -> params.put(e.getKey(), e.getValue().asText()));
        StringBuilder p = new StringBuilder();
        params.forEach((k, v) -> p.append(p.length() == 0 ? "" : " ").append(k).append('=').append(v));
        JsonNode primary = r.path("primaryMetric");
        double wall = secondsPerOp(primary.path("score").asDouble(), primary.path("scoreUnit").asText());
        double wallErr = relError(primary);
        Work work = Work.of(full, params);
        if (!name.startsWith(GPU_CLASS)) {
            return new Row(name, p.toString(), wall, wallErr, wall, work, false);
        }
        JsonNode sec = r.path("secondaryMetrics");
        double ms = sec.path("gpuMs").path("score").asDouble(0);
        double launches = sec.path("launches").path("score").asDouble(0);
        boolean skipped = !(launches > 0);
        double perOp = Double.parseDouble(params.getOrDefault("launchesPerOp", "1"));
        return new Row(name, p.toString(), skipped ? Double.NaN : ms / 1e3 / launches, relError(sec.path("gpuMs")),
                wall / perOp, work, skipped);
    }

    /** JMH's half-width of the 99.9% interval relative to the score (NaN when it has none). */
    private static double relError(JsonNode metric) {
        double s = metric.path("score").asDouble(Double.NaN);
        double e = metric.path("scoreError").asDouble(Double.NaN);
        return s > 0 ? e / s : Double.NaN;
    }

    /** A JMH score in "u/op" (average time) or "ops/u" (throughput) as seconds per operation. */
    static double secondsPerOp(double score, String unit) {
        String[] parts = unit.split("/");
        if (parts.length != 2) {
            return Double.NaN;
        }
        if (parts[1].equals("op")) {
            return score * unitSeconds(parts[0]);
        }
        if (parts[0].equals("ops")) {
            return 1.0 / (score / unitSeconds(parts[1]));
        }
        return Double.NaN;
    }

    private static double unitSeconds(String u) {
        return switch (u) {
            case "ns" -> 1e-9;
            case "us" -> 1e-6;
            case "ms" -> 1e-3;
            case "s" -> 1.0;
            case "min" -> 60.0;
            default -> Double.NaN;
        };
    }

    static String format(List<Row> cpu, List<Row> gpu, String gpuNote) {
        StringBuilder out = new StringBuilder();
        out.append("\n## CPU twins (JMH average time per operation)\n\n");
        if (cpu.isEmpty()) {
            out.append("(no CPU benchmarks in this run)\n");
        } else {
            table(out, cpu, "MemoryCopy.arraycopy", false);
        }
        boolean emulated = gpuNote != null && gpuNote.contains("EMULATOR");
        out.append("\n## CUDA kernels (CUDA-event time per launch)")
                .append(emulated ? ": on the CPU EMULATOR, timings meaningless" : "").append("\n\n");
        if (gpuNote != null) {
            out.append(gpuNote).append("\n\n");
        }
        if (gpu.isEmpty()) {
            out.append("(no CUDA benchmarks in this run)\n");
        } else if (gpu.stream().allMatch(Row::skipped)) {
            out.append("skipped: no usable CUDA device (the run's log gives the probe's reason); no numbers\n");
        } else {
            table(out, gpu, "GpuKernels.memcpyDtoD", true);
        }
        out.append("""

                GB/s = compulsory bytes per operation (each input read once, each output written once;
                       += outputs read and written) / time per operation / 1e9
                of copy = GB/s / the memory copy's GB/s in the same run (CPU: System.arraycopy of 64 MiB;
                       CUDA: cuMemcpyDtoD of 64 MiB); above 1 means the working set stayed in cache
                GFLOP/s = 2·M·N·K / time / 1e9; of sgemm = / the largest square SGEMM's GFLOP/s in the run
                ± = half-width of JMH's 99.9% interval, relative to the score
                """);
        return out.toString();
    }

    private static void table(StringBuilder out, List<Row> rows, String copyName, boolean gpu) {
        Row copy = rows.stream().filter(r -> r.work() != null && r.work().copy() && !r.skipped()).findFirst()
                .orElse(null);
        Row sgemm = null;
        for (Row r : rows) {
            if (r.work() != null && r.work().sgemm() && !r.skipped()
                    && (sgemm == null || r.work().flops() > sgemm.work().flops())) {
                sgemm = r;
            }
        }
        double copyRate = copy == null ? Double.NaN : copy.rate();
        double sgemmRate = sgemm == null ? Double.NaN : sgemm.rate();
        List<String[]> lines = new ArrayList<>();
        lines.add(gpu ? new String[] {"benchmark", "params", "time/launch", "±", "rate", "fraction", "wall/launch (JMH)"}
                : new String[] {"benchmark", "params", "time/op", "±", "rate", "fraction"});
        for (Row r : rows) {
            String time = r.skipped() ? "skipped" : time(r.seconds());
            String err = Double.isNaN(r.relError()) || r.skipped() ? "" : String.format(Locale.ROOT, "%.0f%%",
                    100 * r.relError());
            String rate;
            String frac;
            double v = r.rate();
            if (r.work() == null || Double.isNaN(v)) {
                rate = "-";
                frac = "-";
            } else if (r.memoryBound()) {
                rate = String.format(Locale.ROOT, "%.2f GB/s", v);
                frac = r == copy ? "1.00 (reference)" : fraction(v, copyRate, "copy");
            } else {
                rate = String.format(Locale.ROOT, "%.2f GFLOP/s", v);
                frac = r == sgemm ? "1.00 (reference)" : fraction(v, sgemmRate, "sgemm");
            }
            lines.add(gpu ? new String[] {r.name(), r.params(), time, err, rate, frac, time(r.wallSeconds())}
                    : new String[] {r.name(), r.params(), time, err, rate, frac});
        }
        int[] width = new int[lines.get(0).length];
        java.util.Arrays.fill(width, 3);
        for (String[] l : lines) {
            for (int i = 0; i < l.length; i++) {
                width[i] = Math.max(width[i], l[i].length());
            }
        }
        for (int n = 0; n < lines.size(); n++) {
            String[] l = lines.get(n);
            out.append('|');
            for (int i = 0; i < l.length; i++) {
                boolean right = i >= 2;
                out.append(' ').append(pad(l[i], width[i], right)).append(" |");
            }
            out.append('\n');
            if (n == 0) {
                out.append('|');
                for (int i = 0; i < l.length; i++) {
                    out.append(' ').append("-".repeat(width[i] - 1)).append(i >= 2 ? ":" : "-")
                            .append(" |");
                }
                out.append('\n');
            }
        }
        if (copy == null) {
            out.append("\n(no ").append(copyName).append(" in this run: no GB/s fractions)\n");
        }
        if (sgemm == null && rows.stream().anyMatch(r -> r.work() != null && r.work().flops() > 0)) {
            out.append("\n(no square SGEMM in this run: no GFLOP/s fractions)\n");
        }
    }

    private static String fraction(double v, double ref, String what) {
        return Double.isNaN(ref) ? "-" : String.format(Locale.ROOT, "%.2f of %s", v / ref, what);
    }

    private static String pad(String s, int w, boolean right) {
        String fill = " ".repeat(Math.max(0, w - s.length()));
        return right ? fill + s : s + fill;
    }

    static String time(double s) {
        if (Double.isNaN(s)) {
            return "-";
        }
        if (s >= 1) {
            return String.format(Locale.ROOT, "%.3f s", s);
        }
        if (s >= 1e-3) {
            return String.format(Locale.ROOT, "%.3f ms", s * 1e3);
        }
        if (s >= 1e-6) {
            return String.format(Locale.ROOT, "%.2f us", s * 1e6);
        }
        return String.format(Locale.ROOT, "%.1f ns", s * 1e9);
    }
}
