package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.backend.Backend;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;

/**
 * Endpoint reuse against the plain computation, on any backend (the CPU suite and the CUDA suite
 * on the emulator both call it): for riemann_left, riemann_right and riemann_trapezoid, with and
 * without the first-layer saving, zero and non-zero baselines, the attributions are identical, the
 * deltas agree to float rounding, and only trapezoid (α = 0 and α = 1 on the path) skips the extra
 * forward pass, which without reuse always runs once over [x; b].
 */
public final class EndpointReuseChecks {
    private EndpointReuseChecks() {
    }

    static final Quadrature.Rule[] RULES = {Quadrature.Rule.RIEMANN_LEFT, Quadrature.Rule.RIEMANN_RIGHT,
        Quadrature.Rule.RIEMANN_TRAPEZOID};

    /** Runs the checks on a reference model directory; returns the largest |delta difference| / scale seen. */
    public static double check(Backend backend, Path modelDir, int rows) {
        CountingBackend counting = new CountingBackend(backend);
        Tensor all = NpyIO.read(modelDir.resolve("input.npy"));
        Tensor x = all.rows(0, Math.min(rows, all.dim(0)));
        int batch = x.dim(0);
        double worst = 0;
        try (Model m = Model.of(OnnxImporter.load(modelDir.resolve("model.onnx")), counting)) {
            int[] t = m.predict(x);
            for (Quadrature.Rule rule : RULES) {
                for (boolean saving : new boolean[] {false, true}) {
                    for (Baseline b : List.of(Baseline.zeros(), Baseline.scalar(0.1f))) {
                        String label = modelDir.getFileName() + " " + rule + (saving ? " with" : " without")
                                + " the first-layer saving, baseline " + b;
                        IntegratedGradients ig = new IntegratedGradients(m).method(rule).nSteps(8).baselines(b)
                                .returnConvergenceDelta(true).affineFirstLayer(saving).internalBatchSize(3 * batch);
                        counting.reset();
                        Attribution reused = ig.attribute(x, t);
                        List<Integer> reusedRows = List.copyOf(counting.forwardRows);
                        assertEquals(List.of(8), List.copyOf(counting.paths), label + ": one path integral");
                        counting.reset();
                        Attribution plain = ig.reuseEndpoints(false).attribute(x, t);
                        List<Integer> plainRows = List.copyOf(counting.forwardRows);

                        assertEquals(List.of(2 * batch), plainRows, label + ": without reuse, one forward over [x; b]");
                        assertEquals(rule == Quadrature.Rule.RIEMANN_TRAPEZOID ? List.of() : List.of(2 * batch),
                                reusedRows, label + ": forward passes with reuse");
                        assertArrayEquals(plain.attributions().data(), reused.attributions().data(),
                                label + ": attributions do not depend on where the endpoints come from");
                        // scale: the row's attribution mass and output magnitudes (the delta cancels them)
                        Tensor base = b.expand(x);
                        Tensor fx = m.forward(x);
                        Tensor fb = m.forward(base);
                        int per = x.rowSize();
                        int outs = fx.rowSize();
                        for (int i = 0; i < batch; i++) {
                            double mass = 0;
                            for (int j = 0; j < per; j++) {
                                mass += Math.abs(plain.attributions().data()[i * per + j]);
                            }
                            double scale = mass + Math.abs(fx.data()[i * outs + t[i]])
                                    + Math.abs(fb.data()[i * outs + t[i]]);
                            double diff = Math.abs(reused.convergenceDelta().data()[i] - plain.convergenceDelta().data()[i]);
                            worst = Math.max(worst, diff / scale);
                            assertTrue(diff <= 1e-6 * scale, label + ": row " + i + " delta with reuse "
                                    + reused.convergenceDelta().data()[i] + ", without " + plain.convergenceDelta().data()[i]
                                    + " (|diff| " + diff + " > 1e-6 x scale " + scale + ")");
                        }
                    }
                }
            }
        }
        return worst;
    }
}
