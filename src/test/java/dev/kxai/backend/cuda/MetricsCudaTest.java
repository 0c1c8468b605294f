package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.io.NpyIO;
import dev.kxai.metrics.DeletionInsertion;
import dev.kxai.metrics.FaithfulnessCorrelation;
import dev.kxai.metrics.Infidelity;
import dev.kxai.metrics.Scores;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The metrics on the CUDA backend (on the CPU emulation of the driver): deletion and insertion
 * curves (per-row bucket masks and coalition rules built by kernels/perturb.cu), faithfulness
 * correlation (per-row block masks, single ablations) and infidelity (host-built rows) run on
 * cuda and agree with the CPU's to float rounding.
 */
class MetricsCudaTest {
    private static final Path REF = TestData.reference("digits_cnn");

    private record Setup(Model cpu, Model cuda, Tensor x, int[] t, Map<String, Tensor> attr) {
    }

    private static Setup setup() {
        Model cpu = Model.load(REF.resolve("model.onnx"), "cpu");
        Model cuda = Model.load(REF.resolve("model.onnx"), "cuda");
        Tensor x = NpyIO.read(REF.resolve("input.npy"));
        int[] t = cpu.predict(x);
        Map<String, Tensor> attr = new IntegratedGradients(cpu).attribute(x, t).byInputOr(cpu.graph().inputName());
        return new Setup(cpu, cuda, x, t, attr);
    }

    private static void close(double[] want, double[] got, double tol, String what) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol, what + " [" + i + "]");
        }
    }

    @Test
    void deletionAndInsertionCurvesRunOnCudaAsOnTheCpu() {
        Setup s = setup();
        for (DeletionInsertion.Mode mode : DeletionInsertion.Mode.values()) {
            DeletionInsertion d = DeletionInsertion.deletion(s.cpu()).mode(mode).steps(8).baselines(Baseline.scalar(0.3f));
            DeletionInsertion.Curves onCpu = d.compute(s.cpu().inputs(s.x()), s.attr(), s.t());
            DeletionInsertion.Curves onCuda = DeletionInsertion.deletion(s.cuda()).mode(mode).steps(8)
                    .baselines(Baseline.scalar(0.3f)).compute(s.cuda().inputs(s.x()), s.attr(), s.t());
            assertEquals("cuda", onCuda.device(), "ran on cuda, not fallen back: " + onCuda.fallbackReason());
            for (int r = 0; r < s.x().dim(0); r++) {
                close(onCpu.curves()[r], onCuda.curves()[r], 1e-5, mode + " curve of row " + r);
                close(onCpu.randomCurves()[r], onCuda.randomCurves()[r], 1e-5, mode + " random curve of row " + r);
            }
        }
    }

    @Test
    void faithfulnessCorrelationAndInfidelityRunOnCudaAsOnTheCpu() {
        Setup s = setup();
        Scores fcCpu = new FaithfulnessCorrelation(s.cpu()).nRuns(24).compute(s.cpu().inputs(s.x()), s.attr(), s.t());
        Scores fcCuda = new FaithfulnessCorrelation(s.cuda()).nRuns(24).compute(s.cuda().inputs(s.x()), s.attr(), s.t());
        assertEquals("cuda", fcCuda.device(), "fell back: " + fcCuda.fallbackReason());
        close(fcCpu.values(), fcCuda.values(), 1e-4, "faithfulness correlation");
        Scores infCpu = new Infidelity(s.cpu()).perturbation(Infidelity.gaussian(0.05)).compute(s.cpu().inputs(s.x()),
                s.attr(), s.t());
        Scores infCuda = new Infidelity(s.cuda()).perturbation(Infidelity.gaussian(0.05)).compute(s.cuda().inputs(s.x()),
                s.attr(), s.t());
        assertEquals("cuda", infCuda.device(), "fell back: " + infCuda.fallbackReason());
        for (int r = 0; r < s.x().dim(0); r++) {
            assertEquals(infCpu.values()[r], infCuda.values()[r], 1e-4 * Math.max(1, infCpu.values()[r]), "infidelity " + r);
        }
    }
}
