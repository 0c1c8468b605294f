package dev.kxai.testing;

import dev.kxai.graph.Op;
import dev.kxai.graph.Op.Unary.Kind;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;

/**
 * The unary family's cases ({@link Op.Unary}), run as the CPU against finite differences
 * ({@code OperatorGradientTest}), CUDA against the CPU ({@code KernelParityTest}) and CUDA against
 * finite differences ({@code BackwardFiniteDifferenceTest}). Each draws its inputs from a range
 * where the function is defined and at least {@link #MARGIN} away from its kinks, so that a
 * finite-difference step never crosses one.
 */
public final class UnaryCases {
    /** Distance kept from every kink; the finite-difference steps are smaller. */
    public static final double MARGIN = 0.05;

    private UnaryCases() {
    }

    public record Case(String label, Op.Unary op, double lo, double hi, double... kinks) {
        /** Values uniform in [lo, hi], none within {@link #MARGIN} of a kink. */
        public Tensor input(Random r, int... shape) {
            Tensor t = Tensor.zeros(shape);
            for (int i = 0; i < t.size(); i++) {
                double v;
                do {
                    v = lo + (hi - lo) * r.nextDouble();
                } while (nearKink(v));
                t.data()[i] = (float) v;
            }
            return t;
        }

        /**
         * Steps only (Floor, Ceil, Round, Sign, Trunc): the gradient is 0 and so are the finite
         * differences away from the steps, so a finite-difference check proves nothing there;
         * forward and backward parity do (KernelParityTest).
         */
        public boolean piecewiseConstant() {
            return switch (op.kind()) {
                case TRUNC, FLOOR, CEIL, ROUND, SIGN -> true;
                default -> false;
            };
        }

        private boolean nearKink(double v) {
            for (double k : kinks) {
                if (Math.abs(v - k) < MARGIN) {
                    return true;
                }
            }
            return false;
        }
    }

    public static final List<Case> ALL = List.of(
            new Case("Clip(-1, 2)", new Op.Unary(Kind.CLIP, -1f, 2f), -3, 4, -1, 2),
            new Case("Clip(0, 6) (ReLU6)", new Op.Unary(Kind.CLIP, 0f, 6f), -2, 8, 0, 6),
            new Case("Clip(max 0.5)", new Op.Unary(Kind.CLIP, Float.NEGATIVE_INFINITY, 0.5f), -2, 2, 0.5),
            new Case("HardSigmoid(0.2, 0.5)", new Op.Unary(Kind.HARD_SIGMOID, 0.2f, 0.5f), -4, 4, -2.5, 2.5),
            new Case("HardSigmoid(1/6, 0.5)", new Op.Unary(Kind.HARD_SIGMOID, 1f / 6, 0.5f), -5, 5, -3, 3),
            new Case("HardSwish", new Op.Unary(Kind.HARD_SWISH), -5, 5, -3, 3),
            new Case("Sqrt", new Op.Unary(Kind.SQRT), 0.3, 4),
            new Case("Exp", new Op.Unary(Kind.EXP), -3, 2),
            new Case("Log", new Op.Unary(Kind.LOG), 0.3, 4),
            new Case("Erf", new Op.Unary(Kind.ERF), -3, 3),
            new Case("Softplus", new Op.Unary(Kind.SOFTPLUS), -6, 6),
            new Case("Elu(1.3)", new Op.Unary(Kind.ELU, 1.3f, 0f), -3, 3, 0),
            new Case("Selu", new Op.Unary(Kind.SELU, 1.67326319217681884765625f, 1.05070102214813232421875f), -3, 3, 0),
            new Case("Gelu", new Op.Unary(Kind.GELU), -4, 4),
            new Case("Gelu(tanh)", new Op.Unary(Kind.GELU_TANH), -4, 4),
            new Case("Neg", new Op.Unary(Kind.NEG), -3, 3),
            new Case("Abs", new Op.Unary(Kind.ABS), -3, 3, 0),
            // piecewise constant: the value steps at each integer (Round: at each half), the gradient is 0
            new Case("Trunc (Cast to int)", new Op.Unary(Kind.TRUNC), -3, 3, -3, -2, -1, 0, 1, 2, 3),
            new Case("Floor", new Op.Unary(Kind.FLOOR), -3, 3, -3, -2, -1, 0, 1, 2, 3),
            new Case("Ceil", new Op.Unary(Kind.CEIL), -3, 3, -3, -2, -1, 0, 1, 2, 3),
            new Case("Round", new Op.Unary(Kind.ROUND), -3, 3, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5),
            new Case("Sign", new Op.Unary(Kind.SIGN), -3, 3, 0),
            new Case("Reciprocal", new Op.Unary(Kind.RECIPROCAL), 0.5, 4),
            new Case("Reciprocal (negative)", new Op.Unary(Kind.RECIPROCAL), -4, -0.5),
            new Case("Sin", new Op.Unary(Kind.SIN), -7, 7),
            new Case("Cos", new Op.Unary(Kind.COS), -7, 7));
}
