package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The replaced backward rules on CUDA (the CPU emulation of the driver) against the CPU, on the
 * paths the reference cases do not take: DeepLift's max-pool rule (kernels/rules.cu with the
 * halves summed), deconvolution, layer and neuron methods (the backward seeded inside the model),
 * GradientShap and a noise tunnel.
 */
class RuleMethodsCudaTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    private static void same(Model cpu, Model gpu, String method, Map<String, Object> params, Tensor x, int... t) {
        Attribution a = Methods.create(method, cpu, Methods.Params.of(params)).attribute(cpu.inputs(x), t);
        Attribution b = Methods.create(method, gpu, Methods.Params.of(params)).attribute(cpu.inputs(x), t);
        assertEquals("cuda", b.device(), method + " ran on " + b.describeDevice());
        assertClose(method, a.attributions().data(), b.attributions().data());
        if (a.convergenceDelta() != null) {
            // a delta is a small difference of large sums: compare it on the scale of the row's attributions
            int per = a.attributions().rowSize();
            for (int r = 0; r < a.convergenceDelta().size(); r++) {
                double mass = 0;
                for (int j = 0; j < per; j++) {
                    mass += Math.abs(a.attributions().data()[r * per + j]);
                }
                assertEquals(a.convergenceDelta().data()[r], b.convergenceDelta().data()[r], 1e-5 * mass + 1e-6,
                        method + " delta, row " + r);
            }
        }
    }

    @Test
    void rulesMatchTheCpu() {
        Path d = TestData.reference("tinyvgg");
        try (Model cpu = Model.load(d.resolve("model.onnx"), "cpu"); Model gpu = Model.load(d.resolve("model.onnx"), "cuda")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            same(cpu, gpu, "deeplift", Map.of("max_pool_rule", true, "return_convergence_delta", true), x, 0, 1);
            same(cpu, gpu, "deeplift", Map.of("return_convergence_delta", true), x, 1, 0);
            same(cpu, gpu, "deconvolution", Map.of(), x, 0, 1);
            same(cpu, gpu, "layer_grad_cam", Map.of("layer", "/block1/block1.2/Conv_output_0"), x, 0, 1);
            same(cpu, gpu, "layer_conductance", Map.of("layer", "/block2/block2.4/MaxPool_output_0", "n_steps", 8), x, 0, 1);
            same(cpu, gpu, "guided_grad_cam", Map.of("layer", "/block2/block2.3/Relu_output_0"), x, 0, 1);
            same(cpu, gpu, "internal_influence", Map.of("layer", "/block1/block1.4/MaxPool_output_0", "n_steps", 6), x, 1, 0);
            same(cpu, gpu, "neuron_integrated_gradients", Map.of("layer", "/block2/block2.3/Relu_output_0",
                    "neuron", new int[] {3, 4, 5}, "n_steps", 6), x, 0, 0);
            same(cpu, gpu, "gradient_shap", Map.of("n_samples", 4, "stdevs", 0.1, "seed", 3L), x, 0, 1);
            same(cpu, gpu, "saliency", Map.of("nt_type", "smoothgrad", "nt_samples", 3, "stdevs", 0.2, "seed", 3L), x, 0, 1);
        }
    }

    @Test
    void integratedGradientsForSeveralTargetsMatchesTheCpu() {
        Path d = TestData.reference("tinyvgg");
        try (Model cpu = Model.load(d.resolve("model.onnx"), "cpu"); Model gpu = Model.load(d.resolve("model.onnx"), "cuda")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            dev.kxai.attr.IntegratedGradients a = new dev.kxai.attr.IntegratedGradients(cpu).nSteps(8).internalBatchSize(6);
            dev.kxai.attr.IntegratedGradients b = new dev.kxai.attr.IntegratedGradients(gpu).nSteps(8).internalBatchSize(6);
            java.util.List<Attribution> ca = a.attribute(cpu.inputs(x), new int[][] {{0}, {1, 0}});
            java.util.List<Attribution> cb = b.attribute(gpu.inputs(x), new int[][] {{0}, {1, 0}});
            for (int j = 0; j < 2; j++) {
                assertEquals("cuda", cb.get(j).device());
                assertClose("ig target set " + j, ca.get(j).attributions().data(), cb.get(j).attributions().data());
            }
            assertClose("ig target set 1 alone", b.attribute(gpu.inputs(x), 1, 0).attributions().data(),
                    cb.get(1).attributions().data());
        }
    }

    @Test
    void pathMethodsBeyondCaptumMatchTheCpu() {
        Path d = TestData.reference("tinyvgg");
        try (Model cpu = Model.load(d.resolve("model.onnx"), "cpu"); Model gpu = Model.load(d.resolve("model.onnx"), "cuda")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            same(cpu, gpu, "idgi", Map.of("n_steps", 6), x, 0, 1);
            same(cpu, gpu, "blur_ig", Map.of("n_steps", 6, "max_sigma", 4.0), x, 1, 0);
            // guided IG moves, at every step, the features of smallest |gradient|: a ranking of float gradients,
            // a decision neither backend makes exact; the two float paths sum their convolutions in different
            // orders (sgemm vs the FP32 implicit GEMM), so the ranking is compared on both exact paths
            boolean was = dev.kxai.backend.cpu.CpuBackend.exactPath(true);
            boolean wasCuda = CudaBackend.exactPath(true);
            try {
                same(cpu, gpu, "guided_ig", Map.of("n_steps", 6), x, 0, 1);
            } finally {
                dev.kxai.backend.cpu.CpuBackend.exactPath(was);
                CudaBackend.exactPath(wasCuda);
            }
            same(cpu, gpu, "integrated_gradients", Map.of("alphas", new double[] {0.1, 0.3, 0.9}), x, 0, 1);
        }
    }
}
