package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.errors.HostileCases;
import dev.kxai.testing.HostileInputs;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 13's acceptance table on the CUDA emulator: the same hostile inputs as the CPU's, with device cuda. */
class HostileInputsCudaTest {
    @TempDir
    Path tmp;

    @Test
    void everyHostileInputIsRefusedCleanlyOnTheDevice() throws Exception {
        CudaTestKit.cuda();
        HostileInputs h = new HostileInputs("cuda");
        HostileCases.addAll(h, tmp);
        List<HostileInputs.Result> results = h.run(60);
        System.out.print(HostileInputs.table("cuda", results));
        List<String> bad = HostileInputs.bad(results);
        assertTrue(results.size() >= 300, "only " + results.size() + " cases");
        assertEquals(List.of(), bad, bad.size() + " bad of " + results.size() + ":\n" + String.join("\n", bad));
    }
}
