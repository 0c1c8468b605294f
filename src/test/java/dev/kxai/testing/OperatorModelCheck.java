package dev.kxai.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.Model;
import dev.kxai.attr.Saliency;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;

/**
 * The operator cases of src/test/resources/models/operators (written by its make.py): each model
 * against PyTorch's logits and autograd gradient ({@link ExportedModelCheck}), and the gradient kxai
 * computes against central finite differences of the model's own forward pass, on the backend it
 * was loaded on. The finite differences sum the target logits of all rows, step one input element
 * at a time in float (the step actually taken), so rows the step does not touch cancel exactly; at most
 * 96 elements of the larger inputs ({@link #sample}).
 */
public final class OperatorModelCheck {
    /** Every case folder, one operator family each. */
    public static final List<String> CASES = List.of("prelu", "prelu_slope_shapes", "norms", "instancenorm_3d",
            "groupnorm_opset18", "groupnorm_opset21", "head_opset12", "head_opset13", "logsoftmax_flatten",
            "logsoftmax_axis1", "globalmaxpool", "sum_mean", "mish", "softsign", "celu", "thresholdedrelu",
            "reductions_opset13", "reductions_opset18", "logic", "convtranspose", "oned", "pixelshuffle", "depth_space",
            "tile", "lrn", "convtranspose_autopad", "einsum_attention", "folded_constants", "batchnorm_opset15", "fourier", "cumsum_lpnorm", "volume", "rmsnorm_opset23", "shrink_exported", "shrink",
            "globallppool", "gather_topk", "gather_nd", "topk_hardmax", "hardmax_opset11", "zero_norm", "volume_grouped", "mod");

    private OperatorModelCheck() {
    }

    public static void check(Model m, Path dir, String device) {
        ExportedModelCheck.check(m, dir, device);
        Tensor x = NpyIO.read(dir.resolve("input.npy"));
        int[] targets = m.predict(x);
        Tensor g = new Saliency(m).attribute(x, false, targets).attributions();
        int[] at = sample(g.data(), 96);
        // 1e-3 keeps kinks (ReLU, max pooling, |x|) out of the steps; a case with large sums inside and no
        // kink near its values takes 1e-2, so float rounding of the sums does not dominate the differences
        double h = dir.getFileName().toString().equals("globallppool") ? 1e-2 : 1e-3;
        double[] fd = finiteDifferences(m, x, targets, at, h);
        double[] analytic = new double[at.length];
        for (int i = 0; i < at.length; i++) {
            analytic[i] = g.data()[at[i]];
        }
        GradientCheck.Report r = GradientCheck.compare(analytic, fd, 5e-3, 2e-3);
        assertTrue(r.ok(), dir.getFileName() + " on " + device + ", gradient vs finite differences: " + r);
    }

    /**
     * At most {@code max} input elements (all of a small input): half the ones with the largest
     * gradient (so the per-element slack, a fraction of the largest difference, is the full input's),
     * half evenly spread over the rest.
     */
    static int[] sample(float[] gradient, int max) {
        int size = gradient.length;
        if (size <= max) {
            return java.util.stream.IntStream.range(0, size).toArray();
        }
        java.util.TreeSet<Integer> at = new java.util.TreeSet<>();
        java.util.stream.IntStream.range(0, size).boxed()
                .sorted((i, j) -> Float.compare(Math.abs(gradient[j]), Math.abs(gradient[i])))
                .limit(max / 2).forEach(at::add);
        for (int i = 0; at.size() < max; i++) {
            at.add((int) ((long) i * size / max) % size);
            if (i > 4 * max) {
                break;
            }
        }
        return at.stream().mapToInt(Integer::intValue).toArray();
    }

    /** ∂/∂x[at] of Σ_rows logits[row, target[row]], by central differences of float forwards. */
    static double[] finiteDifferences(Model m, Tensor x, int[] targets, int[] at, double h) {
        int rows = x.shape()[0];
        int per = x.size() / rows;
        double[] fd = new double[at.length];
        for (int i = 0; i < at.length; i++) {
            int j = at[i];
            float[] plus = x.data().clone();
            float[] minus = x.data().clone();
            plus[j] = (float) (x.data()[j] + h);
            minus[j] = (float) (x.data()[j] - h);
            int row = j / per;
            float[] yp = m.forward(new Tensor(x.shape(), plus)).data();
            float[] ym = m.forward(new Tensor(x.shape(), minus)).data();
            int classes = yp.length / rows;
            int k = row * classes + targets[row];
            fd[i] = ((double) yp[k] - ym[k]) / ((double) plus[j] - minus[j]);
        }
        return fd;
    }
}
