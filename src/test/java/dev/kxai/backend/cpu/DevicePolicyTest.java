package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.DeviceException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Saliency;
import dev.kxai.backend.Backend;
import dev.kxai.backend.GraphRunner;
import dev.kxai.backend.ModelRunner;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.OpSet;
import dev.kxai.exec.Support;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import dev.kxai.validate.ReferenceValidator;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntPredicate;
import org.junit.jupiter.api.Test;

/**
 * The device policy with a simulated device: the CPU's operators behind a backend named
 * "fakegpu" whose op set fails on chosen forward calls, as a GPU would (out of memory, or a
 * failed launch that leaves it unusable). Results must say where they ran, equal the CPU's numbers
 * when they fell back, and validation of that device must not count a fallback as a pass.
 */
class DevicePolicyTest {
    private static final Graph DIGITS = OnnxImporter.load(TestData.reference("digits_cnn").resolve("model.onnx"));
    private static final Tensor X = NpyIO.read(TestData.reference("digits_cnn").resolve("input.npy")).rows(0, 3);

    /** A backend whose forward calls fail where {@code fails} says so; {@code oom}: out of memory, else a broken device. */
    static final class FakeGpu implements Backend {
        final AtomicInteger forwards = new AtomicInteger();
        final IntPredicate fails;
        final boolean oom;
        final String lacks;
        volatile String broken;

        FakeGpu(IntPredicate fails, boolean oom, String lacks) {
            this.fails = fails;
            this.oom = oom;
            this.lacks = lacks;
        }

        @Override
        public String name() {
            return "fakegpu";
        }

        @Override
        public String description() {
            return "the CPU's operators failing on cue";
        }

        @Override
        @SuppressWarnings("unchecked")
        public ModelRunner prepare(Graph graph) {
            CpuOpSet cpu = new CpuOpSet(graph);
            OpSet<Tensor> ops = (OpSet<Tensor>) Proxy.newProxyInstance(OpSet.class.getClassLoader(),
                    new Class<?>[] {OpSet.class}, (proxy, m, args) -> {
                        switch (m.getName()) {
                            case "device":
                                return "fakegpu";
                            case "unusableReason":
                                return broken;
                            case "support":
                                Node n = (Node) args[0];
                                return n.opType().equals(lacks) ? Support.no("no kernel for " + lacks) : Support.YES;
                            case "forward":
                            case "forwardFused":
                                int call = forwards.incrementAndGet();
                                if (fails.test(call)) {
                                    if (!oom) {
                                        broken = "launch failed at forward call " + call;
                                    }
                                    throw new DeviceException(oom ? "CUDA_ERROR_OUT_OF_MEMORY (simulated)"
                                            : "CUDA_ERROR_LAUNCH_FAILED (simulated)", oom, null);
                                }
                                break;
                            default:
                                break;
                        }
                        try {
                            return m.invoke(cpu, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
            return new GraphRunner<>(this, ExecutionPlan.build(graph, ops, true), ops);
        }
    }

    private static Attribution ig(Model m) {
        return new IntegratedGradients(m).nSteps(8).internalBatchSize(8 * X.dim(0)).returnConvergenceDelta(true)
                .attribute(X, 0, 1, 2);
    }

    @Test
    void aLaunchFailureMidRunIsRecomputedOnTheCpuAndTheResultSaysSo() {
        Attribution want = ig(Model.of(DIGITS, new CpuBackend()));
        assertEquals("cpu", want.device());
        FakeGpu gpu = new FakeGpu(call -> call == 3, false, null); // the third node of the path's forward
        try (Model m = Model.of(DIGITS, gpu)) {
            assertEquals("fakegpu", m.device());
            Attribution a = ig(m);
            assertEquals("cpu", a.device(), "where it ran");
            assertTrue(a.fallbackReason().contains("fakegpu failed during integrated gradients")
                    && a.fallbackReason().contains("LAUNCH_FAILED"), a.fallbackReason());
            assertArrayEquals(want.attributions().data(), a.attributions().data(), 0f, "the CPU's numbers");
            assertArrayEquals(want.convergenceDelta().data(), a.convergenceDelta().data(), 0f);
            int calls = gpu.forwards.get();
            Attribution later = new Saliency(m).attribute(X, 0);
            assertEquals("cpu", later.device(), "a broken device is not tried again");
            assertTrue(later.fallbackReason().contains("unusable"), later.fallbackReason());
            assertEquals(calls, gpu.forwards.get(), "no call reached the broken device");
            assertTrue(m.device().startsWith("cpu ("), m.device());
            // issue 13: backend() names where the work runs, never a device it no longer reaches
            assertEquals("cpu", m.backend().name(), "a broken device is not claimed as the backend");
            assertEquals("fakegpu", m.runner().backend().name(), "the runner chosen at load");
        }
    }

    @Test
    void outOfMemoryHalvesTheChunkAndStaysOnTheDevice() {
        Attribution want = ig(Model.of(DIGITS, new CpuBackend()));
        // the first forward call (the first chunk, all 8 steps) runs out of memory
        try (Model m = Model.of(DIGITS, new FakeGpu(call -> call <= 1, true, null))) {
            Attribution a = ig(m);
            assertEquals("fakegpu", a.device(), "a smaller chunk fit: no fallback");
            assertNull(a.fallbackReason());
            // 8 steps in one chunk failed once, then ran as 4 + 4: the same sums up to float rounding
            for (int i = 0; i < want.attributions().size(); i++) {
                assertEquals(want.attributions().data()[i], a.attributions().data()[i],
                        1e-6 + 1e-5 * Math.abs(want.attributions().data()[i]));
            }
        }
    }

    @Test
    void aNodeTheBackendLacksRunsTheModelOnTheCpuFromTheStart() {
        FakeGpu gpu = new FakeGpu(call -> false, false, "MaxPool");
        try (Model m = Model.of(DIGITS, gpu)) {
            assertTrue(m.device().startsWith("cpu (fakegpu does not run node '/4/MaxPool' (MaxPool): no kernel for MaxPool"),
                    m.device());
            Attribution a = new Saliency(m).attribute(X, 0);
            assertEquals("cpu", a.device());
            assertTrue(a.fallbackReason().contains("MaxPool"), a.fallbackReason());
            assertEquals(0, gpu.forwards.get());
        }
    }

    @Test
    void validatingADeviceCountsAFallbackAsNotRunThere() {
        ReferenceValidator v = new ReferenceValidator("fakegpu", p -> Model.of(OnnxImporter.load(p),
                new FakeGpu(call -> true, false, null)));
        ReferenceValidator.Summary s = v.run(TestData.reference("digits_cnn"), r -> { });
        assertEquals(0, s.passed(), s.line());
        assertTrue(s.failed() > 0, s.line());
        for (ReferenceValidator.CaseResult r : s.results()) {
            if (r.status() == ReferenceValidator.Status.FAIL) {
                assertTrue(r.detail().contains("not run on fakegpu: ran on cpu"), r.line());
                assertTrue(r.attributions().relL2() < 1e-4, "the numbers themselves were right: " + r.line());
            }
        }
        ReferenceValidator.Summary onCpu = new ReferenceValidator("cpu").run(TestData.reference("digits_cnn"), r -> { });
        assertEquals(s.failed(), onCpu.passed(), "every case that passes on the CPU failed as not run on fakegpu");
    }
}
