package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.floats;
import static dev.kxai.onnx.OnnxModels.graph;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.n;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * MatMul with NumPy's rules beyond kxai's kernel forms, rewritten at load (unit axes for 1-D
 * operands, Expand for batch dimensions that differ): values against loops written here, and the
 * gradient of a broadcast product against finite differences.
 */
class MatMulBroadcastImportTest {
    private static final float[] C = {1, 2, -1, 0.5f};   // [2, 2]
    private static final float[] V = {0.5f, -2};          // [2]
    private static final float[] W3 = {1, 0, 0, 1, 2, 1, -1, 0, 0.5f, 0.5f, 3, -1}; // [3, 2, 2]

    private static Graph product(String left, String right, String shape) {
        return graph(13, List.of(n("Reshape", "x", "input", shape).build(), n("MatMul", "output", left, right).build()),
                floats("c", new int[] {2, 2}, C), floats("v", new int[] {2}, V), floats("w3", new int[] {3, 2, 2}, W3),
                ints("s3", 0, 2, 2), ints("s4", 0, 1, 2, 2));
    }

    private static float[] x(int batch) {
        float[] v = new float[batch * 4];
        for (int i = 0; i < v.length; i++) {
            v[i] = (i % 7) - 2.5f + 0.1f * i;
        }
        return v;
    }

    private static Tensor run(Graph g, int batch) {
        try (Model m = Model.of(g, new CpuBackend())) {
            return m.forward(new Tensor(new int[] {batch, 4}, x(batch)));
        }
    }

    @Test
    void aMatrixTimesABatchOfMatrices() {
        Tensor y = run(product("c", "x", "s3"), 3);
        assertArrayEquals(new int[] {3, 2, 2}, y.shape());
        float[] x = x(3);
        for (int b = 0; b < 3; b++) {
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 2; j++) {
                    float want = C[i * 2] * x[b * 4 + j] + C[i * 2 + 1] * x[b * 4 + 2 + j];
                    assertEquals(want, y.data()[b * 4 + i * 2 + j], 1e-6);
                }
            }
        }
    }

    @Test
    void vectorsOnEitherSide() {
        float[] x = x(2);
        Tensor right = run(product("x", "v", "s3"), 2);
        Tensor left = run(product("v", "x", "s3"), 2);
        assertArrayEquals(new int[] {2, 2}, right.shape());
        assertArrayEquals(new int[] {2, 2}, left.shape());
        for (int b = 0; b < 2; b++) {
            for (int i = 0; i < 2; i++) {
                assertEquals(x[b * 4 + i * 2] * V[0] + x[b * 4 + i * 2 + 1] * V[1], right.data()[b * 2 + i], 1e-6);
                assertEquals(V[0] * x[b * 4 + i] + V[1] * x[b * 4 + 2 + i], left.data()[b * 2 + i], 1e-6);
            }
        }
    }

    @Test
    void batchDimensionsBroadcastAndTheGradientIsRight() {
        Graph g = product("x", "w3", "s4"); // [B, 1, 2, 2] × [3, 2, 2] → [B, 3, 2, 2]
        Tensor y = run(g, 2);
        assertArrayEquals(new int[] {2, 3, 2, 2}, y.shape());
        float[] x = x(2);
        for (int b = 0; b < 2; b++) {
            for (int h = 0; h < 3; h++) {
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 2; j++) {
                        float want = x[b * 4 + i * 2] * W3[h * 4 + j] + x[b * 4 + i * 2 + 1] * W3[h * 4 + 2 + j];
                        assertEquals(want, y.data()[((b * 3 + h) * 2 + i) * 2 + j], 1e-6);
                    }
                }
            }
        }
        // output 6 of a row is y[b, 1, 1, 0]: d/dx is the column W3[1, :, 0] in row 1 of x's matrix
        try (Model m = Model.of(g, new CpuBackend())) {
            Tensor gx = m.runner().gradient(new Tensor(new int[] {2, 4}, x), new int[] {6, 6}).inputGradient();
            assertArrayEquals(new float[] {0, 0, W3[4], W3[6], 0, 0, W3[4], W3[6]}, gx.data(), 1e-6f);
        }
    }
}
