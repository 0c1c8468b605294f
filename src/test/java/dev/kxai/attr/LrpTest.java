package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.backend.LrpRule;
import dev.kxai.backend.LrpRules;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * LRP and LayerLRP: ε → 0 on a bias-free ReLU network is Input×Gradient; relevance is conserved
 * layer by layer there; on the digits model every rule assignment matches Captum 0.8.0's LRP as
 * src/test/resources/lrp/make.py computes it (Captum's hooks written out in torch); gamma,
 * alpha-beta and identity by hand on one layer; and the refusals name the node or key at fault.
 */
class LrpTest {
    private static final Path DIGITS = TestData.reference("digits_cnn");
    private static final Path EXPECTED = TestData.referenceRoot().getParent().getParent().resolve("lrp");
    /** The values of the digits model from the input to the logits, in order. */
    private static final List<String> DIGITS_VALUES = List.of("/0/Conv_output_0", "/1/Relu_output_0", "/2/Conv_output_0",
            "/3/Relu_output_0", "/4/MaxPool_output_0", "/5/Flatten_output_0", "logits");

    /** The digits model with every bias set to zero. */
    private static Model biasFreeDigits() {
        try (Model m = Model.load(DIGITS.resolve("model.onnx"), "cpu")) {
            Graph g = m.graph();
            Map<String, Tensor> consts = new HashMap<>(g.constants());
            for (String b : List.of("0.bias", "2.bias", "6.bias")) {
                consts.put(b, new Tensor(consts.get(b).shape(), new float[consts.get(b).size()]));
            }
            return Model.of(new Graph(g.source() + " (bias-free)", g.inputs(), g.outputName(), g.nodes(), consts, g.perRow()),
                    new CpuBackend());
        }
    }

    private static int[] targets() {
        return new int[] {0, 0, 2, 0, 1, 3, 5, 0, 5, 1}; // the reference's targets (argmax of the logits)
    }

    /** The reference tolerance (ReferenceCasesTest): relative L2 ≤ 1e-4, every element within 1e-4·max|ref| + 1e-6. */
    private static void assertMatches(String what, Tensor want, Tensor got) {
        assertArrayEquals(want.shape(), got.shape(), what + ": shape");
        double num = 0;
        double den = 0;
        double max = 0;
        for (int i = 0; i < want.size(); i++) {
            double d = got.data()[i] - want.data()[i];
            num += d * d;
            den += (double) want.data()[i] * want.data()[i];
            max = Math.max(max, Math.abs(want.data()[i]));
        }
        double rel = Math.sqrt(num / Math.max(den, 1e-30));
        assertTrue(rel <= 1e-4, what + ": relative L2 error " + rel);
        for (int i = 0; i < want.size(); i++) {
            assertEquals(want.data()[i], got.data()[i], 1e-4 * max + 1e-6, what + ": element " + i);
        }
    }

    @Test
    void epsilonToZeroOnABiasFreeReluNetworkIsInputTimesGradient() {
        Tensor x = NpyIO.read(DIGITS.resolve("input.npy"));
        try (Model m = biasFreeDigits()) {
            Tensor ixg = new InputXGradient(m).attribute(x, targets()).attributions();
            // Captum's ε 1e-9 and a smaller one (ε = 0 itself divides 0 by 0 where a unit is off)
            for (LrpRules rules : List.of(LrpRules.captum(), LrpRules.parse("Conv=epsilon:1e-12,Gemm=epsilon:1e-12,"
                    + "MaxPool=epsilon:1e-12"))) {
                Tensor lrp = new Lrp(m).rules(rules).attribute(x, targets()).attributions();
                assertMatches("LRP-0 vs input x gradient (" + rules + ")", ixg, lrp);
            }
            // and with a real epsilon it is not: the test can tell
            Tensor eps = new Lrp(m).rules("Conv=epsilon:0.5").attribute(x, targets()).attributions();
            assertThrows(AssertionError.class, () -> assertMatches("epsilon 0.5", ixg, eps));
        }
    }

    @Test
    void relevanceIsConservedLayerByLayerWithoutBiases() {
        Tensor x = NpyIO.read(DIGITS.resolve("input.npy"));
        try (Model m = biasFreeDigits()) {
            Attribution input = new Lrp(m).returnConvergenceDelta(true).attribute(x, targets());
            Attribution layers = Lrp.layer(m, DIGITS_VALUES.toArray(String[]::new)).attribute(x, targets());
            float[] logits = m.forward(x).data();
            for (int r = 0; r < 10; r++) {
                double f = logits[r * 10 + targets()[r]];
                List<String> all = new ArrayList<>(DIGITS_VALUES);
                all.add(0, m.graph().inputName());
                for (String v : all) {
                    Tensor rel = v.equals(m.graph().inputName()) ? input.attributions() : layers.byInput().get(v);
                    int per = rel.rowSize();
                    double sum = 0;
                    double abs = 0;
                    for (int k = r * per; k < (r + 1) * per; k++) {
                        sum += rel.data()[k];
                        abs += Math.abs(rel.data()[k]);
                    }
                    // float rounding: a few ulps of the relevance mass per layer crossed
                    assertEquals(f, sum, 1e-5 * abs + 1e-5, "row " + r + ": Σ relevance at " + v + " vs F_t");
                }
                assertEquals(0f, input.convergenceDelta().data()[r], 1e-4f, "row " + r + ": Captum's delta F_t − Σ R");
            }
        }
        // with biases the epsilon rule absorbs relevance: the delta is not zero (as Captum's digits deltas show)
        try (Model m = Model.load(DIGITS.resolve("model.onnx"), "cpu")) {
            Attribution a = new Lrp(m).returnConvergenceDelta(true).attribute(x, targets());
            double worst = 0;
            for (float d : a.convergenceDelta().data()) {
                worst = Math.max(worst, Math.abs(d));
            }
            assertTrue(worst > 0.1, "biases absorb relevance; max |delta| " + worst);
        }
    }

    @Test
    void digitsMatchCaptumsLrpForEveryRuleAssignment() {
        Tensor x = NpyIO.read(DIGITS.resolve("input.npy"));
        // id → kxai's rules; Captum's assignment of each is in make.py (CASES)
        Map<String, String> cases = Map.of("epsilon", "", "gamma", "Conv=gamma:0.25", "alpha1_beta0",
                "Conv=alpha1_beta0,/6/Gemm=epsilon:0.01", "mixed",
                "/0/Conv=epsilon:0.01,/2/Conv_output_0=alpha1_beta0:zero_bias,Gemm=gamma:0.25:zero_bias");
        try (Model m = Model.load(DIGITS.resolve("model.onnx"), "cpu")) {
            for (Map.Entry<String, String> c : cases.entrySet()) {
                String id = c.getKey();
                Attribution a = new Lrp(m).rules(c.getValue()).returnConvergenceDelta(true).attribute(x, targets());
                assertMatches(id, NpyIO.read(EXPECTED.resolve("digits_" + id + ".npy")), a.attributions());
                Tensor wantDelta = NpyIO.read(EXPECTED.resolve("digits_" + id + "_delta.npy"));
                for (int r = 0; r < 10; r++) {
                    assertEquals(wantDelta.data()[r], a.convergenceDelta().data()[r], 1e-3, id + " delta row " + r);
                }
                for (String v : List.of("/0/Conv_output_0", "/2/Conv_output_0", "/4/MaxPool_output_0", "logits")) {
                    Tensor got = Lrp.layer(m, v).rules(c.getValue()).attribute(x, targets()).attributions();
                    String f = "digits_" + id + "_layer_" + v.replaceAll("^/", "").replace('/', '_') + ".npy";
                    assertMatches(id + " LayerLRP at " + v, NpyIO.read(EXPECTED.resolve(f)), got);
                }
            }
            // the rules matter: gamma's numbers are not epsilon's
            Tensor eps = NpyIO.read(EXPECTED.resolve("digits_epsilon.npy"));
            Tensor gamma = new Lrp(m).rules("Conv=gamma:0.25").attribute(x, targets()).attributions();
            assertThrows(AssertionError.class, () -> assertMatches("gamma vs epsilon", eps, gamma));
        }
    }

    /** One Gemm layer y = W x + b over [1, 2] inputs. */
    private static Model oneLayer(float[] w, float[] b, int out) {
        Map<String, Tensor> consts = Map.of("w", new Tensor(new int[] {out, 2}, w), "b", new Tensor(new int[] {out}, b));
        List<Node> nodes = List.of(new Node("fc", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("x", "w", "b"), "y"));
        return Model.of(new Graph("one", "x", new int[] {-1, 2}, "y", nodes, consts), new CpuBackend());
    }

    @Test
    void gammaAlphaBetaAndIdentityByHandOnOneLayer() {
        // y0 = 2·x0 − 1·x1 + 0.5 at x = (1, 3): z = −0.5
        Tensor x = new Tensor(new int[] {1, 2}, new float[] {1, 3});
        try (Model m = oneLayer(new float[] {2, -1, 1, 1}, new float[] {0.5f, 0}, 2)) {
            float f = m.forward(x).data()[0];
            assertEquals(-0.5f, f);
            // epsilon (1e-9): R_i = x_i w_i / z · f = x_i w_i (up to ε)
            assertArrayEquals(new float[] {2, -3}, new Lrp(m).attribute(x, 0).attributions().data(), 1e-5f);
            // gamma 0.25: w' = (2.5, −1), z' = 2.5 − 3 + 0.5 = 0; sign(0) = 1: R = x w' / 1e-9 · f
            float[] gamma = new Lrp(m).rules("Gemm=gamma:0.25").attribute(x, 0).attributions().data();
            assertEquals(2.5 / 1e-9 * -0.5, gamma[0], 1e3);
            // gamma 0.25 without bias: z' = −0.5: R = (2.5, −3)·(−0.5)/(−0.5)
            assertArrayEquals(new float[] {2.5f, -3f},
                    new Lrp(m).rules("fc=gamma:0.25:zero_bias").attribute(x, 0).attributions().data(), 1e-5f);
            // alpha1_beta0 (Captum: weights clamped at 0, the bias kept): w' = (2, 0), z' = 2.5: R = (2, 0)·(−0.5)/2.5
            assertArrayEquals(new float[] {-0.4f, 0f},
                    new Lrp(m).rules("Gemm=alpha1_beta0").attribute(x, 0).attributions().data(), 1e-6f);
            // identity on a square layer: R_in = R_out = (f, 0) for target 0
            assertArrayEquals(new float[] {-0.5f, 0f},
                    new Lrp(m).rules("Gemm=identity").attribute(x, 0).attributions().data(), 0f);
        }
        try (Model m = oneLayer(new float[] {2, -1, 1, 1, 3, 3}, new float[] {0, 0, 0}, 3)) {
            InvalidInputException e = assertThrows(InvalidInputException.class,
                    () -> new Lrp(m).rules("fc=identity").attribute(x, 0));
            assertTrue(e.getMessage().contains("'fc' (Gemm)") && e.getMessage().contains("one shape"), e.getMessage());
        }
    }

    @Test
    void refusalsNameTheNodeOrTheKey() {
        Tensor x = new Tensor(new int[] {1, 2}, new float[] {1, 3});
        Map<String, Tensor> consts = Map.of("w", new Tensor(new int[] {2, 2}, new float[] {1, 2, 3, 4}));
        List<Node> nodes = List.of(new Node("fc", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("x", "w"), "z"),
                new Node("squash", "Sigmoid", new Op.Sigmoid(), List.of("z"), "y"));
        try (Model m = Model.of(new Graph("sig", "x", new int[] {-1, 2}, "y", nodes, consts), new CpuBackend())) {
            InvalidInputException e = assertThrows(InvalidInputException.class, () -> new Lrp(m).attribute(x, 0));
            assertTrue(e.getMessage().contains("'squash' (Sigmoid)"), e.getMessage());
            // LayerLRP below the sigmoid still needs the way through it
            assertThrows(InvalidInputException.class, () -> Lrp.layer(m, "z").attribute(x, 0));
            e = assertThrows(InvalidInputException.class, () -> new Lrp(m).rules("fc2=epsilon"));
            assertTrue(e.getMessage().contains("'fc2'"), e.getMessage());
            e = assertThrows(InvalidInputException.class, () -> LrpRules.parse("Conv=gama:0.25"));
            assertTrue(e.getMessage().contains("'Conv'") && e.getMessage().contains("gama:0.25"), e.getMessage());
            e = assertThrows(InvalidInputException.class, () -> LrpRules.parse("Conv=epsilon:x"));
            assertTrue(e.getMessage().contains("epsilon:x"), e.getMessage());
        }
        assertEquals(LrpRule.gamma(0.5, true), LrpRule.parse("gamma:0.5:zero_bias"));
        assertEquals(LrpRule.epsilon(1e-9), LrpRule.parse("epsilon"));
        assertEquals(LrpRule.alpha1Beta0(false), LrpRule.parse(LrpRule.alpha1Beta0(false).toString()));
    }

    @Test
    void matMulWithItsBiasAddIsOneLayerAsGemmIs() {
        // the same two-layer network as Gemm nodes and as MatMul + Add (how exporters write Linear on 3-D inputs)
        float[] w0 = {0.5f, -1f, 2f, 0.25f, 1.5f, -0.75f};   // [3, 2] (out, in)
        float[] w0t = {0.5f, 2f, 1.5f, -1f, 0.25f, -0.75f};  // [2, 3]
        float[] b0 = {0.1f, -0.2f, 0.3f};
        float[] w1 = {1f, -2f, 0.5f};                        // [1, 3]
        Map<String, Tensor> gc = Map.of("w0", new Tensor(new int[] {3, 2}, w0), "b0", new Tensor(new int[] {3}, b0),
                "w1", new Tensor(new int[] {1, 3}, w1), "b1", new Tensor(new int[] {1}, new float[] {0.05f}));
        List<Node> gemm = List.of(new Node("fc0", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("x", "w0", "b0"), "z0"),
                new Node("r0", "Relu", new Op.Relu(), List.of("z0"), "h0"),
                new Node("fc1", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("h0", "w1", "b1"), "y"));
        Map<String, Tensor> mc = Map.of("w0", new Tensor(new int[] {2, 3}, w0t), "b0", new Tensor(new int[] {3}, b0),
                "w1", new Tensor(new int[] {3, 1}, w1), "b1", new Tensor(new int[] {1}, new float[] {0.05f}));
        List<Node> matmul = List.of(new Node("mm0", "MatMul", new Op.MatMul(), List.of("x", "w0"), "m0"),
                new Node("add0", "Add", new Op.Add(), List.of("m0", "b0"), "z0"),
                new Node("r0", "Relu", new Op.Relu(), List.of("z0"), "h0"),
                new Node("mm1", "MatMul", new Op.MatMul(), List.of("h0", "w1"), "m1"),
                new Node("add1", "Add", new Op.Add(), List.of("b1", "m1"), "y"));
        Tensor x = new Tensor(new int[] {2, 2}, new float[] {1f, 2f, -0.5f, 3f});
        try (Model g = Model.of(new Graph("gemm", "x", new int[] {-1, 2}, "y", gemm, gc), new CpuBackend());
                Model m = Model.of(new Graph("matmul", "x", new int[] {-1, 2}, "y", matmul, mc), new CpuBackend())) {
            for (String[] spec : new String[][] {{"", ""}, {"Gemm=gamma:0.25:zero_bias", "MatMul=gamma:0.25:zero_bias"},
                    {"fc0=alpha1_beta0,fc1=epsilon:0.1", "add0=alpha1_beta0,mm1=epsilon:0.1"}}) {
                Tensor a = new Lrp(g).rules(spec[0]).attribute(x, 0, 0).attributions();
                Tensor b = new Lrp(m).rules(spec[1]).attribute(x, 0, 0).attributions();
                assertArrayEquals(a.data(), b.data(), 1e-5f, spec[1]);
                Tensor la = Lrp.layer(g, "z0").rules(spec[0]).attribute(x, 0, 0).attributions();
                Tensor lb = Lrp.layer(m, "z0").rules(spec[1]).attribute(x, 0, 0).attributions();
                assertArrayEquals(la.data(), lb.data(), 1e-5f, "LayerLRP " + spec[1]);
            }
            InvalidInputException e = assertThrows(InvalidInputException.class,
                    () -> Lrp.layer(m, "m0").attribute(x, 0, 0));
            assertTrue(e.getMessage().contains("'mm0'"), e.getMessage());
        }
    }

    @Test
    void registeredAsLrpAndLayerLrp() {
        Tensor x = NpyIO.read(DIGITS.resolve("input.npy"));
        try (Model m = Model.load(DIGITS.resolve("model.onnx"), "cpu")) {
            Attribution a = Methods.create("lrp", m, Methods.Params.of(Map.of("rules", "Conv=gamma:0.25")))
                    .attribute(m.inputs(x), targets());
            assertMatches("registry lrp", NpyIO.read(EXPECTED.resolve("digits_gamma.npy")), a.attributions());
            Attribution l = Methods.create("layer_lrp", m, Methods.Params.of(Map.of("layer", "/2/Conv_output_0")))
                    .attribute(m.inputs(x), targets());
            assertMatches("registry layer_lrp", NpyIO.read(EXPECTED.resolve("digits_epsilon_layer_2_Conv_output_0.npy")),
                    l.attributions());
        }
    }
}
