package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.CPU;
import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static dev.kxai.backend.cuda.CudaTestKit.conv;
import static dev.kxai.backend.cuda.CudaTestKit.cuda;
import static dev.kxai.backend.cuda.CudaTestKit.integrate;
import static dev.kxai.backend.cuda.CudaTestKit.rand;
import static dev.kxai.backend.cuda.CudaTestKit.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Quadrature;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathGradients;
import dev.kxai.backend.cuda.CudaTestKit.G;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.logging.Level;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * ARCHITECTURE.md's first saving on the CUDA backend (the first Conv/Gemm at both ends of the path in
 * double, each step's pre-activation interpolated on the device, its transpose applied once),
 * run on the CPU emulation of the driver: it must give the CPU backend's saving-on numbers, and the
 * plain path's on smooth models. Emulator results prove kernel logic and orchestration, not GPU
 * speed or memory-model races.
 */
class FirstLayerSavingCudaTest {
    private static final Quadrature.Rule[] RULES = {Quadrature.Rule.GAUSS_LEGENDRE, Quadrature.Rule.RIEMANN_TRAPEZOID,
        Quadrature.Rule.RIEMANN_LEFT, Quadrature.Rule.RIEMANN_RIGHT, Quadrature.Rule.RIEMANN_MIDDLE};
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    // ------------------------------------------------------------------ models

    /** Gemm (row bias) → Tanh → Gemm (bias) → Sigmoid: smooth; the first Gemm + Tanh is a fusion candidate. */
    static Graph gemmFirst(Random r) {
        G g = new G(6);
        g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -0.8, 0.8, 5, 6), rand(r, -0.3, 0.3, 5));
        g.then(new Op.Tanh());
        g.then(new Op.Gemm(1f, 1f, false, false), rand(r, -0.8, 0.8, 5, 4), rand(r, -0.3, 0.3, 1, 4));
        g.then(new Op.Sigmoid());
        return g.build();
    }

    /** Gemm with alpha and an untransposed B, bias [1, N]: the saving's gemm_f64 must follow both. */
    static Graph gemmFirstScaled(Random r, float beta) {
        G g = new G(7);
        g.then(new Op.Gemm(0.75f, beta, false, false), rand(r, -0.8, 0.8, 7, 5), rand(r, -0.3, 0.3, 1, 5));
        g.then(new Op.Sigmoid());
        g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -0.8, 0.8, 3, 5), rand(r, -0.3, 0.3, 3));
        return g.build();
    }

    /** Conv (bias, padded, strided) → Tanh → AveragePool → Flatten → Gemm → Softmax: smooth. */
    static Graph convFirst(Random r) {
        G g = new G(2, 7, 5);
        g.then(conv(s(3, 3), s(1, 2), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET"), rand(r, -0.6, 0.6, 3, 2, 3, 3),
                rand(r, -0.2, 0.2, 3));
        g.then(new Op.Tanh());
        g.then(CudaTestKit.avgPool(s(2, 2), s(1, 1), s(0, 0, 0, 0), false, false));
        g.then(new Op.Flatten(1));
        g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -0.5, 0.5, 4, 3 * 6 * 2), rand(r, -0.2, 0.2, 4));
        g.then(new Op.Softmax(1));
        return g.build();
    }

    /** Grouped conv without bias first: the double conv and the input gradient with groups. */
    static Graph groupedConvFirst(Random r) {
        G g = new G(4, 6, 6);
        g.then(conv(s(3, 3), s(1, 1), s(0, 0, 0, 0), s(1, 1), 2, "NOTSET"), rand(r, -0.6, 0.6, 4, 2, 3, 3));
        g.then(new Op.Sigmoid());
        g.then(new Op.GlobalAveragePool());
        g.then(new Op.Flatten(1));
        g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -0.5, 0.5, 3, 4), rand(r, -0.2, 0.2, 3));
        return g.build();
    }

    private static ModelRunner prepare(Graph g) {
        ModelRunner r = cuda().prepare(g);
        assertEquals("cuda", r.device(), "the CUDA backend prepared a runner for " + r.device());
        return r;
    }

    private long savingLogs() {
        return noFallback.log().records.stream().filter(r -> r.getLevel() == Level.FINE)
                .filter(r -> String.valueOf(r.getMessage()).contains("first-layer saving")).count();
    }

    // ------------------------------------------------------------------ the runner's integral

    /**
     * integratePath with the saving on, CUDA vs the CPU runner (both saving) and vs the plain path,
     * every rule, batch 3, chunks of 1, 2, 5 and all steps; the endpoints too.
     */
    private void integralMatches(String label, Graph graph, Tensor x, Tensor base, int[] targets, double plainTol) {
        try (ModelRunner cpu = CPU.prepare(graph); ModelRunner gpu = prepare(graph)) {
            assertEquals(0, gpu.plan().affineFirstNode(), label + ": the first node qualifies");
            for (Quadrature.Rule rule : RULES) {
                int n = 9;
                Quadrature q = Quadrature.of(rule, n);
                for (int chunk : new int[] {1, 2, 5, n}) {
                    String l = label + " " + rule + ", " + chunk + " steps per chunk";
                    long before = savingLogs();
                    PathGradients.Result fast = integrate(gpu, x, base, q.alphasF(), q.weightsF(), targets, chunk,
                            true);
                    assertEquals(before + 1, savingLogs(), l + ": the device took the first-layer saving");
                    PathGradients.Result want = integrate(cpu, x, base, q.alphasF(), q.weightsF(), targets, chunk,
                            true);
                    PathGradients.Result plain = integrate(gpu, x, base, q.alphasF(), q.weightsF(), targets, chunk,
                            false);
                    assertEquals(before + 1, savingLogs(), l + ": the flag off runs the plain path");
                    assertArrayEquals(x.shape(), fast.gradientSum().shape(), l);
                    assertClose(l + ": cuda saving vs cpu saving", want.gradientSum().data(),
                            fast.gradientSum().data(), 1e-6, 1e-9);
                    assertClose(l + ": saving vs plain path", plain.gradientSum().data(), fast.gradientSum().data(),
                            plainTol, 1e-8);
                    boolean zero = rule == Quadrature.Rule.RIEMANN_TRAPEZOID || rule == Quadrature.Rule.RIEMANN_LEFT;
                    boolean one = rule == Quadrature.Rule.RIEMANN_TRAPEZOID || rule == Quadrature.Rule.RIEMANN_RIGHT;
                    endpoints(l + " F(b)", zero, want.outputAtBase(), fast.outputAtBase(), plain.outputAtBase());
                    endpoints(l + " F(x)", one, want.outputAtInput(), fast.outputAtInput(), plain.outputAtInput());
                }
            }
        }
    }

    private static void endpoints(String label, boolean expected, double[] cpu, double[] fast, double[] plain) {
        if (!expected) {
            assertNull(fast, label);
            assertNull(cpu, label);
            return;
        }
        assertNotNull(fast, label);
        // outputs of order 1 that may cancel to near 0: relative plus an absolute floor
        for (int i = 0; i < fast.length; i++) {
            assertEquals(cpu[i], fast[i], 1e-6 * Math.abs(cpu[i]) + 1e-7, label + " row " + i + " vs cpu");
            assertEquals(plain[i], fast[i], 1e-5 * Math.abs(plain[i]) + 1e-6, label + " row " + i + " vs plain");
        }
    }

    @Test
    void gemmFirstMatchesTheCpuSavingAndThePlainPath() {
        Random r = new Random(41);
        Graph g = gemmFirst(r);
        integralMatches("gemm-first", g, rand(r, -1, 1, 3, 6), rand(r, -0.2, 0.2, 3, 6), new int[] {0, 3, 2}, 1e-5);
        Graph scaled = gemmFirstScaled(r, 1f);
        integralMatches("gemm-first alpha 0.75, B untransposed", scaled, rand(r, -1, 1, 3, 7),
                Tensor.zeros(new int[] {3, 7}), new int[] {1, 1, 2}, 1e-5);
    }

    /**
     * beta != 1 with a row bias: the plain CUDA Gemm refuses it (unsupported), the saving does not
     * run that Gemm per step, so only the CPU saving is there to compare with.
     */
    @Test
    void gemmFirstWithBetaMatchesTheCpuSaving() {
        Random r = new Random(42);
        Graph g = gemmFirstScaled(r, 1.5f);
        Tensor x = rand(r, -1, 1, 3, 7);
        Tensor base = rand(r, -0.2, 0.2, 3, 7);
        int[] t = {0, 2, 1};
        try (ModelRunner cpu = CPU.prepare(g); ModelRunner gpu = prepare(g)) {
            assertEquals(0, gpu.plan().affineFirstNode());
            Quadrature q = Quadrature.of(Quadrature.Rule.RIEMANN_TRAPEZOID, 7);
            for (int chunk : new int[] {1, 3, 7}) {
                PathGradients.Result want = integrate(cpu, x, base, q.alphasF(), q.weightsF(), t, chunk,
                        true);
                PathGradients.Result got = integrate(gpu, x, base, q.alphasF(), q.weightsF(), t, chunk,
                        true);
                assertClose("beta 1.5, chunk " + chunk, want.gradientSum().data(), got.gradientSum().data(), 1e-6, 1e-9);
                endpoints("beta 1.5 F(b)", true, want.outputAtBase(), got.outputAtBase(), want.outputAtBase());
                endpoints("beta 1.5 F(x)", true, want.outputAtInput(), got.outputAtInput(), want.outputAtInput());
            }
        }
    }

    @Test
    void convFirstMatchesTheCpuSavingAndThePlainPath() {
        Random r = new Random(43);
        integralMatches("conv-first", convFirst(r), rand(r, -1, 1, 3, 2, 7, 5), rand(r, -0.2, 0.2, 3, 2, 7, 5),
                new int[] {3, 0, 1}, 1e-5);
        integralMatches("grouped conv-first, no bias", groupedConvFirst(r), rand(r, -1, 1, 3, 4, 6, 6),
                Tensor.zeros(new int[] {3, 4, 6, 6}), new int[] {2, 2, 0}, 1e-5);
    }

    // ------------------------------------------------------------------ end to end

    /** Integrated Gradients through the public API: attributions and deltas, CUDA vs CPU, saving on. */
    @Test
    void referenceModelsThroughTheApi() {
        // mlp_shapley (Gemm → Sigmoid → Gemm) is smooth; the others have ReLU / max-pool kinks, so
        // against the plain path only the CPU-vs-CUDA comparison is tight
        for (String name : new String[] {"mlp_shapley", "mlp_tabular", "mlp_bn_softmax", "digits_cnn", "resnet_mini"}) {
            Graph graph = OnnxImporter.load(TestData.reference(name).resolve("model.onnx"));
            Tensor all = NpyIO.read(TestData.reference(name).resolve("input.npy"));
            Tensor x = all.rows(0, Math.min(4, all.dim(0)));
            try (Model cpu = Model.of(graph, CPU); Model gpu = Model.of(graph, cuda())) {
                assertTrue(gpu.runner().plan().affineFirstNode() >= 0, name);
                int[] t = cpu.predict(x);
                for (Quadrature.Rule rule : new Quadrature.Rule[] {Quadrature.Rule.GAUSS_LEGENDRE,
                    Quadrature.Rule.RIEMANN_TRAPEZOID}) {
                    for (int rows : new int[] {x.dim(0), 3 * x.dim(0), 1000}) {
                        String l = name + " " + rule + " internal_batch_size " + rows;
                        IntegratedGradients ig = new IntegratedGradients(cpu).method(rule).nSteps(10)
                                .returnConvergenceDelta(true).internalBatchSize(rows).affineFirstLayer(true);
                        Attribution want = ig.attribute(x, t);
                        Attribution got = new IntegratedGradients(gpu).method(rule).nSteps(10)
                                .returnConvergenceDelta(true).internalBatchSize(rows).affineFirstLayer(true)
                                .attribute(x, t);
                        assertClose(l + " attributions", want.attributions().data(), got.attributions().data(), 1e-5,
                                1e-8);
                        float[] wd = want.convergenceDelta().data();
                        float[] gd = got.convergenceDelta().data();
                        for (int i = 0; i < wd.length; i++) {
                            assertEquals(wd[i], gd[i], 1e-5, l + " delta row " + i);
                        }
                    }
                }
            }
        }
    }

    @Test
    void smoothReferenceModelSavingEqualsPlainOnTheDevice() {
        Graph graph = OnnxImporter.load(TestData.reference("mlp_shapley").resolve("model.onnx"));
        Tensor x = NpyIO.read(TestData.reference("mlp_shapley").resolve("input.npy"));
        try (Model gpu = Model.of(graph, cuda())) {
            for (Quadrature.Rule rule : RULES) {
                IntegratedGradients ig = new IntegratedGradients(gpu).method(rule).nSteps(16)
                        .returnConvergenceDelta(true).internalBatchSize(5 * x.dim(0));
                Attribution plain = ig.attribute(x, 1);
                Attribution fast = ig.affineFirstLayer(true).attribute(x, 1);
                assertClose(rule + " saving vs plain", plain.attributions().data(), fast.attributions().data(), 1e-5,
                        1e-8);
                for (int i = 0; i < x.dim(0); i++) {
                    assertEquals(plain.convergenceDelta().data()[i], fast.convergenceDelta().data()[i], 1e-5,
                            rule + " delta row " + i);
                }
            }
        }
    }

    // ------------------------------------------------------------------ where it does not apply

    @Test
    void theFlagIsIgnoredWhereTheFirstLayerDoesNotQualify() {
        Random r = new Random(47);
        // the input read by two nodes: Gemm and an Add of the input to the Gemm's output
        G twoReaders = new G(4);
        String gm = twoReaders.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 4, 4), rand(r, -1, 1, 4));
        twoReaders.op(new Op.Add(), gm, "x");
        twoReaders.then(new Op.Tanh());
        // a MatMul first (not Conv/Gemm); a first Gemm that is the graph's output
        G matmul = new G(4);
        matmul.then(new Op.MatMul(), rand(r, -1, 1, 4, 3));
        matmul.then(new Op.Sigmoid());
        // a bias that is a node's output, not a constant
        G computedBias = new G(4);
        String bias = computedBias.op(new Op.Identity(), computedBias.c(rand(r, -1, 1, 3)));
        computedBias.op(new Op.Gemm(1f, 1f, false, true), "x", computedBias.c(rand(r, -1, 1, 3, 4)), bias);
        computedBias.then(new Op.Tanh());
        G output = new G(4);
        output.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 3, 4), rand(r, -1, 1, 3));
        Tensor x = rand(r, -1, 1, 3, 4);
        Quadrature q = Quadrature.of(Quadrature.Rule.RIEMANN_TRAPEZOID, 6);
        int[] t = {0, 1, 2};
        for (G g : List.of(twoReaders, matmul, computedBias, output)) {
            Graph graph = g.build();
            try (ModelRunner gpu = prepare(graph)) {
                assertEquals(-1, gpu.plan().affineFirstNode(), graph.nodes().toString());
                PathGradients.Result on = integrate(gpu, x, Tensor.zeros(x.shape()), q.alphasF(), q.weightsF(), t, 2,
                        true);
                PathGradients.Result off = integrate(gpu, x, Tensor.zeros(x.shape()), q.alphasF(), q.weightsF(), t, 2,
                        false);
                assertArrayEquals(off.gradientSum().data(), on.gradientSum().data(), graph.nodes().toString());
            }
        }
        assertEquals(0, savingLogs());
    }

    // ------------------------------------------------------------------ a shared runner

    /** One runner shared by request threads, saving on and off: every call gives the serial answer. */
    @Test
    void aSharedRunnerGivesEveryThreadTheSerialAnswer() throws Exception {
        Random r = new Random(53);
        Graph graph = convFirst(r);
        Tensor x = rand(r, -1, 1, 2, 2, 7, 5);
        int[] t = {1, 2};
        try (Model gpu = Model.of(graph, cuda())) {
            IntegratedGradients base = new IntegratedGradients(gpu).nSteps(8).returnConvergenceDelta(true)
                    .internalBatchSize(6);
            Attribution[] serial = {base.attribute(x, t), base.affineFirstLayer(true).attribute(x, t)};
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<Attribution>> futures = new ArrayList<>();
                for (int i = 0; i < 12; i++) {
                    IntegratedGradients ig = base.affineFirstLayer(i % 2 == 1);
                    futures.add(pool.submit(() -> ig.attribute(x, t)));
                }
                for (int i = 0; i < futures.size(); i++) {
                    Attribution a = futures.get(i).get();
                    assertArrayEquals(serial[i % 2].attributions().data(), a.attributions().data(), "call " + i);
                    assertArrayEquals(serial[i % 2].convergenceDelta().data(), a.convergenceDelta().data(), "call " + i);
                }
            } finally {
                pool.shutdown();
            }
        }
    }
}
