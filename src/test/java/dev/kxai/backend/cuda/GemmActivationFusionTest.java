package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.CPU;
import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static dev.kxai.backend.cuda.CudaTestKit.fusedActivations;
import static dev.kxai.backend.cuda.CudaTestKit.integrate;
import static dev.kxai.backend.cuda.CudaTestKit.rand;
import static dev.kxai.backend.cuda.CudaTestKit.runner;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.attr.Quadrature;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathGradients;
import dev.kxai.backend.cuda.CudaTestKit.G;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Bias + activation fused after a GEMM on CUDA: a Gemm (any C form) or a MatMul + constant row-bias
 * Add whose output only an activation reads runs bias and activation in one kernel, and the backward
 * runs the activation's backward on what that kernel saved. The fused runner must give bit for bit
 * the unfused runner's outputs, gradients and path integrals, and must leave alone a GEMM whose
 * output something else reads or that is the graph's output. Run on the CPU emulation of the
 * driver: proves kernel logic and orchestration, not GPU speed or memory-model races.
 */
class GemmActivationFusionTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    private static List<Op> activations() {
        return List.of(new Op.Relu(), new Op.LeakyRelu(0.01f), new Op.LeakyRelu(0f), new Op.LeakyRelu(-0.3f),
                new Op.Sigmoid(), new Op.Tanh());
    }

    /** Input with exact zeros, so some pre-activations sit at the ReLU kink (0 weights rows give exactly the bias). */
    private static Tensor input(Random r, int rows, int cols) {
        Tensor x = rand(r, -1, 1, rows, cols);
        x.data()[0] = 0f;
        x.data()[Math.min(cols + 1, x.size() - 1)] = -0f;
        return x;
    }

    /**
     * Fused and unfused runners on one graph (plus the CPU): forward, the input gradient of every
     * output, and a short path integral, fused == unfused bit for bit, and close to the CPU.
     */
    private static void parity(String label, Graph g, Tensor x, Set<String> fusedNodes) {
        parity(label, g, x, fusedNodes, 2);
    }

    /** {@code stepsPerChunk} 1 for graphs whose Reshape fixes the rows to one example's. */
    private static void parity(String label, Graph g, Tensor x, Set<String> fusedNodes, int stepsPerChunk) {
        try (ModelRunner fused = runner(g, true); ModelRunner plain = runner(g, false);
                ModelRunner cpu = CPU.prepare(g)) {
            assertEquals(fusedNodes, fusedActivations(fused), label + ": fused activations");
            assertEquals(Set.of(), fusedActivations(plain), label);
            Tensor yf = fused.forward(x);
            Tensor yp = plain.forward(x);
            assertArrayEquals(yp.shape(), yf.shape(), label);
            assertArrayEquals(yp.data(), yf.data(), label + ": forward, fused vs unfused");
            assertClose(label + ": forward vs cpu", cpu.forward(x).data(), yf.data());
            int rows = x.dim(0);
            for (int target = 0; target < yf.rowSize(); target++) {
                int[] t = new int[rows];
                java.util.Arrays.fill(t, target);
                ModelRunner.Gradient gf = fused.gradient(x, t);
                ModelRunner.Gradient gp = plain.gradient(x, t);
                assertArrayEquals(gp.inputGradient().data(), gf.inputGradient().data(),
                        label + ": gradient of output " + target + ", fused vs unfused");
                assertArrayEquals(gp.output().data(), gf.output().data(), label);
                assertClose(label + ": gradient vs cpu", cpu.gradient(x, t).inputGradient().data(),
                        gf.inputGradient().data());
            }
            Quadrature q = Quadrature.of(Quadrature.Rule.RIEMANN_TRAPEZOID, 5);
            int[] t = new int[rows];
            Tensor base = Tensor.zeros(x.shape());
            for (boolean saving : new boolean[] {false, true}) {
                PathGradients.Result pf = integrate(fused, x, base, q.alphasF(), q.weightsF(), t, stepsPerChunk,
                        saving);
                PathGradients.Result pp = integrate(plain, x, base, q.alphasF(), q.weightsF(), t, stepsPerChunk,
                        saving);
                assertArrayEquals(pp.gradientSum().data(), pf.gradientSum().data(), label + ": path, saving " + saving);
                assertArrayEquals(pp.outputAtInput(), pf.outputAtInput(), label + ": F(x), saving " + saving);
                assertArrayEquals(pp.outputAtBase(), pf.outputAtBase(), label + ": F(b), saving " + saving);
            }
        }
    }

    /** x → [4] hidden → activation → Gemm head [3]: the hidden layer built by {@code layer}. */
    private static Graph twoLayers(Random r, Op act, BiFunction<G, Random, String> layer) {
        G g = new G(6);
        g.then(new Op.Tanh()); // the first node is not the GEMM: its saving would skip the fusion under test
        layer.apply(g, r);
        g.then(act);
        g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 3, 4), rand(r, -0.5, 0.5, 3));
        return g.build();
    }

    private static String actName(Graph g) {
        return g.nodes().get(g.nodes().size() - 2).name();
    }

    @Test
    void gemmWithEveryBiasFormAndActivation() {
        Random r = new Random(81);
        int rows = 5;
        List<BiFunction<G, Random, String>> layers = new ArrayList<>();
        // row bias [N], transB
        layers.add((g, q) -> g.then(new Op.Gemm(1f, 1f, false, true), rand(q, -1, 1, 4, 6), rand(q, -0.5, 0.5, 4)));
        // row bias [1, N], B untransposed, alpha
        layers.add((g, q) -> g.then(new Op.Gemm(0.5f, 1f, false, false), rand(q, -1, 1, 6, 4),
                rand(q, -0.5, 0.5, 1, 4)));
        // no C
        layers.add((g, q) -> g.then(new Op.Gemm(1f, 1f, false, true), rand(q, -1, 1, 4, 6)));
        // C present with beta 0 (ignored)
        layers.add((g, q) -> g.then(new Op.Gemm(1f, 0f, false, true), rand(q, -1, 1, 4, 6), rand(q, -0.5, 0.5, 4)));
        for (int l = 0; l < layers.size(); l++) {
            for (Op act : activations()) {
                Graph g = twoLayers(r, act, layers.get(l));
                parity("gemm form " + l + " + " + act, g, input(r, rows, 6), Set.of(actName(g)));
            }
        }
    }

    /**
     * C forms tied to M (full [M, N] with beta, a column [M, 1]) and transA, on a Reshape to a fixed
     * [M, K] (the batch axis cannot carry them): x [1, M·K] → Reshape → Gemm → act → Reshape → head.
     */
    @Test
    void gemmFullAndColumnBiasAndTransposedA() {
        Random r = new Random(82);
        int m = 3;
        int k = 5;
        int n = 4;
        for (boolean ta : new boolean[] {false, true}) {
            Object[][] forms = {{new Op.Gemm(0.7f, 1.3f, ta, true), s(m, n)}, {new Op.Gemm(1f, 1f, ta, false), s(m, 1)},
                {new Op.Gemm(1f, 1f, ta, true), s(n)}};
            for (Object[] f : forms) {
                for (Op act : activations()) {
                    Op.Gemm op = (Op.Gemm) f[0];
                    G g = new G(m * k);
                    g.then(new Op.Reshape(false), new Tensor(s(2), ta ? new float[] {k, m} : new float[] {m, k}));
                    g.then(op, op.transB() ? rand(r, -1, 1, n, k) : rand(r, -1, 1, k, n), rand(r, -0.5, 0.5, (int[]) f[1]));
                    String a = g.then(act);
                    g.then(new Op.Reshape(false), new Tensor(s(2), new float[] {1, m * n}));
                    g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 2, m * n), rand(r, -0.5, 0.5, 2));
                    Graph graph = g.build();
                    String actNode = graph.nodes().get(2).name();
                    parity("transA " + ta + " C " + java.util.Arrays.toString((int[]) f[1]) + " + " + act, graph,
                            input(r, 1, m * k), Set.of(actNode), 1);
                }
            }
        }
    }

    private static int[] s(int... d) {
        return d;
    }

    @Test
    void matMulPlusRowBiasAddAndActivation() {
        Random r = new Random(83);
        for (Op act : activations()) {
            for (int form = 0; form < 3; form++) {
                int f = form;
                Graph g = twoLayers(r, act, (b, q) -> {
                    String mm = b.then(new Op.MatMul(), rand(q, -1, 1, 6, 4));
                    Tensor bias = f == 2 ? rand(q, -0.5, 0.5, 1, 4) : rand(q, -0.5, 0.5, 4);
                    // bias on either side of the Add
                    return f == 1 ? b.op(new Op.Add(), b.c(bias), mm) : b.op(new Op.Add(), mm, b.c(bias));
                });
                parity("matmul + add form " + f + " + " + act, g, input(r, 3, 6), Set.of(actName(g)));
            }
        }
    }

    @Test
    void theFirstLayerSavingSkipsAFusedFirstGemmAndRunsItsActivationAlone() {
        Random r = new Random(85);
        for (Op act : activations()) {
            G g = new G(6);
            g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 4, 6), rand(r, -0.5, 0.5, 4));
            g.then(act);
            g.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 3, 4), rand(r, -0.5, 0.5, 3));
            Graph graph = g.build();
            try (ModelRunner fused = runner(graph, true)) {
                assertEquals(0, fused.plan().affineFirstNode());
            }
            parity("first gemm + " + act, graph, input(r, 4, 6), Set.of(graph.nodes().get(1).name()));
        }
    }

    @Test
    void noFusionWhereTheGemmOutputIsReadElsewhereOrIsTheOutput() {
        Random r = new Random(87);
        Tensor x = input(r, 3, 6);
        // Gemm output read by the activation and by an Add
        G twice = new G(6);
        twice.then(new Op.Tanh());
        String gm = twice.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 4, 6), rand(r, -0.5, 0.5, 4));
        String act = twice.then(new Op.Relu());
        twice.op(new Op.Add(), act, gm);
        parity("gemm read twice", twice.build(), x, Set.of());
        // the Gemm's output is the graph's output; an activation also reads it (a dead branch)
        G output = new G(6);
        output.then(new Op.Tanh());
        String out = output.then(new Op.Gemm(1f, 1f, false, true), rand(r, -1, 1, 4, 6), rand(r, -0.5, 0.5, 4));
        output.then(new Op.Sigmoid());
        output.last = out;
        parity("gemm is the output", output.build(), x, Set.of());
        // MatMul read by the Add and by something else; MatMul + Add of a scalar; MatMul + Add
        // of a computed value; the Add's output read twice
        G mmTwice = new G(6);
        mmTwice.then(new Op.Tanh());
        String mm = mmTwice.then(new Op.MatMul(), rand(r, -1, 1, 6, 4));
        String add = mmTwice.op(new Op.Add(), mm, mmTwice.c(rand(r, -0.5, 0.5, 4)));
        String relu = mmTwice.op(new Op.Relu(), add);
        mmTwice.op(new Op.Mul(), relu, mm);
        parity("matmul read twice", mmTwice.build(), x, Set.of());
        G scalarBias = new G(6);
        scalarBias.then(new Op.Tanh());
        scalarBias.then(new Op.MatMul(), rand(r, -1, 1, 6, 4));
        scalarBias.then(new Op.Add(), rand(r, -0.5, 0.5, 1, 1));
        scalarBias.then(new Op.Sigmoid());
        parity("matmul + [1, 1] add (not a row bias)", scalarBias.build(), x, Set.of());
        G computed = new G(6);
        String t = computed.then(new Op.Tanh());
        String mm2 = computed.then(new Op.MatMul(), rand(r, -1, 1, 6, 6));
        computed.op(new Op.Add(), mm2, t);
        computed.then(new Op.Tanh());
        parity("matmul + computed add", computed.build(), x, Set.of());
        G addTwice = new G(6);
        addTwice.then(new Op.Tanh());
        String mm3 = addTwice.then(new Op.MatMul(), rand(r, -1, 1, 6, 4));
        String a3 = addTwice.op(new Op.Add(), mm3, addTwice.c(rand(r, -0.5, 0.5, 4)));
        String s3 = addTwice.op(new Op.Sigmoid(), a3);
        addTwice.op(new Op.Sub(), s3, a3);
        parity("add read twice", addTwice.build(), x, Set.of());
    }

    @Test
    void referenceModelsFuseTheirHiddenLayers() {
        // mlp_tabular: Gemm+Relu (first: skipped by the saving), Gemm+Tanh; cbm_xor: Gemm+LeakyRelu, +Sigmoid
        for (String name : new String[] {"mlp_tabular", "cbm_xor", "mlp_shapley"}) {
            Graph g = dev.kxai.onnx.OnnxImporter.load(dev.kxai.TestData.reference(name).resolve("model.onnx"));
            Tensor all = dev.kxai.io.NpyIO.read(dev.kxai.TestData.reference(name).resolve("input.npy"));
            Tensor x = all.rows(0, Math.min(4, all.dim(0)));
            Set<String> acts = new java.util.TreeSet<>();
            for (int i = 1; i < g.nodes().size(); i++) {
                if (g.nodes().get(i - 1).op() instanceof Op.Gemm && !(g.nodes().get(i).op() instanceof Op.Gemm)) {
                    acts.add(g.nodes().get(i).name());
                }
            }
            assertTrue(!acts.isEmpty(), name);
            parity(name, g, x, acts);
        }
    }
}
