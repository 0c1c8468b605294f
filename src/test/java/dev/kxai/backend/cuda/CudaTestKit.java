package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.attr.ChunkPolicy;
import dev.kxai.attr.PathLoop;
import dev.kxai.attr.Progress;
import dev.kxai.backend.GraphRunner;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathGradients;
import dev.kxai.exec.FusionGroup;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Shared by the CUDA backend's tests (run on the CPU emulation of the driver, native-tests/):
 * one-node graphs with constant weights, the two backends, comparisons, and a log recorder that
 * proves nothing fell back to the CPU. Emulator results say nothing about GPU
 * speed or memory-model races.
 */
final class CudaTestKit {
    private CudaTestKit() {
    }

    /** Where device fallbacks (DevicePolicy), out-of-memory retries (PathLoop) and CUDA's own messages are logged. */
    static final String RUNNER_LOGGER = "dev.kxai";

    /** The CUDA runner of a graph, fused or not (the parity tests' reference). */
    static GraphRunner<DTensor> runner(Graph g, boolean fuse) {
        return cuda().prepare(g, fuse);
    }

    /** The CUDA runner of a graph as the backend prepares it (fused). */
    static GraphRunner<DTensor> runner(Graph g) {
        return runner(g, true);
    }

    /** The activation nodes a runner's plan absorbs into the Gemm/MatMul before them. */
    static Set<String> fusedActivations(ModelRunner r) {
        Set<String> names = new TreeSet<>();
        for (FusionGroup f : r.plan().fusions()) {
            names.add(r.plan().node(f.last()).name());
        }
        return names;
    }

    /** The path loop of Integrated Gradients on a runner, {@code stepsPerChunk} steps per chunk. */
    static PathGradients.Result integrate(ModelRunner r, Tensor x, Tensor base, float[] alphas, float[] weights,
            int[] targets, int stepsPerChunk, Progress progress, boolean saving) {
        return PathLoop.integrate(r, x, base, alphas, weights, targets, new ChunkPolicy(stepsPerChunk * x.dim(0)),
                progress, saving);
    }

    static PathGradients.Result integrate(ModelRunner r, Tensor x, Tensor base, float[] alphas, float[] weights,
            int[] targets, int stepsPerChunk, boolean saving) {
        return integrate(r, x, base, alphas, weights, targets, stepsPerChunk, Progress.NONE, saving);
    }

    /** The CUDA backend on the probed runtime; fails (not skips) with the probe's reason when there is none. */
    static CudaBackend cuda() {
        CudaRuntime.Probe p = CudaRuntime.probe();
        assertNotNull(p.runtime(), "no CUDA runtime (is this the cuda-emulator surefire run?): " + p.reason());
        return new CudaBackend(p.runtime());
    }

    static final CpuBackend CPU = new CpuBackend();

    // ------------------------------------------------------------------ graphs

    /** Builds a chain of nodes over input "x" of shape [batch, example...]; constants get fresh names. */
    static final class G {
        final int[] inputShape;
        final List<Node> nodes = new ArrayList<>();
        final Map<String, Tensor> consts = new HashMap<>();
        String last = "x";
        private int id;

        G(int... example) {
            inputShape = new int[example.length + 1];
            inputShape[0] = -1;
            System.arraycopy(example, 0, inputShape, 1, example.length);
        }

        String c(Tensor t) {
            String name = "c" + id++;
            consts.put(name, t);
            return name;
        }

        /** Adds op(inputs) and returns its output name; "x" names the graph input. */
        String op(Op op, String... inputs) {
            String out = "v" + id++;
            nodes.add(new Node("n" + id + "_" + op.getClass().getSimpleName(), op.getClass().getSimpleName(), op,
                    List.of(inputs), out));
            last = out;
            return out;
        }

        /** Adds op(x-chain's last value, constants...). */
        String then(Op op, Tensor... constants) {
            String[] in = new String[constants.length + 1];
            in[0] = last;
            for (int i = 0; i < constants.length; i++) {
                in[i + 1] = c(constants[i]);
            }
            return op(op, in);
        }

        Graph build() {
            return new Graph("test-graph", "x", inputShape, last, nodes, consts);
        }

        /**
         * The graph followed by Flatten(1) and Gemm(transB) with B = gw [1, F]: output [rows, 1] =
         * Σ_f gw_f · y_f per row, so the gradient for target 0 is the body's backward of the upstream
         * gradient gw (the same for every row). The head's own backward is exact (gy · gw).
         */
        Graph withHead(float[] gw) {
            List<Node> n = new ArrayList<>(nodes);
            Map<String, Tensor> cs = new HashMap<>(consts);
            n.add(new Node("head_flatten", "Flatten", new Op.Flatten(1), List.of(last), "head_flat"));
            cs.put("head_w", new Tensor(new int[] {1, gw.length}, gw));
            n.add(new Node("head_gemm", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("head_flat", "head_w"),
                    "head_out"));
            return new Graph("test-graph+head", "x", inputShape, "head_out", n, cs);
        }
    }

    /** A layout case as a graph: its op (with its constant input, if any), then its second op, if any. */
    static G layout(dev.kxai.testing.LayoutCases c) {
        G g = new G(c.example());
        if (c.constant() != null) {
            g.then(c.op(), c.constant());
        } else {
            g.then(c.op());
        }
        if (c.then() != null) {
            g.then(c.then());
        }
        return g;
    }

    static Op.Conv conv(int[] k, int[] strides, int[] pads, int[] dil, int group, String autoPad) {
        return new Op.Conv(k, strides, pads, dil, group, autoPad);
    }

    static Op.MaxPool maxPool(int[] k, int[] strides, int[] pads, int[] dil, boolean ceil) {
        return new Op.MaxPool(k, strides, pads, dil, ceil, "NOTSET");
    }

    static Op.AveragePool avgPool(int[] k, int[] strides, int[] pads, boolean countPad, boolean ceil) {
        return new Op.AveragePool(k, strides, pads, countPad, ceil, "NOTSET");
    }

    static int[] s(int... d) {
        return d;
    }

    // ------------------------------------------------------------------ data

    static int size(int... shape) {
        return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
    }

    /** The graph of a Div/Pow case: the input and a random constant, in the case's operand order. */
    static G divPow(dev.kxai.testing.DivPowCases c, Random r) {
        G g = new G(c.example());
        String k = g.c(c.constantValue(r));
        if (c.inputIsB()) {
            g.op(c.op(), k, "x");
        } else {
            g.op(c.op(), "x", k);
        }
        return g;
    }

    static Tensor rand(Random r, double lo, double hi, int... shape) {
        float[] d = new float[size(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return new Tensor(shape, d);
    }

    /** Uniform in ±scale with no element within margin of 0 (the ReLU kink). */
    static Tensor awayFromZero(Random r, double scale, double margin, int... shape) {
        float[] d = new float[size(shape)];
        for (int i = 0; i < d.length; i++) {
            double v;
            do {
                v = scale * (2 * r.nextDouble() - 1);
            } while (Math.abs(v) < margin);
            d[i] = (float) v;
        }
        return new Tensor(shape, d);
    }

    /** A shuffled grid: every pair of elements at least gap apart (no max-pool ties). */
    static Tensor distinct(Random r, double gap, int... shape) {
        int n = size(shape);
        List<Float> vals = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            vals.add((float) ((i - n / 2 + 0.5) * gap));
        }
        Collections.shuffle(vals, r);
        float[] d = new float[n];
        for (int i = 0; i < n; i++) {
            d[i] = vals.get(i);
        }
        return new Tensor(shape, d);
    }

    static int[] withBatch(int batch, int[] example) {
        int[] s = new int[example.length + 1];
        s[0] = batch;
        System.arraycopy(example, 0, s, 1, example.length);
        return s;
    }

    static int[] example(Graph g) {
        return Arrays.copyOfRange(g.inputShape(), 1, g.inputShape().length);
    }

    // ------------------------------------------------------------------ comparisons

    /**
     * CUDA vs CPU: ||c − g||₂ ≤ rel·||c||₂ and every |c_i − g_i| ≤ rel·max|c| + abs.
     */
    static void assertClose(String label, float[] cpu, float[] gpu, double rel, double abs) {
        assertEquals(cpu.length, gpu.length, label + ": length");
        double num = 0;
        double den = 0;
        double max = 0;
        for (int i = 0; i < cpu.length; i++) {
            double d = (double) gpu[i] - cpu[i];
            num += d * d;
            den += (double) cpu[i] * cpu[i];
            max = Math.max(max, Math.abs(cpu[i]));
        }
        double l2 = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        assertTrue(l2 <= rel && !Double.isNaN(l2), label + ": relative L2 " + l2 + " > " + rel);
        double allowed = rel * max + abs;
        for (int i = 0; i < cpu.length; i++) {
            double d = Math.abs((double) gpu[i] - cpu[i]);
            if (!(d <= allowed)) {
                throw new AssertionError(label + ": element " + i + " cpu " + cpu[i] + " cuda " + gpu[i] + " (|diff| "
                        + d + " > " + allowed + ", max|cpu| " + max + ")");
            }
        }
    }

    static void assertClose(String label, float[] cpu, float[] gpu) {
        assertClose(label, cpu, gpu, 1e-5, 1e-7);
    }

    /** Every element within maxUlps units in the last place (NaN only against NaN). */
    static void assertUlps(String label, float[] cpu, float[] gpu, int maxUlps) {
        assertEquals(cpu.length, gpu.length, label + ": length");
        for (int i = 0; i < cpu.length; i++) {
            float a = cpu[i];
            float b = gpu[i];
            if (Float.isNaN(a) || Float.isNaN(b)) {
                assertTrue(Float.isNaN(a) && Float.isNaN(b), label + ": element " + i + " " + a + " vs " + b);
                continue;
            }
            long ua = ordered(a);
            long ub = ordered(b);
            if (Math.abs(ua - ub) > maxUlps) {
                throw new AssertionError(label + ": element " + i + " cpu " + a + " cuda " + b + " differ by "
                        + Math.abs(ua - ub) + " ulps (> " + maxUlps + ")");
            }
        }
    }

    private static long ordered(float f) {
        int bits = Float.floatToRawIntBits(f);
        return bits < 0 ? (long) Integer.MIN_VALUE - bits : bits;
    }

    static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    // ------------------------------------------------------------------ runs

    /** Outputs and input gradients of one graph on both backends. */
    record Both(Tensor cpuOut, Tensor cudaOut, Tensor cpuGrad, Tensor cudaGrad) {
    }

    /** Forward of the body on both backends; gradient of the body + head on both; runners closed. */
    static Both runBoth(G g, Tensor x, long seed) {
        Graph body = g.build();
        Tensor cpuOut;
        Tensor cudaOut;
        try (ModelRunner cpu = CPU.prepare(body); ModelRunner gpu = cuda().prepare(body)) {
            assertEquals("cuda", gpu.device(), "the CUDA backend prepared a runner for " + gpu.device());
            cpuOut = cpu.forward(x);
            cudaOut = gpu.forward(x);
        }
        assertArrayEquals(cpuOut.shape(), cudaOut.shape(), "output shape");
        float[] gw = rand(new Random(seed), -1, 1, cpuOut.rowSize()).data();
        Graph headed = g.withHead(gw);
        int[] targets = new int[x.dim(0)];
        ModelRunner.Gradient cg;
        ModelRunner.Gradient dg;
        try (ModelRunner cpu = CPU.prepare(headed); ModelRunner gpu = cuda().prepare(headed)) {
            cg = cpu.gradient(x, targets);
            dg = gpu.gradient(x, targets);
        }
        return new Both(cpuOut, cudaOut, cg.inputGradient(), dg.inputGradient());
    }

    // ------------------------------------------------------------------ logs

    /**
     * JUnit extension for the emulator suites: records kxai's log during each test and
     * fails the test if a call fell back to the CPU (the path under test would not have run).
     */
    static final class NoFallback implements org.junit.jupiter.api.extension.BeforeEachCallback,
            org.junit.jupiter.api.extension.AfterEachCallback {
        private LogRecorder log;

        /** The current test's log. */
        LogRecorder log() {
            return log;
        }

        @Override
        public void beforeEach(org.junit.jupiter.api.extension.ExtensionContext context) {
            log = new LogRecorder();
        }

        @Override
        public void afterEach(org.junit.jupiter.api.extension.ExtensionContext context) {
            try {
                log.assertNoFallback();
            } finally {
                log.close();
            }
        }
    }

    /** Records what kxai logs (fallback warnings, OOM retries). */
    static final class LogRecorder extends Handler implements AutoCloseable {
        private final Logger logger;
        private final Level previous;
        final List<LogRecord> records = Collections.synchronizedList(new ArrayList<>());

        LogRecorder() {
            logger = Logger.getLogger(RUNNER_LOGGER);
            previous = logger.getLevel();
            logger.setLevel(Level.ALL);
            setLevel(Level.ALL);
            logger.addHandler(this);
        }

        List<String> at(Level level) {
            synchronized (records) {
                return records.stream().filter(r -> r.getLevel().intValue() >= level.intValue()).map(LogRecord::getMessage)
                        .toList();
            }
        }

        void assertNoFallback() {
            List<String> w = at(Level.WARNING);
            assertTrue(w.isEmpty(), "a call fell back to the CPU: " + w);
        }

        @Override
        public void publish(LogRecord record) {
            records.add(record);
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
            logger.removeHandler(this);
            logger.setLevel(previous);
        }
    }
}
