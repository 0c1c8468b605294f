package dev.kxai.errors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.ModelClosedException;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Saliency;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * A closed model says so (a {@link ModelClosedException} naming it) on every call, through the
 * model and through its runner, and leaves other models alone (issue 13). The CUDA twin is
 * {@code backend.cuda.ClosedModelCudaTest}.
 */
public class ClosedModelTest {
    /** Every computing call on a closed model; each must throw ModelClosedException. */
    public static void assertEveryCallRefused(Model m, Tensor x) {
        int[] t = new int[x.dim(0)];
        java.util.Map<String, Consumer<Model>> calls = new java.util.LinkedHashMap<>();
        calls.put("forward", mm -> mm.forward(x));
        calls.put("predict", mm -> mm.predict(x));
        calls.put("forward(Inputs)", mm -> mm.forward(mm.inputs(x)));
        calls.put("integrated gradients", mm -> new IntegratedGradients(mm).nSteps(4).attribute(x, t));
        calls.put("saliency", mm -> new Saliency(mm).attribute(x, true, t));
        calls.put("run", mm -> mm.run("probe", r -> r.forward(x)));
        calls.put("runner().forward", mm -> mm.runner().forward(x));
        calls.put("runner().gradient", mm -> mm.runner().gradient(x, t));
        for (var e : calls.entrySet()) {
            ModelClosedException ex = assertThrows(ModelClosedException.class, () -> e.getValue().accept(m), e.getKey());
            assertTrue(ex.getMessage().contains("is closed"), e.getKey() + ": " + ex.getMessage());
        }
    }

    @Test
    void aClosedCpuModelSaysSoAndHarmsNoOther() throws Exception {
        Tensor x = NpyIO.read(ErrorFixtures.digitsInput()).rows(0, 2);
        try (Model other = Model.load(ErrorFixtures.digitsModel(), "cpu")) {
            float[] before = other.forward(x).data();
            Model m = Model.load(ErrorFixtures.digitsModel(), "cpu");
            m.forward(x);
            m.close();
            assertTrue(m.isClosed());
            assertEveryCallRefused(m, x);
            assertDoesNotThrow(m::close, "close is idempotent");
            assertArrayEquals(before, other.forward(x).data(), 0f);
            assertEquals("cpu", other.device());
        }
    }
}
