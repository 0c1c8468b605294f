package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import dev.kxai.validate.Comparison;
import org.junit.jupiter.api.Test;

/** Completeness, chunking invariance and baseline forms of Integrated Gradients. */
class IntegratedGradientsAxiomsTest {
    private static Model load(String name) {
        return Model.load(TestData.reference(name).resolve("model.onnx"), "cpu");
    }

    private static Tensor input(String name) {
        return NpyIO.read(TestData.reference(name).resolve("input.npy"));
    }

    private static double maxAbs(Tensor t) {
        double m = 0;
        for (float v : t.data()) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    @Test
    void completenessDeltaShrinksWithStepsOnASmoothModel() {
        // Linear-Sigmoid-Linear: smooth, so the quadrature error falls as n grows
        Model m = load("mlp_shapley");
        Tensor x = input("mlp_shapley");
        for (Quadrature.Rule rule : new Quadrature.Rule[] {Quadrature.Rule.RIEMANN_TRAPEZOID,
            Quadrature.Rule.GAUSS_LEGENDRE, Quadrature.Rule.RIEMANN_MIDDLE}) {
            double previous = Double.POSITIVE_INFINITY;
            for (int n : new int[] {2, 4, 16, 64}) {
                Attribution a = new IntegratedGradients(m).method(rule).nSteps(n).returnConvergenceDelta(true)
                        .attribute(x, 1);
                double d = maxAbs(a.convergenceDelta());
                assertTrue(d < previous || d < 1e-6, rule + ": |delta| " + d + " at n=" + n + " not below " + previous);
                previous = d;
            }
            // Captum's trapezoid weights are 1/n with halved ends, summing to 1 − 1/n instead of 1,
            // so its delta only falls like 1/n; the other rules converge fast on a smooth model
            double bound = rule == Quadrature.Rule.RIEMANN_TRAPEZOID ? 2e-3 : 1e-4;
            assertTrue(previous < bound, rule + ": |delta| at 64 steps is " + previous);
        }
    }

    @Test
    void deltaIsSumOfAttributionsMinusOutputDifference() {
        Model m = load("mlp_tabular");
        Tensor x = input("mlp_tabular");
        int[] t = m.predict(x);
        Attribution a = new IntegratedGradients(m).nSteps(8).returnConvergenceDelta(true).attribute(x, t);
        Tensor fx = m.forward(x);
        Tensor fb = m.forward(Tensor.zeros(x.shape()));
        int per = x.rowSize();
        int outs = fx.rowSize();
        for (int i = 0; i < x.dim(0); i++) {
            double s = 0;
            for (int j = 0; j < per; j++) {
                s += a.attributions().data()[i * per + j];
            }
            double expected = s - (fx.data()[i * outs + t[i]] - fb.data()[i * outs + t[i]]);
            assertEquals(expected, a.convergenceDelta().data()[i], 1e-5, "row " + i);
        }
    }

    @Test
    void endpointReuseGivesTheSameDeltaAsAnExtraForward() {
        // trapezoid evaluates α = 0 and 1 on the path; left needs the extra forward for F(x)
        Model m = load("digits_cnn");
        Tensor x = input("digits_cnn");
        int[] t = m.predict(x);
        Attribution trap = new IntegratedGradients(m).method(Quadrature.Rule.RIEMANN_TRAPEZOID).nSteps(10)
                .returnConvergenceDelta(true).attribute(x, t);
        Tensor fx = m.forward(x);
        Tensor fb = m.forward(Tensor.zeros(x.shape()));
        double[] sums = dev.kxai.backend.PathOps.rowSums(trap.attributions().data(), x.dim(0), x.rowSize());
        for (int i = 0; i < x.dim(0); i++) {
            double viaForward = sums[i] - (fx.data()[i * 10 + t[i]] - fb.data()[i * 10 + t[i]]);
            assertEquals(viaForward, trap.convergenceDelta().data()[i], 1e-4);
        }
    }

    @Test
    void chunkedEqualsUnchunked() {
        Model m = load("digits_cnn");
        Tensor x = input("digits_cnn");
        int[] t = m.predict(x);
        IntegratedGradients ig = new IntegratedGradients(m).nSteps(20).returnConvergenceDelta(true);
        Attribution whole = ig.internalBatchSize(20 * x.dim(0)).attribute(x, t);
        for (int rows : new int[] {1, 7, 10, 33, 101, 10_000}) {
            Attribution chunked = ig.internalBatchSize(rows).attribute(x, t);
            Comparison c = Comparison.of(chunked.attributions().data(), whole.attributions().data());
            assertTrue(c.maxAbs() <= 1e-6 * c.maxRef(), "internal_batch_size " + rows + ": " + c);
            Comparison d = Comparison.of(chunked.convergenceDelta().data(), whole.convergenceDelta().data());
            assertTrue(d.maxAbs() <= 1e-5, "delta with internal_batch_size " + rows + ": " + d);
        }
        assertEquals(20, ig.internalBatchSize(10_000).stepsPerChunk(x.dim(0)), "never more steps than n_steps");
        assertEquals(1, ig.internalBatchSize(7).stepsPerChunk(x.dim(0)), "fewer rows than examples: one step per chunk");
        assertEquals(3, ig.internalBatchSize(33).stepsPerChunk(x.dim(0)));
    }

    /**
     * Bit for bit: every step is added to the running sum in ascending order whatever the chunks,
     * and with batch-invariant dense GEMMs no row depends on the rows computed with it, so the
     * chunking changes no bit (what lets a batched request equal the lone one).
     */
    @Test
    void chunkedEqualsUnchunkedBitForBitWhenBatchInvariant() {
        for (String name : new String[] {"digits_cnn", "tinyvgg"}) {
            Model m = load(name);
            Tensor x = input(name);
            int[] t = m.predict(x);
            dev.kxai.backend.cpu.CpuBackend.batchInvariant(true);
            try {
                IntegratedGradients ig = new IntegratedGradients(m).nSteps(12).returnConvergenceDelta(true);
                Attribution whole = ig.internalBatchSize(12 * x.dim(0)).attribute(x, t);
                for (int rows : new int[] {1, 5, 7 * x.dim(0)}) {
                    Attribution chunked = ig.internalBatchSize(rows).attribute(x, t);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(whole.attributions().data(),
                            chunked.attributions().data(), name + ", internal_batch_size " + rows);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(whole.convergenceDelta().data(),
                            chunked.convergenceDelta().data(), name + " delta, internal_batch_size " + rows);
                }
            } finally {
                dev.kxai.backend.cpu.CpuBackend.batchInvariant(false);
            }
        }
    }

    @Test
    void baselineFormsAgree() {
        Model m = load("mlp_tabular");
        Tensor x = input("mlp_tabular");
        int rows = x.dim(0);
        int per = x.rowSize();
        float[] one = new float[per];
        for (int j = 0; j < per; j++) {
            one[j] = 0.1f * j - 0.3f;
        }
        float[] full = new float[rows * per];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(one, 0, full, r * per, per);
        }
        IntegratedGradients ig = new IntegratedGradients(m).nSteps(8);
        Tensor same = ig.baselines(Baseline.of(new Tensor(x.shape(), full))).attribute(x, 0).attributions();
        Tensor batch1 = ig.baselines(Baseline.of(new Tensor(new int[] {1, per}, one))).attribute(x, 0).attributions();
        Tensor noBatch = ig.baselines(Baseline.of(new Tensor(new int[] {per}, one))).attribute(x, 0).attributions();
        assertEquals(0.0, Comparison.of(batch1.data(), same.data()).maxAbs());
        assertEquals(0.0, Comparison.of(noBatch.data(), same.data()).maxAbs());

        Tensor scalar = ig.baselines(Baseline.scalar(0.25f)).attribute(x, 0).attributions();
        float[] quarter = new float[rows * per];
        java.util.Arrays.fill(quarter, 0.25f);
        Tensor filled = ig.baselines(Baseline.of(new Tensor(x.shape(), quarter))).attribute(x, 0).attributions();
        assertEquals(0.0, Comparison.of(scalar.data(), filled.data()).maxAbs());
        // and a different baseline does change the answer
        assertTrue(Comparison.of(scalar.data(), same.data()).maxAbs() > 1e-4);
    }

    @Test
    void withoutMultiplyingByInputsTheResultIsTheWeightedGradientSum() {
        Model m = load("mlp_tabular");
        Tensor x = input("mlp_tabular");
        Tensor plain = new IntegratedGradients(m, false).nSteps(6).attribute(x, 2).attributions();
        Tensor times = new IntegratedGradients(m, true).nSteps(6).attribute(x, 2).attributions();
        for (int i = 0; i < x.size(); i++) {
            assertEquals(times.data()[i], plain.data()[i] * x.data()[i], 1e-6f);
        }
    }

    @Test
    void firstLayerSavingEqualsThePlainPath() {
        // conv-first, gemm-first, and gemm-first followed by batch norm and softmax
        for (String name : new String[] {"digits_cnn", "mlp_tabular", "mlp_bn_softmax", "resnet_mini"}) {
            Model m = load(name);
            Tensor x = input(name);
            int[] t = m.predict(x);
            for (Quadrature.Rule rule : new Quadrature.Rule[] {Quadrature.Rule.GAUSS_LEGENDRE,
                Quadrature.Rule.RIEMANN_TRAPEZOID}) {
                IntegratedGradients ig = new IntegratedGradients(m).method(rule).nSteps(12).returnConvergenceDelta(true)
                        .internalBatchSize(5 * x.dim(0));
                Attribution plain = ig.affineFirstLayer(false).attribute(x, t);
                Attribution fast = ig.affineFirstLayer(true).attribute(x, t);
                Comparison c = Comparison.of(fast.attributions().data(), plain.attributions().data());
                assertTrue(c.relL2() < 1e-5 && c.maxAbs() <= 1e-5 * c.maxRef() + 1e-7, name + " " + rule + ": " + c);
                Comparison d = Comparison.of(fast.convergenceDelta().data(), plain.convergenceDelta().data());
                assertTrue(d.maxAbs() < 1e-4, name + " " + rule + " delta: " + d);
            }
        }
    }
}
