package dev.kxai.validate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Every reference case of the test resources, run through the same validator as
 * {@code kxai validate}: one dynamic test per case, so a failure names model and case.
 */
class ReferenceCasesTest {
    /** Methods this engine implements: each of their cases must pass, none may be "unsupported". */
    private static final java.util.function.Predicate<String> IMPLEMENTED = m -> m.equals("forward")
            || dev.kxai.attr.Methods.known(m);

    @TestFactory
    Stream<DynamicTest> everyReferenceCase() {
        List<DynamicTest> tests = new ArrayList<>();
        ReferenceValidator v = new ReferenceValidator("cpu");
        for (Path manifest : ReferenceValidator.manifests(TestData.referenceRoot())) {
            for (ReferenceValidator.CaseResult r : v.runModel(manifest)) {
                tests.add(DynamicTest.dynamicTest(r.model() + "/" + r.id(), () -> {
                    if (IMPLEMENTED.test(r.method())) {
                        assertEquals(ReferenceValidator.Status.PASS, r.status(), r.line());
                    } else {
                        assertEquals(ReferenceValidator.Status.UNSUPPORTED, r.status(), r.line());
                    }
                }));
            }
        }
        return tests.stream();
    }

    @Test
    void coversEveryModelAndTheImplementedMethods() {
        ReferenceValidator.Summary s = new ReferenceValidator("cpu").run(TestData.referenceRoot(), r -> { });
        long models = s.results().stream().filter(r -> r.id().equals("logits")).count();
        assertEquals(11, models, "one logits check per reference model");
        long ig = s.results().stream().filter(r -> r.method().equals("integrated_gradients")).count();
        assertTrue(ig >= 40, "integrated gradients cases found: " + ig);
        long layerIg = s.results().stream().filter(r -> r.method().equals("layer_integrated_gradients")).count();
        assertEquals(3, layerIg, "layer IG: cbm_xor's concept layer and text_tokens' two embedding cases");
        long severalInputs = s.results().stream().filter(r -> r.model().equals("tabular_two_inputs")
                && r.status() == ReferenceValidator.Status.PASS).count();
        assertEquals(6, severalInputs, "tabular_two_inputs: logits and five attribution cases over two inputs");
        assertEquals(0, s.failed(), s.line());
    }
}
