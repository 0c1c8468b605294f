package dev.kxai.attr.perturbation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Baseline;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * LIME and KernelSHAP give Captum's coefficients to 1e-4 when given the same coalitions (and, for
 * LIME, when they compute the same similarity weights themselves): src/test/resources/surrogates,
 * written by its make.py with scikit-learn as Captum 0.8.0 calls it (no Python at test time).
 */
class SurrogateFitTest {
    private static Path dir() throws URISyntaxException {
        return Path.of(SurrogateFitTest.class.getResource("/surrogates").toURI());
    }

    private static Tensor read(String f) throws URISyntaxException {
        return NpyIO.read(dir().resolve(f));
    }

    private static void assertCoefficients(Tensor want, Tensor attributions, Tensor mask, String what) {
        int groups = want.dim(1);
        double max = 0;
        for (float v : want.data()) {
            max = Math.max(max, Math.abs(v));
        }
        for (int r = 0; r < want.dim(0); r++) {
            for (int f = 0; f < mask.size(); f++) {
                int g = (int) mask.data()[f];
                assertEquals(want.data()[r * groups + g], attributions.data()[r * mask.size() + f], 1e-4 * max,
                        what + ": row " + r + ", feature " + f);
            }
        }
    }

    private static Settings settings() throws URISyntaxException {
        return Settings.defaults().baselines(Baseline.of(read("baseline.npy")))
                .featureMasks(Map.of("input", read("feature_mask.npy")));
    }

    private static int[] targets() throws URISyntaxException {
        float[] t = read("targets.npy").data();
        int[] out = new int[t.length];
        for (int i = 0; i < t.length; i++) {
            out[i] = (int) t[i];
        }
        return out;
    }

    @Test
    void limeAndKernelShapMatchScikitLearnOnCaptumsPipeline() throws Exception {
        try (Model m = Model.load(TestData.reference("mlp_tabular").resolve("model.onnx"), "cpu")) {
            Tensor x = read("input.npy");
            Tensor z = read("samples.npy");
            Tensor mask = read("feature_mask.npy");
            Tensor lw = read("lime_weights.npy");
            Tensor row0 = new Tensor(new int[] {lw.dim(1)}, java.util.Arrays.copyOf(lw.data(), lw.dim(1)));
            // LIME computing its own cosine-kernel weights from the same coalitions
            assertCoefficients(read("lime_coef.npy"), Lime.lime(m, settings()).samples(z, null).attribute(x, targets())
                    .attributions(), mask, "lime alpha 0.01");
            assertCoefficients(read("lime_alpha0.001_coef.npy"), Lime.lime(m, settings()).samples(z, null)
                    .surrogate(Lime.Surrogate.LASSO, 0.001).attribute(x, targets()).attributions(), mask, "lime alpha 0.001");
            assertCoefficients(read("kernel_shap_coef.npy"), Lime.kernelShap(m, settings()).samples(z, null)
                    .attribute(x, targets()).attributions(), mask, "kernel shap");
            // given weights (row 0's, for row 0 alone) are used as given
            Tensor first = new Tensor(new int[] {1, 8}, java.util.Arrays.copyOf(x.data(), 8));
            Tensor want0 = new Tensor(new int[] {1, 4}, java.util.Arrays.copyOf(read("lime_coef.npy").data(), 4));
            assertCoefficients(want0, Lime.lime(m, settings()).samples(z, row0).attribute(first, targets()[0])
                    .attributions(), mask, "lime with given weights");
        }
    }
}
