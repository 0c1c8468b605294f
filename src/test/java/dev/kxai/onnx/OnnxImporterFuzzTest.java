package dev.kxai.onnx;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;

/**
 * Coverage-guided fuzz target (Jazzer) for the ONNX importer on raw bytes, seeded with reference
 * models ({@code OnnxImporterFuzzTestInputs/parse/}): any byte string loads (with -Dkxai.fuzz.forward=true
 * also one forward pass on the CPU) or is refused with a {@code KxaiException}; never another exception,
 * an OutOfMemoryError or a hang. Regression-only without {@code JAZZER_FUZZ}; the {@code fuzz-onnx}
 * surefire execution and {@code bench/fuzz.sh} fuzz it. See also {@link OnnxStructureFuzzTest}.
 */
class OnnxImporterFuzzTest {
    private static final boolean FORWARD = Boolean.getBoolean("kxai.fuzz.forward");

    @FuzzTest(maxDuration = "30s")
    @Timeout(value = 10, unit = TimeUnit.SECONDS) // per input while fuzzing (libFuzzer -timeout): a hang is a finding
    void parse(byte[] bytes) throws Exception {
        // load only: byte flips in weights and dims of the seeds make forward passes of seconds under
        // instrumentation (slow-mobile-block-forward); OnnxStructureFuzzTest runs the forward pass
        dev.kxai.io.FuzzChecks.withDeadline(() -> FuzzRun.parseAndRun(bytes, FORWARD));
    }
}
