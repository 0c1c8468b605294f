package dev.kxai.backend.cpu;

import dev.kxai.backend.Backend;
import dev.kxai.backend.BackendProvider;

/** The CPU is always available and ranks below any accelerator. */
public final class CpuBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int rank() {
        return 0;
    }

    @Override
    public Availability probe() {
        return Availability.yes("always available");
    }

    @Override
    public Backend create() {
        return new CpuBackend();
    }
}
