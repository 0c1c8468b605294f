package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import dev.kxai.UnsupportedOperatorException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The part of a graph one output needs: the nodes it depends on, transitively. Exporters put
 * several heads in one graph — sklearn-onnx a label computed by {@code ai.onnx.ml} operators beside
 * the probabilities, detectors a post-processing branch beside the scores — and an operator kxai
 * does not run should refuse the model only when the explained value needs it.
 */
final class OutputCone {
    private OutputCone() {
    }

    /** Whether a refusal is about an operator kxai does not run (another output may not need it). */
    static boolean unsupported(ModelException e) {
        String m = String.valueOf(e.getMessage());
        return e instanceof UnsupportedOperatorException || m.contains("kxai runs operators of the default ONNX domain only")
                || m.contains("kxai runs no control flow or subgraphs");
    }

    /** The values to try: the one asked for, else the graph's outputs in order. */
    static List<String> candidates(OnnxMl.GraphProto g, String output) {
        if (output != null) {
            return List.of(output);
        }
        List<String> r = new ArrayList<>();
        for (OnnxMl.ValueInfoProto o : g.getOutputList()) {
            r.add(o.getName());
        }
        return r;
    }

    /** The model with only the nodes {@code value} needs and {@code value} as its one output; null if no node writes it. */
    static OnnxMl.ModelProto of(OnnxMl.ModelProto model, String value) {
        OnnxMl.GraphProto g = model.getGraph();
        Map<String, Integer> writer = new HashMap<>();
        for (int i = 0; i < g.getNodeCount(); i++) {
            for (String o : g.getNode(i).getOutputList()) {
                if (!o.isEmpty()) {
                    writer.putIfAbsent(o, i);
                }
            }
        }
        if (!writer.containsKey(value)) {
            return null;
        }
        Set<Integer> keep = new HashSet<>();
        Deque<String> todo = new ArrayDeque<>(List.of(value));
        while (!todo.isEmpty()) {
            Integer i = writer.get(todo.pop());
            if (i != null && keep.add(i)) {
                todo.addAll(g.getNode(i).getInputList());
            }
        }
        OnnxMl.GraphProto.Builder b = g.toBuilder().clearNode().clearOutput();
        for (int i = 0; i < g.getNodeCount(); i++) {
            if (keep.contains(i)) {
                b.addNode(g.getNode(i));
            }
        }
        OnnxMl.ValueInfoProto declared = null;
        for (OnnxMl.ValueInfoProto o : g.getOutputList()) {
            declared = o.getName().equals(value) ? o : declared;
        }
        b.addOutput(declared != null ? declared : OnnxMl.ValueInfoProto.newBuilder().setName(value).build());
        return model.toBuilder().setGraph(b).build();
    }
}
