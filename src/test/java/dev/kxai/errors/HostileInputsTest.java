package dev.kxai.errors;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 13's acceptance table on the CPU: every generated hostile input ({@link HostileCases}) through the
 * API and the CLI; each must be refused cleanly (typed exception / exit 2 with one {@code kxai: error:}
 * line), none may crash, hang, print a stack trace, be accepted or escape untyped. Prints the table.
 * The emulator's run is {@code dev.kxai.backend.cuda.HostileInputsCudaTest}.
 */
class HostileInputsTest {
    @TempDir
    Path tmp;

    @Test
    void everyHostileInputIsRefusedCleanly() throws Exception {
        HostileCases.assertAllRefused("cpu", tmp, 30);
    }
}
