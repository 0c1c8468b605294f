package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.backend.Backends;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.onnx.MinMaxTest;
import dev.kxai.tensor.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Max/Min per request (selections on the device) on CUDA (the CPU emulation of the driver) against the CPU. */
class MinMaxCudaTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    @Test
    void maxAndMinMatchTheCpu() {
        Tensor x = new Tensor(new int[] {2, 4}, new float[] {1f, -2f, 1.5f, 0f, -3f, 4f, 3f, 0.25f});
        for (String op : new String[] {"Max", "Min"}) {
            try (Model cpu = Model.of(MinMaxTest.model(op, 3), Backends.select("cpu"));
                    Model gpu = Model.of(MinMaxTest.model(op, 3), Backends.select("cuda"))) {
                assertClose(op + " forward", cpu.forward(cpu.inputs(x)).data(), gpu.forward(gpu.inputs(x)).data());
                for (int t = 0; t < 4; t++) {
                    Attribution a = Methods.create("saliency", cpu, Methods.Params.of(Map.of("abs", false)))
                            .attribute(cpu.inputs(x), new int[] {t});
                    Attribution b = Methods.create("saliency", gpu, Methods.Params.of(Map.of("abs", false)))
                            .attribute(gpu.inputs(x), new int[] {t});
                    assertEquals("cuda", b.device());
                    assertClose(op + " gradient, target " + t, a.attributions().data(), b.attributions().data());
                }
            }
        }
    }
}
