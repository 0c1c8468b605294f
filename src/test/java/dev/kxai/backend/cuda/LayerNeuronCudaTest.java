package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Captum's remaining layer and neuron methods on CUDA (the CPU emulation of the driver) against the
 * CPU: DeepLift seeded at a neuron and read at a layer (kernels/rules.cu), guided backprop and
 * deconvolution from a neuron, the GradientShap family, neuron conductance, and ablation rows built
 * on the device and read at a layer (kernels/perturb.cu).
 */
class LayerNeuronCudaTest {
    private static final String RELU = "/block2/block2.3/Relu_output_0";
    private static final String POOL = "/block2/block2.4/MaxPool_output_0";
    private static final int[] NEURON = {3, 4, 5};

    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    private static void same(Model cpu, Model gpu, String method, Map<String, Object> params, Tensor x, int... t) {
        Attribution a = Methods.create(method, cpu, Methods.Params.of(params)).attribute(cpu.inputs(x), t);
        Attribution b = Methods.create(method, gpu, Methods.Params.of(params)).attribute(gpu.inputs(x), t);
        assertEquals("cuda", b.device(), method + " ran on " + b.describeDevice());
        assertEquals(a.byInput().keySet(), b.byInput().keySet(), method);
        for (String k : a.byInput().keySet()) {
            assertClose(method + " at " + k, a.byInput().get(k).data(), b.byInput().get(k).data());
        }
        if (a.convergenceDelta() != null) {
            double mass = 0;
            for (float v : a.attributions().data()) {
                mass += Math.abs(v);
            }
            mass /= a.attributions().dim(0);
            for (int r = 0; r < a.convergenceDelta().size(); r++) {
                assertEquals(a.convergenceDelta().data()[r], b.convergenceDelta().data()[r], 1e-5 * mass + 1e-6,
                        method + " delta " + r);
            }
        }
    }

    @Test
    void layerAndNeuronMethodsMatchTheCpu() {
        Path d = TestData.reference("tinyvgg");
        try (Model cpu = Model.load(d.resolve("model.onnx"), "cpu"); Model gpu = Model.load(d.resolve("model.onnx"), "cuda")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            Tensor dist = new Tensor(new int[] {2, x.rowSize()}, new float[2 * x.rowSize()]);
            for (int i = 0; i < x.rowSize(); i++) {
                dist.data()[x.rowSize() + i] = 0.1f * ((i % 7) - 3);
            }
            int[] shape = x.shape();
            shape[0] = 2;
            Baseline rows = Baseline.of(new Tensor(shape, dist.data()));
            same(cpu, gpu, "layer_deeplift", Map.of("layer", RELU, "return_convergence_delta", true), x, 0, 1);
            same(cpu, gpu, "layer_deeplift", Map.of("layer", POOL, "max_pool_rule", true, "return_convergence_delta",
                    true), x, 1, 0);
            same(cpu, gpu, "layer_deeplift_shap", Map.of("layer", POOL, "baselines", rows, "return_convergence_delta",
                    true), x, 0, 1);
            same(cpu, gpu, "neuron_deeplift", Map.of("layer", RELU, "neuron", NEURON), x, 0);
            same(cpu, gpu, "neuron_deeplift_shap", Map.of("layer", RELU, "neuron", NEURON, "baselines", rows), x, 0);
            same(cpu, gpu, "layer_gradient_shap", Map.of("layer", RELU, "n_samples", 3, "stdevs", 0.1, "seed", 4L,
                    "baselines", rows, "return_convergence_delta", true), x, 0, 1);
            same(cpu, gpu, "neuron_gradient_shap", Map.of("layer", RELU, "neuron", NEURON, "n_samples", 3, "seed", 4L,
                    "baselines", rows), x, 0);
            same(cpu, gpu, "neuron_conductance", Map.of("layer", RELU, "neuron", NEURON, "n_steps", 6), x, 0, 1);
            same(cpu, gpu, "neuron_guided_backprop", Map.of("layer", POOL, "neuron", NEURON), x, 0);
            same(cpu, gpu, "neuron_deconvolution", Map.of("layer", RELU, "neuron", NEURON), x, 0);
            // coarse groups: the emulator runs every ablated row
            Tensor inputCells = dev.kxai.attr.perturbation.FeatureMasks.grid(java.util.Arrays.copyOfRange(x.shape(), 1,
                    x.rank()), 16);
            same(cpu, gpu, "neuron_feature_ablation", Map.of("layer", RELU, "neuron", NEURON, "baselines",
                    Baseline.scalar(0.1f), "feature_mask", inputCells), x, 0);
            int[] pool = cpu.runner().plan().shape(POOL, 1);
            Tensor poolCells = dev.kxai.attr.perturbation.FeatureMasks.grid(java.util.Arrays.copyOfRange(pool, 1,
                    pool.length), 4);
            same(cpu, gpu, "layer_feature_ablation", Map.of("layer", POOL, "layer_baselines", Baseline.scalar(0.2f),
                    "layer_mask", poolCells, "perturbations_per_eval", 7), x, 1, 0);
        }
    }
}
