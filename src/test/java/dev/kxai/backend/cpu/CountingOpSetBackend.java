package dev.kxai.backend.cpu;

import dev.kxai.backend.Backend;
import dev.kxai.backend.GraphRunner;
import dev.kxai.backend.ModelRunner;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.OpSet;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.function.BiConsumer;

/**
 * The CPU backend with every op-set call shown to a listener first (method, arguments), unfused so
 * that each node is seen: how tests count forwards, backwards and node executions.
 */
final class CountingOpSetBackend implements Backend {
    private final BiConsumer<Method, Object[]> listener;

    CountingOpSetBackend(BiConsumer<Method, Object[]> listener) {
        this.listener = listener;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String description() {
        return "counting cpu";
    }

    @Override
    @SuppressWarnings("unchecked")
    public ModelRunner prepare(Graph graph) {
        CpuOpSet real = new CpuOpSet(graph);
        OpSet<Tensor> counted = (OpSet<Tensor>) Proxy.newProxyInstance(OpSet.class.getClassLoader(),
                new Class<?>[] {OpSet.class}, (proxy, method, args) -> {
                    listener.accept(method, args);
                    try {
                        return method.invoke(real, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        return new GraphRunner<>(this, ExecutionPlan.build(graph, counted, false), counted);
    }
}
