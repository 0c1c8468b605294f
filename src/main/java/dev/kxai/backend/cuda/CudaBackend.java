package dev.kxai.backend.cuda;

import dev.kxai.backend.Backend;
import dev.kxai.backend.GraphRunner;
import dev.kxai.backend.ModelRunner;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.graph.Graph;

/**
 * Our kernels through JCuda, GEMM through cuBLAS: {@link CudaOpSet} run by the one executor. Where
 * the device lacks a node or fails, {@link dev.kxai.backend.DevicePolicy} runs the work on the CPU.
 */
public final class CudaBackend implements Backend {
    private final CudaRuntime rt;

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
                + ", driver " + PtxIsa.driver(rt.driverVersion());
    }

    /**
     * The graph on the device. A device that failed earlier gets no upload; the runner's
     * {@link ModelRunner#unusableReason} then sends every call to the CPU.
     */
    @Override
    public ModelRunner prepare(Graph graph) {
        return prepare(graph, true);
    }

    /**
     * Process-wide: every convolution accumulates in double and rounds once (conv2d_forward, the
     * exact path) instead of the FP32 implicit GEMM with exact decisions; the CUDA twin of
     * {@link dev.kxai.backend.cpu.CpuBackend#exactPath} (also {@code -Dkxai.exact=true}). Returns the previous setting.
     */
    public static boolean exactPath(boolean on) {
        boolean was = ConvOps.exactPath;
        ConvOps.exactPath = on;
        return was;
    }

    /**
     * Process-wide TF32 opt-in (also {@code -Dkxai.cuda.tf32=true}, {@code --tf32}): the FP32
     * convolutions read both operands rounded to TF32 (their exact-decision bounds widened to match:
     * decisions stay the double path's) and cuBLAS runs in CUBLAS_TF32_TENSOR_OP_MATH (the GEMMs of
     * dense layers and of the convolutions' input gradients). Ignored on the exact path. Returns the
     * previous setting.
     */
    public static boolean tf32(boolean on) {
        boolean was = ConvOps.tf32;
        ConvOps.tf32 = on;
        return was;
    }

    /** With {@code fuse} false every activation runs as its own kernel (the parity tests' reference). */
    GraphRunner<DTensor> prepare(Graph graph, boolean fuse) {
        CudaOpSet ops = new CudaOpSet(graph, rt);
        try {
            return new GraphRunner<>(this, ExecutionPlan.build(graph, ops, fuse), ops);
        } catch (RuntimeException e) {
            ops.close();
            throw e;
        }
    }
}
