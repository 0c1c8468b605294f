package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The attribution methods by name (Captum's, plus short aliases), each built from parameters
 * named as in Captum: one registry for {@code explain}, {@code bench}, {@code validate} (and a
 * server). A method not listed here is unknown, and the error lists the known ones.
 */
public final class Methods {
    /** A method bound to a model and its parameters. */
    @FunctionalInterface
    public interface Method {
        /** Attributions for a batch of (one or several) inputs. */
        Attribution attribute(Inputs in, int[] targets);
    }

    /** Builds a method for a model from its parameters. */
    @FunctionalInterface
    public interface Factory {
        Method create(Model model, Params params);
    }

    /** A registered method: its Captum name, aliases, and factory. */
    public record Entry(String name, List<String> aliases, String parameters, Factory factory) {
    }

    /**
     * Parameters by Captum name ({@code n_steps}, {@code method}, {@code baselines},
     * {@code internal_batch_size}, {@code return_convergence_delta}, {@code multiply_by_inputs},
     * {@code abs}) and kxai's own ({@code affine_first_layer}, {@code reuse_endpoints},
     * {@code progress}); absent ones take Captum's defaults.
     */
    public record Params(Map<String, Object> values) {
        public Params {
            if (values == null) {
                throw new InvalidInputException("method parameters: null (give an empty map for the defaults)");
            }
            for (Map.Entry<String, Object> e : values.entrySet()) {
                if (e.getKey() == null || e.getValue() == null) {
                    throw new InvalidInputException("method parameters: " + (e.getKey() == null ? "a null name"
                            : "parameter '" + e.getKey() + "' is null") + " (leave a parameter out for its default)");
                }
            }
            values = Map.copyOf(values);
        }

        public static Params of(Map<String, Object> values) {
            return new Params(values);
        }

        public Object get(String name, Object otherwise) {
            return values.getOrDefault(name, otherwise);
        }

        /**
         * A parameter of a type, or {@code otherwise} where absent; a value of another type is an
         * {@link InvalidInputException} naming the parameter, the type expected and the type given (never a
         * ClassCastException, issue 13).
         */
        public <T> T get(String name, Class<T> type, T otherwise) {
            Object v = values.get(name);
            if (v == null) {
                return otherwise;
            }
            if (!type.isInstance(v)) {
                throw wrongType(name, type.getSimpleName(), v);
            }
            return type.cast(v);
        }

        /** The error for a parameter of the wrong type. */
        static InvalidInputException wrongType(String name, String expected, Object given) {
            String shown = given instanceof int[] a ? java.util.Arrays.toString(a)
                    : given instanceof double[] d ? java.util.Arrays.toString(d) : String.valueOf(given);
            if (shown.length() > 60) {
                shown = shown.substring(0, 57) + "...";
            }
            return new InvalidInputException("parameter '" + name + "': expected " + expected + ", got "
                    + given.getClass().getSimpleName() + " " + shown);
        }

        String string(String name, String otherwise) {
            return get(name, String.class, otherwise);
        }

        /** An integer (Integer, Long, Short or Byte) in int range. */
        int integer(String name, int otherwise) {
            Integer v = optInt(name);
            return v == null ? otherwise : v;
        }

        /** An integer in int range, or null where absent. */
        Integer optInt(String name) {
            Object v = values.get(name);
            if (v == null) {
                return null;
            }
            if (!(v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte)) {
                throw wrongType(name, "Integer", v);
            }
            long l = ((Number) v).longValue();
            if (l != (int) l) {
                throw new InvalidInputException("parameter '" + name + "': " + l + " is beyond int range");
            }
            return (int) l;
        }

        long longInteger(String name, long otherwise) {
            Object v = values.get(name);
            if (v == null) {
                return otherwise;
            }
            if (!(v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte)) {
                throw wrongType(name, "Long", v);
            }
            return ((Number) v).longValue();
        }

        double real(String name, double otherwise) {
            return get(name, Number.class, otherwise).doubleValue();
        }

        boolean flag(String name, boolean otherwise) {
            return get(name, Boolean.class, otherwise);
        }

        /** A list whose elements are all of a type (an element of another type is named with its position). */
        <T> List<T> listOf(String name, Class<T> type, List<?> l) {
            for (int i = 0; i < l.size(); i++) {
                if (!type.isInstance(l.get(i))) {
                    throw l.get(i) == null ? new InvalidInputException("parameter '" + name + "': element " + i + " is null")
                            : wrongType(name + "[" + i + "]", type.getSimpleName(), l.get(i));
                }
            }
            return l.stream().map(type::cast).toList();
        }
    }

    private static final Map<String, Entry> BY_NAME = new LinkedHashMap<>();

    static {
        register(new Entry("integrated_gradients", List.of("ig"), "n_steps, method, baselines, internal_batch_size, "
                + "multiply_by_inputs, return_convergence_delta, alphas, alpha_weights", Methods::integratedGradients));
        register(new Entry("saliency", List.of(), "abs", (m, p) -> {
            Saliency s = new Saliency(m);
            boolean abs = p.flag("abs", true);
            return (in, t) -> s.attribute(in, abs, t);
        }));
        register(new Entry("input_x_gradient", List.of("ixg"), "", (m, p) -> {
            InputXGradient ixg = new InputXGradient(m);
            return ixg::attribute;
        }));
        register(new Entry("layer_integrated_gradients", List.of("layer_ig"), "layer, n_steps, method, baselines, "
                + "internal_batch_size, multiply_by_inputs, return_convergence_delta", Methods::layerIntegratedGradients));
        register(new Entry("deeplift_shap", List.of(), "baselines (rows of a distribution), multiply_by_inputs, "
                + "return_convergence_delta, max_pool_rule", (m, p) -> {
                    DeepLiftShap d = new DeepLiftShap(m, p.flag("multiply_by_inputs", true), p.flag("max_pool_rule", false));
                    Baseline[] b = baselines(p);
                    boolean delta = p.flag("return_convergence_delta", false);
                    return (in, t) -> d.attribute(in, distributions(m, in, b), delta, t);
                }));
        register(new Entry("guided_backprop", List.of(), "", (m, p) -> GuidedBackprop.guided(m)::attribute));
        register(new Entry("deconvolution", List.of(), "", (m, p) -> GuidedBackprop.deconvolution(m)::attribute));
        register(new Entry("deeplift", List.of(), "baselines, multiply_by_inputs, return_convergence_delta, "
                + "max_pool_rule", (m, p) -> new DeepLift(m).baselines(baselines(p))
                        .multiplyByInputs(p.flag("multiply_by_inputs", true))
                        .returnConvergenceDelta(p.flag("return_convergence_delta", false))
                        .maxPoolRule(p.flag("max_pool_rule", false))::attribute));
        register(new Entry("lrp", List.of(), "rules (epsilon 1e-9 everywhere; KEY=RULE,... by op type or node name), "
                + "return_convergence_delta", (m, p) -> new Lrp(m).rules(lrpRules(p))
                        .returnConvergenceDelta(p.flag("return_convergence_delta", false))::attribute));
        register(new Entry("layer_lrp", List.of(), "layer, rules, return_convergence_delta", (m, p) -> {
            String layer = p.string("layer", null);
            if (layer == null) {
                throw new InvalidInputException("layer_lrp needs a layer: the name of a value a node computes (--layer NAME)");
            }
            return Lrp.layer(m, layer).rules(lrpRules(p))
                    .returnConvergenceDelta(p.flag("return_convergence_delta", false))::attribute;
        }));
        register(new Entry("layer_grad_cam", List.of("grad_cam"), "layer, relu_attributions, attr_dim_summation, "
                + "upsample_to_input", (m, p) -> {
                    String layer = p.string("layer", null);
                    LayerGradCam cam = new LayerGradCam(m, layer, p.flag("relu_attributions", false),
                            p.flag("attr_dim_summation", true));
                    if (!p.flag("upsample_to_input", false)) {
                        return cam::attribute;
                    }
                    // Captum's LayerAttribution.interpolate(attr, input.shape[2:]) (nearest): an overlay-ready map
                    return (in, t) -> {
                        Attribution a = cam.attribute(in, t);
                        Tensor map = a.byInput().get(layer);
                        if (map.dim(1) != 1) {
                            throw new InvalidInputException("layer_grad_cam: upsample_to_input needs the channel sum "
                                    + "(attr_dim_summation true)");
                        }
                        Tensor x = in.get(m.attributed(in).get(0));
                        if (x.rank() != map.rank()) {
                            throw new InvalidInputException("layer_grad_cam: the layer's map " + java.util.Arrays.toString(
                                    map.shape()) + " and the input " + java.util.Arrays.toString(x.shape())
                                    + " have different ranks; nothing to upsample to");
                        }
                        Tensor up = GuidedGradCam.upsampled(map, x.shape());
                        return Attribution.of(Map.of(layer + "@input", up), null, a.device(), a.fallbackReason());
                    };
                }));
        register(new Entry("layer_conductance", List.of(), "layer, n_steps, method, baselines, internal_batch_size",
                (m, p) -> new LayerConductance(m, p.string("layer", null), p.integer("n_steps", 50),
                        Quadrature.Rule.parse(p.string("method", "gausslegendre")), List.of(baselines(p)),
                        p.optInt("internal_batch_size"))::attribute));
        register(new Entry("gradient_shap", List.of(), "n_samples, stdevs, baselines (rows to draw from), "
                + "multiply_by_inputs, seed, internal_batch_size", (m, p) -> {
                    GradientShap gs = new GradientShap(m, p.integer("n_samples", 5), stdevs(p, 0.0),
                            p.flag("multiply_by_inputs", true), p.longInteger("seed", 0L),
                            p.optInt("internal_batch_size"));
                    Baseline[] b = baselines(p);
                    return (in, t) -> gs.attribute(in, distributions(m, in, b), t);
                }));
        register(new Entry("guided_grad_cam", List.of(), "layer", (m, p) -> new GuidedGradCam(m,
                p.string("layer", null))::attribute));
        register(new Entry("layer_activation", List.of(), "layer", (m, p) -> {
            String layer = p.string("layer", null);
            return (in, t) -> LayerMethods.activation(m, layer, in);
        }));
        register(new Entry("layer_gradient_x_activation", List.of(), "layer, multiply_by_inputs", (m, p) -> {
            String layer = p.string("layer", null);
            boolean mult = p.flag("multiply_by_inputs", true);
            return (in, t) -> LayerMethods.gradientXActivation(m, layer, mult, in, t);
        }));
        register(new Entry("internal_influence", List.of(), "layer, n_steps, method, baselines, internal_batch_size",
                (m, p) -> {
                    String layer = p.string("layer", null);
                    Quadrature.Rule rule = Quadrature.Rule.parse(p.string("method", "gausslegendre"));
                    return (in, t) -> LayerMethods.internalInfluence(m, layer, p.integer("n_steps", 50), rule,
                            List.of(baselines(p)), p.optInt("internal_batch_size"), in, t);
                }));
        register(new Entry("neuron_gradient", List.of(), "layer, neuron", (m, p) -> {
            String layer = p.string("layer", null);
            return (in, t) -> LayerMethods.neuronGradient(m, layer, neuron(m, p), in);
        }));
        register(new Entry("neuron_integrated_gradients", List.of("neuron_ig"), "layer, neuron, n_steps, method, "
                + "baselines, internal_batch_size, multiply_by_inputs", (m, p) -> {
                    String layer = p.string("layer", null);
                    Quadrature.Rule rule = Quadrature.Rule.parse(p.string("method", "gausslegendre"));
                    return (in, t) -> LayerMethods.neuronIntegratedGradients(m, layer, neuron(m, p),
                            p.integer("n_steps", 50), rule, List.of(baselines(p)), p.optInt("internal_batch_size"),
                            p.flag("multiply_by_inputs", true), in);
                }));
        register(new Entry("layer_deeplift", List.of(), "layer, baselines, multiply_by_inputs, return_convergence_delta, "
                + "max_pool_rule", (m, p) -> {
                    outputSide(p, "attribute_to_layer_input", "layer_deeplift");
                    return DeepLift.layer(m, p.string("layer", null)).baselines(baselines(p))
                            .multiplyByInputs(p.flag("multiply_by_inputs", true))
                            .returnConvergenceDelta(p.flag("return_convergence_delta", false))
                            .maxPoolRule(p.flag("max_pool_rule", false))::attribute;
                }));
        register(new Entry("layer_deeplift_shap", List.of(), "layer, baselines (rows of a distribution), "
                + "multiply_by_inputs, return_convergence_delta, max_pool_rule", (m, p) -> {
                    outputSide(p, "attribute_to_layer_input", "layer_deeplift_shap");
                    DeepLiftShap d = DeepLiftShap.layer(m, p.string("layer", null), p.flag("multiply_by_inputs", true),
                            p.flag("max_pool_rule", false));
                    Baseline[] b = baselines(p);
                    boolean delta = p.flag("return_convergence_delta", false);
                    return (in, t) -> d.attribute(in, distributions(m, in, b), delta, t);
                }));
        register(new Entry("layer_gradient_shap", List.of(), "layer, n_samples, stdevs, baselines (rows to draw from), "
                + "multiply_by_inputs, seed, internal_batch_size, return_convergence_delta", (m, p) -> {
                    outputSide(p, "attribute_to_layer_input", "layer_gradient_shap");
                    GradientShap gs = GradientShap.layer(m, p.string("layer", null), p.integer("n_samples", 5),
                            stdevs(p, 0.0), p.flag("multiply_by_inputs", true), p.longInteger("seed", 0L),
                            p.optInt("internal_batch_size"), p.flag("return_convergence_delta", false));
                    Baseline[] b = baselines(p);
                    return (in, t) -> gs.attribute(in, distributions(m, in, b), t);
                }));
        register(new Entry("layer_feature_ablation", List.of(), "layer, layer_baselines (or baselines), layer_mask "
                + "(or feature_mask), perturbations_per_eval, internal_batch_size", (m, p) -> {
                    outputSide(p, "attribute_to_layer_input", "layer_feature_ablation");
                    String layer = p.string("layer", null);
                    Object lb = p.get("layer_baselines", p.get("baselines", Baseline.zeros()));
                    Baseline b = lb instanceof List<?> l && l.size() == 1 ? p.listOf("layer_baselines", Baseline.class, l)
                            .get(0) : lb instanceof Baseline one ? one : null;
                    if (b == null) {
                        throw Params.wrongType("layer_baselines", "one Baseline (the layer's)", lb);
                    }
                    Object mask = p.get("layer_mask", p.get("feature_mask", null));
                    if (mask instanceof Map<?, ?> byName && byName.size() == 1) {
                        mask = byName.values().iterator().next(); // the CLI's --feature-mask FILE, keyed by the input
                    }
                    if (mask != null && !(mask instanceof Tensor)) {
                        throw Params.wrongType("layer_mask", "Tensor (group ids over the layer's example)", mask);
                    }
                    Map<String, Object> rest = new java.util.HashMap<>(p.values());
                    rest.remove("feature_mask");
                    rest.remove("baselines");
                    return new dev.kxai.attr.perturbation.LayerFeatureAblation(m, layer, b, (Tensor) mask,
                            perturbation(m, Params.of(rest)))::attribute;
                }));
        register(new Entry("neuron_conductance", List.of(), "layer, neuron, n_steps, method (riemann_trapezoid), "
                + "baselines, internal_batch_size, multiply_by_inputs", (m, p) -> {
                    outputSide(p, "attribute_to_neuron_input", "neuron_conductance");
                    return new NeuronConductance(m, p.string("layer", null), neuron(m, p), p.integer("n_steps", 50),
                            Quadrature.Rule.parse(p.string("method", "riemann_trapezoid")), List.of(baselines(p)),
                            p.optInt("internal_batch_size"), p.flag("multiply_by_inputs", true))::attribute;
                }));
        register(new Entry("neuron_deeplift", List.of(), "layer, neuron, baselines, multiply_by_inputs, max_pool_rule",
                (m, p) -> {
                    outputSide(p, "attribute_to_neuron_input", "neuron_deeplift");
                    return DeepLift.neuron(m, p.string("layer", null), neuron(m, p)).baselines(baselines(p))
                            .multiplyByInputs(p.flag("multiply_by_inputs", true))
                            .maxPoolRule(p.flag("max_pool_rule", false))::attribute;
                }));
        register(new Entry("neuron_deeplift_shap", List.of(), "layer, neuron, baselines (rows of a distribution), "
                + "multiply_by_inputs, max_pool_rule", (m, p) -> {
                    outputSide(p, "attribute_to_neuron_input", "neuron_deeplift_shap");
                    DeepLiftShap d = DeepLiftShap.neuron(m, p.string("layer", null), neuron(m, p),
                            p.flag("multiply_by_inputs", true), p.flag("max_pool_rule", false));
                    Baseline[] b = baselines(p);
                    return (in, t) -> d.attribute(in, distributions(m, in, b), false, t);
                }));
        register(new Entry("neuron_gradient_shap", List.of(), "layer, neuron, n_samples, stdevs, baselines (rows to draw "
                + "from), multiply_by_inputs, seed, internal_batch_size", (m, p) -> {
                    outputSide(p, "attribute_to_neuron_input", "neuron_gradient_shap");
                    GradientShap gs = GradientShap.neuron(m, p.string("layer", null), neuron(m, p),
                            p.integer("n_samples", 5), stdevs(p, 0.0), p.flag("multiply_by_inputs", true),
                            p.longInteger("seed", 0L), p.optInt("internal_batch_size"));
                    Baseline[] b = baselines(p);
                    return (in, t) -> gs.attribute(in, distributions(m, in, b), t);
                }));
        register(new Entry("neuron_guided_backprop", List.of(), "layer, neuron", (m, p) -> {
            outputSide(p, "attribute_to_neuron_input", "neuron_guided_backprop");
            return GuidedBackprop.neuronGuided(m, p.string("layer", null), neuron(m, p))::attribute;
        }));
        register(new Entry("neuron_deconvolution", List.of(), "layer, neuron", (m, p) -> {
            outputSide(p, "attribute_to_neuron_input", "neuron_deconvolution");
            return GuidedBackprop.neuronDeconvolution(m, p.string("layer", null), neuron(m, p))::attribute;
        }));
        register(new Entry("neuron_feature_ablation", List.of(), "layer, neuron, baselines, feature_mask, "
                + "perturbations_per_eval, internal_batch_size", (m, p) -> {
                    outputSide(p, "attribute_to_neuron_input", "neuron_feature_ablation");
                    return new dev.kxai.attr.perturbation.NeuronFeatureAblation(m, p.string("layer", null),
                            neuron(m, p), perturbation(m, p))::attribute;
                }));
        register(new Entry("occlusion", List.of(), "sliding_window_shapes, strides, baselines, perturbations_per_eval, "
                + "internal_batch_size", (m, p) -> new dev.kxai.attr.perturbation.Occlusion(m, shapes(p, "sliding_window_shapes",
                        true), shapes(p, "strides", false), perturbation(m, p))::attribute));
        register(new Entry("feature_ablation", List.of(), "baselines, feature_mask, perturbations_per_eval, "
                + "internal_batch_size", (m, p) -> new dev.kxai.attr.perturbation.FeatureAblation(m, perturbation(m, p))::attribute));
        register(new Entry("feature_permutation", List.of(), "feature_mask, permutation, seed, perturbations_per_eval",
                (m, p) -> new dev.kxai.attr.perturbation.FeaturePermutation(m, perturbation(m, p),
                        p.get("permutation", int[].class, null))::attribute));
        register(new Entry("shapley_values", List.of(), "baselines, feature_mask, perturbations_per_eval, internal_batch_size",
                (m, p) -> dev.kxai.attr.perturbation.ShapleyValues.exact(m, perturbation(m, p))::attribute));
        register(new Entry("shapley_value_sampling", List.of(), "n_samples, baselines, feature_mask, seed, permutations, "
                + "perturbations_per_eval", (m, p) -> dev.kxai.attr.perturbation.ShapleyValues.sampling(m, perturbation(m, p),
                        p.integer("n_samples", 25), permutations(p))::attribute));
        register(new Entry("kernel_shap", List.of(), "n_samples, baselines, feature_mask, seed, samples, weights, "
                + "perturbations_per_eval", (m, p) -> linearSurrogate("kernel_shap", m, p)::attribute));
        register(new Entry("activation_max", List.of("activation_maximization"), "iterations, lr, lr_schedule, l2, tv, "
                + "jitter, blur_every, blur_sigma, init, noise_std, seed, layer + channel or neuron (else the target)",
                (m, p) -> new ActivationMaximization(m, objective(m, p), activationSettings(p))::attribute));
        register(new Entry("lime", List.of(), "n_samples, baselines, feature_mask, seed, interpretable_model, alpha, "
                + "kernel_width, distance_mode, samples, weights, perturbations_per_eval",
                (m, p) -> linearSurrogate("lime", m, p)::attribute));
        // beyond Captum: path methods from later papers (each cites its paper)
        register(new Entry("guided_integrated_gradients", List.of("guided_ig"), "n_steps, fraction, max_dist, baselines, "
                + "internal_batch_size", (m, p) -> new GuidedIntegratedGradients(m, p.integer("n_steps", 200),
                        p.real("fraction", 0.25), p.real("max_dist", 0.02), oneBaseline("guided_ig", p),
                        p.optInt("internal_batch_size"))::attribute));
        register(new Entry("blur_integrated_gradients", List.of("blur_ig"), "n_steps, max_sigma, grad_step, sqrt, "
                + "internal_batch_size", (m, p) -> new BlurIntegratedGradients(m, p.integer("n_steps", 100),
                        p.real("max_sigma", 50.0), p.real("grad_step", 0.01), p.flag("sqrt", false),
                        p.optInt("internal_batch_size"))::attribute));
        register(new Entry("idgi", List.of("integrated_decision_gradients"), "n_steps, alphas, baselines, "
                + "internal_batch_size", (m, p) -> new Idgi(m, p.integer("n_steps", 50), doubles(p, "alphas"),
                        oneBaseline("idgi", p), p.optInt("internal_batch_size"))::attribute));
    }

    /** Parameters every method takes: kxai's progress reporter (an observer: it changes no number). */
    private static final java.util.Set<String> EVERY = java.util.Set.of("progress");

    /** Captum's NoiseTunnel's parameters: taken, with {@code nt_type}, by every method it wraps. */
    private static final java.util.Set<String> NOISE_TUNNEL = java.util.Set.of("nt_type", "nt_samples", "stdevs",
            "nt_samples_batch_size", "seed");

    /** Per method (Captum name): the parameters its factory and method read, nothing else. */
    private static final Map<String, java.util.Set<String>> TAKES = new java.util.HashMap<>();

    private static void takes(String method, String names) {
        if (!BY_NAME.containsKey(method)) {
            throw new IllegalStateException("no method " + method);
        }
        TAKES.put(method, java.util.Set.of(names.isBlank() ? new String[0] : names.trim().split("\\s+")));
    }

    static {
        String path = "n_steps method baselines internal_batch_size ";
        String perturbation = "baselines feature_mask perturbations_per_eval internal_batch_size ";
        takes("integrated_gradients", path + "multiply_by_inputs return_convergence_delta alphas alpha_weights "
                + "affine_first_layer reuse_endpoints");
        takes("saliency", "abs");
        takes("input_x_gradient", "");
        takes("layer_integrated_gradients", path + "layer multiply_by_inputs return_convergence_delta");
        takes("deeplift_shap", "baselines multiply_by_inputs return_convergence_delta max_pool_rule");
        takes("guided_backprop", "");
        takes("deconvolution", "");
        takes("deeplift", "baselines multiply_by_inputs return_convergence_delta max_pool_rule");
        takes("lrp", "rules return_convergence_delta");
        takes("layer_lrp", "layer rules return_convergence_delta");
        takes("layer_grad_cam", "layer relu_attributions attr_dim_summation upsample_to_input");
        takes("layer_conductance", path + "layer");
        takes("gradient_shap", "n_samples stdevs baselines multiply_by_inputs seed internal_batch_size");
        takes("guided_grad_cam", "layer");
        takes("layer_activation", "layer");
        takes("layer_gradient_x_activation", "layer multiply_by_inputs");
        takes("internal_influence", path + "layer");
        takes("neuron_gradient", "layer neuron");
        takes("neuron_integrated_gradients", path + "layer neuron multiply_by_inputs");
        String dl = "baselines multiply_by_inputs max_pool_rule ";
        takes("layer_deeplift", dl + "layer return_convergence_delta attribute_to_layer_input");
        takes("layer_deeplift_shap", dl + "layer return_convergence_delta attribute_to_layer_input");
        takes("layer_gradient_shap", "layer n_samples stdevs baselines multiply_by_inputs seed internal_batch_size "
                + "return_convergence_delta attribute_to_layer_input");
        takes("layer_feature_ablation", perturbation + "layer layer_baselines layer_mask attribute_to_layer_input");
        takes("neuron_conductance", path + "layer neuron multiply_by_inputs attribute_to_neuron_input");
        takes("neuron_deeplift", dl + "layer neuron attribute_to_neuron_input");
        takes("neuron_deeplift_shap", dl + "layer neuron attribute_to_neuron_input");
        takes("neuron_gradient_shap", "layer neuron n_samples stdevs baselines multiply_by_inputs seed internal_batch_size "
                + "attribute_to_neuron_input");
        takes("neuron_guided_backprop", "layer neuron attribute_to_neuron_input");
        takes("neuron_deconvolution", "layer neuron attribute_to_neuron_input");
        takes("neuron_feature_ablation", perturbation + "layer neuron attribute_to_neuron_input");
        takes("occlusion", "sliding_window_shapes strides baselines perturbations_per_eval internal_batch_size");
        takes("feature_ablation", perturbation);
        takes("feature_permutation", "feature_mask permutation seed perturbations_per_eval internal_batch_size");
        takes("shapley_values", perturbation);
        takes("shapley_value_sampling", perturbation + "n_samples seed permutations");
        takes("kernel_shap", perturbation + "n_samples seed samples weights");
        takes("activation_max", "iterations lr lr_schedule l2 tv jitter blur_every blur_sigma init noise_std seed "
                + "layer channel neuron");
        takes("lime", perturbation + "n_samples seed samples weights interpretable_model alpha kernel_width distance_mode");
        takes("guided_integrated_gradients", "n_steps fraction max_dist baselines internal_batch_size");
        takes("blur_integrated_gradients", "n_steps max_sigma grad_step sqrt internal_batch_size");
        takes("idgi", "n_steps alphas baselines internal_batch_size");
        for (Entry e : BY_NAME.values()) {
            if (!TAKES.containsKey(e.name())) {
                throw new IllegalStateException("method " + e.name() + " lists no parameters");
            }
        }
    }

    /**
     * The parameters a method (name or alias) takes, sorted: its own, {@code progress}, and with a noise tunnel
     * ({@code noiseTunnel}: {@code nt_type} given) the tunnel's.
     */
    public static java.util.SortedSet<String> parameters(String method, boolean noiseTunnel) {
        java.util.SortedSet<String> out = new java.util.TreeSet<>(TAKES.get(entry(method).name()));
        out.addAll(EVERY);
        if (noiseTunnel) {
            out.addAll(NOISE_TUNNEL);
        }
        return out;
    }

    /**
     * The parameters of {@code params} that a method takes (with the noise tunnel's where {@code nt_type} is
     * among them): for callers that fill in shared defaults for every method (the CLI, bench, validate) before
     * {@link #create}, which refuses any other.
     */
    public static Map<String, Object> used(String method, Map<String, Object> params) {
        java.util.Set<String> takes = parameters(method, params.get("nt_type") != null);
        Map<String, Object> out = new LinkedHashMap<>();
        params.forEach((k, v) -> {
            if (takes.contains(k)) {
                out.put(k, v);
            }
        });
        return out;
    }

    /**
     * Refuses a parameter the method does not take (a misspelt key, another method's parameter, a noise-tunnel
     * parameter without {@code nt_type}): it used to be ignored without a word (issue 13).
     */
    public static void checkParameters(String method, Params params) {
        dev.kxai.Args.notNull(params, "params");
        String name = entry(method).name();
        boolean tunnel = params.values().get("nt_type") != null;
        java.util.SortedSet<String> takes = parameters(name, tunnel);
        for (String k : new java.util.TreeSet<>(params.values().keySet())) {
            if (takes.contains(k)) {
                continue;
            }
            java.util.SortedSet<String> own = parameters(name, false);
            String list = own.isEmpty() ? "none" : String.join(", ", own);
            if (NOISE_TUNNEL.contains(k) && !tunnel) {
                throw new InvalidInputException("parameter '" + k + "' is a noise tunnel parameter, given without "
                        + "nt_type: method " + name + " takes " + list + "; give nt_type (smoothgrad, smoothgrad_sq or "
                        + "vargrad) to wrap it in a noise tunnel, which also takes nt_samples, stdevs, "
                        + "nt_samples_batch_size and seed");
            }
            throw new InvalidInputException("parameter '" + k + "' is not one method " + name + " takes; it takes "
                    + list + (tunnel ? "" : " (and with nt_type the noise tunnel's nt_samples, stdevs, "
                    + "nt_samples_batch_size, seed)"));
        }
    }

    /** A list of reals (double[] or a list of numbers), or null where not given. */
    static double[] doubles(Params p, String name) {
        Object v = p.get(name, null);
        if (v == null || v instanceof double[]) {
            return (double[]) v;
        }
        if (v instanceof List<?> l) {
            double[] d = new double[l.size()];
            for (int i = 0; i < d.length; i++) {
                if (!(l.get(i) instanceof Number n)) {
                    throw new InvalidInputException(name + ": numbers, got " + l.get(i) + " at position " + i);
                }
                d[i] = n.doubleValue();
            }
            return d;
        }
        throw new InvalidInputException(name + ": a list of numbers, got " + v);
    }

    /** The single baseline of a single-input path method (zeros where none is given). */
    private static Baseline oneBaseline(String method, Params p) {
        Baseline[] b = baselines(p);
        if (b.length != 1) {
            throw new InvalidInputException(method + ": one baseline, got " + b.length);
        }
        return b[0];
    }

    /**
     * The method object behind the "lime" and "kernel_shap" entries, from the same parameters (the
     * metrics' lime_fidelity reads its fitted surrogates).
     */
    public static dev.kxai.attr.perturbation.Lime linearSurrogate(String name, Model m, Params p) {
        dev.kxai.attr.perturbation.Lime l;
        if (entry(name).name().equals("kernel_shap")) {
            l = dev.kxai.attr.perturbation.Lime.kernelShap(m, perturbation(m, p)).nSamples(p.integer("n_samples", 25));
        } else if (entry(name).name().equals("lime")) {
            l = dev.kxai.attr.perturbation.Lime.lime(m, perturbation(m, p))
                    .nSamples(p.integer("n_samples", 50))
                    .surrogate(dev.kxai.attr.perturbation.Lime.Surrogate.parse(p.string("interpretable_model",
                            "lasso")), p.real("alpha", 0.01))
                    .kernel(p.real("kernel_width", 1.0),
                            distanceMode(p.string("distance_mode", "cosine")));
        } else {
            throw new InvalidInputException("method '" + name + "' fits no linear surrogate; lime and kernel_shap do");
        }
        return surrogate(l, p);
    }

    /** The settings every perturbation method shares, from Captum's parameter names. */
    private static dev.kxai.attr.perturbation.Settings perturbation(Model m, Params p) {
        Object mask = p.get("feature_mask", null);
        Map<String, Tensor> masks = new LinkedHashMap<>();
        if (mask instanceof Tensor t) {
            masks.put(m.graph().inputName(), t);
        } else if (mask instanceof Map<?, ?> byName) {
            byName.forEach((k, v) -> {
                if (!(k instanceof String name) || !(v instanceof Tensor t)) {
                    throw Params.wrongType("feature_mask", "Map<String, Tensor>", byName);
                }
                masks.put(name, t);
            });
        } else if (mask != null) {
            throw new InvalidInputException("feature_mask: a tensor, or tensors by input name");
        }
        return dev.kxai.attr.perturbation.Settings.defaults().baselines(baselines(p)).featureMasks(masks)
                .perturbationsPerEval(p.optInt("perturbations_per_eval"))
                .internalBatchSize(p.optInt("internal_batch_size"))
                .seed(p.longInteger("seed", 0L))
                .progress(p.get("progress", Progress.class, Progress.NONE));
    }

    /** A window shape or stride: one int[] for every input, a list of one per input, or a single int (strides). */
    private static List<int[]> shapes(Params p, String name, boolean required) {
        Object v = p.get(name, null);
        if (v == null) {
            if (required) {
                throw new InvalidInputException("occlusion needs " + name + " (the window's shape over one example's axes)");
            }
            return null;
        }
        if (v instanceof Integer i) {
            return List.of(new int[] {i});
        }
        if (v instanceof int[] a) {
            return List.<int[]>of(a);
        }
        if (v instanceof List<?> l) {
            return p.listOf(name, int[].class, l);
        }
        throw new InvalidInputException(name + ": expected integers per axis, got " + v);
    }

    private static List<int[]> permutations(Params p) {
        List<?> l = p.get("permutations", List.class, null);
        return l == null ? null : p.listOf("permutations", int[].class, l);
    }

    private static boolean distanceMode(String mode) {
        return switch (mode.toLowerCase(Locale.ROOT)) {
            case "cosine" -> false;
            case "euclidean" -> true;
            default -> throw new InvalidInputException("distance_mode '" + mode + "': cosine or euclidean");
        };
    }

    /** The caller's samples and weights, where given. */
    private static dev.kxai.attr.perturbation.Lime surrogate(dev.kxai.attr.perturbation.Lime l, Params p) {
        Tensor samples = p.get("samples", Tensor.class, null);
        return samples == null ? l : l.samples(samples, p.get("weights", Tensor.class, null));
    }

    /** The {@code rules} parameter: {@link dev.kxai.backend.LrpRules}, or their text ({@code Conv=gamma:0.25,...}). */
    private static dev.kxai.backend.LrpRules lrpRules(Params p) {
        Object r = p.get("rules", null);
        if (r == null) {
            return dev.kxai.backend.LrpRules.captum();
        }
        if (r instanceof dev.kxai.backend.LrpRules rules) {
            return rules;
        }
        if (r instanceof String spec) {
            return dev.kxai.backend.LrpRules.parse(spec);
        }
        throw new InvalidInputException("rules: LrpRules or their text (KEY=RULE,...), got " + r);
    }

    /** The {@code baselines} parameter: one {@link Baseline} for every input, or a list of one per input. */
    private static Baseline[] baselines(Params p) {
        Object b = p.get("baselines", Baseline.zeros());
        if (b instanceof List<?> l) {
            return p.listOf("baselines", Baseline.class, l).toArray(Baseline[]::new);
        }
        if (!(b instanceof Baseline one)) {
            throw Params.wrongType("baselines", "Baseline or List<Baseline>", b);
        }
        return new Baseline[] {one};
    }

    private static Method layerIntegratedGradients(Model m, Params p) {
        String layer = p.string("layer", null);
        if (layer == null) {
            throw new InvalidInputException("layer_integrated_gradients needs a layer: the name of a value a node "
                    + "computes (--layer NAME)");
        }
        LayerIntegratedGradients lig = new LayerIntegratedGradients(m, layer)
                .multiplyByInputs(p.flag("multiply_by_inputs", true))
                .nSteps(p.integer("n_steps", 50))
                .method(Quadrature.Rule.parse(p.string("method", "gausslegendre")))
                .baselines(baselines(p))
                .internalBatchSize(p.optInt("internal_batch_size"))
                .returnConvergenceDelta(p.flag("return_convergence_delta", false))
                .progress(p.get("progress", Progress.class, Progress.NONE));
        return lig::attribute;
    }

    private Methods() {
    }

    private static void register(Entry e) {
        BY_NAME.put(e.name(), e);
        for (String a : e.aliases()) {
            BY_NAME.put(a, e);
        }
    }

    private static Method integratedGradients(Model m, Params p) {
        IntegratedGradients ig = new IntegratedGradients(m, p.flag("multiply_by_inputs", true))
                .nSteps(p.integer("n_steps", 50))
                .method(Quadrature.Rule.parse(p.string("method", "gausslegendre")))
                .baselines(baselines(p))
                .internalBatchSize(p.optInt("internal_batch_size"))
                .returnConvergenceDelta(p.flag("return_convergence_delta", false))
                .affineFirstLayer(p.flag("affine_first_layer", false))
                .reuseEndpoints(p.flag("reuse_endpoints", true))
                .progress(p.get("progress", Progress.class, Progress.NONE));
        double[] alphas = doubles(p, "alphas");
        if (alphas != null) {
            ig = ig.alphas(alphas, doubles(p, "alpha_weights"));
        } else if (p.get("alpha_weights", null) != null) {
            throw new InvalidInputException("alpha_weights: given without alphas");
        }
        return ig::attribute;
    }

    /** The entry for a name or alias, or null. */
    public static Entry find(String name) {
        dev.kxai.Args.notNull(name, "name");
        return BY_NAME.get(name.toLowerCase(Locale.ROOT));
    }

    /** Whether a method (name or alias) is known. */
    public static boolean known(String name) {
        return find(name) != null;
    }

    /** The entry for a name or alias; an unknown name is an error listing the known ones. */
    public static Entry entry(String name) {
        Entry e = find(name);
        if (e == null) {
            throw new InvalidInputException("unknown method '" + name + "'; known: " + describe());
        }
        return e;
    }

    /**
     * A method bound to a model and parameters; with {@code nt_type} (Captum's NoiseTunnel:
     * {@code nt_samples} 5, {@code stdevs} 1.0, {@code nt_samples_batch_size}, {@code seed}) it runs
     * wrapped in a {@link NoiseTunnel}. A parameter the method does not take is an {@link InvalidInputException}
     * naming it, the method and the parameters it takes ({@link #checkParameters}).
     */
    public static Method create(String name, Model model, Params params) {
        dev.kxai.Args.notNull(name, "name");
        dev.kxai.Args.notNull(model, "model");
        dev.kxai.Args.notNull(params, "params");
        checkParameters(name, params);
        Method inner = entry(name).factory().create(model, params);
        String nt = params.string("nt_type", null);
        if (nt == null) {
            return inner;
        }
        NoiseTunnel tunnel = new NoiseTunnel(model, inner, NoiseTunnel.Type.parse(nt),
                params.integer("nt_samples", 5), stdevs(params, 1.0), params.optInt("nt_samples_batch_size"),
                params.longInteger("seed", 0L));
        return tunnel::attribute;
    }

    /** Baseline distributions per attributed input: each {@link Baseline} as rows to draw from or average over. */
    private static List<Tensor> distributions(Model m, Inputs in, Baseline[] b) {
        List<String> names = m.attributed(in);
        List<Tensor> dists = new java.util.ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            Tensor x = in.get(names.get(i));
            dists.add(b[b.length == 1 ? 0 : Math.min(i, b.length - 1)].rows(java.util.Arrays.copyOfRange(x.shape(), 1,
                    x.rank())));
        }
        return dists;
    }

    /**
     * Captum's {@code attribute_to_layer_input} / {@code attribute_to_neuron_input}: kxai attributes
     * at a value (a node's output), which is Captum's default (False); True is refused, naming the way.
     */
    private static void outputSide(Params p, String name, String method) {
        if (p.flag(name, false)) {
            throw new InvalidInputException(method + ": " + name + "=True is not supported; kxai attributes at a value "
                    + "a node computes (Captum's default False): name the value the layer reads as --layer instead");
        }
    }

    /** Captum's {@code neuron_selector}: coordinates in the layer's example shape, or one flat index. */
    private static int neuron(Model m, Params p) {
        Object v = p.get("neuron", null);
        if (v == null) {
            throw new InvalidInputException("neuron methods need a neuron (--neuron I0,I1,...: its index in the layer's "
                    + "example shape)");
        }
        if (!(v instanceof int[] || v instanceof Integer || v instanceof Long)) {
            throw Params.wrongType("neuron", "int[] or Integer", v);
        }
        int[] c = v instanceof int[] a ? a : new int[] {p.integer("neuron", 0)};
        String layer = p.string("layer", null);
        LayerIntegratedGradients.checkLayer(m, layer, "neuron methods");
        return LayerMethods.flatNeuron(m, layer, c);
    }

    /** Activation maximisation's objective: layer + channel, layer + neuron, or (no layer) the target output. */
    private static ActivationMaximization.Objective objective(Model m, Params p) {
        String layer = p.string("layer", null);
        Integer channel = p.optInt("channel");
        if (layer == null) {
            if (channel != null || p.get("neuron", null) != null) {
                throw new InvalidInputException("activation_max: a channel or a neuron needs its layer (--layer NAME)");
            }
            return ActivationMaximization.Objective.target();
        }
        if (channel != null && p.get("neuron", null) != null) {
            throw new InvalidInputException("activation_max: give a channel or a neuron at '" + layer + "', not both");
        }
        if (channel != null) {
            LayerIntegratedGradients.checkLayer(m, layer, "activation_max");
            return ActivationMaximization.Objective.channel(layer, channel);
        }
        if (p.get("neuron", null) == null) {
            throw new InvalidInputException("activation_max at layer '" + layer + "' needs a channel (--channel C) or a "
                    + "neuron (--neuron I0,I1,...)");
        }
        return ActivationMaximization.Objective.neuron(layer, neuron(m, p));
    }

    private static ActivationMaximization.Settings activationSettings(Params p) {
        ActivationMaximization.Settings d = ActivationMaximization.Settings.defaults();
        return new ActivationMaximization.Settings(p.integer("iterations", d.iterations()), p.real("lr", d.lr()),
                ActivationMaximization.Schedule.parse(p.string("lr_schedule", "constant")), p.real("l2", d.l2()),
                p.real("tv", d.tv()), p.integer("jitter", d.jitter()), p.integer("blur_every", d.blurEvery()),
                p.real("blur_sigma", d.blurSigma()), ActivationMaximization.Init.parse(p.string("init", "noise")),
                p.real("noise_std", d.noiseStd()), p.longInteger("seed", 0L));
    }

    /** {@code stdevs}: one number for every input, or a list of one per attributed input. */
    private static List<Double> stdevs(Params p, double otherwise) {
        Object v = p.get("stdevs", otherwise);
        if (v instanceof List<?> l) {
            return p.listOf("stdevs", Number.class, l).stream().map(Number::doubleValue).toList();
        }
        return List.of(p.real("stdevs", otherwise));
    }

    /** "ig (integrated_gradients), saliency, input_x_gradient (ixg)". */
    public static String describe() {
        StringBuilder sb = new StringBuilder();
        for (Entry e : new java.util.LinkedHashSet<>(BY_NAME.values())) {
            sb.append(sb.length() == 0 ? "" : ", ").append(e.name());
            if (!e.aliases().isEmpty()) {
                sb.append(" (").append(String.join(", ", e.aliases())).append(")");
            }
        }
        return sb.toString();
    }
}
