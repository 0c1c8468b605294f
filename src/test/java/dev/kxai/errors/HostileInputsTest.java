package dev.kxai.errors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.testing.HostileInputs;
import java.nio.file.Path;
import java.util.List;
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
        HostileInputs h = new HostileInputs("cpu");
        HostileCases.addAll(h, tmp);
        List<HostileInputs.Result> results = h.run(30);
        System.out.print(HostileInputs.table("cpu", results));
        List<String> bad = HostileInputs.bad(results);
        assertTrue(results.size() >= 300, "only " + results.size() + " cases");
        assertEquals(List.of(), bad, bad.size() + " bad of " + results.size() + ":\n" + String.join("\n", bad));
    }
}
