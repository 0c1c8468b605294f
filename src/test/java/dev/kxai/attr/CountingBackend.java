package dev.kxai.attr;

import dev.kxai.backend.Backend;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathIntegral;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A backend that wraps another and records the rows of every {@code forward} call its runners make
 * (the delta's extra forward pass), and how many path integrals ran. Everything else is delegated,
 * so the wrapped backend's own path (the device path on CUDA) runs. Shared by the CPU and the CUDA
 * tests of endpoint reuse.
 */
public final class CountingBackend implements Backend {
    private final Backend inner;
    /** Rows of each forward call, in order. */
    public final List<Integer> forwardRows = new CopyOnWriteArrayList<>();
    /** Path integrals run (integratePath calls). */
    public final List<Integer> paths = new CopyOnWriteArrayList<>();

    public CountingBackend(Backend inner) {
        this.inner = inner;
    }

    public void reset() {
        forwardRows.clear();
        paths.clear();
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public String description() {
        return "counting " + inner.description();
    }

    @Override
    public ModelRunner prepare(Graph graph) {
        ModelRunner r = inner.prepare(graph);
        return new ModelRunner() {
            @Override
            public Graph graph() {
                return r.graph();
            }

            @Override
            public Backend backend() {
                return CountingBackend.this;
            }

            @Override
            public int[] exampleShape() {
                return r.exampleShape();
            }

            @Override
            public int outputsPerExample() {
                return r.outputsPerExample();
            }

            @Override
            public long workingFloatsPerExample() {
                return r.workingFloatsPerExample();
            }

            @Override
            public Tensor forward(Tensor x) {
                forwardRows.add(x.dim(0));
                return r.forward(x);
            }

            @Override
            public Gradient gradient(Tensor x, int[] targets) {
                return r.gradient(x, targets);
            }

            @Override
            public PathIntegral.Result integratePath(Tensor x, Tensor base, float[] alphas, float[] weights,
                    int[] targets, int stepsPerChunk, PathIntegral.Progress progress, boolean affineFirstLayer) {
                paths.add(alphas.length);
                return r.integratePath(x, base, alphas, weights, targets, stepsPerChunk, progress, affineFirstLayer);
            }

            @Override
            public void close() {
                r.close();
            }
        };
    }
}
