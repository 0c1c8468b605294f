package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.backend.Backend;
import dev.kxai.backend.Backends;
import dev.kxai.validate.ReferenceValidator;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Every reference case on the CUDA backend, run on the CPU emulation of the driver (the Maven
 * run "cuda-emulator" points JCuda at native-tests/build). Proves kernel logic, geometry and
 * host orchestration; says nothing about GPU speed.
 */
class CudaReferenceTest {
    /** Methods this engine implements (the registry's, and the forward check): each case must pass on cuda. */
    private static final java.util.function.Predicate<String> IMPLEMENTED = m -> m.equals("forward")
            || dev.kxai.attr.Methods.known(m);

    @Test
    void theBackendIsTheEmulatorAndAutoPicksIt() {
        Backend b = Backends.select("cuda");
        assertEquals("cuda", b.name());
        assertTrue(b.description().contains("EMULATOR"), b.description());
        assertEquals("cuda", Backends.select("auto").name(), "auto prefers CUDA when it is available");
    }

    @TestFactory
    Stream<DynamicTest> everyReferenceCaseOnCuda() {
        List<DynamicTest> tests = new ArrayList<>();
        ReferenceValidator v = new ReferenceValidator("cuda");
        for (Path manifest : ReferenceValidator.manifests(TestData.referenceRoot())) {
            for (ReferenceValidator.CaseResult r : v.runModel(manifest)) {
                tests.add(DynamicTest.dynamicTest(r.model() + "/" + r.id(), () -> assertEquals(
                        IMPLEMENTED.test(r.method()) ? ReferenceValidator.Status.PASS
                                : ReferenceValidator.Status.UNSUPPORTED, r.status(), r.line())));
            }
        }
        return tests.stream();
    }
}
