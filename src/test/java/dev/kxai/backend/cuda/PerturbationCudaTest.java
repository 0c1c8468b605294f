package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.Perturbation;
import dev.kxai.backend.cuda.CudaTestKit.G;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Op;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The perturbation methods on CUDA (the CPU emulation of the driver): the perturbed rows the
 * device builds (kernels/perturb.cu) are bit for bit the CPU twins' (seen through a model that
 * only flattens its input), and every method gives the CPU's attributions without falling back.
 */
class PerturbationCudaTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    private static Tensor rand(Random r, int... shape) {
        return CudaTestKit.rand(r, -4, 4, shape);
    }

    private static int[] ints(Random r, int n, int lo, int hi) {
        int[] v = new int[n];
        for (int i = 0; i < n; i++) {
            v[i] = lo + r.nextInt(hi - lo);
        }
        return v;
    }

    @Test
    void perturbedRowsAreTheCpuTwinsBitForBit() {
        G g = new G(2, 3, 5);
        g.then(new Op.Flatten(1));
        Graph graph = g.build();
        Random r = new Random(5);
        int batch = 3;
        int per = 30;
        int samples = 11;
        Tensor x = rand(r, batch, 2, 3, 5);
        Tensor oneBase = rand(r, 1, 2, 3, 5);
        Tensor rowBase = rand(r, batch, 2, 3, 5);
        int[] home = ints(r, samples, 0, batch);
        int[] mask = ints(r, per, 0, 4);
        int[] rowMask = ints(r, batch * per, -1, 4);
        int[] groups = ints(r, samples, -1, 4);
        int[] take = ints(r, samples * 4, -1, batch);
        int[] boxes = new int[samples * 6];
        for (int s = 0; s < samples; s++) {
            int[] dims = {2, 3, 5};
            for (int d = 0; d < 3; d++) {
                int a = r.nextInt(dims[d] + 1);
                int b = r.nextInt(dims[d] + 1);
                boxes[s * 6 + 2 * d] = Math.min(a, b);
                boxes[s * 6 + 2 * d + 1] = Math.max(a, b);
            }
        }
        List<Perturbation.Rule> rules = List.of(
                new Perturbation.Single(oneBase, mask, false, groups),
                new Perturbation.Single(rowBase, ints(r, batch * per, 0, 4), true, groups),
                new Perturbation.Coalition(rowBase, rowMask, true, 4, take),
                new Perturbation.Coalition(oneBase, mask, false, 4, take),
                new Perturbation.Box(rowBase, boxes),
                new Perturbation.Box(oneBase, boxes));
        try (ModelRunner gpu = CudaTestKit.runner(graph); ModelRunner cpu = CudaTestKit.CPU.prepare(graph)) {
            for (Perturbation.Rule rule : rules) {
                Perturbation p = new Perturbation(Map.of("x", x), home, Map.of("x", rule));
                Tensor want = cpu.evaluatePerturbed(p, 0, samples);
                assertArrayEquals(want.data(), gpu.evaluatePerturbed(p, 0, samples).data(), rule.toString());
                // a chunk from the middle is the same rows
                Tensor part = gpu.evaluatePerturbed(p, 4, 9);
                assertArrayEquals(java.util.Arrays.copyOfRange(want.data(), 4 * per, 9 * per), part.data(),
                        rule.getClass().getSimpleName() + " chunk");
            }
        }
    }

    private static void same(Model cpu, Model gpu, String method, Map<String, Object> params, Inputs in, int... t) {
        Attribution a = Methods.create(method, cpu, Methods.Params.of(params)).attribute(in, t);
        Attribution b = Methods.create(method, gpu, Methods.Params.of(params)).attribute(in, t);
        assertEquals("cuda", b.device(), method + " ran on " + b.describeDevice());
        assertEquals(a.byInput().keySet(), b.byInput().keySet());
        for (String k : a.byInput().keySet()) {
            assertClose(method + " " + k, a.byInput().get(k).data(), b.byInput().get(k).data());
        }
    }

    @Test
    void everyPerturbationMethodGivesTheCpusAttributions() {
        Path digits = TestData.reference("digits_cnn");
        Path tabular = TestData.reference("mlp_tabular");
        Path tiny = TestData.reference("tinyvgg");
        try (Model dc = Model.load(digits.resolve("model.onnx"), "cpu");
                Model dg = Model.load(digits.resolve("model.onnx"), "cuda");
                Model tc = Model.load(tabular.resolve("model.onnx"), "cpu");
                Model tg = Model.load(tabular.resolve("model.onnx"), "cuda");
                Model vc = Model.load(tiny.resolve("model.onnx"), "cpu");
                Model vg = Model.load(tiny.resolve("model.onnx"), "cuda")) {
            Inputs d = dc.inputs(NpyIO.read(digits.resolve("input.npy")));
            Inputs t = tc.inputs(NpyIO.read(tabular.resolve("input.npy")));
            Inputs v = vc.inputs(NpyIO.read(tiny.resolve("input.npy")));
            float[] quadrants = new float[64];
            for (int i = 0; i < 64; i++) {
                quadrants[i] = (i / 8 / 4) * 2 + (i % 8) / 4;
            }
            Map<String, Object> masked = new HashMap<>(Map.of("feature_mask", new Tensor(new int[] {1, 8, 8}, quadrants),
                    "n_samples", 6, "seed", 2L));
            same(vc, vg, "occlusion", Map.of("sliding_window_shapes", new int[] {3, 16, 16},
                    "strides", new int[] {3, 12, 12}), v, 0, 1);
            same(dc, dg, "feature_ablation", Map.of(), d, 3);
            same(dc, dg, "shapley_values", Map.of("feature_mask", masked.get("feature_mask")), d, 3); // exact: no samples, no seed
            same(dc, dg, "shapley_value_sampling", masked, d, 3);
            same(dc, dg, "kernel_shap", masked, d, 3);
            same(tc, tg, "lime", Map.of("n_samples", 40, "seed", 1L), t, 1);
            same(tc, tg, "feature_permutation", Map.of("seed", 9L), t, 1);
        }
    }
}
