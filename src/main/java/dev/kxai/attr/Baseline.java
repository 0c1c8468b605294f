package dev.kxai.attr;

import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;

/**
 * The reference point of a path method, with Captum's forms: none (zeros), a scalar, a tensor of
 * the input's shape, or one example (batch 1, or no batch axis) broadcast to every row.
 */
public final class Baseline {
    private final Float scalar;
    private final Tensor tensor;

    private Baseline(Float scalar, Tensor tensor) {
        this.scalar = scalar;
        this.tensor = tensor;
    }

    public static Baseline zeros() {
        return new Baseline(0f, null);
    }

    public static Baseline scalar(float value) {
        if (!Float.isFinite(value)) {
            throw new InvalidInputException("baseline holds a non-finite value " + value);
        }
        return new Baseline(value, null);
    }

    public static Baseline of(Tensor t) {
        return new Baseline(null, t);
    }

    /** The baseline expanded to the input's shape (a new array the caller may keep). */
    public Tensor expand(Tensor x) {
        if (tensor == null) {
            float[] d = new float[x.size()];
            Arrays.fill(d, scalar);
            return new Tensor(x.shape(), d);
        }
        int bad = tensor.firstNonFinite();
        if (bad >= 0) {
            throw new InvalidInputException("baseline holds a non-finite value " + tensor.data()[bad]
                    + " at flat index " + bad);
        }
        int[] xs = x.shape();
        int[] bs = tensor.shape();
        if (Arrays.equals(xs, bs)) {
            return tensor;
        }
        int per = x.rowSize();
        boolean oneExample = tensor.size() == per && (Arrays.equals(bs, Arrays.copyOfRange(xs, 1, xs.length))
                || (bs.length == xs.length && bs[0] == 1 && Arrays.equals(Arrays.copyOfRange(bs, 1, bs.length),
                        Arrays.copyOfRange(xs, 1, xs.length))));
        if (!oneExample) {
            throw new InvalidInputException("baseline of shape " + Shapes.str(bs) + " does not fit input of shape "
                    + Shapes.str(xs) + " (give the same shape, one example, or a scalar)");
        }
        float[] d = new float[x.size()];
        for (int r = 0; r < xs[0]; r++) {
            System.arraycopy(tensor.data(), 0, d, r * per, per);
        }
        return new Tensor(xs, d);
    }

    /**
     * Captum's {@code baselines} for the attributed inputs {@code names} of a batch: one baseline
     * for all, or one per input in order, each expanded to its input's shape.
     */
    public static java.util.Map<String, Tensor> forInputs(java.util.List<Baseline> baselines,
            java.util.List<String> names, dev.kxai.Inputs in, String method) {
        if (baselines.size() != 1 && baselines.size() != names.size()) {
            throw new InvalidInputException(method + ": " + baselines.size() + " baselines for " + names.size()
                    + " attributed inputs " + names + "; give one per input, in this order, or one for all");
        }
        java.util.Map<String, Tensor> out = new java.util.LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            out.put(names.get(i), baselines.get(baselines.size() == 1 ? 0 : i).expand(in.get(names.get(i))));
        }
        return out;
    }

    /**
     * The baseline as rows to draw from (GradientShap's distribution): [K, ...example] for a tensor
     * of K rows, one row for a scalar or a single example.
     */
    public Tensor rows(int[] example) {
        int per = 1;
        for (int d : example) {
            per *= d;
        }
        int[] one = new int[example.length + 1];
        one[0] = 1;
        System.arraycopy(example, 0, one, 1, example.length);
        if (tensor == null) {
            float[] d = new float[per];
            Arrays.fill(d, scalar);
            return new Tensor(one, d);
        }
        int[] bs = tensor.shape();
        if (bs.length == example.length + 1 && Arrays.equals(Arrays.copyOfRange(bs, 1, bs.length), example)) {
            return tensor;
        }
        if (Arrays.equals(bs, example)) {
            return new Tensor(one, tensor.data());
        }
        throw new InvalidInputException("baselines of shape " + Shapes.str(bs) + " are not rows of examples of shape "
                + Shapes.str(example));
    }

    @Override
    public String toString() {
        return tensor == null ? (scalar == 0f ? "zeros" : "scalar " + scalar) : "tensor " + Shapes.str(tensor.shape());
    }
}
