package dev.kxai;

import dev.kxai.tensor.Tensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * One batch for a model, by input name: Captum's {@code inputs} (a tuple) and
 * {@code additional_forward_args}. An additional input is fed unchanged to every forward pass (the
 * same rows at every path step and for the baseline) and never attributed; of the others, float
 * inputs are attributed and integer ones (token ids) are explained at a layer that reads them.
 * Immutable: {@link #and} and {@link #additional} return a new instance.
 */
public final class Inputs {
    private final Map<String, Tensor> values;
    private final Set<String> additional;

    private Inputs(Map<String, Tensor> values, Set<String> additional) {
        this.values = Collections.unmodifiableMap(values);
        this.additional = Collections.unmodifiableSet(additional);
    }

    /** No inputs yet: add them with {@link #and} and {@link #additional}. */
    public static Inputs empty() {
        return new Inputs(new LinkedHashMap<>(), new LinkedHashSet<>());
    }

    /** One input by name. */
    public static Inputs of(String name, Tensor x) {
        dev.kxai.Args.notNull(name, "name");
        dev.kxai.Args.notNull(x, "x");
        return empty().and(name, x);
    }

    /** Adds an input (attributed when it holds floats). */
    public Inputs and(String name, Tensor x) {
        dev.kxai.Args.notNull(name, "name");
        dev.kxai.Args.notNull(x, "x");
        return with(name, x, false);
    }

    /** Adds an additional forward argument: given to the model as it is, never attributed, no baseline. */
    public Inputs additional(String name, Tensor x) {
        dev.kxai.Args.notNull(name, "name");
        dev.kxai.Args.notNull(x, "x");
        return with(name, x, true);
    }

    private Inputs with(String name, Tensor x, boolean isAdditional) {
        if (name == null || x == null) {
            throw new InvalidInputException("an input needs a name and a tensor (got " + name + ", " + x + ")");
        }
        if (values.containsKey(name)) {
            throw new InvalidInputException("input '" + name + "' is given twice");
        }
        Map<String, Tensor> v = new LinkedHashMap<>(values);
        v.put(name, x);
        Set<String> a = new LinkedHashSet<>(additional);
        if (isAdditional) {
            a.add(name);
        }
        return new Inputs(v, a);
    }

    /** Every input by name, in the order given. */
    public Map<String, Tensor> values() {
        return values;
    }

    public Tensor get(String name) {
        dev.kxai.Args.notNull(name, "name");
        return values.get(name);
    }

    public boolean isAdditional(String name) {
        dev.kxai.Args.notNull(name, "name");
        return additional.contains(name);
    }

    /** Rows of the batch (of the first input; {@code Model} checks that all agree). */
    public int batch() {
        if (values.isEmpty()) {
            throw new InvalidInputException("no inputs given");
        }
        return values.values().iterator().next().dim(0);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        values.forEach((k, v) -> sb.append(sb.length() == 0 ? "" : ", ").append(k)
                .append(dev.kxai.tensor.Shapes.str(v.shape())).append(additional.contains(k) ? " (additional)" : ""));
        return sb.toString();
    }
}
