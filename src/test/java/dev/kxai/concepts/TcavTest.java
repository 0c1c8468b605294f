package dev.kxai.concepts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * TCAV on a model that provably uses a direction: h = W x, logits = (v·h, −v·h). A concept whose
 * examples move h along v scores 1 for class 0 (0 for class 1), random concepts about 0.5, and the
 * significance test separates them.
 */
class TcavTest {
    private static Tensor gaussian(Random r, int n, int d, double[] shift) {
        float[] v = new float[n * d];
        for (int i = 0; i < n; i++) {
            for (int f = 0; f < d; f++) {
                v[i * d + f] = (float) (r.nextGaussian() + (shift == null ? 0 : shift[f]));
            }
        }
        return new Tensor(new int[] {n, d}, v);
    }

    @Test
    void aPlantedConceptScoresOneAndRandomOnesAboutAHalf() {
        float[] w = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0};  // [5, 4]: h = (x, x0 + x1)
        float[] head = {0, 0, 0, 0, 1, 0, 0, 0, 0, -1};                              // [2, 5]: logits = (h4, −h4)
        List<Node> nodes = List.of(
                new Node("layer", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("x", "w"), "h"),
                new Node("head", "Gemm", new Op.Gemm(1f, 1f, false, true), List.of("h", "v"), "logits"));
        Graph g = new Graph("planted", "x", new int[] {-1, 4}, "logits", nodes,
                Map.of("w", new Tensor(new int[] {5, 4}, w), "v", new Tensor(new int[] {2, 5}, head)));
        Random r = new Random(11);
        try (Model m = Model.of(g, new CpuBackend())) {
            Tcav tcav = new Tcav(m, "h");
            // the concept: x0 + x1 large (the direction the class-0 logit reads)
            Tensor concept = gaussian(r, 40, 4, new double[] {3, 3, 0, 0});
            List<Tensor> randoms = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                randoms.add(gaussian(r, 40, 4, null));
            }
            Tensor inputs = gaussian(r, 30, 4, null);
            Tcav.Result up = tcav.score(concept, randoms, inputs, 0);
            Tcav.Result down = tcav.score(concept, randoms, inputs, 1);
            assertEquals(1.0, up.meanScore(), 1e-12, java.util.Arrays.toString(up.conceptScores()));
            assertEquals(0.0, down.meanScore(), 1e-12);
            double randomMean = java.util.Arrays.stream(up.randomScores()).average().orElseThrow();
            assertTrue(randomMean > 0.2 && randomMean < 0.8, "random concepts: " + java.util.Arrays.toString(up.randomScores()));
            assertTrue(up.significant(0.05), "p = " + up.pValue());
            // a "concept" that is itself random noise is not significant, and far less so than the planted one
            Tcav.Result noise = tcav.score(gaussian(r, 40, 4, null), randoms, inputs, 0);
            assertFalse(noise.significant(0.05), "noise p = " + noise.pValue());
            assertTrue(noise.pValue() > 5 * up.pValue(), "noise p = " + noise.pValue() + ", planted p = " + up.pValue());
            assertThrows(InvalidInputException.class, () -> tcav.score(concept, randoms.subList(0, 1), inputs, 0));
            assertThrows(InvalidInputException.class, () -> new Tcav(m, "nope"));
        }
    }
}
