package dev.kxai.backend.cuda;

import dev.kxai.backend.Backend;
import dev.kxai.backend.BackendProvider;

/** CUDA ranks above the CPU; available when the driver loads, a device exists and the kernels load. */
public final class CudaBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int rank() {
        return 10;
    }

    @Override
    public Availability probe() {
        CudaRuntime.Probe p = CudaRuntime.probe();
        if (p.runtime() == null) {
            return Availability.no(p.reason());
        }
        return Availability.yes(p.reason() + (p.runtime().emulated() ? " (the CPU emulator of native-tests, not a GPU)" : ""));
    }

    @Override
    public Backend create() {
        CudaRuntime.Probe p = CudaRuntime.probe();
        if (p.runtime() == null) {
            throw new IllegalStateException("CUDA is not available: " + p.reason());
        }
        return new CudaBackend(p.runtime());
    }
}
