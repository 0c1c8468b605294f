package dev.kxai.testing;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;

/**
 * Div and Pow cases: one operand is the model input (batch first), the other a constant, with
 * broadcasting both ways, on domains where the functions are smooth (denominators and Pow's bases
 * away from 0). Run as the CPU against finite differences ({@code OperatorGradientTest}, both
 * operands), CUDA against the CPU ({@code KernelParityTest}) and CUDA against finite differences
 * ({@code BackwardFiniteDifferenceTest}).
 *
 * @param inputIsB the input is the right operand (x below a constant numerator, a constant base)
 */
public record DivPowCases(String label, Op op, int[] example, double inLo, double inHi, int[] constant, double cLo,
        double cHi, boolean inputIsB) {

    public static final List<DivPowCases> ALL = List.of(
            new DivPowCases("Div x / row", new Op.Div(), new int[] {3, 5}, -2, 2, new int[] {5}, 0.5, 2, false),
            new DivPowCases("Div x / scalar", new Op.Div(), new int[] {7}, -2, 2, new int[] {}, -2, -0.5, false),
            new DivPowCases("Div column / x", new Op.Div(), new int[] {3, 5}, 0.5, 2, new int[] {3, 1}, -2, 2, true),
            new DivPowCases("Pow x ^ 2 (LayerNorm's variance)", new Op.Pow(), new int[] {3, 5}, -2, 2, new int[] {},
                    2, 2, false),
            new DivPowCases("Pow x ^ row", new Op.Pow(), new int[] {3, 5}, 0.5, 2, new int[] {5}, -2, 3, false),
            new DivPowCases("Pow row ^ x", new Op.Pow(), new int[] {3, 5}, -1, 1, new int[] {5}, 0.5, 2, true));

    public int[] batchShape(int batch) {
        int[] s = new int[example.length + 1];
        s[0] = batch;
        System.arraycopy(example, 0, s, 1, example.length);
        return s;
    }

    public Tensor input(Random r, int batch) {
        return uniform(r, inLo, inHi, batchShape(batch));
    }

    public Tensor constantValue(Random r) {
        return uniform(r, cLo, cHi, constant);
    }

    private static Tensor uniform(Random r, double lo, double hi, int[] shape) {
        Tensor t = Tensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return t;
    }
}
