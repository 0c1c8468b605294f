package dev.kxai.testing;

import dev.kxai.graph.Op;
import java.util.List;

/**
 * The Pad cases every mode of the shape family's tests runs: the CPU against finite differences
 * ({@code OperatorGradientTest}), CUDA against the CPU on the emulator ({@code KernelParityTest})
 * and CUDA against finite differences ({@code BackwardFiniteDifferenceTest}). One example's
 * shape each (the batch axis is never padded); every mode, cropping pads, the axes input.
 */
public final class PadCases {
    private PadCases() {
    }

    public record Case(String label, Op.Pad op, int[] example) {
        /** The shape of a batch of {@code batch} examples. */
        public int[] batchShape(int batch) {
            int[] shape = new int[example.length + 1];
            shape[0] = batch;
            System.arraycopy(example, 0, shape, 1, example.length);
            return shape;
        }
    }

    public static final List<Case> ALL = List.of(
            new Case("constant 0.5 on H, W", new Op.Pad("constant", new int[] {0, 0, 1, 2, 0, 0, 2, 1}, 0.5f, null),
                    new int[] {3, 5, 7}),
            new Case("reflect on H, W", new Op.Pad("reflect", new int[] {0, 0, 2, 1, 0, 0, 1, 3}, 0f, null),
                    new int[] {3, 5, 7}),
            new Case("edge, wide pads", new Op.Pad("edge", new int[] {0, 1, 3, 0, 0, 0, 0, 4}, 0f, null),
                    new int[] {2, 4, 5}),
            new Case("wrap, more than once round", new Op.Pad("wrap", new int[] {0, 0, 2, 6, 0, 0, 5, 1}, 0f, null),
                    new int[] {2, 4, 5}),
            new Case("constant with cropping (negative) pads", new Op.Pad("constant",
                    new int[] {0, 0, -1, 1, 0, 0, 2, -2}, 0f, null), new int[] {3, 5, 7}),
            new Case("reflect over axes [-2, -1]", new Op.Pad("reflect", new int[] {1, 2, 2, 1}, 0f, new int[] {-2, -1}),
                    new int[] {2, 5, 7}),
            new Case("features of a tabular row", new Op.Pad("constant", new int[] {0, 2, 0, 3}, -1f, null),
                    new int[] {8}));
}
