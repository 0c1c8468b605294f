package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
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
 * DeepLift, guided backprop / deconvolution, Grad-CAM and layer conductance against their
 * definitions on graphs small enough to work out by hand, and against their axioms where they
 * have one. Captum's numbers are the reference cases' (ReferenceCasesTest).
 */
class RuleMethodsTest {
    /** Gemm(x, W [out, in], b) → Relu, repeated: a ReLU chain over input x of [batch, n]. */
    private static Model chain(int n, float[][] weights, float[][] biases) {
        List<Node> nodes = new ArrayList<>();
        Map<String, Tensor> consts = new HashMap<>();
        String last = "x";
        int in = n;
        for (int l = 0; l < weights.length; l++) {
            int out = biases[l].length;
            consts.put("w" + l, new Tensor(new int[] {out, in}, weights[l]));
            consts.put("b" + l, new Tensor(new int[] {out}, biases[l]));
            nodes.add(new Node("gemm" + l, "Gemm", new Op.Gemm(1f, 1f, false, true), List.of(last, "w" + l, "b" + l),
                    "z" + l));
            nodes.add(new Node("relu" + l, "Relu", new Op.Relu(), List.of("z" + l), "h" + l));
            last = "h" + l;
            in = out;
        }
        return Model.of(new Graph("chain", "x", new int[] {-1, n}, last, nodes, consts), new CpuBackend());
    }

    private static final Tensor AT_3_1 = new Tensor(new int[] {1, 2}, new float[] {3, 1});

    @Test
    void deepLiftTellsApartTheIgPapersTwoEqualNetworks() {
        // Sundararajan et al. 2017: f = ReLU(ReLU(x1) − 1 − ReLU(x2)), g = ReLU(ReLU(x1 − 1) − ReLU(x2))
        try (Model f = chain(2, new float[][] {{1, 0, 0, 1}, {1, -1}}, new float[][] {{0, 0}, {-1}});
                Model g = chain(2, new float[][] {{1, 0, 0, 1}, {1, -1}}, new float[][] {{-1, 0}, {0}})) {
            for (Model m : List.of(f, g)) {
                assertEquals(1f, m.forward(AT_3_1).data()[0], "f(3, 1) = g(3, 1) = 1");
                Tensor ig = new IntegratedGradients(m).nSteps(2000).method(Quadrature.Rule.RIEMANN_MIDDLE)
                        .attribute(AT_3_1, 0).attributions();
                assertEquals(1.5, ig.data()[0], 1e-3);
                assertEquals(-0.5, ig.data()[1], 1e-3);
            }
            Attribution df = new DeepLift(f).returnConvergenceDelta(true).attribute(AT_3_1, 0);
            Attribution dg = new DeepLift(g).returnConvergenceDelta(true).attribute(AT_3_1, 0);
            assertArrayEquals(new float[] {1.5f, -0.5f}, df.attributions().data(), 1e-6f);
            assertArrayEquals(new float[] {2f, -1f}, dg.attributions().data(), 1e-6f);
            assertEquals(0f, df.convergenceDelta().data()[0], 1e-6f);
            assertEquals(0f, dg.convergenceDelta().data()[0], 1e-6f);
        }
    }

    @Test
    void deepLiftShapAveragesDeepLiftOverTheDistributionAndIsComplete() {
        Path d = TestData.reference("mlp_tabular");
        try (Model m = Model.load(d.resolve("model.onnx"), "cpu")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            java.util.Random rnd = new java.util.Random(4);
            float[] rows = new float[3 * 8];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = (float) rnd.nextGaussian();
            }
            Tensor dist = new Tensor(new int[] {3, 8}, rows);
            Attribution a = new DeepLiftShap(m, true, false).attribute(m.inputs(x), List.of(dist), true, 1);
            Tensor fx = m.forward(x);
            Tensor fb = m.forward(dist);
            double meanB = (fb.data()[1] + fb.data()[4] + fb.data()[7]) / 3;
            for (int r = 0; r < x.dim(0); r++) {
                double sum = 0;
                for (int f = 0; f < 8; f++) {
                    sum += a.attributions().data()[r * 8 + f];
                }
                assertEquals(fx.data()[r * 3 + 1] - meanB, sum, 1e-5, "row " + r);
            }
            assertEquals(3 * x.dim(0), a.convergenceDelta().size(), "a delta per (example, baseline) pair");
            Tensor one = new Tensor(new int[] {1, 8}, java.util.Arrays.copyOf(rows, 8));
            assertArrayEquals(new DeepLift(m).baselines(Baseline.of(one)).attribute(x, 1).attributions().data(),
                    new DeepLiftShap(m, true, false).attribute(m.inputs(x), List.of(one), false, 1).attributions().data(),
                    1e-6f, "one baseline: DeepLift");
        }
    }

    @Test
    void guidedBackpropAndDeconvolutionReplaceReluBackwardsAsDefined() {
        // y = w2 · relu(W1 x): z = (x1 − x2, −x1 + 2 x2, x1 + x2), at x = (1, 2): z = (−1, 3, 3), w2 = (1, −1, 2)
        float[] w1 = {1, -1, -1, 2, 1, 1};
        float[] w2 = {1, -1, 2};
        List<Node> nodes = List.of(
                new Node("g1", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("x", "w1"), "z"),
                new Node("r", "Relu", new Op.Relu(), List.of("z"), "h"),
                new Node("g2", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("h", "w2"), "y"));
        Graph graph = new Graph("net", "x", new int[] {-1, 2}, "y", nodes,
                Map.of("w1", new Tensor(new int[] {3, 2}, w1), "w2", new Tensor(new int[] {1, 3}, w2)));
        try (Model m = Model.of(graph, new CpuBackend())) {
            Tensor x = new Tensor(new int[] {1, 2}, new float[] {1, 2});
            // gradient at h: (1, −1, 2); relu' at z: (0, 1, 1) → plain (0, −1, 2); guided relu → (0, 0, 2)
            // deconvolution: relu(1, −1, 2) = (1, 0, 2) regardless of z
            float[] guided = GuidedBackprop.guided(m).attribute(x, 0).attributions().data();
            float[] deconv = GuidedBackprop.deconvolution(m).attribute(x, 0).attributions().data();
            assertArrayEquals(new float[] {0 * 1 + 0 * -1 + 2 * 1, 0 * -1 + 0 * 2 + 2 * 1}, guided, 1e-6f);
            assertArrayEquals(new float[] {1 * 1 + 0 * -1 + 2 * 1, 1 * -1 + 0 * 2 + 2 * 1}, deconv, 1e-6f);
        }
    }

    @Test
    void deepLiftsMaxPoolRuleIsCompleteWhereCaptumsGradientIsNot() {
        Path d = TestData.reference("digits_cnn");
        try (Model m = Model.load(d.resolve("model.onnx"), "cpu")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            int[] t = m.predict(x);
            Tensor captum = new DeepLift(m).returnConvergenceDelta(true).attribute(x, t).convergenceDelta();
            Tensor rule = new DeepLift(m).maxPoolRule(true).returnConvergenceDelta(true).attribute(x, t).convergenceDelta();
            Tensor ref = NpyIO.read(d.resolve("deeplift_rescale_delta.npy"));
            for (int r = 0; r < x.dim(0); r++) {
                assertEquals(ref.data()[r], captum.data()[r], 1e-3, "Captum's delta, row " + r);
                assertEquals(0f, rule.data()[r], 1e-4, "the max-pool rule's delta, row " + r);
            }
            assertTrue(Math.abs(ref.data()[0]) > 0.5, "Captum's own delta is far from 0 on this model");
        }
    }

    @Test
    void layerConductanceConvergesToTheOutputChangeAndIsTheSameInChunks() {
        Path d = TestData.reference("cbm_xor");
        String layer = "/concept_encoder/concept_encoder.5/Sigmoid_output_0";
        try (Model m = Model.load(d.resolve("model.onnx"), "cpu")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            Tensor fx = m.forward(x);
            Tensor fb = m.forward(Tensor.zeros(x.shape()));
            double[] error = new double[3];
            double mass = 0;
            int[] steps = {100, 400, 4000};
            for (int i = 0; i < steps.length; i++) {
                Tensor c = new LayerConductance(m, layer, steps[i], Quadrature.Rule.RIEMANN_TRAPEZOID,
                        List.of(Baseline.zeros()), null).attribute(x, 0).attributions();
                for (int r = 0; r < x.dim(0); r++) {
                    double change = fx.data()[r] - fb.data()[r];
                    error[i] += Math.abs(c.data()[2 * r] + c.data()[2 * r + 1] - change);
                    mass += i == 0 ? Math.abs(change) : 0;
                }
            }
            // a left Riemann sum in the layer's space: the error falls as the steps grow (sharp sigmoids here)
            assertTrue(error[0] > error[1] && error[1] > error[2], java.util.Arrays.toString(error));
            assertTrue(error[2] < 0.01 * mass, error[2] + " of " + mass);
            Tensor all = new LayerConductance(m, layer, 50, Quadrature.Rule.GAUSS_LEGENDRE, List.of(Baseline.zeros()),
                    null).attribute(x, 0).attributions();
            Tensor chunked = new LayerConductance(m, layer, 50, Quadrature.Rule.GAUSS_LEGENDRE, List.of(Baseline.zeros()),
                    7 * x.dim(0)).attribute(x, 0).attributions();
            assertArrayEquals(all.data(), chunked.data(), 1e-6f);
        }
    }

    @Test
    void gradCamNeedsALayerWithChannels() {
        Path d = TestData.reference("mlp_tabular");
        try (Model m = Model.load(d.resolve("model.onnx"), "cpu")) {
            InvalidInputException e = assertThrows(InvalidInputException.class, () -> new LayerGradCam(m, "nope", false, true));
            assertTrue(e.getMessage().contains("nope"), e.getMessage());
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            String hidden = m.graph().nodes().get(1).output();
            Tensor cam = new LayerGradCam(m, hidden, false, true).attribute(x, 0).attributions();
            assertArrayEquals(new int[] {x.dim(0), 1}, cam.shape(), "a [B, C] layer: Σ_c grad·act per row");
        }
    }
}
