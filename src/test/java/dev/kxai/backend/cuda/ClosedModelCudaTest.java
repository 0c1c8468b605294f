package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.errors.ClosedModelTest;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Was a BUG (issue 13): calling a closed CUDA model ran kernels on its freed weights; the emulator
 * reported an illegal memory access, the runtime was marked broken, every other model silently ran
 * on the CPU while {@code backend()} still said cuda, and later cuda loads returned CPU models.
 * Now the call is refused before any kernel runs, and the device stays usable.
 */
class ClosedModelCudaTest {
    @Test
    void aClosedCudaModelSaysSoAndTheDeviceStaysUsable() {
        CudaTestKit.cuda();
        Path dir = TestData.reference("digits_cnn");
        Tensor x = NpyIO.read(dir.resolve("input.npy")).rows(0, 2);
        int[] t = {0, 1};
        try (Model cpu = Model.load(dir.resolve("model.onnx"), "cpu");
                Model other = Model.load(dir.resolve("model.onnx"), "cuda")) {
            float[] want = cpu.forward(x).data();
            Model m = Model.load(dir.resolve("model.onnx"), "cuda");
            assertEquals("cuda", m.device());
            m.forward(x);
            m.close();
            ClosedModelTest.assertEveryCallRefused(m, x);
            assertDoesNotThrow(m::close);

            assertEquals("cuda", other.device(), "another model still runs on the device");
            assertEquals("cuda", other.backend().name());
            assertArrayEquals(want, other.forward(x).data(), 1e-4f);
            Attribution a = new IntegratedGradients(other).nSteps(8).attribute(x, t);
            assertEquals("cuda", a.device());
            assertNull(a.fallbackReason());
            try (Model again = Model.load(dir.resolve("model.onnx"), "cuda")) {
                assertEquals("cuda", again.device(), "a later load runs on the device");
                assertEquals("cuda", again.backend().name());
                assertArrayEquals(want, again.forward(x).data(), 1e-4f);
            }
        }
    }
}
