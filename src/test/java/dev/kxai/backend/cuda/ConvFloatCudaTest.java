package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static dev.kxai.backend.cuda.CudaTestKit.conv;
import static dev.kxai.backend.cuda.CudaTestKit.cuda;
import static dev.kxai.backend.cuda.CudaTestKit.maxPool;
import static dev.kxai.backend.cuda.CudaTestKit.rand;
import static dev.kxai.backend.cuda.CudaTestKit.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.backend.GraphRunner;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.cuda.CudaTestKit.G;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.GradientCheck.Report;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The FP32 convolution on CUDA (conv2d_forward_f32) and its exact-decision repair, on the CPU
 * emulation of the driver: near-ties planted where float loses the value that decides a ReLU or a
 * max-pool (x = (2^25, v, −2^25) through weights 1: the float sum is 0, the exact one v) must be
 * decided as the all-double path (conv2d_forward, {@link CudaBackend#exactPath}) decides them; the
 * batch norm folded into its conv at load and the Conv + Relu epilogue fusion against the CPU and
 * finite differences; the kernels each path launches counted.
 */
class ConvFloatCudaTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    private static final float BIG = 33554432f; // 2^25: adding a value below 2 to it in float loses it

    /** A runner with its op set in hand (the op set's repair count and FP32 set are read). */
    private record Prepared(GraphRunner<DTensor> runner, CudaOpSet ops) implements AutoCloseable {
        @Override
        public void close() {
            runner.close();
        }
    }

    private static Prepared prepare(Graph g) {
        CudaBackend backend = cuda();
        CudaOpSet ops = new CudaOpSet(g, CudaRuntime.probe().runtime());
        return new Prepared(new GraphRunner<>(backend, ExecutionPlan.build(g, ops, true), ops), ops);
    }

    /** Runs {@code f} on the CUDA exact path (every conv in double). */
    private static <T> T exact(java.util.function.Supplier<T> f) {
        boolean was = CudaBackend.exactPath(true);
        try {
            return f.get();
        } finally {
            CudaBackend.exactPath(was);
        }
    }

    /**
     * x [batch, 3, h, w] with near-ties at every third position: channels (2^25, v, −2^25), v of
     * either sign in [0.25, 1) — lost by the float sum — and ordinary values elsewhere.
     */
    private static Tensor plantedInput(int batch, int h, int w, long seed, boolean positiveOnly) {
        Random r = new Random(seed);
        int area = h * w;
        float[] d = new float[batch * 3 * area];
        for (int img = 0; img < batch; img++) {
            for (int p = 0; p < area; p++) {
                boolean cancel = p % 3 == 0;
                float v = (positiveOnly || p % 2 == 1 ? 1 : -1) * (0.25f + 0.75f * r.nextFloat());
                for (int ch = 0; ch < 3; ch++) {
                    d[(img * 3 + ch) * area + p] = cancel ? (ch == 0 ? BIG : ch == 1 ? v : -BIG)
                            : (float) (r.nextFloat() * 2 - 1);
                }
            }
        }
        return new Tensor(new int[] {batch, 3, h, w}, d);
    }

    /** 1×1 conv summing the 3 channels (weights 1, bias 0) into 2 identical output channels. */
    private static G sumConv(int h, int w) {
        G g = new G(3, h, w);
        g.then(conv(s(1, 1), s(1, 1), s(0, 0, 0, 0), s(1, 1), 1, "NOTSET"),
                new Tensor(new int[] {2, 3, 1, 1}, new float[] {1, 1, 1, 1, 1, 1}), new Tensor(new int[] {2}, new float[2]));
        return g;
    }

    private static float[] gradient(Prepared p, Tensor x) {
        return p.runner().gradient(x, new int[x.dim(0)]).inputGradient().data();
    }

    @Test
    void reluNearTiesAreDecidedAsTheDoublePath() {
        Tensor x = plantedInput(2, 5, 6, 1, false);
        // without the repair the float sums would decide otherwise: the conv alone, in FP32, loses v
        G bare = sumConv(5, 6);
        Tensor floatConv;
        Tensor exactConv;
        try (Prepared p = prepare(bare.build())) {
            assertTrue(p.ops().fp32Convs().size() == 1, "the lone conv runs in FP32");
            floatConv = p.runner().forward(x);
            exactConv = exact(() -> p.runner().forward(x));
        }
        int flips = 0;
        for (int i = 0; i < floatConv.size(); i++) {
            flips += (floatConv.data()[i] > 0) != (exactConv.data()[i] > 0) ? 1 : 0;
        }
        assertTrue(flips > 0, "the planted near-ties change ReLU decisions in plain float");
        // Conv → Relu (fused: bias + ReLU + the repair in the epilogue) and Conv → Relu unfused
        for (boolean fuse : new boolean[] {true, false}) {
            G g = sumConv(5, 6);
            g.then(new Op.Relu());
            Graph body = g.build();
            float[] gw = rand(new Random(2), -1, 1, 2 * 30).data();
            try (Prepared p = prepare(fuse ? body : g.withHead(gw)); Prepared h = prepare(g.withHead(gw))) {
                String label = fuse ? "fused Conv+Relu" : "Conv, Relu";
                if (fuse) {
                    assertEquals(1, p.runner().plan().fusions().size(), label + ": the conv and its ReLU fused");
                    Tensor y = p.runner().forward(x);
                    Tensor ye = exact(() -> p.runner().forward(x));
                    for (int i = 0; i < y.size(); i++) {
                        assertEquals(ye.data()[i] > 0, y.data()[i] > 0, label + ": ReLU decision of output " + i);
                    }
                    assertTrue(p.ops().repairedOutputs() > 0, label + ": outputs were recomputed in double");
                }
                // the gradient flows through the ReLU masks: identical masks, identical gradients
                float[] gf = gradient(h, x);
                float[] ge = exact(() -> gradient(h, x));
                assertArrayEquals(ge, gf, label + ": gradient equals the double path's bit for bit");
                assertTrue(h.ops().repairedOutputs() > 0, label + ": the gradient's forward repaired outputs");
            }
        }
    }

    /**
     * Integrated Gradients through the repaired near-ties with chunk graphs on ({@link ChunkGraphs}): the
     * repair kernels run inside the replayed graphs (the same number of outputs recomputed as without
     * graphs), 5 chunks give 1 capture and 4 graph launches, and the attributions are those without
     * graphs bit for bit.
     */
    @Test
    void integratedGradientsThroughNearTiesWithGraphsEqualsWithout() {
        Tensor x = plantedInput(2, 5, 6, 11, false);
        Tensor base = new Tensor(x.shape(), new float[x.size()]);
        G g = sumConv(5, 6);
        g.then(new Op.Relu());
        float[] gw = rand(new Random(12), -1, 1, 2 * 30).data();
        int steps = 10;
        float[] alphas = new float[steps];
        float[] weights = new float[steps];
        for (int k = 0; k < steps; k++) {
            alphas[k] = (k + 0.5f) / steps;
            weights[k] = 1f / steps;
        }
        float[][] got = new float[2][];
        int[] repaired = new int[2];
        ChunkGraphs.Stats[] stats = new ChunkGraphs.Stats[2];
        for (int on = 0; on < 2; on++) {
            int mode = on;
            got[on] = GraphsCudaTest.withGraphs(on == 1, () -> {
                try (Prepared h = prepare(g.withHead(gw))) {
                    int r0 = h.ops().repairedOutputs();
                    ChunkGraphs.Stats s0 = ChunkGraphs.stats();
                    float[] a = CudaTestKit.integrate(h.runner(), x, base, alphas, weights, new int[2], 2, false)
                            .gradientSums().get(0).data();
                    stats[mode] = ChunkGraphs.stats().minus(s0);
                    repaired[mode] = h.ops().repairedOutputs() - r0;
                    return a;
                }
            });
        }
        String what = "graphs off: " + repaired[0] + " outputs repaired, " + stats[0] + "; on: " + repaired[1] + ", "
                + stats[1];
        System.out.println("near-tie IG, 5 chunks: " + what);
        assertTrue(repaired[0] > 0, what);
        assertEquals(repaired[0], repaired[1], "the repair kernels ran inside the graphs: " + what);
        assertEquals(new ChunkGraphs.Stats(1, 4, 0, stats[1].replayedOps()), stats[1], what);
        assertArrayEquals(got[0], got[1], "graphs on = off, bit for bit: " + what);
    }

    /**
     * TF32 (CudaBackend.tf32): the FP32 conv reads its operands rounded to TF32, and its bounds widen to
     * match, so the fused Conv+Relu's decisions on the planted near-ties are still the double path's;
     * the wider bounds flag at least as many outputs as FP32's; and the values do change (TF32 engaged).
     */
    @Test
    void tf32KeepsTheDecisionsOfTheDoublePath() {
        Tensor x = plantedInput(2, 5, 6, 21, false);
        G g = sumConv(5, 6);
        g.then(new Op.Relu());
        // the planted planes hold 2^25: every output lies within its bound and is recomputed; so TF32's
        // effect on values is checked on the bare conv over ordinary inputs
        Tensor plain = rand(new Random(22), -1, 1, 2, 3, 5, 6);
        try (Prepared p = prepare(g.build()); Prepared bare = prepare(sumConv(5, 6).build())) {
            int r0 = p.ops().repairedOutputs();
            p.runner().forward(x);
            int fp32Repairs = p.ops().repairedOutputs() - r0;
            Tensor ye = exact(() -> p.runner().forward(x));
            Tensor bf = bare.runner().forward(plain);
            boolean was = CudaBackend.tf32(true);
            Tensor yt;
            Tensor yte;
            Tensor bt;
            int tf32Repairs;
            try {
                int r1 = p.ops().repairedOutputs();
                yt = p.runner().forward(x);
                tf32Repairs = p.ops().repairedOutputs() - r1;
                yte = exact(() -> p.runner().forward(x));
                bt = bare.runner().forward(plain);
            } finally {
                CudaBackend.tf32(was);
            }
            assertArrayEquals(ye.data(), yte.data(), "the exact path ignores TF32");
            for (int i = 0; i < yt.size(); i++) {
                assertEquals(ye.data()[i] > 0, yt.data()[i] > 0, "TF32: ReLU decision of output " + i);
            }
            int differ = 0;
            for (int i = 0; i < bt.size(); i++) {
                differ += bt.data()[i] != bf.data()[i] ? 1 : 0;
            }
            String what = "repairs FP32 " + fp32Repairs + ", TF32 " + tf32Repairs + "; bare conv outputs changed by TF32 "
                    + differ + " of " + bt.size();
            System.out.println("tf32 near ties: " + what);
            assertTrue(fp32Repairs > 0 && tf32Repairs >= fp32Repairs, what);
            assertTrue(differ > 0, "TF32 changed values: " + what);
        }
    }

    @Test
    void clipAndLeakyReluNearTies() {
        Tensor x = plantedInput(1, 4, 6, 3, false);
        for (Op op : new Op[] {new Op.Unary(Op.Unary.Kind.CLIP, 0f, 6f), new Op.LeakyRelu(0.1f),
            new Op.Unary(Op.Unary.Kind.ABS, 0f, 0f)}) {
            G g = sumConv(4, 6);
            g.then(op);
            float[] gw = rand(new Random(4), -1, 1, 2 * 24).data();
            try (Prepared h = prepare(g.withHead(gw))) {
                assertEquals(1, h.ops().fp32Convs().size(), op + ": the conv runs in FP32");
                float[] gf = gradient(h, x);
                float[] ge = exact(() -> gradient(h, x));
                assertArrayEquals(ge, gf, op + ": gradient equals the double path's bit for bit");
                assertTrue(h.ops().repairedOutputs() > 0, op + ": outputs were recomputed");
            }
        }
    }

    @Test
    void maxPoolNearTiesAreDecidedAsTheDoublePath() {
        // positive planted values: in each 2x2 window the cancel position is the exact maximum that float loses
        Tensor x = plantedInput(2, 6, 6, 5, true);
        for (boolean relu : new boolean[] {false, true}) {
            G g = sumConv(6, 6);
            if (relu) {
                g.then(new Op.Relu()); // Conv+Relu fused, its output keeps the bounds (ReLU'd) for the pool
            }
            g.then(maxPool(s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), false));
            float[] gw = rand(new Random(6), -1, 1, 2 * 9).data();
            try (Prepared h = prepare(g.withHead(gw))) {
                String label = relu ? "Conv+Relu, MaxPool" : "Conv, MaxPool";
                float[] gf = gradient(h, x);
                float[] ge = exact(() -> gradient(h, x));
                assertArrayEquals(ge, gf, label + ": the pool's winners (and so the gradient) are the double path's");
                assertTrue(h.ops().repairedOutputs() > 0, label + ": window near-ties were recomputed");
            }
        }
    }

    /**
     * A residual sum before its ReLU: conv1 (the planted sums, float loses v) + conv2 (−v/2, no
     * cancellation): float says −v/2, exact v/2: every planted ReLU decision flips in plain float.
     */
    @Test
    void residualSumNearTiesAreDecidedAsTheDoublePath() {
        Tensor x = plantedInput(2, 4, 5, 14, false);
        G g = sumConv(4, 5);
        String y1 = g.last;
        String y2 = g.op(conv(s(1, 1), s(1, 1), s(0, 0, 0, 0), s(1, 1), 1, "NOTSET"), "x",
                g.c(new Tensor(new int[] {2, 3, 1, 1}, new float[] {0, -0.5f, 0, 0, -0.5f, 0})));
        g.op(new Op.Add(), y1, y2);
        g.then(new Op.Relu());
        float[] gw = rand(new Random(15), -1, 1, 2 * 20).data();
        try (Prepared h = prepare(g.withHead(gw))) {
            assertEquals(2, h.ops().fp32Convs().size(), "both convs before the sum run in FP32");
            float[] gf = gradient(h, x);
            float[] ge = exact(() -> gradient(h, x));
            assertArrayEquals(ge, gf, "gradient equals the double path's bit for bit");
            assertTrue(h.ops().repairedOutputs() > 0, "the sum's near-ties were recomputed");
        }
        // a max-pool of a sum is not repaired on the device: its convs stay in double
        G p = sumConv(4, 6);
        String a = p.last;
        String b = p.op(conv(s(1, 1), s(1, 1), s(0, 0, 0, 0), s(1, 1), 1, "NOTSET"), "x",
                p.c(new Tensor(new int[] {2, 3, 1, 1}, new float[] {0, -0.5f, 0, 0, -0.5f, 0})));
        p.op(new Op.Add(), a, b);
        p.then(maxPool(s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), false));
        try (Prepared h = prepare(p.build())) {
            assertTrue(h.ops().fp32Convs().isEmpty(), "convs before a max-pool of their sum stay in double");
        }
    }

    @Test
    void layerStaysInDoubleWhereTheDeviceCannotRepairTheDecision() {
        Random r = new Random(7);
        // Conv → ReduceMax: a decision without a device repair
        G g = new G(2, 5, 5);
        g.then(conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET"), rand(r, -1, 1, 3, 2, 3, 3));
        g.then(new Op.Reduce(Op.Reduce.Kind.MAX, new int[] {2, 3}, false));
        try (Prepared p = prepare(g.build())) {
            assertTrue(p.ops().fp32Convs().isEmpty(), "a conv before ReduceMax stays in double");
        }
        // Conv → Sigmoid → Gemm: no decision, FP32
        G s2 = new G(2, 5, 5);
        s2.then(conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET"), rand(r, -1, 1, 3, 2, 3, 3));
        s2.then(new Op.Sigmoid());
        try (Prepared p = prepare(s2.build())) {
            assertEquals(1, p.ops().fp32Convs().size(), "a conv before a smooth activation runs in FP32");
        }
    }

    /** Conv → BatchNormalization → act: the batch norm folded into the conv's weights at load. */
    private static G convBn(Random r, int c, int m, Op act) {
        G g = new G(c, 7, 6);
        g.then(conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET"), rand(r, -0.5, 0.5, m, c, 3, 3),
                rand(r, -0.2, 0.2, m));
        g.then(new Op.BatchNormalization(1e-5f), rand(r, 0.5, 2, m), rand(r, -1, 1, m), rand(r, -1, 1, m),
                rand(r, 0.1, 2, m));
        if (act != null) {
            g.then(act);
        }
        return g;
    }

    @Test
    void batchNormFoldedIntoTheConvMatchesTheCpu() {
        Random r = new Random(8);
        for (Op act : new Op[] {null, new Op.Relu(), new Op.Tanh()}) {
            G g = convBn(r, 3, 5, act);
            Tensor x = rand(r, -1, 1, 3, 3, 7, 6);
            try (Prepared p = prepare(g.build())) {
                long folded = g.build().nodes().stream().filter(n -> p.ops().folded(n)).count();
                assertEquals(1, folded, act + ": the batch norm is folded");
                if (act instanceof Op.Relu) {
                    assertEquals(3, p.runner().plan().fusions().get(0).nodes().length,
                            "Conv, folded BN and Relu run as one kernel");
                }
            }
            CudaTestKit.Both b = CudaTestKit.runBoth(g, x, 9);
            assertClose(act + " forward", b.cpuOut().data(), b.cudaOut().data(), 2e-5, 1e-6);
            assertClose(act + " gradient", b.cpuGrad().data(), b.cudaGrad().data(), 2e-5, 1e-6);
        }
        // a conv output read by the batch norm and by another node: not folded
        G g = new G(3, 7, 6);
        String y = g.then(conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), 1, "NOTSET"), rand(r, -0.5, 0.5, 4, 3, 3, 3));
        String bn = g.op(new Op.BatchNormalization(1e-5f), y, g.c(rand(r, 0.5, 2, 4)), g.c(rand(r, -1, 1, 4)),
                g.c(rand(r, -1, 1, 4)), g.c(rand(r, 0.1, 2, 4)));
        g.op(new Op.Add(), bn, y);
        try (Prepared p = prepare(g.build())) {
            assertTrue(g.build().nodes().stream().noneMatch(n -> p.ops().folded(n)), "a shared conv output is not folded");
        }
        CudaTestKit.Both b = CudaTestKit.runBoth(g, rand(r, -1, 1, 2, 3, 7, 6), 10);
        assertClose("shared conv output forward", b.cpuOut().data(), b.cudaOut().data(), 2e-5, 1e-6);
        assertClose("shared conv output gradient", b.cpuGrad().data(), b.cudaGrad().data(), 2e-5, 1e-6);
    }

    @Test
    void foldedBatchNormBackwardAgainstFiniteDifferences() {
        Random r = new Random(11);
        G g = convBn(r, 2, 3, new Op.Tanh());
        BackwardFiniteDifferenceTest.Pair p = BackwardFiniteDifferenceTest.gradients(g, rand(r, -1, 1, 2, 2, 7, 6), 0.05,
                12);
        Report rep = BackwardFiniteDifferenceTest.compare(p.analytic(), p.fd());
        assertTrue(rep.ok(), "Conv + folded BN + Tanh: " + rep);
    }

    /** Layers past 16 channels per group take the 64x64-tile kernel: parity with the CPU, K over 256 included. */
    @Test
    void wideTilesMatchTheCpu() {
        Random r = new Random(16);
        int[][] cases = {{5, 24, 1}, {40, 70, 1}, {32, 40, 2}}; // C, M, groups (K = C/g·9: 45, 360, 144)
        for (int[] c : cases) {
            G g = new G(c[0], 9, 7);
            g.then(conv(s(3, 3), s(1, 1), s(1, 1, 1, 1), s(1, 1), c[2], "NOTSET"), rand(r, -0.3, 0.3, c[1], c[0] / c[2], 3, 3),
                    rand(r, -0.1, 0.1, c[1]));
            g.then(new Op.Relu());
            g.then(maxPool(s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), true));
            Tensor x = rand(r, -1, 1, 3, c[0], 9, 7);
            try (ModelRunner p = cuda().prepare(g.build())) {
                KernelCosts.reset();
                p.forward(x);
                assertTrue(KernelCosts.snapshot().containsKey("conv2d_forward_f32"), KernelCosts.snapshot().keySet().toString());
            }
            CudaTestKit.Both b = CudaTestKit.runBoth(g, x, 17);
            String label = "C=" + c[0] + " M=" + c[1] + " groups=" + c[2];
            assertClose(label + " forward", b.cpuOut().data(), b.cudaOut().data(), 1e-5, 1e-6);
            assertClose(label + " gradient", b.cpuGrad().data(), b.cudaGrad().data(), 1e-5, 1e-6);
        }
    }

    @Test
    void eachPathLaunchesItsKernels() {
        Random r = new Random(13);
        G g = convBn(r, 3, 4, new Op.Relu());
        g.then(maxPool(s(2, 2), s(2, 2), s(0, 0, 0, 0), s(1, 1), false));
        Tensor x = rand(r, -1, 1, 2, 3, 7, 6);
        Function<Boolean, Map<String, KernelCosts.Totals>> run = exactPath -> {
            boolean was = CudaBackend.exactPath(exactPath);
            try (ModelRunner p = cuda().prepare(g.build())) {
                KernelCosts.reset();
                p.forward(x);
                return KernelCosts.snapshot();
            } finally {
                CudaBackend.exactPath(was);
            }
        };
        Map<String, KernelCosts.Totals> f = run.apply(false);
        assertEquals(1, f.get("conv2d_forward_f32_narrow").launches(), "FP32 path (4 channels: 16x256 tiles): " + f.keySet());
        assertFalse(f.containsKey("conv2d_forward"), "FP32 path: " + f.keySet());
        assertFalse(f.containsKey("channel_affine"), "the batch norm is folded: " + f.keySet());
        assertFalse(f.containsKey("act_forward"), "the ReLU is in the conv's epilogue: " + f.keySet());
        assertEquals(1, f.get("maxpool_repair_mark").launches(), "the pool's near-ties checked: " + f.keySet());
        Map<String, KernelCosts.Totals> e = run.apply(true);
        assertEquals(1, e.get("conv2d_forward").launches(), "exact path: " + e.keySet());
        assertFalse(e.containsKey("conv2d_forward_f32_narrow"), "exact path: " + e.keySet());
    }
}
