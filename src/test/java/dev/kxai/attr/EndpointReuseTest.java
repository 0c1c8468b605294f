package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.cli.Main;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Endpoint reuse (IntegratedGradients.reuseEndpoints, --no-endpoint-reuse) on the CPU backend. */
class EndpointReuseTest {
    @Test
    void gemmFirstModel() {
        EndpointReuseChecks.check(new CpuBackend(), TestData.reference("mlp_tabular"), 5);
    }

    @Test
    void convFirstModel() {
        EndpointReuseChecks.check(new CpuBackend(), TestData.reference("digits_cnn"), 4);
    }

    @Test
    void defaultIsReuse() {
        CountingBackend counting = new CountingBackend(new CpuBackend());
        Path dir = TestData.reference("mlp_shapley");
        Tensor x = NpyIO.read(dir.resolve("input.npy"));
        try (dev.kxai.Model m = dev.kxai.Model.of(dev.kxai.onnx.OnnxImporter.load(dir.resolve("model.onnx")), counting)) {
            new IntegratedGradients(m).method(Quadrature.Rule.RIEMANN_TRAPEZOID).nSteps(4).returnConvergenceDelta(true)
                    .attribute(x, 0);
            assertEquals(0, counting.forwardRows.size(), "trapezoid with the default settings: no extra forward");
            new IntegratedGradients(m).method(Quadrature.Rule.RIEMANN_TRAPEZOID).nSteps(4).attribute(x, 0);
            assertEquals(0, counting.forwardRows.size(), "no delta asked: no forward at all");
        }
    }

    private record Run(int status, String out, String err) {
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(status, out.toString(), err.toString());
    }

    @Test
    void explainFlagGivesTheSameAttributionsAndDeltas(@TempDir Path dir) {
        Path ref = TestData.reference("mlp_tabular");
        String[] common = {"explain", "--model", ref.resolve("model.onnx").toString(), "--input",
            ref.resolve("input.npy").toString(), "--rule", "riemann_trapezoid", "--steps", "8", "--device", "cpu"};
        Run reuse = run(concat(common, "--out", dir.resolve("reuse").toString()));
        assertEquals(0, reuse.status(), reuse.err());
        Run plain = run(concat(common, "--no-endpoint-reuse", "--out", dir.resolve("plain").toString()));
        assertEquals(0, plain.status(), plain.err());
        assertArrayEquals(NpyIO.read(dir.resolve("plain/attributions.npy")).data(),
                NpyIO.read(dir.resolve("reuse/attributions.npy")).data());
        float[] a = NpyIO.read(dir.resolve("reuse/deltas.npy")).data();
        float[] b = NpyIO.read(dir.resolve("plain/deltas.npy")).data();
        for (int i = 0; i < a.length; i++) {
            assertEquals(b[i], a[i], 1e-5, "delta row " + i);
        }
    }

    @Test
    void benchFlagCountsTheExtraForwardRows() {
        Path ref = TestData.reference("mlp_tabular");
        String[] common = {"bench", "--model", ref.resolve("model.onnx").toString(), "--input",
            ref.resolve("input.npy").toString(), "--rule", "riemann_trapezoid", "--steps", "8", "--delta", "--repeats",
            "1", "--warmup", "0", "--sgemm-size", "16", "--sgemm-seconds", "0.01", "--device", "cpu"};
        int batch = NpyIO.read(ref.resolve("input.npy")).dim(0);
        Run reuse = run(common);
        assertEquals(0, reuse.status(), reuse.err());
        assertTrue(reuse.out().contains((8 * batch) + " gradient rows + 0 forward rows"), reuse.out());
        Run plain = run(concat(common, "--no-endpoint-reuse"));
        assertEquals(0, plain.status(), plain.err());
        assertTrue(plain.out().contains((8 * batch) + " gradient rows + " + (2 * batch) + " forward rows"), plain.out());
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
