package dev.kxai.backend.cuda;

import dev.kxai.backend.Backend;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;

/** Our kernels through JCuda, GEMM through cuBLAS; the CPU backend checks shapes and stands in on failure. */
public final class CudaBackend implements Backend {
    private final CudaRuntime rt;
    private final CpuBackend cpu = new CpuBackend();

    CudaBackend(CudaRuntime rt) {
        this.rt = rt;
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String description() {
        return (rt.emulated() ? "CUDA on the CPU EMULATOR (native-tests), not a GPU: " : "CUDA ") + rt.deviceName()
                + ", driver " + rt.driverVersion();
    }

    @Override
    public ModelRunner prepare(Graph graph) {
        ModelRunner host = cpu.prepare(graph);
        if (rt.brokenReason() != null) {
            java.util.logging.Logger.getLogger(CudaBackend.class.getName()).warning("the CUDA device failed earlier ("
                    + rt.brokenReason() + "); " + graph.source() + " runs on the CPU");
            return host;
        }
        return new CudaModelRunner(graph, this, rt, host);
    }
}
