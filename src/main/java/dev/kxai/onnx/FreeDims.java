package dev.kxai.onnx;

import dev.kxai.ModelException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BiFunction;

/**
 * Sizes for the free dimensions of a model's inputs, fixed at load. Exporters leave dimensions free
 * beyond the batch (Optimum and {@code torch.onnx.export(dynamic_axes=…)} write
 * {@code [batch, sequence_length]} for token ids, some vision exports {@code [batch, 3, height, width]});
 * kxai folds every shape computation at load (so that it costs nothing per request), which needs
 * every dimension but the batch known. A free dimension is fixed by its name ({@code dim_param},
 * e.g. {@code sequence_length=128}: every input axis of that name), by {@code INPUT:AXIS}
 * ({@code input_ids:1=128}, for a dimension with no name), or, for the CLI, by the shape of the
 * input file given for that input. The batch axis (axis 0) always stays free.
 * <p>
 * Immutable and thread-safe; {@link #NONE} fixes nothing (a model with a free dimension beyond the
 * batch is then refused, the message naming the dimension and how to fix it).
 */
public final class FreeDims {
    /** Fixes no dimension. */
    public static final FreeDims NONE = new FreeDims(Map.of(), (input, axis) -> null, false);

    private final Map<String, Integer> sizes;
    private final BiFunction<String, Integer, Integer> fromInputs;
    /** Whether a name that fits no free dimension is accepted (sizes shared by several models). */
    private final boolean lenient;

    private FreeDims(Map<String, Integer> sizes, BiFunction<String, Integer, Integer> fromInputs, boolean lenient) {
        this.sizes = Map.copyOf(sizes);
        this.fromInputs = fromInputs;
        this.lenient = lenient;
    }

    /** These sizes, a name that fits no free dimension of the model accepted (one set of sizes for several models). */
    public FreeDims lenient() {
        return new FreeDims(sizes, fromInputs, true);
    }

    /**
     * Sizes by dimension name ({@code "sequence_length"}) or by {@code "INPUT:AXIS"}.
     *
     * @throws IllegalArgumentException for a size below 1
     */
    public static FreeDims of(Map<String, Integer> sizes) {
        dev.kxai.Args.notNull(sizes, "sizes");
        for (Map.Entry<String, Integer> e : sizes.entrySet()) {
            dev.kxai.Args.notNull(e.getKey(), "dimension name");
            if (e.getValue() == null || e.getValue() < 1) {
                throw new IllegalArgumentException("dimension " + e.getKey() + " = " + e.getValue() + ": a size is at least 1");
            }
        }
        return new FreeDims(sizes, NONE.fromInputs, false);
    }

    /**
     * These sizes, and for a free dimension they do not name, the size {@code shapeOf(input, axis)}
     * gives (the CLI: the axis of the file given for that input; null: unknown).
     */
    public FreeDims orFromInputs(BiFunction<String, Integer, Integer> shapeOf) {
        dev.kxai.Args.notNull(shapeOf, "shapeOf");
        return new FreeDims(sizes, shapeOf, lenient);
    }

    /**
     * These sizes, and for a free dimension they do not name, that axis of the {@code .npy} file given for the
     * input ({@code byInput}; {@code forAnyInput}, when not null, for an input not in it). A file is read only when
     * the model has such a dimension, and once.
     */
    public FreeDims orFromFiles(Map<String, java.nio.file.Path> byInput, java.nio.file.Path forAnyInput) {
        Map<java.nio.file.Path, int[]> shapes = new java.util.concurrent.ConcurrentHashMap<>();
        return orFromInputs((input, axis) -> {
            java.nio.file.Path f = byInput.getOrDefault(input, forAnyInput);
            if (f == null) {
                return null;
            }
            int[] s = shapes.computeIfAbsent(f, p -> dev.kxai.io.NpyIO.read(p).shape());
            return axis < s.length ? s[axis] : null;
        });
    }

    /** Parses {@code NAME=SIZE} (the CLI's {@code --dim}). */
    public static Map.Entry<String, Integer> parse(String arg) {
        int eq = arg.lastIndexOf('=');
        String size = eq < 0 ? "" : arg.substring(eq + 1).trim();
        if (eq <= 0 || !size.matches("[0-9]{1,9}") || Integer.parseInt(size) < 1) {
            throw new dev.kxai.InvalidInputException("--dim " + arg + ": expected NAME=SIZE (a dimension's name, or"
                    + " INPUT:AXIS, and a size of at least 1), e.g. --dim sequence_length=128");
        }
        return Map.entry(arg.substring(0, eq).trim(), Integer.parseInt(size));
    }

    /** One model's resolution: what was fixed, to check consistency and report unused names. */
    final class Resolution {
        private final String source;
        /** Free dimensions seen: "name (input:axis)". */
        private final Set<String> seen = new TreeSet<>();
        private final Set<String> used = new TreeSet<>();
        /** Sizes taken from the inputs per dimension name, with the input they came from. */
        private final Map<String, String> fromInput = new LinkedHashMap<>();
        private final Map<String, Integer> fromInputSize = new TreeMap<>();

        Resolution(String source) {
            this.source = source;
        }

        /** The size of {@code input}'s axis (≥ 1) declared free under {@code param} (empty: no name); -1 when unknown. */
        int size(String input, int axis, String param) {
            String byAxis = input + ":" + axis;
            seen.add((param.isEmpty() ? "" : param + " = ") + byAxis);
            if (!param.isEmpty() && sizes.containsKey(param)) {
                used.add(param);
                return sizes.get(param);
            }
            if (sizes.containsKey(byAxis)) {
                used.add(byAxis);
                return sizes.get(byAxis);
            }
            Integer given = fromInputs.apply(input, axis);
            if (given == null) {
                return -1;
            }
            if (!param.isEmpty()) {
                Integer was = fromInputSize.putIfAbsent(param, given);
                if (was != null && !was.equals(given)) {
                    throw new ModelException(source + ": the inputs disagree on dimension '" + param + "': "
                            + fromInput.get(param) + " has " + was + ", " + byAxis + " has " + given);
                }
                fromInput.putIfAbsent(param, byAxis);
            }
            return given;
        }

        /** Refuses names the caller gave that match no free dimension (a typo would otherwise pass silently). */
        void checkAllUsed(Set<String> batchAxisNames) {
            if (lenient) {
                return;
            }
            for (String k : new TreeSet<>(sizes.keySet())) {
                if (used.contains(k)) {
                    continue;
                }
                String why = batchAxisNames.contains(k) ? "'" + k + "' is the batch axis, which kxai keeps free"
                        : "'" + k + "' names no free dimension of the model's inputs";
                throw new ModelException(source + ": dimension " + why + " (free dimensions beyond the batch: "
                        + (seen.isEmpty() ? "none" : String.join(", ", seen)) + ")");
            }
        }
    }

    Resolution resolution(String source) {
        return new Resolution(source);
    }
}
