package dev.kxai.io;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import dev.kxai.KxaiException;
import dev.kxai.tensor.Tensor;

/**
 * Coverage-guided fuzz target (Jazzer) for the {@code .npy} reader: any byte string is read or
 * refused with a {@link KxaiException}; never another exception, an OutOfMemoryError or a hang.
 * Without {@code JAZZER_FUZZ} it runs the committed corpus ({@code NpyFuzzTestInputs/read/}, and
 * any {@code crash-*} reproducer put there) as a regression test; the {@code fuzz-npy} surefire
 * execution of {@code mvn verify} and {@code bench/fuzz.sh} fuzz it for a bounded time.
 */
class NpyFuzzTest {
    @FuzzTest(maxDuration = "30s")
    @Timeout(value = 10, unit = TimeUnit.SECONDS) // per input while fuzzing (libFuzzer -timeout): a hang is a finding
    @DictionaryEntries({"\u0093NUMPY", "{'descr': '", "<f4", "<f8", ">f4", ">f8", "|u1", "<i8", "<i4", "|b1", "<f2",
            "'fortran_order': False", "'fortran_order': True", "'shape': (", "), }", ",)", "4294967306",
            "1099511627776", "-1", "9223372036854775807"})
    void read(byte[] npy) throws Exception {
        FuzzChecks.withDeadline(() -> {
            try {
                Tensor t = NpyIO.read(npy, "fuzz.npy");
                FuzzChecks.consistent(t, npy.length);
            } catch (KxaiException expected) {
                FuzzChecks.named(expected);
            }
        });
    }
}
