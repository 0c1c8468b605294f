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
 * LRP and LayerLRP on CUDA (the CPU emulation of the driver) against the CPU: the z-rule's division
 * (kernels/rules.cu lrp_stabilize), the layers' backward kernels with the rule's changed weights
 * uploaded, the op set's Mul for a ⊙ g; on digits (Conv, MaxPool, Flatten, Gemm) for every rule
 * family, and on tinyvgg (two blocks, max-pools, a classifier) with Captum's defaults; and digits
 * against the Captum-rule values of src/test/resources/lrp.
 */
class LrpCudaTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    private static Attribution same(Model cpu, Model gpu, String method, Map<String, Object> params, Tensor x, int... t) {
        Attribution a = Methods.create(method, cpu, Methods.Params.of(params)).attribute(cpu.inputs(x), t);
        Attribution b = Methods.create(method, gpu, Methods.Params.of(params)).attribute(cpu.inputs(x), t);
        assertEquals("cuda", b.device(), method + " ran on " + b.describeDevice());
        assertClose(method + " " + params, a.attributions().data(), b.attributions().data());
        return b;
    }

    @Test
    void lrpMatchesTheCpuAndCaptumsRulesOnDigits() {
        Path d = TestData.reference("digits_cnn");
        Path expected = TestData.referenceRoot().getParent().getParent().resolve("lrp");
        try (Model cpu = Model.load(d.resolve("model.onnx"), "cpu"); Model gpu = Model.load(d.resolve("model.onnx"), "cuda")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            int[] t = {0, 0, 2, 0, 1, 3, 5, 0, 5, 1};
            Map<String, String> cases = Map.of("epsilon", "", "gamma", "Conv=gamma:0.25", "alpha1_beta0",
                    "Conv=alpha1_beta0,/6/Gemm=epsilon:0.01", "mixed",
                    "/0/Conv=epsilon:0.01,/2/Conv_output_0=alpha1_beta0:zero_bias,Gemm=gamma:0.25:zero_bias");
            for (Map.Entry<String, String> c : cases.entrySet()) {
                Attribution b = same(cpu, gpu, "lrp", Map.of("rules", c.getValue()), x, t);
                assertClose("cuda vs Captum's rules: " + c.getKey(), NpyIO.read(expected.resolve("digits_" + c.getKey()
                        + ".npy")).data(), b.attributions().data(), 1e-4, 1e-4);
                same(cpu, gpu, "layer_lrp", Map.of("rules", c.getValue(), "layer", "/2/Conv_output_0"), x, t);
            }
        }
    }

    @Test
    void lrpMatchesTheCpuOnTinyvgg() {
        Path d = TestData.reference("tinyvgg");
        try (Model cpu = Model.load(d.resolve("model.onnx"), "cpu"); Model gpu = Model.load(d.resolve("model.onnx"), "cuda")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            same(cpu, gpu, "lrp", Map.of(), x, 0, 1);
            same(cpu, gpu, "lrp", Map.of("rules", "epsilon_gamma"), x, 1, 0);
            same(cpu, gpu, "layer_lrp", Map.of("layer", "/block2/block2.4/MaxPool_output_0"), x, 0, 1);
        }
    }
}
