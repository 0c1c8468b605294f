package dev.kxai.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.Methods;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * KServe V1 request bodies and parameters turned into kxai's inputs and Captum-named parameters,
 * every refusal a {@link BadRequest} naming the field (the server answers 400 or 413 with it).
 */
final class RequestParser {
    private RequestParser() {
    }

    /** A refused request: the HTTP status, the field at fault and why. */
    static final class BadRequest extends RuntimeException {
        final int status;
        final String field;

        BadRequest(int status, String field, String message) {
            super(message);
            this.status = status;
            this.field = field;
        }
    }

    /** The parameters a request may set, with their types (anything else is refused by name). */
    enum Type { INT, LONG, DOUBLE, BOOL, STRING, INTS, DOUBLES }

    static final Map<String, Type> PARAMETERS = Map.ofEntries(
            Map.entry("n_steps", Type.INT), Map.entry("rule", Type.STRING), Map.entry("baselines", Type.DOUBLE),
            Map.entry("abs", Type.BOOL), Map.entry("multiply_by_inputs", Type.BOOL),
            Map.entry("return_convergence_delta", Type.BOOL), Map.entry("max_pool_rule", Type.BOOL),
            Map.entry("relu_attributions", Type.BOOL), Map.entry("attr_dim_summation", Type.BOOL),
            Map.entry("layer", Type.STRING), Map.entry("neuron", Type.INTS), Map.entry("n_samples", Type.INT),
            Map.entry("seed", Type.LONG), Map.entry("stdevs", Type.DOUBLE), Map.entry("nt_type", Type.STRING),
            Map.entry("nt_samples", Type.INT), Map.entry("sliding_window_shapes", Type.INTS),
            Map.entry("strides", Type.INTS), Map.entry("perturbations_per_eval", Type.INT),
            Map.entry("fraction", Type.DOUBLE), Map.entry("max_dist", Type.DOUBLE), Map.entry("max_sigma", Type.DOUBLE),
            Map.entry("grad_step", Type.DOUBLE), Map.entry("alphas", Type.DOUBLES));

    /** Request fields that are not method parameters. */
    static final java.util.Set<String> CONTROL = java.util.Set.of("method", "target", "timeout_ms");

    /** The method's parameters from a JSON object or query strings (values as text). */
    static Map<String, Object> parameters(Map<String, JsonNode> given, int maxSteps) {
        Map<String, Object> out = new HashMap<>();
        for (Map.Entry<String, JsonNode> e : given.entrySet()) {
            String name = e.getKey();
            if (CONTROL.contains(name)) {
                continue;
            }
            Type type = PARAMETERS.get(name);
            if (type == null) {
                throw new BadRequest(400, "parameters." + name, "unknown parameter '" + name + "'; known: method, target, "
                        + "timeout_ms, " + String.join(", ", new java.util.TreeSet<>(PARAMETERS.keySet())));
            }
            Object v = value(name, type, e.getValue());
            if (name.equals("rule")) {
                out.put("method", v); // Captum's IG `method` (the quadrature), named rule here as on the CLI
            } else if (name.equals("baselines")) {
                out.put("baselines", Baseline.scalar(((Double) v).floatValue()));
            } else if (name.equals("stdevs")) {
                out.put("stdevs", List.of((Double) v));
            } else {
                out.put(name, v);
            }
        }
        Object steps = out.get("n_steps");
        if (steps != null && ((Integer) steps < 1 || (Integer) steps > maxSteps)) {
            throw new BadRequest(400, "parameters.n_steps", "n_steps must be between 1 and " + maxSteps + " (the server's "
                    + "limit), got " + steps);
        }
        if (out.containsKey("internal_batch_size")) {
            throw new BadRequest(400, "parameters.internal_batch_size", "the server sizes its own batches");
        }
        return out;
    }

    private static Object value(String name, Type type, JsonNode v) {
        String field = "parameters." + name;
        try {
            switch (type) {
                case INT -> {
                    long l = integral(v, field);
                    if (l != (int) l) {
                        throw new BadRequest(400, field, name + " is out of range: " + v.asText());
                    }
                    return (int) l;
                }
                case LONG -> {
                    return integral(v, field);
                }
                case DOUBLE -> {
                    double d = v.isNumber() ? v.asDouble() : Double.parseDouble(v.asText());
                    if (!Double.isFinite(d)) {
                        throw new BadRequest(400, field, name + " must be a finite number, got " + v.asText());
                    }
                    return d;
                }
                case BOOL -> {
                    if (v.isBoolean()) {
                        return v.asBoolean();
                    }
                    String t = v.asText();
                    if (t.equals("true") || t.equals("false")) {
                        return Boolean.parseBoolean(t);
                    }
                    throw new BadRequest(400, field, name + " must be true or false, got " + t);
                }
                case STRING -> {
                    if (!v.isTextual()) {
                        throw new BadRequest(400, field, name + " must be a string, got " + v);
                    }
                    return v.asText();
                }
                case INTS -> {
                    List<JsonNode> items = items(v);
                    int[] a = new int[items.size()];
                    for (int i = 0; i < a.length; i++) {
                        a[i] = Math.toIntExact(integral(items.get(i), field + "[" + i + "]"));
                    }
                    return a;
                }
                default -> {
                    List<JsonNode> items = items(v);
                    double[] a = new double[items.size()];
                    for (int i = 0; i < a.length; i++) {
                        a[i] = items.get(i).isNumber() ? items.get(i).asDouble() : Double.parseDouble(items.get(i).asText());
                    }
                    return a;
                }
            }
        } catch (NumberFormatException | ArithmeticException e) {
            throw new BadRequest(400, field, name + ": not a valid " + type.name().toLowerCase(java.util.Locale.ROOT)
                    + ": " + v);
        }
    }

    /** A JSON array, or comma-separated text (query strings). */
    private static List<JsonNode> items(JsonNode v) {
        List<JsonNode> out = new ArrayList<>();
        if (v.isArray()) {
            v.forEach(out::add);
        } else {
            for (String s : v.asText().split(",")) {
                out.add(com.fasterxml.jackson.databind.node.TextNode.valueOf(s.trim()));
            }
        }
        return out;
    }

    private static long integral(JsonNode v, String field) {
        if (v.isIntegralNumber()) {
            return v.asLong();
        }
        if (v.isNumber()) {
            throw new BadRequest(400, field, field + " must be an integer, got " + v);
        }
        return Long.parseLong(v.asText().trim());
    }

    /** The method named in the request (default integrated_gradients), known to the registry. */
    static String method(JsonNode v) {
        String name = v == null ? "integrated_gradients" : v.asText();
        if (!Methods.known(name)) {
            throw new BadRequest(400, "parameters.method", "unknown method '" + name + "'; known: " + Methods.describe());
        }
        return Methods.entry(name).name();
    }

    /** Targets: one for all rows, one per row, or none (the predicted class). */
    static int[] targets(JsonNode v, int rows) {
        if (v == null || v.isNull()) {
            return null;
        }
        List<JsonNode> items = v.isArray() ? items(v) : List.of(v);
        int[] t = new int[items.size()];
        for (int i = 0; i < t.length; i++) {
            t[i] = Math.toIntExact(integral(items.get(i), "parameters.target"));
        }
        if (t.length != 1 && t.length != rows) {
            throw new BadRequest(400, "parameters.target", t.length + " targets for " + rows + " instances; give one, or one "
                    + "per instance");
        }
        return t;
    }

    /**
     * KServe V1 "instances": per instance the example as nested arrays (or flat), or for a model with
     * several inputs an object of them by name.
     */
    static Inputs instances(Model model, JsonNode instances, int maxInstances) {
        if (instances == null || !instances.isArray()) {
            throw new BadRequest(400, "instances", "the body needs \"instances\": a list of examples");
        }
        int n = instances.size();
        if (n == 0) {
            throw new BadRequest(400, "instances", "\"instances\" is empty");
        }
        if (n > maxInstances) {
            throw new BadRequest(413, "instances", n + " instances in one request; the server takes at most " + maxInstances);
        }
        List<Graph.Input> inputs = model.inputs();
        Inputs out = Inputs.empty();
        for (Graph.Input input : inputs) {
            int[] ex = model.runner().plan().exampleShape(input.name());
            int per = 1;
            for (int d : ex) {
                per *= d;
            }
            float[] data = new float[n * per];
            for (int i = 0; i < n; i++) {
                JsonNode inst = instances.get(i);
                String field = "instances[" + i + "]";
                if (inputs.size() > 1 || inst.isObject()) {
                    if (!inst.isObject() || !inst.has(input.name())) {
                        throw new BadRequest(400, field, "each instance needs every input by name: "
                                + model.describeInputs());
                    }
                    inst = inst.get(input.name());
                    field += "." + input.name();
                }
                int[] filled = {0};
                flatten(inst, data, i * per, per, filled, field);
                if (filled[0] != per) {
                    throw new BadRequest(400, field, "holds " + filled[0] + " numbers; input '" + input.name() + "' takes "
                            + per + " per example " + java.util.Arrays.toString(ex));
                }
            }
            int[] shape = new int[ex.length + 1];
            shape[0] = n;
            System.arraycopy(ex, 0, shape, 1, ex.length);
            out = out.and(input.name(), new Tensor(shape, data));
        }
        return out;
    }

    private static void flatten(JsonNode v, float[] out, int off, int per, int[] filled, String field) {
        if (v.isArray()) {
            for (JsonNode c : v) {
                flatten(c, out, off, per, filled, field);
            }
            return;
        }
        if (!v.isNumber()) {
            throw new BadRequest(400, field, "holds " + (v.isTextual() ? "the text \"" + v.asText() + "\"" : v.toString())
                    + " where a number belongs");
        }
        if (filled[0] >= per) {
            filled[0]++;
            return;
        }
        out[off + filled[0]++] = (float) v.asDouble();
    }
}
