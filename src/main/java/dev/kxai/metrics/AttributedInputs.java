package dev.kxai.metrics;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the metrics read of a batch: the attributed inputs (float inputs that are not additional,
 * in the model's order) with their baselines expanded to the batch, and the attributions of each,
 * checked against its input. A row's features are the attributed inputs' values one input after
 * the other ({@link #row}), as Captum concatenates them.
 */
final class AttributedInputs {
    final Model model;
    final Inputs in;
    final List<String> names;
    /** Baselines by attributed input, [batch, ...] each. */
    final Map<String, Tensor> baselines;
    /** Attributions by attributed input, or null where the metric takes none. */
    final Map<String, Tensor> attributions;
    final int batch;
    /** Features of one row over all attributed inputs. */
    final int features;

    private AttributedInputs(Model model, Inputs in, List<String> names, Map<String, Tensor> baselines,
            Map<String, Tensor> attributions) {
        this.model = model;
        this.in = in;
        this.names = names;
        this.baselines = baselines;
        this.attributions = attributions;
        this.batch = in.batch();
        int f = 0;
        for (String n : names) {
            f += in.get(n).rowSize();
        }
        this.features = f;
    }

    /**
     * @param baselines    one for every attributed input, or one per attributed input (in the model's order)
     * @param attributions by attributed input name (each of its input's shape), or null
     */
    static AttributedInputs of(Model model, Inputs in, List<Baseline> baselines, Map<String, Tensor> attributions,
            String metric) {
        model.check(in);
        List<String> names = model.attributed(in);
        if (baselines.size() != 1 && baselines.size() != names.size()) {
            throw new InvalidInputException(metric + ": " + baselines.size() + " baselines for " + names.size()
                    + " attributed inputs " + names + "; give one per input, in this order, or one for all");
        }
        Map<String, Tensor> base = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            base.put(names.get(i), baselines.get(baselines.size() == 1 ? 0 : i).expand(in.get(names.get(i))));
        }
        if (attributions != null) {
            checkAttributions(metric, names, in, attributions);
        }
        return new AttributedInputs(model, in, names, base, attributions);
    }

    private static void checkAttributions(String metric, List<String> names, Inputs in, Map<String, Tensor> attributions) {
        for (String name : attributions.keySet()) {
            if (!names.contains(name)) {
                throw new InvalidInputException(metric + ": attributions of '" + name + "', which is not an attributed input "
                        + names + "; the metrics compare attributions of the model's inputs (not of a layer)");
            }
        }
        for (String name : names) {
            Tensor a = attributions.get(name);
            if (a == null) {
                throw new InvalidInputException(metric + ": no attributions of input '" + name + "'; give one per "
                        + "attributed input " + names);
            }
            if (!Arrays.equals(a.shape(), in.get(name).shape())) {
                throw new InvalidInputException(metric + ": attributions of '" + name + "' have shape "
                        + Shapes.str(a.shape()) + "; its input has " + Shapes.str(in.get(name).shape()));
            }
            int bad = a.firstNonFinite();
            if (bad >= 0) {
                throw new InvalidInputException(metric + ": attributions of '" + name + "' hold a non-finite value "
                        + a.data()[bad] + " at row " + bad / Math.max(1, a.rowSize()) + ", flat index " + bad);
            }
        }
    }

    /** Row r of the attributed inputs' {@code values} (by name), one input after the other. */
    double[] row(Map<String, Tensor> values, int r) {
        double[] out = new double[features];
        int at = 0;
        for (String n : names) {
            Tensor t = values.get(n);
            int per = t.rowSize();
            float[] d = t.data();
            for (int f = 0; f < per; f++) {
                out[at + f] = d[r * per + f];
            }
            at += per;
        }
        return out;
    }

    /** Row r of the attributions, over every attributed input. */
    double[] attributionRow(int r) {
        return row(attributions, r);
    }

    /**
     * Per attributed input, a per-row feature mask [batch × its row size] from group ids over a
     * row's features ({@code groupOf[r][feature over all inputs]}).
     */
    Map<String, int[]> masks(int[][] groupOf) {
        Map<String, int[]> out = new LinkedHashMap<>();
        int at = 0;
        for (String n : names) {
            int per = in.get(n).rowSize();
            int[] m = new int[batch * per];
            for (int r = 0; r < batch; r++) {
                System.arraycopy(groupOf[r], at, m, r * per, per);
            }
            out.put(n, m);
            at += per;
        }
        return out;
    }

    /** Every model input with each row repeated: rows [lead + r·n + k] = row r, after {@code lead} rows of the batch itself. */
    static Inputs repeated(Inputs in, int n, boolean lead) {
        Inputs out = Inputs.empty();
        for (Map.Entry<String, Tensor> e : in.values().entrySet()) {
            Tensor t = repeatRows(e.getValue(), n, lead);
            out = in.isAdditional(e.getKey()) ? out.additional(e.getKey(), t) : out.and(e.getKey(), t);
        }
        return out;
    }

    /** [lead ? batch : 0 rows of t, then each row of t n times]. */
    static Tensor repeatRows(Tensor t, int n, boolean lead) {
        int batch = t.dim(0);
        int per = t.rowSize();
        int first = lead ? batch : 0;
        float[] out = new float[(first + batch * n) * per];
        if (lead) {
            System.arraycopy(t.data(), 0, out, 0, batch * per);
        }
        for (int r = 0; r < batch; r++) {
            for (int k = 0; k < n; k++) {
                System.arraycopy(t.data(), r * per, out, (first + r * n + k) * per, per);
            }
        }
        int[] s = t.shape();
        s[0] = first + batch * n;
        return new Tensor(s, out);
    }

    /** Rows [r·n, (r + 1)·n) as n copies of row r of t: one example's copies for a perturbation function. */
    static Tensor copies(Tensor t, int r, int n) {
        int per = t.rowSize();
        float[] out = new float[n * per];
        for (int k = 0; k < n; k++) {
            System.arraycopy(t.data(), r * per, out, k * per, per);
        }
        int[] s = t.shape();
        s[0] = n;
        return new Tensor(s, out);
    }

    /**
     * Every value of every copy replaced by {@code f} of it, input after input and value after value
     * (the order a random stream is drawn in, so that a seed gives the same values every time).
     */
    static Map<String, Tensor> eachValue(Map<String, Tensor> copies, java.util.function.DoubleUnaryOperator f) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : copies.entrySet()) {
            float[] x = e.getValue().data();
            float[] y = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                y[i] = (float) f.applyAsDouble(x[i]);
            }
            out.put(e.getKey(), new Tensor(e.getValue().shape(), y));
        }
        return out;
    }

    /**
     * Checks what a perturbation function returned for one example: a tensor for every attributed
     * input, of its copies' shape, finite.
     */
    static void checkPerturbed(String metric, String what, Map<String, Tensor> copies, Map<String, Tensor> got, int r) {
        if (got == null) {
            throw new InvalidInputException(metric + ": the perturbation function returned nothing for example " + r);
        }
        for (Map.Entry<String, Tensor> e : copies.entrySet()) {
            Tensor g = got.get(e.getKey());
            if (g == null || !Arrays.equals(g.shape(), e.getValue().shape())) {
                throw new InvalidInputException(metric + ": the perturbation function gave " + what + " of '" + e.getKey()
                        + "' of shape " + (g == null ? "none" : Shapes.str(g.shape())) + " for example " + r + "; it needs "
                        + Shapes.str(e.getValue().shape()) + " (the example's copies)");
            }
            int bad = g.firstNonFinite();
            if (bad >= 0) {
                throw new InvalidInputException(metric + ": the perturbation function gave a non-finite value "
                        + g.data()[bad] + " in " + what + " of '" + e.getKey() + "' for example " + r);
            }
        }
    }
}
