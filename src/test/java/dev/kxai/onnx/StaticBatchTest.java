package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.TestData;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Models exported with a fixed batch (models/static_batch/make.py: torch.onnx.export without
 * dynamic_axes): kxai runs them at any batch, each row as ONNX Runtime computes it at the export's
 * batch, and explains them with Integrated Gradients (50 steps: 50 rows per forward pass, where the
 * export fixed 1 or 2).
 */
class StaticBatchTest {
    private static final Path DIR = TestData.exported("static_batch");

    private static Tensor random(int[] shape, long seed) {
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int k = 0; k < n; k++) {
            v[k] = (float) r.nextDouble();
        }
        return new Tensor(shape, v);
    }

    private static Tensor rows(Tensor x, int from, int count) {
        int per = x.rowSize();
        int[] s = x.shape();
        s[0] = count;
        return new Tensor(s, Arrays.copyOfRange(x.data(), from * per, (from + count) * per));
    }

    /** kxai at batch 3·exportBatch, against ONNX Runtime on each slice of the export's batch. */
    private static void matchesOnnxRuntimeAtEveryBatch(String name, int exportBatch, int[] row) throws Exception {
        byte[] bytes = Files.readAllBytes(DIR.resolve(name + ".onnx"));
        int[] shape = row.clone();
        shape[0] = 3 * exportBatch;
        Tensor x = random(shape, name.hashCode());
        try (Model m = Model.of(OnnxImporter.parse(bytes, name + ".onnx"), new CpuBackend())) {
            Tensor all = m.forward(x);
            int per = all.rowSize();
            for (int k = 0; k < 3; k++) {
                Object[] ort = OnnxRuntimeConformanceTest.onnxRuntime(bytes, rows(x, k * exportBatch, exportBatch));
                OnnxRuntimeConformanceTest.compare(name + " rows " + k * exportBatch + "..", rows(all, k * exportBatch,
                        exportBatch), ort);
            }
            assertEquals(3 * exportBatch * per, all.size());
            // Integrated Gradients: complete (the sum of attributions is F(x) − F(0) up to the quadrature)
            Tensor one = rows(x, 0, 1);
            var a = Methods.create("integrated_gradients", m, Methods.Params.of(Map.of("n_steps", 50,
                    "return_convergence_delta", true))).attribute(Inputs.of("input", one), new int[] {0});
            assertTrue(Math.abs(a.convergenceDelta().data()[0]) < 1e-3, name + ": delta " + a.convergenceDelta().data()[0]);
        }
    }

    @Test
    void aViewOverTheBatchTracedAtBatchOneRunsAtAnyBatch() throws Exception {
        matchesOnnxRuntimeAtEveryBatch("view_b1", 1, new int[] {1, 3, 6, 6});
    }

    @Test
    void aClassTokenZerosAndReshapesTracedAtBatchOneOrTwoRunAtAnyBatch() throws Exception {
        matchesOnnxRuntimeAtEveryBatch("tokens_b1", 1, new int[] {1, 4, 12});
        matchesOnnxRuntimeAtEveryBatch("tokens_b2", 2, new int[] {2, 4, 12});
    }

    @Test
    void aConstantWhoseRowsDifferIsRefusedNamingTheFix() throws Exception {
        byte[] bytes = Files.readAllBytes(DIR.resolve("rows_b2.onnx"));
        ModelException e = assertThrows(ModelException.class, () -> OnnxImporter.parse(bytes, "rows_b2.onnx"));
        assertTrue(e.getMessage().contains("whose 2 rows differ: the model was exported with a fixed batch of 2")
                && e.getMessage().contains("dynamic_axes"), e.getMessage());
    }
}
