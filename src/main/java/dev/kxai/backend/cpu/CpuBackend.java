package dev.kxai.backend.cpu;

import dev.kxai.backend.Backend;
import dev.kxai.backend.ModelRunner;
import dev.kxai.graph.Graph;

/** The pure-JVM backend: BLAS for GEMM, hand-written loops for everything else. */
public final class CpuBackend implements Backend {
    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String description() {
        return "CPU, " + Runtime.getRuntime().availableProcessors() + " cores, BLAS " + Blas.implementation();
    }

    @Override
    public ModelRunner prepare(Graph graph) {
        return new CpuModelRunner(graph, this);
    }

    /** The BLAS implementation in use (netlib's choice: native OpenBLAS, or Java). */
    public static String blasImplementation() {
        return Blas.implementation();
    }
}
