package dev.kxai.backend.cuda;

import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Quadrature;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Child process of {@link FaultInjectionTest} (the emulator reads its fault switches once per
 * process): loads a reference model on "cpu" and "cuda", runs Integrated Gradients twice on CUDA
 * and once on the CPU, and prints {@code key=value} lines: what failed, how the result compares to
 * the CPU's, where each call ran (device, fallback
 * reason), and what kxai logged (fallback warnings, out-of-memory retries).
 *
 * <p>Usage: {@code FaultProbe <model dir> [rows] [saving]}; {@code saving} runs Integrated Gradients
 * with the first-layer saving, on both backends.
 */
public final class FaultProbe {
    private FaultProbe() {
    }

    static final int STEPS = 16;
    private static boolean saving;

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int rows = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        saving = args.length > 2 && args[2].equals("saving");
        List<LogRecord> records = new ArrayList<>();
        // kxai's loggers: DevicePolicy's fallback warnings, PathLoop's out-of-memory retries, CUDA's own
        Logger runnerLog = Logger.getLogger("dev.kxai");
        runnerLog.setLevel(Level.ALL);
        runnerLog.setUseParentHandlers(false); // keep stderr for the emulator's own diagnostics
        Handler h = new Handler() {
            @Override
            public synchronized void publish(LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        h.setLevel(Level.ALL);
        runnerLog.addHandler(h);

        CudaRuntime.Probe probe = CudaRuntime.probe();
        out("probe", probe.runtime() != null ? "ok" : "none: " + probe.reason());
        if (probe.runtime() == null) {
            return;
        }
        long freeBefore = probe.runtime().memInfo()[0];
        Tensor all = NpyIO.read(dir.resolve("input.npy"));
        Tensor x = all.rows(0, Math.min(rows, all.dim(0)));
        int[] targets = new int[x.dim(0)];
        for (int i = 0; i < targets.length; i++) {
            targets[i] = i % 3;
        }
        Path onnx = dir.resolve("model.onnx");
        Model cpu = Model.load(onnx, "cpu");
        Attribution want = ig(cpu, x, targets);
        out("cpu_checksum", checksum(want.attributions().data()));

        Model cuda;
        try {
            cuda = Model.load(onnx, "cuda");
        } catch (Throwable e) {
            out("load_error", e.getClass().getName() + ": " + oneLine(e.getMessage()));
            out("load_error_is_kxai", String.valueOf(e instanceof dev.kxai.KxaiException));
            out("leaked_bytes_after_failed_load", String.valueOf(freeBefore - probe.runtime().memInfo()[0]));
            logs(records);
            out("done", "load-failed");
            return;
        }
        out("loaded", cuda.backend().name() + " runner " + cuda.runner().getClass().getSimpleName());
        for (int call = 1; call <= 2; call++) {
            int before = records.size();
            Attribution got;
            try {
                got = ig(cuda, x, targets);
            } catch (Throwable e) {
                out("ig" + call + "_error", e.getClass().getName() + ": " + oneLine(e.getMessage()));
                continue;
            }
            out("ig" + call + "_allocations_after", String.valueOf(DeviceBuffer.allocations()));
            float[] a = got.attributions().data();
            float[] b = want.attributions().data();
            double maxDiff = 0;
            double maxCpu = 0;
            for (int i = 0; i < a.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs((double) a[i] - b[i]));
                maxCpu = Math.max(maxCpu, Math.abs(b[i]));
            }
            out("ig" + call + "_checksum", checksum(a));
            out("ig" + call + "_max_abs_diff", String.valueOf(maxDiff));
            out("ig" + call + "_rel_diff", String.valueOf(maxDiff / Math.max(1e-30, maxCpu)));
            int warnings = 0;
            int retries = 0;
            for (LogRecord r : records.subList(before, records.size())) {
                boolean cpuLoops = r.getLoggerName() != null && r.getLoggerName().startsWith("dev.kxai.backend.cpu");
                warnings += r.getLevel().intValue() >= Level.WARNING.intValue() && !cpuLoops ? 1 : 0;
                retries += r.getMessage().contains("retrying") ? 1 : 0;
            }
            out("ig" + call + "_fallback_warnings", String.valueOf(warnings));
            out("ig" + call + "_oom_retries", String.valueOf(retries));
            out("ig" + call + "_device", got.device());
            out("ig" + call + "_fallback_reason", oneLine(got.fallbackReason()));
        }
        out("model_device", oneLine(cuda.device()));
        // a second model in the same process (the context is shared by every model)
        Model again = null;
        try {
            again = Model.load(onnx, "cuda");
            int before = records.size();
            float[] y = again.forward(x).data();
            float[] yc = cpu.forward(x).data();
            double d = 0;
            for (int i = 0; i < y.length; i++) {
                d = Math.max(d, Math.abs((double) y[i] - yc[i]));
            }
            out("reload", "ok max_abs_diff " + d + " warnings " + (records.size() - before));
        } catch (Throwable e) {
            out("reload", "error " + e.getClass().getName() + ": " + oneLine(e.getMessage()));
        }
        if (again != null) {
            try {
                again.close();
            } catch (Throwable e) {
                out("reload_close", "error " + e.getClass().getName() + ": " + oneLine(e.getMessage()));
            }
        }
        logs(records);
        try {
            cuda.close();
            out("close", "ok");
        } catch (Throwable e) {
            out("close", "error " + e.getClass().getName() + ": " + oneLine(e.getMessage()));
        }
        out("done", "ok");
    }

    private static Attribution ig(Model m, Tensor x, int[] targets) {
        // internal_batch_size covers every step: the first chunk is the whole path
        return new IntegratedGradients(m).nSteps(STEPS).method(Quadrature.Rule.RIEMANN_TRAPEZOID)
                .internalBatchSize(STEPS * x.dim(0)).affineFirstLayer(saving).attribute(x, targets);
    }

    private static void logs(List<LogRecord> records) {
        for (LogRecord r : records) {
            out("log", r.getLevel() + " " + oneLine(r.getMessage()));
        }
    }

    private static String checksum(float[] a) {
        double s = 0;
        double sa = 0;
        for (float v : a) {
            s += v;
            sa += Math.abs(v);
        }
        return String.format(Locale.ROOT, "%.9e/%.9e", s, sa);
    }

    private static String oneLine(String s) {
        return s == null ? "null" : s.replace('\n', ' ');
    }

    private static void out(String key, String value) {
        System.out.println(key + "=" + value);
        System.out.flush();
    }
}
