package dev.kxai.spark;

import dev.kxai.InvalidInputException;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Progress;
import java.io.Serializable;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Everything a task needs besides the rows and the model's bytes: the method and its parameters as
 * plain values (shipped to the executors with the task), turned into Captum-named parameters there.
 * The defaults and the parameter map are {@code kxai explain}'s (BatchOptions.params), so a row
 * gets the numbers {@code kxai explain} gives it.
 */
record ExplainSpec(String method, int steps, String rule, String baseline, Integer internalBatchSize, String layer,
        boolean firstLayerSaving, boolean abs, long seed, List<String> extraParams, String device, int batchSize,
        boolean batchInvariant, String preprocess) implements Serializable {

    /** The method's parameters, as {@code kxai explain} builds them from its options. */
    Map<String, Object> params() {
        Map<String, Object> p = new HashMap<>(Map.of("n_steps", steps, "method", rule, "baselines",
                List.of(baseline(baseline)), "return_convergence_delta", true, "progress", Progress.NONE,
                "affine_first_layer", firstLayerSaving, "reuse_endpoints", true, "abs", abs));
        if (internalBatchSize != null) {
            p.put("internal_batch_size", internalBatchSize);
        }
        if (layer != null) {
            p.put("layer", layer);
        }
        p.put("seed", seed);
        Map<String, Object> extra = new HashMap<>();
        for (String kv : extraParams) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new InvalidInputException("method parameter '" + kv + "': expected NAME=VALUE");
            }
            String name = kv.substring(0, eq).trim();
            String v = kv.substring(eq + 1).trim();
            extra.put(name, name.equals("seed") ? (Object) Long.parseLong(v) : value(v)); // the CLI's seed is a long
        }
        p.putAll(extra);
        // the defaults above are filled in for every method and dropped where it does not take them; a parameter
        // given by name stays, so that Methods.create refuses one the method does not take (issue 13)
        Map<String, Object> out = new HashMap<>(dev.kxai.attr.Methods.used(method, p));
        out.putAll(extra);
        return out;
    }

    private static Baseline baseline(String b) {
        if (b == null || b.equals("zeros")) {
            return Baseline.zeros();
        }
        try {
            return Baseline.scalar(Float.parseFloat(b));
        } catch (NumberFormatException e) {
            throw new InvalidInputException("baseline must be zeros or a number, got '" + b + "'");
        }
    }

    /**
     * A Captum-named parameter's value from text, typed as the CLI types it: true/false, an integer,
     * a comma-separated list of integers (window shapes, strides), a real, else the text (rule names).
     */
    static Object value(String v) {
        if (v.equals("true") || v.equals("false")) {
            return Boolean.parseBoolean(v);
        }
        if (v.matches("-?\\d+")) {
            return Integer.parseInt(v);
        }
        if (v.matches("-?\\d+(,-?\\d+)+")) {
            String[] parts = v.split(",");
            int[] out = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                out[i] = Integer.parseInt(parts[i]);
            }
            return out;
        }
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            return v;
        }
    }
}
