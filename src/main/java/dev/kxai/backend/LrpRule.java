package dev.kxai.backend;

import dev.kxai.InvalidInputException;
import java.util.Locale;

/**
 * One of Captum 0.8.0's LRP propagation rules ({@code captum/attr/_utils/lrp_rules.py}), for one
 * layer. Every rule divides the relevance arriving at the layer's output by its pre-activation
 * z + sign(z)·ε (sign(0) = 1) and multiplies what the layer's gradient carries back by the
 * layer's input: R_in = a ⊙ W'ᵀ(R_out / (z' + sign(z')·ε)), z' = W'a + b'. They differ in W', b'
 * and ε:
 * <ul>
 *   <li>{@code EPSILON} ({@code EpsilonRule(epsilon=1e-9)}): W' = W, ε = {@link #epsilon};</li>
 *   <li>{@code GAMMA} ({@code GammaRule(gamma=0.25, set_bias_to_zero=False)}): W' = W + γ·max(W, 0), ε = 1e-9;</li>
 *   <li>{@code ALPHA1_BETA0} ({@code Alpha1_Beta0_Rule(set_bias_to_zero=False)}): W' = max(W, 0), ε = 1e-9;</li>
 *   <li>{@code IDENTITY} ({@code IdentityRule}): R_in = R_out (input and output of one shape).</li>
 * </ul>
 * As in Captum, gamma and alpha-beta change only a layer's weight (Conv, Gemm, MatMul, the scale of
 * BatchNormalization) and, with {@code zeroBias}, zero its bias; on a layer without weights
 * (pooling, an addition) they are the epsilon rule at 1e-9.
 *
 * @param epsilon the stabiliser ε (EPSILON's parameter; 1e-9 for the others, Captum's
 *                {@code PropagationRule.STABILITY_FACTOR})
 */
public record LrpRule(Kind kind, float epsilon, float gamma, boolean zeroBias) {
    /** The rule families. */
    public enum Kind {
        EPSILON, GAMMA, ALPHA1_BETA0, IDENTITY
    }

    /** Captum's {@code PropagationRule.STABILITY_FACTOR}. */
    public static final double DEFAULT_EPSILON = 1e-9;

    public LrpRule {
        if (!(epsilon >= 0f) || !Float.isFinite(epsilon)) {
            throw new InvalidInputException("LRP rule: epsilon must be a finite number >= 0, got " + epsilon);
        }
        if (!Float.isFinite(gamma)) {
            throw new InvalidInputException("LRP rule: gamma must be finite, got " + gamma);
        }
    }

    /** {@code EpsilonRule(epsilon)}. */
    public static LrpRule epsilon(double eps) {
        return new LrpRule(Kind.EPSILON, (float) eps, 0f, false);
    }

    /** {@code GammaRule(gamma, set_bias_to_zero)}. */
    public static LrpRule gamma(double gamma, boolean zeroBias) {
        return new LrpRule(Kind.GAMMA, (float) DEFAULT_EPSILON, (float) gamma, zeroBias);
    }

    /** {@code Alpha1_Beta0_Rule(set_bias_to_zero)}. */
    public static LrpRule alpha1Beta0(boolean zeroBias) {
        return new LrpRule(Kind.ALPHA1_BETA0, (float) DEFAULT_EPSILON, 0f, zeroBias);
    }

    /** {@code IdentityRule()}. */
    public static LrpRule identity() {
        return new LrpRule(Kind.IDENTITY, (float) DEFAULT_EPSILON, 0f, false);
    }

    /** Whether the rule changes a layer's weight or bias (gamma, alpha-beta). */
    public boolean modifiesWeights() {
        return kind == Kind.GAMMA || kind == Kind.ALPHA1_BETA0;
    }

    /** W' of one weight (Captum's order of float operations: {@code w + gamma * w.clamp(min=0)}). */
    public float weight(float w) {
        return switch (kind) {
            case GAMMA -> w + gamma * Math.max(w, 0f);
            case ALPHA1_BETA0 -> Math.max(w, 0f);
            default -> w;
        };
    }

    /**
     * A rule written as {@code epsilon[:EPS]}, {@code gamma[:GAMMA][:zero_bias]},
     * {@code alpha1_beta0[:zero_bias]} or {@code identity} (defaults: Captum's, ε 1e-9, γ 0.25).
     */
    public static LrpRule parse(String text) {
        String[] p = text.trim().toLowerCase(Locale.ROOT).split(":", -1);
        String kind = p[0];
        try {
            switch (kind) {
                case "epsilon", "eps" -> {
                    if (p.length > 2) {
                        break;
                    }
                    return epsilon(p.length > 1 ? Double.parseDouble(p[1]) : DEFAULT_EPSILON);
                }
                case "gamma" -> {
                    boolean zero = p.length > 1 && p[p.length - 1].equals("zero_bias");
                    int numbers = p.length - 1 - (zero ? 1 : 0);
                    if (numbers > 1) {
                        break;
                    }
                    return gamma(numbers == 1 ? Double.parseDouble(p[1]) : 0.25, zero);
                }
                case "alpha1_beta0", "alpha_beta", "alpha1beta0" -> {
                    if (p.length > 2 || (p.length == 2 && !p[1].equals("zero_bias"))) {
                        break;
                    }
                    return alpha1Beta0(p.length == 2);
                }
                case "identity" -> {
                    if (p.length > 1) {
                        break;
                    }
                    return identity();
                }
                default -> {
                }
            }
        } catch (NumberFormatException e) {
            throw new InvalidInputException("LRP rule '" + text + "': " + e.getMessage() + " is not a number");
        }
        throw new InvalidInputException("LRP rule '" + text + "': expected epsilon[:EPS], gamma[:GAMMA][:zero_bias], "
                + "alpha1_beta0[:zero_bias] or identity");
    }

    /** The form {@link #parse} reads. */
    @Override
    public String toString() {
        String zb = zeroBias ? ":zero_bias" : "";
        return switch (kind) {
            case EPSILON -> "epsilon:" + epsilon;
            case GAMMA -> "gamma:" + gamma + zb;
            case ALPHA1_BETA0 -> "alpha1_beta0" + zb;
            case IDENTITY -> "identity";
        };
    }
}
