package dev.kxai.backend.cpu;

import dev.kxai.backend.Backend;
import dev.kxai.backend.GraphRunner;
import dev.kxai.backend.ModelRunner;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;

/** The pure-JVM backend: BLAS for GEMM, hand-written loops for everything else. */
public final class CpuBackend implements Backend {
    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String description() {
        return "CPU, " + Runtime.getRuntime().availableProcessors() + " cores, BLAS " + Blas.implementation() + ", "
                + (SimdLoops.get().describe().startsWith("SIMD") ? "SIMD" : "scalar") + " convolution loops"
                + (OneDnn.available() ? ", oneDNN convolutions" : "");
    }

    @Override
    public ModelRunner prepare(Graph graph) {
        return prepare(graph, true);
    }

    /** With {@code fuse} false every node runs on its own (tests compare the two). */
    GraphRunner<Tensor> prepare(Graph graph, boolean fuse) {
        CpuOpSet ops = new CpuOpSet(graph);
        return new GraphRunner<>(this, ExecutionPlan.build(graph, ops, fuse), ops);
    }

    /**
     * Batch-invariant dense GEMMs for the whole process (see {@link Blas#batchInvariant(boolean)}): a
     * row's result then does not depend on the rows computed with it, at about twice the cost of
     * dense layers. {@code BatchingExplainer} holds it on while open (each {@code true} is released by one
     * {@code false}).
     */
    public static void batchInvariant(boolean on) {
        Blas.batchInvariant(on);
    }

    /** The loops of the direct convolution: SIMD (jdk.incubator.vector) or scalar, and why. */
    public static String simdLoops() {
        return SimdLoops.get().describe();
    }

    /**
     * OpenBLAS's thread setting as this process sees it. kxai parallelises over images and GEMM
     * rows itself; a multi-threaded OpenBLAS under that oversubscribes the cores.
     */
    public static String openBlasThreads() {
        String v = System.getenv("OPENBLAS_NUM_THREADS");
        if ("1".equals(v)) {
            return "OPENBLAS_NUM_THREADS=1 (kxai parallelises itself)";
        }
        return (v == null ? "OPENBLAS_NUM_THREADS unset (OpenBLAS starts one thread per core)"
                : "OPENBLAS_NUM_THREADS=" + v)
                + ": set OPENBLAS_NUM_THREADS=1, kxai parallelises itself and a multi-threaded OpenBLAS "
                + "oversubscribes the cores (./kxai does this)";
    }

    /**
     * What runs the float path's convolutions: oneDNN's direct kernels ("oneDNN 2.6.3 (OpenMP
     * threads)") or im2col + sgemm, and why.
     */
    public static String convolutions() {
        String s = OneDnn.status();
        long refused = OneDnn.REFUSED.sum();
        return refused == 0 ? s : s + "; " + refused + " layer(s) refused, on im2col + sgemm (last: " + OneDnn.lastRefusal + ")";
    }

    /**
     * Process-wide: convolutions on oneDNN (the default where the binding loads) or on im2col +
     * sgemm, for comparisons and tests; also {@code -Dkxai.onednn=false}. Returns the previous setting.
     */
    public static boolean oneDnn(boolean on) {
        boolean was = OneDnn.enabled;
        OneDnn.enabled = on;
        return was;
    }

    /** The BLAS implementation in use (netlib's choice: native OpenBLAS, or Java). */
    public static String blasImplementation() {
        return Blas.implementation();
    }

    /**
     * Decisions taken on float convolution outputs since start-up: elements and pool windows
     * tested against a boundary, and elements recomputed in double because they were within their
     * error bound of it ({@code kxai bench} prints the share).
     */
    public static long[] exactDecisionCounts() {
        return new long[] {ExactDecisions.CHECKED.sum(), ExactDecisions.RECOMPUTED.sum()};
    }

    /**
     * Process-wide: convolutions accumulate in double and round once (the exact path, what the CUDA
     * kernels compute) instead of float sgemm with exact decisions. For comparisons and tests; also
     * {@code -Dkxai.exact=true}. Returns the previous setting.
     */
    public static boolean exactPath(boolean on) {
        boolean was = ExactDecisions.exactPath;
        ExactDecisions.exactPath = on;
        return was;
    }
}
