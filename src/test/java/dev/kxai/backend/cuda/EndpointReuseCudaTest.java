package dev.kxai.backend.cuda;

import static dev.kxai.backend.cuda.CudaTestKit.cuda;

import dev.kxai.TestData;
import dev.kxai.attr.EndpointReuseChecks;
import dev.kxai.backend.cuda.CudaTestKit.NoFallback;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Endpoint reuse on the CUDA backend, run on the CPU emulation of the driver: the endpoint outputs
 * the device path gathers (α = 0, α = 1; with and without the first-layer saving) give the plain
 * computation's delta to float rounding, and reuse skips the extra forward exactly where the rule
 * evaluates both ends ({@link EndpointReuseChecks}). Proves orchestration, not GPU speed.
 */
class EndpointReuseCudaTest {
    @RegisterExtension
    final NoFallback noFallback = new NoFallback();

    @Test
    void gemmFirstModel() {
        EndpointReuseChecks.check(cuda(), TestData.reference("mlp_tabular"), 5);
    }

    @Test
    void convFirstModel() {
        EndpointReuseChecks.check(cuda(), TestData.reference("digits_cnn"), 4);
    }

    @Test
    void fusedHiddenLayersModel() {
        EndpointReuseChecks.check(cuda(), TestData.reference("cbm_xor"), 4);
    }
}
