package dev.kxai.concepts;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.CliRun;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The concept bottleneck of the cbm_xor reference (two sigmoid concepts feeding an XOR task):
 * interventions from the four corners reproduce the reference's task outputs, f([0,1]) > 0 and
 * f([1,1]) < 0, and concept values are the layer's.
 */
class ConceptBottleneckTest {
    private static final Path CBM = TestData.reference("cbm_xor");
    private static final String LAYER = "/concept_encoder/concept_encoder.5/Sigmoid_output_0";

    @Test
    void interventionsFromTheCornersAreTheReferences() {
        try (Model m = Model.load(CBM.resolve("model.onnx"), "cpu")) {
            ConceptBottleneck cb = new ConceptBottleneck(m, LAYER);
            Tensor grid = NpyIO.read(CBM.resolve("concept_grid.npy"));
            assertArrayEquals(grid.data(), cb.corners().data());
            Tensor y = cb.intervene(grid, Map.of());
            Tensor ref = NpyIO.read(CBM.resolve("task_on_concept_grid.npy"));
            assertArrayEquals(ref.shape(), y.shape());
            for (int i = 0; i < ref.size(); i++) {
                assertEquals(ref.data()[i], y.data()[i], 1e-5, "corner " + i);
            }
            assertTrue(y.data()[1] > 0 && y.data()[3] < 0, "XOR: f([0,1]) positive, f([1,1]) negative");
            Tensor x = NpyIO.read(CBM.resolve("input.npy"));
            Tensor c = cb.concepts(m.inputs(x));
            assertArrayEquals(new int[] {x.dim(0), 2}, c.shape());
            // the tail from the concepts the prefix computed gives the model's own output
            assertArrayEquals(m.forward(x).data(), cb.intervene(c, Map.of()).data(), 1e-6f);
        }
    }

    @Test
    void badGridsAndTailsThatReadTheInputAreRefused() {
        try (Model m = Model.load(CBM.resolve("model.onnx"), "cpu")) {
            ConceptBottleneck cb = new ConceptBottleneck(m, LAYER);
            InvalidInputException e = assertThrows(InvalidInputException.class,
                    () -> cb.intervene(new Tensor(new int[] {2, 3}, new float[6]), Map.of()));
            assertTrue(e.getMessage().contains("[2, 3]") && e.getMessage().contains("[2]"), e.getMessage());
            assertThrows(InvalidInputException.class, () -> new ConceptBottleneck(m, "nope"));
        }
        // a skip connection: y = relu(W x) + x, so the tail after the relu still reads x
        java.util.List<dev.kxai.graph.Node> nodes = java.util.List.of(
                new dev.kxai.graph.Node("g", "Gemm", new dev.kxai.graph.Op.Gemm(1f, 1f, false, true), java.util.List.of("x", "w"), "z"),
                new dev.kxai.graph.Node("r", "Relu", new dev.kxai.graph.Op.Relu(), java.util.List.of("z"), "h"),
                new dev.kxai.graph.Node("a", "Add", new dev.kxai.graph.Op.Add(), java.util.List.of("h", "x"), "y"));
        dev.kxai.graph.Graph g = new dev.kxai.graph.Graph("skip", "x", new int[] {-1, 2}, "y", nodes,
                Map.of("w", new Tensor(new int[] {2, 2}, new float[] {1, 0, 0, 1})));
        try (Model m = Model.of(g, new dev.kxai.backend.cpu.CpuBackend())) {
            ConceptBottleneck cb = new ConceptBottleneck(m, "h");
            Tensor h = new Tensor(new int[] {1, 2}, new float[] {1, 2});
            InvalidInputException e = assertThrows(InvalidInputException.class, () -> cb.intervene(h, Map.of()));
            assertTrue(e.getMessage().contains("does not depend on it alone") && e.getMessage().contains("'x'"),
                    e.getMessage());
            Tensor x = new Tensor(new int[] {1, 2}, new float[] {-1, 3});
            assertArrayEquals(new float[] {0, 5}, cb.intervene(h, Map.of("x", x)).data(), "h + x with x given");
        }
    }

    @Test
    void theCliPrintsConceptsAndInterventions(@TempDir Path out) {
        CliRun r = CliRun.of("concepts", "--model", CBM.resolve("model.onnx").toString(), "--layer", LAYER, "--input",
                CBM.resolve("input.npy").toString(), "--corners", "--device", "cpu", "--out", out.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("concepts [0.0000, 1.0000] -> output [8.12"), r.out());
        assertEquals(12, NpyIO.read(out.resolve("concepts.npy")).dim(0));
        assertEquals(4, NpyIO.read(out.resolve("task_on_grid.npy")).dim(0));
        CliRun bad = CliRun.of("concepts", "--model", CBM.resolve("model.onnx").toString(), "--layer", LAYER,
                "--device", "cpu", "--out", out.toString());
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("nothing to do"), bad.err());
    }
}
