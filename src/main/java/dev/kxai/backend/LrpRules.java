package dev.kxai.backend;

import dev.kxai.InvalidInputException;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which {@link LrpRule} each layer of a model takes: a composite in Zennit's sense (rules by layer
 * type, overridden by name), starting from Captum 0.8.0's defaults ({@code EpsilonRule()}, ε 1e-9,
 * on every Conv, Gemm, MatMul, pooling, BatchNormalization and Add layer; lrp.py's
 * {@code SUPPORTED_LAYERS_WITH_RULES}). A node's rule is, first match wins: the rule given for its
 * node name (or its output value's name), the rule given for its ONNX op type, the default.
 * Immutable.
 */
public final class LrpRules {
    /** The ONNX op types that are LRP layers (a rule applies to them); other nodes pass relevance on or are refused. */
    public static final Set<String> LAYER_OPS = Set.of("Conv", "Gemm", "MatMul", "MaxPool", "AveragePool",
            "GlobalAveragePool", "BatchNormalization", "Add");

    private final LrpRule fallback;
    private final Map<String, LrpRule> byOp;
    private final Map<String, LrpRule> byName;

    private LrpRules(LrpRule fallback, Map<String, LrpRule> byOp, Map<String, LrpRule> byName) {
        this.fallback = fallback;
        this.byOp = Map.copyOf(byOp);
        this.byName = Map.copyOf(byName);
    }

    /** Captum's defaults: the epsilon rule at 1e-9 on every layer. */
    public static LrpRules captum() {
        return new LrpRules(LrpRule.epsilon(LrpRule.DEFAULT_EPSILON), Map.of(), Map.of());
    }

    /**
     * A named composite: {@code captum} (the defaults), {@code epsilon_plus} (Zennit's EpsilonPlus
     * with Captum's rules: alpha1_beta0 on Conv, epsilon elsewhere), {@code epsilon_gamma} (gamma 0.25
     * on Conv, epsilon elsewhere; Zennit's EpsilonGammaBox without the box rule, which Captum lacks).
     */
    public static LrpRules preset(String name) {
        return switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "captum" -> captum();
            case "epsilon_plus" -> captum().forOpType("Conv", LrpRule.alpha1Beta0(false));
            case "epsilon_gamma" -> captum().forOpType("Conv", LrpRule.gamma(0.25, false));
            default -> throw new InvalidInputException("LRP composite '" + name + "': known: captum, epsilon_plus, "
                    + "epsilon_gamma");
        };
    }

    /** The rule for every layer not named or typed otherwise. */
    public LrpRules byDefault(LrpRule rule) {
        return new LrpRules(rule, byOp, byName);
    }

    /** The rule for every node of an ONNX op type (one of {@link #LAYER_OPS}). */
    public LrpRules forOpType(String opType, LrpRule rule) {
        if (!LAYER_OPS.contains(opType)) {
            throw new InvalidInputException("LRP rule for op type '" + opType + "': rules apply to " + new TreeSet<>(LAYER_OPS)
                    + " (Relu, Tanh, Dropout, Identity pass relevance on unchanged; Flatten, Reshape, Transpose, "
                    + "Squeeze, Unsqueeze, Concat move it)");
        }
        Map<String, LrpRule> m = new LinkedHashMap<>(byOp);
        m.put(opType, rule);
        return new LrpRules(fallback, m, byName);
    }

    /** The rule for one node, by its node name or its output value's name (checked against the model by {@link #check}). */
    public LrpRules forNode(String name, LrpRule rule) {
        Map<String, LrpRule> m = new LinkedHashMap<>(byName);
        m.put(name, rule);
        return new LrpRules(fallback, byOp, m);
    }

    /**
     * Overrides written as the CLI takes them: {@code KEY=RULE,KEY=RULE,...} where KEY is an op type of
     * {@link #LAYER_OPS} or a node (or output value) name and RULE as {@link LrpRule#parse}; a bare
     * word is a composite ({@link #preset}) that the rest then overrides, e.g.
     * {@code Conv=gamma:0.25,/6/Gemm=epsilon:1e-6}.
     */
    public LrpRules with(String spec) {
        LrpRules r = this;
        for (String part : spec.split(",")) {
            String item = part.trim();
            if (item.isEmpty()) {
                continue;
            }
            int eq = item.lastIndexOf('=');
            if (eq < 0) {
                r = preset(item);
                continue;
            }
            String key = item.substring(0, eq).trim();
            LrpRule rule;
            try {
                rule = LrpRule.parse(item.substring(eq + 1));
            } catch (InvalidInputException e) {
                throw new InvalidInputException("LRP rule for '" + key + "': " + e.getMessage());
            }
            if (key.isEmpty()) {
                throw new InvalidInputException("LRP rule '" + item + "': no op type or node name before '='");
            }
            r = LAYER_OPS.contains(key) ? r.forOpType(key, rule) : r.forNode(key, rule);
        }
        return r;
    }

    /** Captum's defaults with {@link #with} applied. */
    public static LrpRules parse(String spec) {
        return captum().with(spec);
    }

    /** The rule given for a node by its name or its output's name, or null. */
    public LrpRule named(Node n) {
        LrpRule r = byName.get(n.name());
        return r != null ? r : byName.get(n.output());
    }

    /** The rule of one layer node. */
    public LrpRule ruleFor(Node n) {
        LrpRule r = named(n);
        if (r == null) {
            r = byOp.get(n.opType());
        }
        return r != null ? r : fallback;
    }

    /** Refuses a name that is no node's (nor node output's) of the graph, naming it. */
    public void check(Graph g) {
        for (String name : byName.keySet()) {
            boolean found = g.nodes().stream().anyMatch(n -> n.name().equals(name) || n.output().equals(name));
            if (!found) {
                throw new InvalidInputException("LRP rule for '" + name + "': no node or value of that name in "
                        + g.source() + ", and it is not one of the op types " + new TreeSet<>(LAYER_OPS)
                        + " ('kxai info --model' lists the nodes)");
            }
        }
    }

    @Override
    public String toString() {
        return "default " + fallback + (byOp.isEmpty() ? "" : ", by op " + byOp) + (byName.isEmpty() ? "" : ", by name " + byName);
    }
}
