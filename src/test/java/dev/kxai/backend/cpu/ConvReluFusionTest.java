package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.TestData;
import dev.kxai.backend.ModelRunner;
import dev.kxai.graph.Graph;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The CPU runner's Conv+Relu fusion gives exactly the unfused forward and gradient. */
class ConvReluFusionTest {
    @ParameterizedTest
    @CsvSource({"tinyvgg, 4", "digits_cnn, 2", "resnet_mini, -1"})
    void fusedEqualsUnfusedBitForBit(String model, int expectedPairs) {
        Graph g = OnnxImporter.load(TestData.reference(model).resolve("model.onnx"));
        CpuBackend backend = new CpuBackend();
        ModelRunner fused = backend.prepare(g, true);
        ModelRunner plain = backend.prepare(g, false);
        assertEquals(0, plain.plan().fusions().size());
        if (expectedPairs >= 0) {
            assertEquals(expectedPairs, fused.plan().fusions().size(), "Conv+Relu pairs fused in " + model);
        }
        int[] ex = fused.exampleShape();
        int batch = 3;
        int[] shape = new int[ex.length + 1];
        shape[0] = batch;
        System.arraycopy(ex, 0, shape, 1, ex.length);
        int size = batch;
        for (int d : ex) {
            size *= d;
        }
        Random r = new Random(3);
        float[] v = new float[size];
        for (int i = 0; i < size; i++) {
            v[i] = r.nextFloat() * 2 - 1;
        }
        Tensor x = new Tensor(shape, v);
        int[] targets = new int[batch];
        for (int i = 0; i < batch; i++) {
            targets[i] = i % fused.outputsPerExample();
        }
        ModelRunner.Gradient a = fused.gradient(x, targets);
        ModelRunner.Gradient b = plain.gradient(x, targets);
        assertArrayEquals(b.output().data(), a.output().data(), 0f, "outputs");
        assertArrayEquals(b.inputGradient().data(), a.inputGradient().data(), 0f, "input gradients");
    }
}
