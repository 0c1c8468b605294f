package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.ActivationMaximization;
import dev.kxai.attr.ActivationMaximization.Objective;
import dev.kxai.attr.ActivationMaximization.Result;
import dev.kxai.attr.ActivationMaximization.Settings;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Activation maximisation on CUDA (the CPU emulation of the driver) against the CPU: the seeded
 * backward at the logits and inside the model (a channel), with every regulariser on; the same
 * seed gives the same images to float tolerance.
 */
class ActivationMaxCudaTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    private static void same(Model cpu, Model gpu, Objective o, Settings s, Tensor x, int... t) {
        Result a = new ActivationMaximization(cpu, o, s).optimize(cpu.inputs(x), t);
        Result b = new ActivationMaximization(gpu, o, s).optimize(gpu.inputs(x), t);
        assertEquals("cuda", b.device(), "ran on " + b.device() + " " + b.fallbackReason());
        assertClose(o + " image", a.optimized().data(), b.optimized().data(), 1e-4, 1e-6);
        for (int k = 0; k < a.objective().length; k++) {
            for (int r = 0; r < x.dim(0); r++) {
                double want = a.objective()[k][r];
                assertEquals(want, b.objective()[k][r], 1e-4 * Math.max(1, Math.abs(want)), "objective, iteration " + k
                        + ", row " + r);
            }
        }
    }

    @Test
    void theAscentMatchesTheCpu() {
        Path d = TestData.reference("digits_cnn");
        try (Model cpu = Model.load(d.resolve("model.onnx"), "cpu"); Model gpu = Model.load(d.resolve("model.onnx"), "cuda")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            Settings s = Settings.defaults().iterations(12).penalties(0.01, 0.02).jitter(1).blur(4, 0.6).seed(7);
            same(cpu, gpu, Objective.target(), s.lr(0.05, ActivationMaximization.Schedule.COSINE), x, 3);
            same(cpu, gpu, Objective.channel("/3/Relu_output_0", 4), s.init(ActivationMaximization.Init.INPUT, 0), x);
        }
    }
}
