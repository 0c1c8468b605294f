package dev.kxai.testing;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;

/**
 * Transpose, Squeeze, Unsqueeze and the reductions (ReduceMean, ReduceSum): one example's shape
 * each, run as the CPU against finite differences ({@code OperatorGradientTest}), CUDA against the
 * CPU ({@code KernelParityTest}) and CUDA against finite differences
 * ({@code BackwardFiniteDifferenceTest}).
 */
public record LayoutCases(String label, Op op, int[] example) {
    public static final List<LayoutCases> ALL = List.of(
            new LayoutCases("Transpose [0, 2, 1]", new Op.Transpose(new int[] {0, 2, 1}), new int[] {4, 5}),
            new LayoutCases("Transpose NHWC to NCHW", new Op.Transpose(new int[] {0, 3, 1, 2}), new int[] {3, 4, 5}),
            new LayoutCases("Transpose NCHW to NHWC", new Op.Transpose(new int[] {0, 2, 3, 1}), new int[] {3, 4, 5}),
            new LayoutCases("Squeeze axis 2", new Op.Squeeze(new int[] {2}), new int[] {3, 1, 5}),
            new LayoutCases("Unsqueeze axes 1, 3", new Op.Unsqueeze(new int[] {1, 3}), new int[] {3, 5}),
            new LayoutCases("ReduceMean last axis, keepdims (LayerNorm)",
                    new Op.Reduce(Op.Reduce.Kind.MEAN, new int[] {-1}, true), new int[] {3, 5}),
            new LayoutCases("ReduceSum axis 1", new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {1}, false),
                    new int[] {3, 5}),
            new LayoutCases("ReduceMean H, W, keepdims", new Op.Reduce(Op.Reduce.Kind.MEAN, new int[] {2, 3}, true),
                    new int[] {3, 4, 5}),
            new LayoutCases("ReduceSum axes 1, 3", new Op.Reduce(Op.Reduce.Kind.SUM, new int[] {1, 3}, false),
                    new int[] {2, 3, 4}));

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
}
