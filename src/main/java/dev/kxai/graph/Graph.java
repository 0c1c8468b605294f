package dev.kxai.graph;

import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model as kxai runs it: one float input with a batch axis first, a chain of nodes in
 * topological order, one output. Constants (initializers and Constant nodes) are folded in.
 *
 * @param inputShape the declared input shape; -1 where a dimension is dynamic (the batch axis)
 * @param source     where the graph came from (file path), for messages
 */
public record Graph(String source, String inputName, int[] inputShape, String outputName, List<Node> nodes,
        Map<String, Tensor> constants) {
    public Graph {
        nodes = List.copyOf(nodes);
        constants = Map.copyOf(constants);
    }

    /** Every value name produced by a node (intermediate tensors; layer methods address them). */
    public Set<String> valueNames() {
        return nodes.stream().map(Node::output).collect(java.util.stream.Collectors.toUnmodifiableSet());
    }
}
