package dev.kxai.cli;

import static dev.kxai.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Captum's remaining layer and neuron methods through {@code kxai explain --method NAME --layer --neuron}. */
class LayerNeuronCliTest {
    private static final String RELU = "/3/Relu_output_0";

    @Test
    void everyLayerAndNeuronMethodRunsFromTheCommandLine(@TempDir Path dir) {
        String[] layerMethods = {"layer_deeplift", "layer_deeplift_shap", "layer_gradient_shap", "layer_feature_ablation"};
        String[] neuronMethods = {"neuron_conductance", "neuron_deeplift", "neuron_deeplift_shap", "neuron_gradient_shap",
            "neuron_guided_backprop", "neuron_deconvolution", "neuron_feature_ablation"};
        int[] inputShape = null;
        for (String m : neuronMethods) {
            Path out = dir.resolve(m);
            // only the options each method uses (an unused one is refused, issue 13)
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("explain", "--method", m, "--layer",
                    RELU, "--neuron", "5,3,4", "--device", "cpu", "--out", out.toString()));
            if (m.equals("neuron_conductance")) {
                args.addAll(java.util.List.of("--steps", "8"));
            }
            if (m.endsWith("_shap")) {
                args.addAll(java.util.List.of("--n-samples", "3"));
            }
            if (m.equals("neuron_deeplift_shap")) {
                args.remove("--n-samples");
                args.remove("3");
            }
            CliRun r = run(args.toArray(new String[0]));
            assertEquals(0, r.status(), m + ": " + r.err());
            assertTrue(r.out().contains("method " + m), m + ": " + r.out());
            Tensor a = NpyIO.read(out.resolve("attributions.npy"));
            if (inputShape == null) {
                inputShape = a.shape();
            }
            assertArrayEquals(inputShape, a.shape(), m + ": the input's shape");
        }
        for (String m : layerMethods) {
            Path out = dir.resolve(m);
            CliRun r = m.equals("layer_gradient_shap") ? run("explain", "--method", m, "--layer", RELU, "--n-samples", "3",
                    "--device", "cpu", "--out", out.toString())
                    : run("explain", "--method", m, "--layer", RELU, "--device", "cpu", "--out", out.toString());
            assertEquals(0, r.status(), m + ": " + r.err());
            Tensor a = NpyIO.read(out.resolve("attributions.npy"));
            assertArrayEquals(new int[] {inputShape[0], 16, 8, 8}, a.shape(), m + ": the layer's shape");
        }
        CliRun none = run("explain", "--method", "neuron_deeplift", "--layer", RELU, "--device", "cpu", "--out",
                dir.resolve("none").toString());
        assertEquals(2, none.status(), none.out());
        assertTrue(none.err().contains("neuron"), none.err());
    }
}
