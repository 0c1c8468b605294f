package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Captum's remaining layer and neuron methods (LayerDeepLift, LayerDeepLiftShap, LayerGradientShap,
 * LayerFeatureAblation, NeuronConductance, NeuronDeepLift, NeuronDeepLiftShap, NeuronGradientShap,
 * NeuronGuidedBackprop, NeuronDeconvolution, NeuronFeatureAblation) against identities they must
 * satisfy on the bundled reference models: where the layer is followed (or the neuron preceded) only
 * by affine operators the methods are exact and equal each other's closed forms; at the logits a
 * neuron method is its input method with the neuron as the target; a neuron's guided backprop is
 * guided backprop of the network truncated at the layer.
 *
 * <p>mlp_tabular: input [16, 8] → Gemm (/0/Gemm_output_0) → Relu (/1/Relu_output_0) → Gemm
 * (/2/Gemm_output_0) → Tanh (/3/Tanh_output_0) → Gemm (logits, 3 classes).
 */
class LayerNeuronCatalogueTest {
    private static final String GEMM1 = "/0/Gemm_output_0";
    private static final String RELU1 = "/1/Relu_output_0";
    private static final String TANH = "/3/Tanh_output_0";
    private static Model mlp;
    private static Model digits;
    private static Tensor x;
    private static Tensor b;
    private static Tensor xd;

    @BeforeAll
    static void load() {
        Path d = TestData.reference("mlp_tabular");
        mlp = Model.load(d.resolve("model.onnx"), "cpu");
        x = NpyIO.read(d.resolve("input.npy"));
        Tensor u = NpyIO.read(d.resolve("baseline_uniform.npy"));
        b = u.dim(0) == x.dim(0) ? u : Baseline.of(u).expand(x);
        Path dd = TestData.reference("digits_cnn");
        digits = Model.load(dd.resolve("model.onnx"), "cpu");
        xd = NpyIO.read(dd.resolve("input.npy"));
    }

    @AfterAll
    static void close() {
        mlp.close();
        digits.close();
    }

    private static Attribution run(Model m, Tensor in, String method, Map<String, Object> params, int... t) {
        return Methods.create(method, m, Methods.Params.of(params)).attribute(m.inputs(in), t);
    }

    private static Map<String, Object> p(Object... kv) {
        Map<String, Object> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private static Tensor layer(Model m, String layer, Tensor in) {
        return LayerMethods.activation(m, layer, m.inputs(in)).attributions();
    }

    /** ∂F_t/∂layer (multiply_by_inputs false). */
    private static Tensor layerGradient(Model m, String layer, Tensor in, int t) {
        return LayerMethods.gradientXActivation(m, layer, false, m.inputs(in), t).attributions();
    }

    private static double[] rowSums(Tensor a) {
        int per = a.rowSize();
        double[] s = new double[a.dim(0)];
        for (int r = 0; r < s.length; r++) {
            for (int f = 0; f < per; f++) {
                s[r] += a.data()[r * per + f];
            }
        }
        return s;
    }

    private static double[] outputAt(Model m, Tensor in, int t) {
        Tensor y = m.forward(in);
        double[] v = new double[y.dim(0)];
        for (int r = 0; r < v.length; r++) {
            v[r] = y.data()[r * y.rowSize() + t];
        }
        return v;
    }

    private static void close(float[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol * Math.max(1, Math.abs(want[i])), what + " element " + i);
        }
    }

    // ------------------------------------------------------------------ LayerDeepLift

    @Test
    void layerDeepLiftBeforeALinearTailIsTheGradientTimesTheLayerChange() {
        // logits = W · tanh + c: the multipliers at the Tanh output are W[t] exactly
        Attribution a = run(mlp, x, "layer_deeplift", p("layer", TANH, "baselines", Baseline.of(b),
                "return_convergence_delta", true), 2);
        Tensor at = a.byInput().get(TANH);
        Tensor lx = layer(mlp, TANH, x);
        Tensor lb = layer(mlp, TANH, b);
        Tensor g = layerGradient(mlp, TANH, x, 2);
        assertArrayEquals(lx.shape(), at.shape(), "the layer's shape");
        float[] want = new float[lx.size()];
        for (int i = 0; i < want.length; i++) {
            want[i] = g.data()[i] * (lx.data()[i] - lb.data()[i]);
        }
        close(want, at.data(), 1e-5, "W[t] ⊙ (tanh(x) − tanh(b))");
        double[] fx = outputAt(mlp, x, 2);
        double[] fb = outputAt(mlp, b, 2);
        double[] s = rowSums(at);
        for (int r = 0; r < s.length; r++) {
            assertEquals(fx[r] - fb[r], s[r], 1e-4, "completeness, row " + r);
            assertEquals(s[r] - (fx[r] - fb[r]), a.convergenceDelta().data()[r], 1e-5, "Captum's delta, row " + r);
        }
        Tensor m = run(mlp, x, "layer_deeplift", p("layer", TANH, "baselines", Baseline.of(b), "multiply_by_inputs",
                false), 2).byInput().get(TANH);
        close(g.data(), m.data(), 1e-6, "multiply_by_inputs false: the multipliers");
    }

    @Test
    void layerDeepLiftIsCompleteThroughTheRescaleRule() {
        // Relu output → Gemm → Tanh (rescaled) → Gemm: the rescale rule is exact on a chain
        for (int t = 0; t < 3; t++) {
            Attribution a = run(mlp, x, "layer_deeplift", p("layer", RELU1, "baselines", Baseline.of(b),
                    "return_convergence_delta", true), t);
            double[] fx = outputAt(mlp, x, t);
            double[] fb = outputAt(mlp, b, t);
            double[] s = rowSums(a.byInput().get(RELU1));
            Tensor in = new DeepLift(mlp).baselines(Baseline.of(b)).attribute(x, t).attributions();
            double[] si = rowSums(in);
            for (int r = 0; r < s.length; r++) {
                assertEquals(fx[r] - fb[r], s[r], 1e-4 * Math.max(1, Math.abs(fx[r] - fb[r])), "target " + t + " row " + r);
                assertEquals(0, a.convergenceDelta().data()[r], 1e-4, "delta, target " + t + " row " + r);
                assertEquals(si[r], s[r], 1e-4, "the layer's and the input's DeepLift sum alike, row " + r);
            }
        }
    }

    @Test
    void layerDeepLiftOnTheCnnAfterTheMaxPoolIsExactAndItsDeltaIsCaptums() {
        String pool = "/4/MaxPool_output_0";
        Attribution a = run(digits, xd, "layer_deeplift", p("layer", pool, "return_convergence_delta", true), 3);
        Tensor at = a.byInput().get(pool);
        Tensor lx = layer(digits, pool, xd);
        Tensor lb = layer(digits, pool, Tensor.zeros(xd.shape()));
        Tensor g = layerGradient(digits, pool, xd, 3);
        float[] want = new float[lx.size()];
        for (int i = 0; i < want.length; i++) {
            want[i] = g.data()[i] * (lx.data()[i] - lb.data()[i]);
        }
        close(want, at.data(), 1e-5, "Flatten + Gemm after the layer");
        // earlier in the CNN the MaxPool keeps its gradient (Captum 0.8.0): the delta is what it is, defined alike
        String relu = "/1/Relu_output_0";
        Attribution e = run(digits, xd, "layer_deeplift", p("layer", relu, "return_convergence_delta", true), 3);
        double[] fx = outputAt(digits, xd, 3);
        double[] fb = outputAt(digits, Tensor.zeros(xd.shape()), 3);
        double[] s = rowSums(e.byInput().get(relu));
        for (int r = 0; r < s.length; r++) {
            assertEquals(s[r] - (fx[r] - fb[r]), e.convergenceDelta().data()[r], 1e-4, "row " + r);
        }
        Attribution mp = run(digits, xd, "layer_deeplift", p("layer", relu, "return_convergence_delta", true,
                "max_pool_rule", true), 3);
        for (int r = 0; r < s.length; r++) {
            assertEquals(0, mp.convergenceDelta().data()[r], 2e-3 * Math.max(1, Math.abs(fx[r] - fb[r])),
                    "the documented max-pool rule is complete, row " + r);
        }
    }

    @Test
    void layerDeepLiftShapIsTheMeanOverTheBaselineRows() {
        Tensor b0 = row(b, 0);
        Tensor b1 = row(b, 5);
        Tensor dist = stack(b0, b1);
        Attribution shap = run(mlp, x, "layer_deeplift_shap", p("layer", RELU1, "baselines", Baseline.of(dist),
                "return_convergence_delta", true), 1);
        Tensor one = run(mlp, x, "layer_deeplift", p("layer", RELU1, "baselines", Baseline.of(b0)), 1).byInput().get(RELU1);
        Tensor two = run(mlp, x, "layer_deeplift", p("layer", RELU1, "baselines", Baseline.of(b1)), 1).byInput().get(RELU1);
        float[] mean = new float[one.size()];
        for (int i = 0; i < mean.length; i++) {
            mean[i] = (one.data()[i] + two.data()[i]) / 2;
        }
        Tensor got = shap.byInput().get(RELU1);
        assertArrayEquals(one.shape(), got.shape());
        close(mean, got.data(), 1e-5, "mean over the two baselines");
        assertEquals(2 * x.dim(0), shap.convergenceDelta().size(), "a delta per (example, baseline) pair, as Captum");
        // two equal rows (Captum wants more than one): LayerDeepLift from that row
        Tensor same = run(mlp, x, "layer_deeplift_shap", p("layer", RELU1, "baselines", Baseline.of(stack(b0, b0))), 1)
                .byInput().get(RELU1);
        close(one.data(), same.data(), 1e-6, "equal rows");
    }

    // ------------------------------------------------------------------ NeuronDeepLift

    @Test
    void neuronDeepLiftAtTheLogitsIsDeepLiftOfThatTarget() {
        for (int t = 0; t < 3; t++) {
            Tensor dl = new DeepLift(mlp).baselines(Baseline.of(b)).attribute(x, t).attributions();
            Tensor n = run(mlp, x, "neuron_deeplift", p("layer", "logits", "neuron", new int[] {t}, "baselines",
                    Baseline.of(b)), 0).attributions();
            assertArrayEquals(dl.data(), n.data(), 1e-7f, "target " + t);
        }
    }

    @Test
    void neuronDeepLiftOfAReluAfterTheFirstLayerIsItsRescaledWeights() {
        // relu(w·x + c): multiplier Δrelu/Δz times w; Σ attributions = relu(z(x)) − relu(z(b)) exactly
        int j = 3;
        Tensor a = DeepLift.neuron(mlp, RELU1, j).baselines(Baseline.of(b)).returnConvergenceDelta(true).attribute(x)
                .attributions();
        Tensor w = run(mlp, x, "neuron_gradient", p("layer", GEMM1, "neuron", j), 0).attributions(); // w per row
        Tensor zx = layer(mlp, GEMM1, x);
        Tensor zb = layer(mlp, GEMM1, b);
        int per = zx.rowSize();
        int n = x.rowSize();
        for (int r = 0; r < x.dim(0); r++) {
            double dz = zx.data()[r * per + j] - zb.data()[r * per + j];
            double dr = Math.max(0, zx.data()[r * per + j]) - Math.max(0, zb.data()[r * per + j]);
            double scale = Math.abs(dz) < 1e-10 ? (zx.data()[r * per + j] > 0 ? 1 : 0) : dr / dz;
            double sum = 0;
            for (int f = 0; f < n; f++) {
                int e = r * n + f;
                assertEquals(scale * w.data()[e] * (x.data()[e] - b.data()[e]), a.data()[e], 1e-5, "row " + r + " f " + f);
                sum += a.data()[e];
            }
            assertEquals(dr, sum, 1e-5, "completeness for the neuron, row " + r);
        }
        Attribution withDelta = DeepLift.neuron(mlp, RELU1, j).baselines(Baseline.of(b)).returnConvergenceDelta(true)
                .attribute(x);
        for (int r = 0; r < x.dim(0); r++) {
            assertEquals(0, withDelta.convergenceDelta().data()[r], 1e-5, "row " + r);
        }
    }

    @Test
    void neuronDeepLiftBeforeASoftmaxIsNotRefused() {
        // DeepLift refuses a Softmax on the way back from the target; a neuron before it never reaches it
        Path d = TestData.reference("mlp_bn_softmax");
        try (Model m = Model.load(d.resolve("model.onnx"), "cpu")) {
            Tensor in = NpyIO.read(d.resolve("input.npy"));
            assertThrows(InvalidInputException.class, () -> new DeepLift(m).attribute(in, 0));
            String relu = m.graph().nodes().stream().filter(n -> n.opType().equals("Relu")).findFirst().orElseThrow()
                    .output();
            Attribution a = DeepLift.neuron(m, relu, 1).returnConvergenceDelta(true).attribute(in);
            for (int r = 0; r < in.dim(0); r++) {
                assertEquals(0, a.convergenceDelta().data()[r], 1e-5, "complete for the neuron, row " + r);
            }
        }
    }

    @Test
    void neuronDeepLiftShapIsTheMeanOverTheBaselineRows() {
        Tensor b0 = row(b, 2);
        Tensor b1 = row(b, 9);
        Map<String, Object> common = p("layer", TANH, "neuron", 1);
        common.put("baselines", Baseline.of(stack(b0, b1)));
        Tensor shap = run(mlp, x, "neuron_deeplift_shap", common, 0).attributions();
        Tensor one = DeepLift.neuron(mlp, TANH, 1).baselines(Baseline.of(b0)).attribute(x).attributions();
        Tensor two = DeepLift.neuron(mlp, TANH, 1).baselines(Baseline.of(b1)).attribute(x).attributions();
        float[] mean = new float[one.size()];
        for (int i = 0; i < mean.length; i++) {
            mean[i] = (one.data()[i] + two.data()[i]) / 2;
        }
        close(mean, shap.data(), 1e-5, "mean over the baselines");
    }

    // ------------------------------------------------------------------ GradientShap family

    @Test
    void neuronGradientShapAtTheLogitsIsGradientShapOfThatTarget() {
        Tensor dist = stack(row(b, 0), row(b, 1), row(b, 2));
        Map<String, Object> gs = p("n_samples", 7, "stdevs", 0.2, "seed", 11L, "baselines", Baseline.of(dist));
        Tensor want = run(mlp, x, "gradient_shap", gs, 2).attributions();
        Map<String, Object> ngs = new HashMap<>(gs);
        ngs.put("layer", "logits");
        ngs.put("neuron", 2);
        Tensor got = run(mlp, x, "neuron_gradient_shap", ngs, 0).attributions();
        assertArrayEquals(want.data(), got.data(), 1e-7f, "the same draws, the neuron as the target");
    }

    @Test
    void shapVariantsWithOneBaselineRowAndNoNoiseReduceToTheirExactForms() {
        Tensor b0 = row(b, 4);
        // neuron of an affine layer: the gradient is w everywhere, so every draw gives w ⊙ (x − b)
        Tensor ngs = run(mlp, x, "neuron_gradient_shap", p("layer", GEMM1, "neuron", 5, "n_samples", 3, "seed", 1L,
                "baselines", Baseline.of(b0)), 0).attributions();
        Tensor nfa = run(mlp, x, "neuron_feature_ablation", p("layer", GEMM1, "neuron", 5, "baselines", Baseline.of(b0)),
                0).attributions();
        close(nfa.data(), ngs.data(), 1e-5, "neuron_gradient_shap = w ⊙ (x − b) = neuron_feature_ablation");
        // layer before a linear tail: the gradient is W[t] everywhere: W[t] ⊙ (layer(x) − layer(b)) = LayerDeepLift
        Attribution lgs = run(mlp, x, "layer_gradient_shap", p("layer", TANH, "n_samples", 4, "seed", 3L, "baselines",
                Baseline.of(b0), "return_convergence_delta", true), 1);
        Tensor ldl = run(mlp, x, "layer_deeplift", p("layer", TANH, "baselines", Baseline.of(b0)), 1).byInput().get(TANH);
        close(ldl.data(), lgs.byInput().get(TANH).data(), 1e-5, "layer_gradient_shap = layer_deeplift");
        assertEquals(4 * x.dim(0), lgs.convergenceDelta().size(), "Captum's delta: one per draw");
        for (int i = 0; i < lgs.convergenceDelta().size(); i++) {
            assertEquals(0, lgs.convergenceDelta().data()[i], 1e-4, "complete before a linear tail, draw " + i);
        }
    }

    @Test
    void shapVariantsAreSeededAndChunkedAlike() {
        Tensor dist = stack(row(b, 0), row(b, 7), row(b, 12));
        Map<String, Object> lp = p("layer", RELU1, "n_samples", 6, "stdevs", 0.1, "seed", 5L, "baselines",
                Baseline.of(dist));
        Tensor a1 = run(mlp, x, "layer_gradient_shap", lp, 0).attributions();
        Tensor a2 = run(mlp, x, "layer_gradient_shap", lp, 0).attributions();
        assertArrayEquals(a1.data(), a2.data(), "the same seed, the same draws");
        Map<String, Object> chunked = new HashMap<>(lp);
        chunked.put("internal_batch_size", 5);
        assertArrayEquals(a1.data(), run(mlp, x, "layer_gradient_shap", chunked, 0).attributions().data(), 1e-6f,
                "chunked = unchunked");
        Map<String, Object> other = new HashMap<>(lp);
        other.put("seed", 6L);
        assertFalse(java.util.Arrays.equals(a1.data(), run(mlp, x, "layer_gradient_shap", other, 0).attributions().data()),
                "another seed draws otherwise");
        Map<String, Object> np = p("layer", TANH, "neuron", 0, "n_samples", 6, "stdevs", 0.1, "seed", 5L, "baselines",
                Baseline.of(dist));
        assertArrayEquals(run(mlp, x, "neuron_gradient_shap", np, 0).attributions().data(),
                run(mlp, x, "neuron_gradient_shap", np, 0).attributions().data());
    }

    // ------------------------------------------------------------------ NeuronConductance

    @Test
    void neuronConductanceOfAnAffineNeuronIsItsChangeTimesInternalInfluence() {
        // n = w·x + c: ∂n/∂x = w on the whole path, so attr_i = w_i (x_i − b_i) Σ_k w_k ∂F/∂n(x_k) and the sum is
        // (n(x) − n(b)) times internal influence at the neuron (the same rule and steps)
        int j = 6;
        int t = 1;
        Map<String, Object> common = p("layer", GEMM1, "n_steps", 20, "method", "riemann_trapezoid", "baselines",
                Baseline.of(b));
        Tensor ii = run(mlp, x, "internal_influence", common, t).byInput().get(GEMM1);
        Map<String, Object> nc = new HashMap<>(common);
        nc.put("neuron", j);
        nc.remove("method"); // Captum's default for neuron conductance is riemann_trapezoid
        Tensor a = run(mlp, x, "neuron_conductance", nc, t).attributions();
        Tensor w = run(mlp, x, "neuron_gradient", p("layer", GEMM1, "neuron", j), 0).attributions();
        Tensor zx = layer(mlp, GEMM1, x);
        Tensor zb = layer(mlp, GEMM1, b);
        int per = zx.rowSize();
        int n = x.rowSize();
        double[] s = rowSums(a);
        for (int r = 0; r < x.dim(0); r++) {
            double infl = ii.data()[r * per + j];
            for (int f = 0; f < n; f++) {
                int e = r * n + f;
                assertEquals(w.data()[e] * (x.data()[e] - b.data()[e]) * infl, a.data()[e], 1e-5, "row " + r + " f " + f);
            }
            assertEquals((zx.data()[r * per + j] - zb.data()[r * per + j]) * infl, s[r], 1e-5, "row " + r);
        }
        Map<String, Object> chunked = new HashMap<>(nc);
        chunked.put("internal_batch_size", x.dim(0) * 3);
        close(a.data(), run(mlp, x, "neuron_conductance", chunked, t).attributions().data(), 1e-6,
                "chunked = unchunked");
        Map<String, Object> local = new HashMap<>(nc);
        local.put("multiply_by_inputs", false);
        Tensor l = run(mlp, x, "neuron_conductance", local, t).attributions();
        for (int e = 0; e < l.size(); e++) {
            float d = x.data()[e] - b.data()[e];
            if (Math.abs(d) > 1e-3) {
                assertEquals(a.data()[e] / d, l.data()[e], 1e-4 * Math.max(1, Math.abs(l.data()[e])), "element " + e);
            }
        }
    }

    @Test
    void neuronConductanceSumsToTheNeuronsLayerConductance() {
        // Σ_i over the inputs: Σ_k w_k ∂F/∂n (∂n/∂x · (x − b)) ≈ ∫ ∂F/∂n dn, the neuron's layer conductance
        int j = 2;
        int t = 0;
        Tensor lc = run(mlp, x, "layer_conductance", p("layer", TANH, "n_steps", 400, "baselines", Baseline.of(b)), t)
                .byInput().get(TANH);
        double[] s = rowSums(run(mlp, x, "neuron_conductance", p("layer", TANH, "neuron", j, "n_steps", 400,
                "baselines", Baseline.of(b)), t).attributions());
        int per = lc.rowSize();
        for (int r = 0; r < s.length; r++) {
            double want = lc.data()[r * per + j];
            assertEquals(want, s[r], 2e-3 * Math.max(0.1, Math.abs(want)), "row " + r);
        }
    }

    // ------------------------------------------------------------------ guided backprop, deconvolution

    @Test
    void neuronGuidedBackpropIsGuidedBackpropOfTheTruncatedNetwork() {
        String flat = "/5/Flatten_output_0"; // conv, relu, conv, relu, maxpool before it
        try (Model cut = Model.of(digits.graph().withOutput(flat), digits.backend())) {
            for (int j : new int[] {0, 37, 101}) {
                Tensor gb = GuidedBackprop.guided(cut).attribute(xd, j).attributions();
                Tensor n = run(digits, xd, "neuron_guided_backprop", p("layer", flat, "neuron", j), 0).attributions();
                assertArrayEquals(gb.data(), n.data(), 1e-7f, "guided, neuron " + j);
                Tensor dc = GuidedBackprop.deconvolution(cut).attribute(xd, j).attributions();
                Tensor nd = run(digits, xd, "neuron_deconvolution", p("layer", flat, "neuron", j), 0).attributions();
                assertArrayEquals(dc.data(), nd.data(), 1e-7f, "deconvolution, neuron " + j);
                Tensor plain = run(digits, xd, "neuron_gradient", p("layer", flat, "neuron", j), 0).attributions();
                assertFalse(java.util.Arrays.equals(plain.data(), n.data()), "the rule changed the gradient, neuron " + j);
                assertFalse(java.util.Arrays.equals(n.data(), nd.data()), "guided differs from deconvolution, neuron " + j);
            }
        }
        // at a neuron of a Relu's output the Relu computing it takes the rule too (Captum hooks that nn.ReLU)
        String relu = "/3/Relu_output_0";
        int[] neuron = {5, 3, 4};
        int flatIndex = LayerMethods.flatNeuron(digits, relu, neuron);
        try (Model cut = Model.of(digits.graph().withOutput(relu), digits.backend())) {
            for (boolean guided : new boolean[] {true, false}) {
                Tensor want = (guided ? GuidedBackprop.guided(cut) : GuidedBackprop.deconvolution(cut))
                        .attribute(xd, flatIndex).attributions();
                Tensor n = run(digits, xd, guided ? "neuron_guided_backprop" : "neuron_deconvolution",
                        p("layer", relu, "neuron", neuron), 0).attributions();
                assertArrayEquals(want.data(), n.data(), 1e-7f, (guided ? "guided" : "deconvolution") + " at the Relu");
            }
        }
        Tensor logit = run(digits, xd, "neuron_guided_backprop", p("layer", "logits", "neuron", 7), 0).attributions();
        assertArrayEquals(GuidedBackprop.guided(digits).attribute(xd, 7).attributions().data(), logit.data(), 1e-7f,
                "at the logits: guided backprop of that target");
    }

    // ------------------------------------------------------------------ ablation

    @Test
    void neuronFeatureAblationOfALinearNeuronIsItsWeightsTimesTheChange() {
        int j = 9;
        Tensor a = run(mlp, x, "neuron_feature_ablation", p("layer", GEMM1, "neuron", j, "baselines", Baseline.of(b)), 0)
                .attributions();
        Tensor w = run(mlp, x, "neuron_gradient", p("layer", GEMM1, "neuron", j), 0).attributions();
        float[] want = new float[x.size()];
        for (int e = 0; e < want.length; e++) {
            want[e] = w.data()[e] * (x.data()[e] - b.data()[e]);
        }
        close(want, a.data(), 1e-5, "w ⊙ (x − b)");
        // groups: features {0..3} and {4..7} ablated together get their group's sum
        float[] mask = {0, 0, 0, 0, 1, 1, 1, 1};
        Tensor grouped = run(mlp, x, "neuron_feature_ablation", p("layer", GEMM1, "neuron", j, "baselines",
                Baseline.of(b), "feature_mask", new Tensor(new int[] {1, 8}, mask), "perturbations_per_eval", 2), 0)
                .attributions();
        int n = x.rowSize();
        for (int r = 0; r < x.dim(0); r++) {
            for (int f = 0; f < n; f++) {
                double sum = 0;
                for (int q = 0; q < n; q++) {
                    if (mask[q] == mask[f]) {
                        sum += want[r * n + q];
                    }
                }
                assertEquals(sum, grouped.data()[r * n + f], 1e-5 * Math.max(1, Math.abs(sum)), "row " + r + " f " + f);
            }
        }
        // at the logits: feature ablation of that target
        Tensor fa = run(mlp, x, "feature_ablation", p("baselines", Baseline.of(b)), 2).attributions();
        Tensor nfa = run(mlp, x, "neuron_feature_ablation", p("layer", "logits", "neuron", 2, "baselines",
                Baseline.of(b)), 0).attributions();
        assertArrayEquals(fa.data(), nfa.data(), 1e-7f);
    }

    @Test
    void layerFeatureAblationBeforeALinearTailIsEachUnitsContribution() {
        int t = 2;
        Tensor a = run(mlp, x, "layer_feature_ablation", p("layer", TANH, "layer_baselines", Baseline.scalar(0.25f)), t)
                .byInput().get(TANH);
        Tensor lx = layer(mlp, TANH, x);
        Tensor g = layerGradient(mlp, TANH, x, t);
        assertArrayEquals(lx.shape(), a.shape(), "the layer's shape");
        float[] want = new float[lx.size()];
        for (int i = 0; i < want.length; i++) {
            want[i] = g.data()[i] * (lx.data()[i] - 0.25f);
        }
        close(want, a.data(), 2e-5, "W[t, j] (tanh_j(x) − 0.25)");
        // a layer mask of two groups: each unit gets its group's sum; perturbations_per_eval changes nothing
        int per = lx.rowSize();
        float[] mask = new float[per];
        for (int j = 0; j < per; j++) {
            mask[j] = j % 2;
        }
        Tensor grouped = run(mlp, x, "layer_feature_ablation", p("layer", TANH, "layer_baselines", Baseline.scalar(0.25f),
                "layer_mask", new Tensor(new int[] {per}, mask), "perturbations_per_eval", 3), t).byInput().get(TANH);
        for (int r = 0; r < x.dim(0); r++) {
            for (int j = 0; j < per; j++) {
                double sum = 0;
                for (int q = 0; q < per; q++) {
                    if (mask[q] == mask[j]) {
                        sum += want[r * per + q];
                    }
                }
                assertEquals(sum, grouped.data()[r * per + j], 2e-5 * Math.max(1, Math.abs(sum)), "row " + r + " unit " + j);
            }
        }
        // on the CNN: the ablated layer is what the rest of the network reads (F(x) − F(x, unit at 0))
        String pool = "/4/MaxPool_output_0";
        Tensor c = run(digits, xd, "layer_feature_ablation", p("layer", pool), 1).byInput().get(pool);
        Tensor lp = layer(digits, pool, xd);
        Tensor gp = layerGradient(digits, pool, xd, 1);
        float[] wp = new float[lp.size()];
        for (int i = 0; i < wp.length; i++) {
            wp[i] = gp.data()[i] * lp.data()[i];
        }
        close(wp, c.data(), 2e-5, "digits: W[t] ⊙ pool(x)");
    }

    // ------------------------------------------------------------------ registry

    @Test
    void everyMethodIsRegisteredUnderCaptumsNameAndRefusesInputSideAttribution() {
        for (String name : List.of("layer_deeplift", "layer_deeplift_shap", "layer_gradient_shap", "layer_feature_ablation",
                "neuron_conductance", "neuron_deeplift", "neuron_deeplift_shap", "neuron_gradient_shap",
                "neuron_guided_backprop", "neuron_deconvolution", "neuron_feature_ablation")) {
            assertTrue(Methods.known(name), name);
            assertTrue(Methods.entry(name).parameters().contains("layer"), name + " takes --layer");
            // each takes only its own flag (an unused parameter is refused, issue 13)
            Map<String, Object> params = name.startsWith("layer_") ? p("layer", TANH, "attribute_to_layer_input", true)
                    : p("layer", TANH, "neuron", 0, "attribute_to_neuron_input", true);
            InvalidInputException e = assertThrows(InvalidInputException.class,
                    () -> Methods.create(name, mlp, Methods.Params.of(params)));
            assertTrue(e.getMessage().contains("not supported"), name + ": " + e.getMessage());
        }
        assertThrows(InvalidInputException.class, () -> run(mlp, x, "neuron_deeplift", p("layer", TANH), 0),
                "a neuron method without a neuron");
        assertThrows(InvalidInputException.class, () -> run(mlp, x, "layer_deeplift", p(), 0),
                "a layer method without a layer");
    }

    private static Tensor row(Tensor t, int r) {
        int per = t.rowSize();
        int[] s = t.shape();
        s[0] = 1;
        return new Tensor(s, java.util.Arrays.copyOfRange(t.data(), r * per, (r + 1) * per));
    }

    private static Tensor stack(Tensor... rows) {
        int per = rows[0].rowSize();
        float[] d = new float[rows.length * per];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i].data(), 0, d, i * per, per);
        }
        int[] s = rows[0].shape();
        s[0] = rows.length;
        return new Tensor(s, d);
    }
}
