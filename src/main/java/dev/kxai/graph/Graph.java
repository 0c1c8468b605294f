package dev.kxai.graph;

import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model as kxai runs it: its inputs (each with the batch axis first), nodes in topological
 * order, one output. Constants (initializers, Constant nodes and everything computed from them at
 * load) are folded in.
 *
 * <p>Shape computations on activations (PyTorch's {@code x.shape[0]} in a {@code view}) are
 * evaluated at load as well: their results depend only on the batch size, linearly, so such a
 * value is stored as its value at batch 1 in {@code constants} plus its change per extra row in
 * {@code perRow}; {@link #constantsAt} gives every constant for a batch. Only operators that read
 * a shape (Reshape's and Expand's target) ever see one of these, and only shape inference reads
 * them: the backends take those nodes' output shapes from the plan.
 *
 * @param inputs  the model inputs, in the model's order
 * @param source  where the graph came from (file path), for messages
 * @param perRow  for batch-dependent load-time values: the change of each element per extra row
 */
public record Graph(String source, List<Input> inputs, String outputName, List<Node> nodes,
        Map<String, Tensor> constants, Map<String, Tensor> perRow) {

    /**
     * One model input.
     *
     * @param shape   the declared shape; -1 where a dimension is dynamic (the batch axis)
     * @param integer whether it holds integer ids (token ids: read by a Gather, never attributed)
     */
    public record Input(String name, int[] shape, boolean integer) {
        public Input {
            shape = shape.clone();
        }

        @Override
        public int[] shape() {
            return shape.clone();
        }
    }

    public Graph {
        inputs = List.copyOf(inputs);
        nodes = List.copyOf(nodes);
        constants = Map.copyOf(constants);
        perRow = Map.copyOf(perRow);
        if (inputs.isEmpty()) {
            throw new IllegalArgumentException(source + ": a graph needs at least one input");
        }
    }

    /** A graph with one float input and no batch-dependent constants. */
    public Graph(String source, String inputName, int[] inputShape, String outputName, List<Node> nodes,
            Map<String, Tensor> constants) {
        this(source, List.of(new Input(inputName, inputShape, false)), outputName, nodes, constants, Map.of());
    }

    /** The first input's name (the only one of a single-input model). */
    public String inputName() {
        return inputs.get(0).name();
    }

    /** The first input's declared shape. */
    public int[] inputShape() {
        return inputs.get(0).shape();
    }

    /** Every constant's value for a batch of {@code batch} rows (batch-dependent ones evaluated there). */
    public Map<String, Tensor> constantsAt(int batch) {
        if (perRow.isEmpty() || batch == 1) {
            return constants;
        }
        Map<String, Tensor> out = new java.util.HashMap<>(constants);
        for (Map.Entry<String, Tensor> e : perRow.entrySet()) {
            Tensor at1 = constants.get(e.getKey());
            float[] v = at1.data().clone();
            float[] d = e.getValue().data();
            for (int i = 0; i < v.length; i++) {
                v[i] += d[i] * (batch - 1);
            }
            out.put(e.getKey(), new Tensor(at1.shape(), v));
        }
        return out;
    }

    /**
     * The same graph explaining another of its values: a second graph output (a model returning
     * logits and probabilities, a detector's heads) or any node's output. Nodes the new output does
     * not need are never run.
     *
     * @throws dev.kxai.ModelException when no node computes {@code value}
     */
    public Graph withOutput(String value) {
        if (value == null || value.equals(outputName)) {
            return this;
        }
        if (!valueNames().contains(value)) {
            java.util.List<String> some = nodes.stream().map(Node::output).filter(v -> !v.contains("/"))
                    .limit(12).toList();
            throw new dev.kxai.ModelException(source + ": no node computes a value named '" + value + "' to explain as the"
                    + " output (the graph's output is '" + outputName + "'; values include " + some
                    + "; 'kxai info --model M' lists them)");
        }
        return new Graph(source, inputs, value, nodes, constants, perRow);
    }

    /** Every value name produced by a node (intermediate tensors; layer methods address them). */
    public Set<String> valueNames() {
        return nodes.stream().map(Node::output).collect(java.util.stream.Collectors.toUnmodifiableSet());
    }
}
