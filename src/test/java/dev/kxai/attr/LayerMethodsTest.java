package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The smaller layer and neuron methods against identities they must satisfy, on the digits CNN. */
class LayerMethodsTest {
    private static final String RELU2 = "/3/Relu_output_0";
    private static Model digits;
    private static Tensor x;

    @BeforeAll
    static void load() {
        Path d = TestData.reference("digits_cnn");
        digits = Model.load(d.resolve("model.onnx"), "cpu");
        x = NpyIO.read(d.resolve("input.npy"));
    }

    @AfterAll
    static void close() {
        digits.close();
    }

    private static Tensor run(String method, Map<String, Object> params, int... t) {
        return Methods.create(method, digits, Methods.Params.of(params)).attribute(digits.inputs(x), t).attributions();
    }

    @Test
    void neuronGradientAtTheLogitsIsSaliency() {
        Tensor s = new Saliency(digits).attribute(x, false, 4).attributions();
        Tensor n = run("neuron_gradient", Map.of("layer", "logits", "neuron", new int[] {4}), 0);
        assertArrayEquals(s.data(), n.data(), 1e-7f);
    }

    @Test
    void neuronIntegratedGradientsAreCompleteForTheNeuron() {
        int[] neuron = {5, 3, 4};
        Tensor a = run("neuron_integrated_gradients", Map.of("layer", RELU2, "neuron", neuron, "n_steps", 128), 0);
        int flat = LayerMethods.flatNeuron(digits, RELU2, neuron);
        Tensor at = LayerMethods.activation(digits, RELU2, digits.inputs(x)).attributions();
        int per = at.rowSize();
        for (int r = 0; r < x.dim(0); r++) {
            double sum = 0;
            for (int f = 0; f < x.rowSize(); f++) {
                sum += a.data()[r * x.rowSize() + f];
            }
            // baseline zeros: the neuron at 0 is relu(bias path); F(x) − F(0)
            Tensor zero = Tensor.zeros(1, 1, 8, 8);
            float at0 = LayerMethods.activation(digits, RELU2, digits.inputs(zero)).attributions().data()[flat];
            assertEquals(at.data()[r * per + flat] - at0, sum, 2e-2 * Math.max(1, Math.abs(sum)), "row " + r);
        }
    }

    @Test
    void internalInfluenceIsTheWeightedLayerGradientsOnThePath() {
        // riemann_right with 2 steps: α = 0.5 and 1, weights ½ each
        Tensor ii = run("internal_influence", Map.of("layer", RELU2, "n_steps", 2, "method", "riemann_right"), 2);
        Tensor half = new Tensor(x.shape(), x.data().clone());
        for (int i = 0; i < half.size(); i++) {
            half.data()[i] *= 0.5f;
        }
        Tensor g = run("layer_gradient_x_activation", Map.of("layer", RELU2, "multiply_by_inputs", false), 2);
        Tensor gh = LayerMethods.gradientXActivation(digits, RELU2, false, digits.inputs(half), 2).attributions();
        for (int i = 0; i < ii.size(); i++) {
            assertEquals(0.5 * gh.data()[i] + 0.5 * g.data()[i], ii.data()[i], 1e-6, "element " + i);
        }
        Tensor gxa = run("layer_gradient_x_activation", Map.of("layer", RELU2), 2);
        Tensor act = run("layer_activation", Map.of("layer", RELU2));
        for (int i = 0; i < gxa.size(); i++) {
            assertEquals(g.data()[i] * act.data()[i], gxa.data()[i], 1e-7);
        }
    }

    @Test
    void guidedGradCamUpsamplesByNearestNeighbourAsPyTorch() {
        Tensor cam = new Tensor(new int[] {1, 1, 2, 3}, new float[] {1, 2, 3, 4, 5, 6});
        Tensor up = GuidedGradCam.upsampled(cam, new int[] {1, 3, 4, 7});
        // rows: floor(i·2/4) = 0,0,1,1; columns: floor(j·3/7) = 0,0,0,1,1,2,2
        assertArrayEquals(new float[] {1, 1, 1, 2, 2, 3, 3, 1, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 4, 4, 4, 5, 5, 6, 6},
                up.data());
        Tensor ggc = run("guided_grad_cam", Map.of("layer", RELU2), 1);
        Tensor gb = run("guided_backprop", Map.of(), 1);
        Tensor c = run("layer_grad_cam", Map.of("layer", RELU2, "relu_attributions", true), 1);
        for (int i = 0; i < ggc.size(); i++) {
            assertEquals(gb.data()[i] * c.data()[i], ggc.data()[i], 1e-7, "the same spatial size: a plain product");
        }
        // Grad-CAM at the 4×4 max-pool brought to the 8×8 input for overlays (Captum's LayerAttribution.interpolate)
        Tensor small = run("layer_grad_cam", Map.of("layer", "/4/MaxPool_output_0"), 1);
        Tensor big = run("layer_grad_cam", Map.of("layer", "/4/MaxPool_output_0", "upsample_to_input", true), 1);
        assertEquals(List.of(10, 1, 8, 8), java.util.Arrays.stream(big.shape()).boxed().toList());
        assertArrayEquals(GuidedGradCam.upsampled(small, new int[] {10, 1, 8, 8}).data(), big.data());
        assertEquals(small.data()[16 + 5], big.data()[64 + 2 * 8 + 3], "input (2, 3) shows map cell (1, 1)");
        assertThrows(InvalidInputException.class, () -> run("layer_grad_cam", Map.of("layer", "/4/MaxPool_output_0",
                "upsample_to_input", true, "attr_dim_summation", false), 1));
        assertThrows(InvalidInputException.class, () -> run("neuron_gradient", Map.of("layer", RELU2,
                "neuron", new int[] {16, 0, 0}), 0));
        assertTrue(run("layer_activation", Map.of("layer", RELU2)).rank() == 4);
        assertEquals(List.of(10, 16, 8, 8), java.util.Arrays.stream(run("layer_activation", Map.of("layer", RELU2)).shape())
                .boxed().toList());
    }
}
