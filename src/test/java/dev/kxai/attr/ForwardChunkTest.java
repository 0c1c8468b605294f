package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The forward-only working set and the perturbation loop's chunks sized from it. */
class ForwardChunkTest {
    private static Tensor zeros(int... shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return new Tensor(shape, new float[n]);
    }

    @Test
    void forwardPeakIsTheMostAliveAtOnce() {
        // x[8] -> g1 = x W1 [32] -> r = relu(g1) [32] -> g2 = r W2 [16]; s = x W3 [16]; y = g2 + s [16]
        Op.Gemm mm = new Op.Gemm(1f, 1f, false, false);
        Graph g = new Graph("test:peak", "x", new int[] {-1, 8}, "y", List.of(
                new Node("g1", "Gemm", mm, List.of("x", "w1"), "g1"),
                new Node("r", "Relu", new Op.Relu(), List.of("g1"), "r"),
                new Node("g2", "Gemm", mm, List.of("r", "w2"), "g2"),
                new Node("s", "Gemm", mm, List.of("x", "w3"), "s"),
                new Node("y", "Add", new Op.Add(), List.of("g2", "s"), "y")),
                Map.of("w1", zeros(8, 32), "w2", zeros(32, 16), "w3", zeros(8, 16)));
        ModelRunner r = new CpuBackend().prepare(g);
        // at the Relu: x (alive until s reads it) + g1 + r = 8 + 32 + 32
        assertEquals(72, r.forwardFloatsPerExample());
        // forward + backward: the input, then every output and its gradient
        assertEquals(8 + 2 * (32 + 32 + 16 + 16 + 16), r.workingFloatsPerExample());
    }

    @Test
    void perturbationChunksAreSizedForForwardsOnly() {
        try (Model m = Model.load(TestData.reference("digits_cnn").resolve("model.onnx"), "cpu")) {
            ModelRunner r = m.runner();
            assertTrue(r.forwardFloatsPerExample() * 2 < r.workingFloatsPerExample(),
                    r.forwardFloatsPerExample() + " of " + r.workingFloatsPerExample());
            long row = 64; // one 1x8x8 example
            int rows = 1 << 30;
            assertEquals(r.chunkBudgetBytes() / (4 * (r.forwardFloatsPerExample() + row)),
                    new ChunkPolicy(null).rowsPerForwardChunk(r, rows));
            assertTrue(new ChunkPolicy(null).rowsPerForwardChunk(r, rows) > new ChunkPolicy(null).stepsPerChunk(r, 1, rows));
            // a given internal_batch_size (or perturbations_per_eval x batch) is kept; never more rows than there are
            assertEquals(40, new ChunkPolicy(40).rowsPerForwardChunk(r, rows));
            assertEquals(7, new ChunkPolicy(40).rowsPerForwardChunk(r, 7));
            assertEquals(7, new ChunkPolicy(null).rowsPerForwardChunk(r, 7));
        }
    }
}
