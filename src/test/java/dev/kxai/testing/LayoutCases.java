package dev.kxai.testing;

import dev.kxai.graph.Op;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Random;

/**
 * Transpose, Squeeze, Unsqueeze, the reductions (ReduceMean, ReduceSum), Expand and Select
 * (Gather with constant indices, Slice): one example's shape each, run as the CPU against finite
 * differences ({@code OperatorGradientTest}), CUDA against the CPU ({@code KernelParityTest}) and
 * CUDA against finite differences ({@code BackwardFiniteDifferenceTest}).
 *
 * @param constant the op's second input (Expand's target shape), or null
 * @param then     a second op after it (a transpose that moves the batch axis is followed by the
 *                 Gather that brings it back first, as in a ViT), or null
 */
public record LayoutCases(String label, Op op, int[] example, Tensor constant, Op then) {
    public LayoutCases(String label, Op op, int[] example) {
        this(label, op, example, null, null);
    }

    private static Tensor shape(float... dims) {
        return new Tensor(new int[] {dims.length}, dims);
    }

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
                    new int[] {2, 3, 4}),
            new LayoutCases("Resize nearest x2 (asymmetric, floor: F.interpolate's nearest)",
                    new Op.Resize(false, "asymmetric", "floor", new float[] {1, 1, 2, 2}), new int[] {2, 3, 4}),
            new LayoutCases("Resize linear H x1.5, W x0.5 (half_pixel)",
                    new Op.Resize(true, "half_pixel", "round_prefer_floor", new float[] {1, 1, 1.5f, 0.5f}),
                    new int[] {2, 4, 6}),
            new LayoutCases("Resize linear x2 (align_corners), nearest rounding unused",
                    new Op.Resize(true, "align_corners", "round_prefer_floor", new float[] {1, 1, 2, 2}), new int[] {1, 3, 3}),
            new LayoutCases("Resize nearest x3 (half_pixel, round_prefer_ceil)",
                    new Op.Resize(false, "half_pixel", "round_prefer_ceil", new float[] {1, 1, 3, 3}), new int[] {1, 2, 3}),
            new LayoutCases("ReduceMax last axis, keepdims", new Op.Reduce(Op.Reduce.Kind.MAX, new int[] {-1}, true),
                    new int[] {3, 5}),
            new LayoutCases("ReduceMin axes 1, 3", new Op.Reduce(Op.Reduce.Kind.MIN, new int[] {1, 3}, false),
                    new int[] {2, 3, 4}),
            new LayoutCases("Transpose [2, 0, 3, 1, 4] moving the batch (ViT's qkv split), then Gather k",
                    new Op.Transpose(new int[] {2, 0, 3, 1, 4}), new int[] {5, 3, 2, 4}, null,
                    new Op.Select(0, new int[] {1}, new int[0])),
            new LayoutCases("Gather indices [[0, 2], [2, 1]] on axis 2", new Op.Select(2, new int[] {0, 2, 2, 1},
                    new int[] {2, 2}), new int[] {3, 4, 5}),
            new LayoutCases("Slice step -2 on the last axis", new Op.Select(-1, new int[] {4, 2, 0}, new int[] {3}),
                    new int[] {3, 5}),
            new LayoutCases("Expand [B, 1, 5] to [1, 4, 5]", new Op.Expand(), new int[] {1, 5}, shape(1, 4, 5), null),
            new LayoutCases("Expand [B, 1, 1, 6] to [1, 2, 3, 1]", new Op.Expand(), new int[] {1, 1, 6},
                    shape(1, 2, 3, 1), null),
            new LayoutCases("Gather ids [[0, 4], [-1, 2], [2, 2]] on axis 1 (an embedding's lookup, ids repeated)",
                    new Op.Gather(1), new int[] {5, 3}, new Tensor(new int[] {3, 2}, new float[] {0, 4, -1, 2, 2, 2}),
                    null));

    public Tensor input(Random r, int batch) {
        int[] s = new int[example.length + 1];
        s[0] = batch;
        System.arraycopy(example, 0, s, 1, example.length);
        Tensor t = Tensor.zeros(s);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) (r.nextDouble() * 2 - 1);
        }
        if (op instanceof Op.Reduce red && (red.kind() == Op.Reduce.Kind.MAX || red.kind() == Op.Reduce.Kind.MIN)) {
            // distinct values 0.37 apart, shuffled: no maximum within a finite-difference step of another
            java.util.List<Integer> levels = new java.util.ArrayList<>();
            for (int i = 0; i < t.size(); i++) {
                levels.add(i);
            }
            java.util.Collections.shuffle(levels, r);
            for (int i = 0; i < t.size(); i++) {
                t.data()[i] = 0.37f * (levels.get(i) - t.size() / 2f);
            }
        }
        return t;
    }
}
