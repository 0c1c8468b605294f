package dev.kxai.backend;

import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;

/**
 * What a straight path runs over: the values interpolated from their baselines to their inputs,
 * all with the same α at each step (Captum's tuple of inputs), and the values given unchanged at
 * every step (Captum's {@code additional_forward_args}; for a path in a layer's space, the model
 * inputs the rest of the graph still reads).
 *
 * @param names     the interpolated values: model inputs, or any value a node computes
 * @param inputs    their values at α = 1, one per name, batch first
 * @param baselines their values at α = 0, each of its input's shape
 * @param fixed     values given as they are at every step (same batch)
 */
public record PathInputs(List<String> names, List<Tensor> inputs, List<Tensor> baselines, Map<String, Tensor> fixed) {
    public PathInputs {
        names = List.copyOf(names);
        inputs = List.copyOf(inputs);
        baselines = List.copyOf(baselines);
        fixed = Map.copyOf(fixed);
        if (names.isEmpty() || names.size() != inputs.size() || names.size() != baselines.size()) {
            throw new IllegalArgumentException(names.size() + " path values, " + inputs.size() + " inputs, "
                    + baselines.size() + " baselines");
        }
        for (int i = 0; i < names.size(); i++) {
            if (!java.util.Arrays.equals(inputs.get(i).shape(), baselines.get(i).shape())) {
                throw new InvalidInputException("baseline of '" + names.get(i) + "' has shape "
                        + Shapes.str(baselines.get(i).shape()) + ", its input " + Shapes.str(inputs.get(i).shape()));
            }
        }
    }

    /** One interpolated value and nothing fixed: the single-input path. */
    public static PathInputs of(String name, Tensor x, Tensor base) {
        return new PathInputs(List.of(name), List.of(x), List.of(base), Map.of());
    }

    /** Rows of the batch. */
    public int batch() {
        return inputs.get(0).dim(0);
    }
}
