package dev.kxai.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link ErrorFunction#erf} against erf evaluated to 50 digits with BigDecimal (within one double
 * ulp, and the same float after the unary operators' single rounding), and against the Commons Math
 * erf it replaced (its straightforward twin: same float for every input the ViT GELU sees).
 */
class ErrorFunctionTest {
    private static final MathContext MC = new MathContext(50);
    private static final BigDecimal TWO_OVER_SQRT_PI = BigDecimal.valueOf(2).divide(
            new BigDecimal("3.14159265358979323846264338327950288419716939937510582097494").sqrt(MC), MC);

    /**
     * erf(x) = 2/√π · e^{−x²} · Σ_n 2ⁿ x^{2n+1} / (2n+1)!!, a series of positive terms (no
     * cancellation), e^{−x²} as 1 / Σ x^{2n}/n!.
     */
    static BigDecimal erfExact(double xd) {
        BigDecimal x = new BigDecimal(Math.abs(xd));
        BigDecimal x2 = x.multiply(x, MC);
        BigDecimal tol = new BigDecimal("1e-60");
        BigDecimal term = x;
        BigDecimal sum = x;
        for (int n = 1; term.compareTo(tol.multiply(sum)) > 0; n++) {
            term = term.multiply(x2, MC).multiply(BigDecimal.valueOf(2), MC).divide(BigDecimal.valueOf(2L * n + 1), MC);
            sum = sum.add(term, MC);
        }
        BigDecimal eTerm = BigDecimal.ONE;
        BigDecimal exp = BigDecimal.ONE;
        for (int n = 1; eTerm.compareTo(tol.multiply(exp)) > 0; n++) {
            eTerm = eTerm.multiply(x2, MC).divide(BigDecimal.valueOf(n), MC);
            exp = exp.add(eTerm, MC);
        }
        BigDecimal r = TWO_OVER_SQRT_PI.multiply(sum, MC).divide(exp, MC);
        return xd < 0 ? r.negate() : r;
    }

    /** Whether the exact value lies within a few double ulps of the midpoint between two floats. */
    private static boolean nearFloatBoundary(BigDecimal exact) {
        float f = exact.floatValue();
        float other = exact.compareTo(new BigDecimal(f)) > 0 ? Math.nextUp(f) : Math.nextDown(f);
        BigDecimal mid = new BigDecimal(f).add(new BigDecimal(other)).divide(BigDecimal.valueOf(2), MC);
        return exact.subtract(mid).abs().compareTo(new BigDecimal(4 * Math.ulp(exact.doubleValue()))) <= 0;
    }

    @Test
    void withinOneUlpOfTheExactValueAndTheSameFloat() {
        Random r = new Random(7);
        int n = 0;
        for (int i = 0; i < 3000; i++) {
            double x = switch (i % 4) {
                case 0 -> r.nextGaussian(); // GELU's inputs divided by √2
                case 1 -> (r.nextDouble() * 2 - 1) * 6.5;
                case 2 -> (r.nextDouble() * 2 - 1) * 1.5e-3;
                default -> (float) (r.nextGaussian() * 3); // float inputs, as the operator has
            };
            check(x);
            n++;
        }
        // the boundaries between the approximation intervals and the edges
        for (double x : new double[] {0x1p-28, 0x1p-27, 1e-300, 0.84375, Math.nextDown(0.84375), 1.25,
            Math.nextDown(1.25), 1 / 0.35, Math.nextDown(1 / 0.35), Math.nextUp(1 / 0.35), 5.999, 0.5, 1, 2, 3}) {
            check(x);
            check(-x);
            n += 2;
        }
        assertTrue(n > 3000);
        assertEquals(0.0, ErrorFunction.erf(0.0));
        assertEquals(1.0, ErrorFunction.erf(6.0));
        assertEquals(-1.0, ErrorFunction.erf(-40.0));
        assertEquals(1.0, ErrorFunction.erf(Double.POSITIVE_INFINITY));
        assertTrue(Double.isNaN(ErrorFunction.erf(Double.NaN)));
    }

    private static void check(double x) {
        BigDecimal exact = erfExact(x);
        double got = ErrorFunction.erf(x);
        double err = new BigDecimal(got).subtract(exact).abs().doubleValue();
        assertTrue(err <= Math.ulp(exact.doubleValue()), "erf(" + x + ") = " + got + ", exact " + exact + ": error " + err);
        if (!nearFloatBoundary(exact)) {
            assertEquals(exact.floatValue(), (float) got, "float erf(" + x + ")");
        }
    }

    @Test
    void sameFloatsAsCommonsMathOnFloatInputs() {
        Random r = new Random(11);
        int differ = 0;
        int n = 200_000;
        for (int i = 0; i < n; i++) {
            float x = (float) (r.nextGaussian() * (i % 2 == 0 ? 1 : 3));
            float ours = (float) ErrorFunction.erf(x);
            float theirs = (float) org.apache.commons.math3.special.Erf.erf(x);
            if (ours != theirs) {
                differ++;
                // the two doubles straddle a float boundary: then the exact value decides, and ours has it
                assertTrue(Math.abs(ours - theirs) <= Math.ulp(ours), x + ": " + ours + " vs " + theirs);
                assertEquals(erfExact(x).floatValue(), ours, "float erf(" + x + ") where Commons Math differs");
            }
        }
        assertTrue(differ <= n / 10_000, differ + " of " + n + " floats differ from Commons Math's");
    }

    @Test
    void theErfOperatorAndGeluUseIt() {
        float[] v = {-3f, -0.7f, 0f, 0.3f, 1.1f, 2.5f, 7f};
        Tensor y = ElementwiseOps.unary(new Op.Unary(Op.Unary.Kind.ERF, 0f, 0f), new Tensor(new int[] {v.length}, v));
        Tensor gelu = ElementwiseOps.unary(new Op.Unary(Op.Unary.Kind.GELU, 0f, 0f), new Tensor(new int[] {v.length}, v));
        for (int i = 0; i < v.length; i++) {
            assertEquals((float) ErrorFunction.erf(v[i]), y.data()[i]);
            assertEquals((float) (0.5 * v[i] * (1.0 + ErrorFunction.erf(v[i] / Math.sqrt(2.0)))), gelu.data()[i]);
        }
    }
}
