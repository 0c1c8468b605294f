package dev.kxai.errors;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.InputXGradient;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Saliency;
import dev.kxai.backend.Backends;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Null arguments to the public API are InvalidInputExceptions naming the parameter, never NullPointerException (issue 13). */
class NullArgumentsTest {
    @Test
    void nullArgumentsAreTypedErrorsNamingTheParameter() {
        Tensor x = NpyIO.read(ErrorFixtures.digitsInput()).rows(0, 2);
        try (Model m = Model.load(ErrorFixtures.digitsModel(), "cpu")) {
            Map<String, Executable> calls = new LinkedHashMap<>();
            calls.put("onnx", () -> Model.load((Path) null));
            calls.put("graph", () -> Model.of(null, Backends.cpu()));
            calls.put("x", () -> m.forward((Tensor) null));
            calls.put("in", () -> m.forward((Inputs) null));
            calls.put("x ", () -> m.predict((Tensor) null));
            calls.put("x  ", () -> m.checkBatch(null, "input"));
            calls.put("targets", () -> m.targets(null, 2));
            calls.put("name", () -> Inputs.of(null, x));
            calls.put("x   ", () -> Inputs.of("input", null));
            calls.put("x    ", () -> new IntegratedGradients(m).attribute((Tensor) null, 0));
            calls.put("targets ", () -> new IntegratedGradients(m).attribute(x, (int[]) null));
            calls.put("in ", () -> new IntegratedGradients(m).attribute((Inputs) null, new int[] {0}));
            calls.put("x     ", () -> new Saliency(m).attribute((Tensor) null, true, 0));
            calls.put("targets  ", () -> new InputXGradient(m).attribute(x, (int[]) null));
            for (Map.Entry<String, Executable> c : calls.entrySet()) {
                String param = c.getKey().trim();
                InvalidInputException e = assertThrows(InvalidInputException.class, c.getValue(), param);
                assertTrue(e.getMessage().contains(param + " is null"), param + ": " + e.getMessage());
            }
        }
    }
}
