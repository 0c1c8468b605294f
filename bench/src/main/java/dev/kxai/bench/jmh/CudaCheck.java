package dev.kxai.bench.jmh;

import dev.kxai.backend.cuda.CudaRuntime;

/**
 * Says whether the CUDA kernel benchmarks can run here, in one line, through the library's own
 * probe: exit status 0 and {@code cuda: device 0: NAME} (with a warning on the CPU emulator), or
 * exit status 3 and {@code cuda: no usable device: REASON}. {@code bench/jmh.sh} runs it first and
 * excludes {@link GpuKernels} on status 3.
 */
public final class CudaCheck {
    private CudaCheck() {
    }

    public static void main(String[] args) {
        CudaRuntime.Probe p = CudaRuntime.probe();
        if (p.runtime() == null) {
            System.out.println("cuda: no usable device: " + p.reason());
            System.exit(3);
        }
        System.out.println("cuda: " + p.reason() + (p.runtime().emulated()
                ? " -- on the CPU EMULATOR of native-tests/: GPU timings are meaningless" : ""));
        System.exit(0);
    }
}
