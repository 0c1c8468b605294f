package dev.kxai.backend.cuda;

import dev.kxai.errors.HostileCases;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 13's acceptance table on the CUDA emulator: the same hostile inputs as the CPU's, with device cuda. */
class HostileInputsCudaTest {
    @TempDir
    Path tmp;

    @Test
    void everyHostileInputIsRefusedCleanlyOnTheDevice() throws Exception {
        CudaTestKit.cuda();
        HostileCases.assertAllRefused("cuda", tmp, 60);
    }
}
