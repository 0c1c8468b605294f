package dev.kxai.testing;

import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;

/**
 * Where(condition, x, y) with a constant condition and the model input as x or as y (the other
 * operand a constant, broadcast): attention masking as GPT-2 writes it. Run as the CPU against
 * finite differences, CUDA against the CPU and CUDA against finite differences.
 *
 * @param inputIsX whether the model input is x (else it is y)
 */
public record WhereCases(String label, int[] example, Tensor condition, Tensor other, boolean inputIsX) {
    public static final List<WhereCases> ALL = List.of(
            new WhereCases("Where(causal-like mask [3, 4], x, -1e9)", new int[] {3, 4},
                    new Tensor(new int[] {3, 4}, new float[] {1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0}),
                    Tensor.scalar(-1e9f), true),
            new WhereCases("Where(mask [3, 1], constant row [4], y)", new int[] {3, 4},
                    new Tensor(new int[] {3, 1}, new float[] {0, 1, 1}),
                    new Tensor(new int[] {4}, new float[] {0.5f, -2, 3, 0}), false),
            new WhereCases("Where(mask [4], x [B, 1, 4] broadcast to the condition's rows, 0)", new int[] {1, 4},
                    new Tensor(new int[] {2, 4}, new float[] {1, 1, 0, 1, 0, 1, 1, 0}), Tensor.scalar(0f), true));

    public Tensor input(Random r, int batch) {
        int[] s = new int[example.length + 1];
        s[0] = batch;
        System.arraycopy(example, 0, s, 1, example.length);
        Tensor t = Tensor.zeros(s);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return t;
    }

    /** The three operands in Where's order, the input where it goes. */
    public Tensor[] operands(Tensor x) {
        return inputIsX ? new Tensor[] {condition, x, other} : new Tensor[] {condition, other, x};
    }
}
