package dev.kxai.attr.perturbation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Baseline;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The perturbation methods against their definitions and axioms on the CPU: Shapley efficiency,
 * sampling estimators converging to the exact values, occlusion by 1×1 windows = feature ablation,
 * chunked = unchunked, groups, permutations, seeds, and the errors a user meets. Captum's own
 * numbers are checked by the reference cases (ReferenceCasesTest) and, for LIME and KernelSHAP, by
 * {@link SurrogateFitTest}.
 */
class PerturbationMethodsTest {
    private static Model shapley;
    private static Model tabular;
    private static Model tinyvgg;
    private static Tensor shapleyX;
    private static Tensor tabularX;

    @BeforeAll
    static void load() {
        shapley = Model.load(TestData.reference("mlp_shapley").resolve("model.onnx"), "cpu");
        tabular = Model.load(TestData.reference("mlp_tabular").resolve("model.onnx"), "cpu");
        tinyvgg = Model.load(TestData.reference("tinyvgg").resolve("model.onnx"), "cpu");
        shapleyX = NpyIO.read(TestData.reference("mlp_shapley").resolve("input.npy"));
        tabularX = NpyIO.read(TestData.reference("mlp_tabular").resolve("input.npy"));
    }

    @AfterAll
    static void close() {
        shapley.close();
        tabular.close();
        tinyvgg.close();
    }

    private static double target(Model m, Tensor x, int row, int t) {
        Tensor y = m.forward(x);
        return y.data()[row * y.rowSize() + t];
    }

    private static Tensor row(Tensor x, int r) {
        int per = x.rowSize();
        int[] s = x.shape();
        s[0] = 1;
        return new Tensor(s, java.util.Arrays.copyOfRange(x.data(), r * per, (r + 1) * per));
    }

    private static double rowSum(Tensor a, int r) {
        double s = 0;
        int per = a.rowSize();
        for (int f = 0; f < per; f++) {
            s += a.data()[r * per + f];
        }
        return s;
    }

    @Test
    void exactShapleyValuesAreEfficient() {
        Settings s = Settings.defaults().baselines(Baseline.scalar(0.25f));
        Attribution a = ShapleyValues.exact(shapley, s).attribute(shapleyX, 1, 1, 1, 1);
        for (int r = 0; r < shapleyX.dim(0); r++) {
            Tensor base = new Tensor(new int[] {1, 6}, new float[] {0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f});
            double gap = target(shapley, row(shapleyX, r), 0, 1) - target(shapley, base, 0, 1);
            assertEquals(gap, rowSum(a.attributions(), r), 1e-6, "Σφ = F(x) − F(b), row " + r);
        }
    }

    /** Mean absolute error of an estimate against the exact values, averaged over seeds. */
    private static double error(java.util.function.LongFunction<Attribution> estimate, Tensor exact, int seeds) {
        double e = 0;
        for (int k = 0; k < seeds; k++) {
            float[] got = estimate.apply(k).attributions().data();
            for (int i = 0; i < got.length; i++) {
                e += Math.abs(got[i] - exact.data()[i]);
            }
        }
        return e / seeds / exact.size();
    }

    @Test
    void shapleySamplingAndKernelShapConvergeAsOneOverRootN() {
        Tensor exact = ShapleyValues.exact(shapley, Settings.defaults()).attribute(shapleyX, 1, 1, 1, 1).attributions();
        double[] sv = new double[3];
        double[] ks = new double[3];
        int[] n = {8, 32, 128};
        for (int i = 0; i < n.length; i++) {
            int ni = n[i];
            sv[i] = error(seed -> ShapleyValues.sampling(shapley, Settings.defaults().seed(seed), ni, null)
                    .attribute(shapleyX, 1, 1, 1, 1), exact, 6);
            ks[i] = error(seed -> Lime.kernelShap(shapley, Settings.defaults().seed(seed)).nSamples(ni * 6)
                    .attribute(shapleyX, 1, 1, 1, 1), exact, 6);
        }
        // 4× the samples: 1/sqrt(n) halves the error; allow 1.5× to 3× per step (sampling noise)
        for (int i = 1; i < n.length; i++) {
            double rs = sv[i - 1] / sv[i];
            double rk = ks[i - 1] / ks[i];
            assertTrue(rs > 1.4 && rs < 3.5, "shapley sampling error " + java.util.Arrays.toString(sv));
            assertTrue(rk > 1.4, "kernel shap error " + java.util.Arrays.toString(ks));
        }
        assertTrue(sv[2] < 0.05 * maxAbs(exact), "sampling close at 128 orderings: " + sv[2]);
    }

    private static double maxAbs(Tensor t) {
        double m = 0;
        for (float v : t.data()) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    @Test
    void shapleySamplingWithEveryOrderingIsExact() {
        List<int[]> all = new java.util.ArrayList<>();
        permutations(new int[] {0, 1, 2, 3, 4, 5}, 0, all);
        Tensor exact = ShapleyValues.exact(shapley, Settings.defaults()).attribute(shapleyX, 0, 1, 0, 1).attributions();
        Tensor sampled = ShapleyValues.sampling(shapley, Settings.defaults(), 0, all).attribute(shapleyX, 0, 1, 0, 1)
                .attributions();
        assertEquals(720, all.size());
        for (int i = 0; i < exact.size(); i++) {
            assertEquals(exact.data()[i], sampled.data()[i], 1e-6, "element " + i);
        }
    }

    private static void permutations(int[] a, int k, List<int[]> out) {
        if (k == a.length) {
            out.add(a.clone());
            return;
        }
        for (int i = k; i < a.length; i++) {
            int t = a[k];
            a[k] = a[i];
            a[i] = t;
            permutations(a, k + 1, out);
            a[i] = a[k];
            a[k] = t;
        }
    }

    @Test
    void featureAblationIsTheDropOfEachFeatureAlone() {
        Attribution a = new FeatureAblation(tabular, Settings.defaults().baselines(Baseline.scalar(-0.5f)))
                .attribute(tabularX, 2);
        for (int r : new int[] {0, 7}) {
            for (int f : new int[] {0, 5}) {
                Tensor x = row(tabularX, r);
                Tensor ablated = new Tensor(x.shape(), x.data().clone());
                ablated.data()[f] = -0.5f;
                float want = (float) (target(tabular, x, 0, 2) - target(tabular, ablated, 0, 2));
                assertEquals(want, a.attributions().data()[r * 8 + f], 1e-7, "row " + r + ", feature " + f);
            }
        }
    }

    @Test
    void groupedFeaturesShareTheDropOfTheirGroup() {
        Tensor mask = new Tensor(new int[] {8}, new float[] {0, 0, 1, 1, 1, 2, 3, 3});
        Attribution a = new FeatureAblation(tabular, Settings.defaults().featureMasks(Map.of("input", mask)))
                .attribute(tabularX, 1);
        Tensor x = row(tabularX, 3);
        Tensor ablated = new Tensor(x.shape(), x.data().clone());
        ablated.data()[2] = ablated.data()[3] = ablated.data()[4] = 0f;
        float want = (float) (target(tabular, x, 0, 1) - target(tabular, ablated, 0, 1));
        for (int f = 2; f <= 4; f++) {
            assertEquals(want, a.attributions().data()[3 * 8 + f], 1e-7, "feature " + f);
        }
    }

    @Test
    void occlusionByOneByOneWindowsIsFeatureAblation() {
        Path d = TestData.reference("digits_cnn");
        try (Model digits = Model.load(d.resolve("model.onnx"), "cpu")) {
            Tensor x = NpyIO.read(d.resolve("input.npy"));
            Tensor occ = new Occlusion(digits, List.<int[]>of(new int[] {1, 1, 1}), null, Settings.defaults())
                    .attribute(x, 3).attributions();
            Tensor fa = new FeatureAblation(digits, Settings.defaults()).attribute(x, 3).attributions();
            assertArrayEquals(fa.data(), occ.data());
            assertTrue(maxAbs(fa) > 0);
        }
    }

    @Test
    void occlusionIsTheSameInOneRowChunksAndInBudgetChunks() {
        Tensor x = NpyIO.read(TestData.reference("tinyvgg").resolve("input.npy"));
        List<int[]> w = List.<int[]>of(new int[] {3, 16, 16});
        List<int[]> st = List.<int[]>of(new int[] {3, 12, 12}); // 64 − 16 not a multiple of 12: the last window crops
        Tensor big = new Occlusion(tinyvgg, w, st, Settings.defaults()).attribute(x, 0, 1).attributions();
        Tensor one = new Occlusion(tinyvgg, w, st, Settings.defaults().internalBatchSize(1)).attribute(x, 0, 1).attributions();
        Tensor seven = new Occlusion(tinyvgg, w, st, Settings.defaults().perturbationsPerEval(3)).attribute(x, 0, 1)
                .attributions();
        assertClose(big, one, 1e-6);
        assertClose(big, seven, 1e-6);
    }

    private static void assertClose(Tensor a, Tensor b, double rel) {
        double m = maxAbs(a);
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.data()[i], b.data()[i], rel * m + 1e-9, "element " + i);
        }
    }

    @Test
    void occlusionCountsTheWindowsOverEachFeatureAndCropsTheLast() {
        List<int[]> boxes = Occlusion.positions("x", new int[] {10}, new int[] {4}, new int[] {4});
        // ceil((10 − 4)/4) + 1 = 3 windows: [0,4), [4,8), [8,10) cropped
        assertEquals(3, boxes.size());
        assertArrayEquals(new int[] {8, 10}, boxes.get(2));
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> Occlusion.positions("x", new int[] {10}, new int[] {4}, new int[] {5}));
        assertTrue(e.getMessage().contains("stride 5"), e.getMessage());
        e = assertThrows(InvalidInputException.class,
                () -> Occlusion.positions("x", new int[] {3, 8, 8}, new int[] {3, 9, 2}, null));
        assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
    }

    @Test
    void featurePermutationTakesEachGroupFromThePermutedRow() {
        int[] perm = {1, 2, 0, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 15};
        perm[15] = 15; // a fixed row gets 0 (its permuted value is its own)
        Attribution a = new FeaturePermutation(tabular, Settings.defaults(), perm).attribute(tabularX, 0);
        Tensor x = row(tabularX, 4);
        Tensor permuted = new Tensor(x.shape(), x.data().clone());
        permuted.data()[6] = tabularX.data()[perm[4] * 8 + 6];
        float want = (float) (target(tabular, x, 0, 0) - target(tabular, permuted, 0, 0));
        assertEquals(want, a.attributions().data()[4 * 8 + 6], 1e-7);
        for (int f = 0; f < 8; f++) {
            // the same row, evaluated at another place in the batch: float noise at most
            assertEquals(0f, a.attributions().data()[15 * 8 + f], 1e-7);
        }
        assertThrows(InvalidInputException.class, () -> new FeaturePermutation(tabular, Settings.defaults(), null)
                .attribute(row(tabularX, 0), 0));
    }

    @Test
    void seedsReproduceAndDiffer() {
        Attribution a = Lime.lime(tabular, Settings.defaults().seed(3)).attribute(tabularX, 1);
        Attribution b = Lime.lime(tabular, Settings.defaults().seed(3)).attribute(tabularX, 1);
        Attribution c = Lime.lime(tabular, Settings.defaults().seed(4)).attribute(tabularX, 1);
        assertArrayEquals(a.attributions().data(), b.attributions().data());
        assertNotEquals(java.util.Arrays.toString(a.attributions().data()), java.util.Arrays.toString(c.attributions().data()));
    }

    @Test
    void severalInputsShareShapleyGroupsAndAblateEachInputAlone() {
        Path f = TestData.reference("tabular_two_inputs");
        try (Model m = Model.load(f.resolve("model.onnx"), "cpu")) {
            Inputs in = Inputs.of("input_0", NpyIO.read(f.resolve("input_0.npy")))
                    .and("input_1", NpyIO.read(f.resolve("input_1.npy")))
                    .additional("add_0", NpyIO.read(f.resolve("add_0.npy")));
            Attribution s = ShapleyValues.exact(m, Settings.defaults()).attribute(in, 0);
            assertEquals(List.of("input_0", "input_1"), List.copyOf(s.byInput().keySet()));
            Inputs zero = Inputs.of("input_0", Tensor.zeros(in.get("input_0").shape()))
                    .and("input_1", Tensor.zeros(in.get("input_1").shape())).additional("add_0", in.get("add_0"));
            Tensor fx = m.forward(in);
            Tensor fb = m.forward(zero);
            for (int r = 0; r < in.batch(); r++) {
                double sum = rowSum(s.byInput().get("input_0"), r) + rowSum(s.byInput().get("input_1"), r);
                assertEquals(fx.data()[r * 3] - fb.data()[r * 3], sum, 1e-5, "efficiency over both inputs, row " + r);
            }
            // rows 3 and 11 are masked out by add_0: nothing matters there
            for (Tensor t : s.byInput().values()) {
                for (int j = 0; j < t.rowSize(); j++) {
                    assertEquals(0f, t.data()[3 * t.rowSize() + j], 1e-7);
                }
            }
            Attribution fa = new FeatureAblation(m, Settings.defaults()).attribute(in, 0);
            assertEquals(2, fa.byInput().size());
        }
    }

    @Test
    void errorsNameWhatIsWrong() {
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> ShapleyValues.exact(tinyvgg,
                Settings.defaults()).attribute(row(NpyIO.read(TestData.reference("tinyvgg").resolve("input.npy")), 0), 0));
        assertTrue(e.getMessage().contains("shapley_value_sampling"), e.getMessage());
        // coalitions are 0/1
        float[] half = new float[16];
        half[3] = 0.5f;
        e = assertThrows(InvalidInputException.class, () -> Lime.lime(tabular, Settings.defaults())
                .samples(new Tensor(new int[] {2, 8}, half), null).attribute(row(tabularX, 0), 0));
        assertTrue(e.getMessage().contains("0.5"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> new FeatureAblation(tabular, Settings.defaults()
                .featureMasks(Map.of("input", new Tensor(new int[] {7}, new float[7])))).attribute(tabularX, 0));
        assertTrue(e.getMessage().contains("[7]"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> new FeatureAblation(tabular, Settings.defaults()
                .featureMasks(Map.of("input", new Tensor(new int[] {8}, new float[] {0, 1, 2, 3, 4, 5, 6, 1.5f}))))
                .attribute(tabularX, 0));
        assertTrue(e.getMessage().contains("1.5"), e.getMessage());
    }
}
