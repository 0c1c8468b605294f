package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The attributed inputs of a call with their baselines and Captum's {@code feature_mask}: which
 * features move together. A mask holds integer group ids, of the example's shape, of [1, ...the
 * example's shape] or of [batch, ...] (a mask per row); without one every scalar is its own group.
 * Feature ablation, occlusion and permutation number groups per input; Shapley values, KernelSHAP
 * and LIME share ids across inputs ({@code acrossInputs}: without masks the ids continue from one
 * input to the next), as Captum does.
 */
final class FeatureGroups {
    /** One attributed input: its batch, baseline rows ([batch, ...]), mask and number of groups. */
    record Input(String name, Tensor x, Tensor baseline, int[] mask, boolean perRow, int groups) {
        /** The group of feature f of row r. */
        int group(int r, int f) {
            return mask[(perRow ? r * x.rowSize() : 0) + f];
        }

        /** Whether row r has any feature in group g. */
        boolean[][] present(int batch, int totalGroups) {
            boolean[][] has = new boolean[batch][totalGroups];
            int per = x.rowSize();
            for (int r = 0; r < batch; r++) {
                for (int f = 0; f < per; f++) {
                    int g = group(r, f);
                    if (g >= 0) {
                        has[r][g] = true;
                    }
                }
                if (!perRow) {
                    for (int q = 1; q < batch; q++) {
                        has[q] = has[0];
                    }
                    break;
                }
            }
            return has;
        }

        /** attributions[r, f] = value[r][group(r, f)] (0 for a feature in no group). */
        Tensor spread(double[][] value) {
            int batch = x.dim(0);
            int per = x.rowSize();
            float[] a = new float[x.size()];
            for (int r = 0; r < batch; r++) {
                for (int f = 0; f < per; f++) {
                    int g = group(r, f);
                    a[r * per + f] = g < 0 ? 0f : (float) value[r][g];
                }
            }
            return new Tensor(x.shape(), a);
        }
    }

    final List<Input> inputs;
    final Inputs all;
    /** Groups over all inputs (ids shared across inputs), or the largest per input. */
    final int groups;

    private FeatureGroups(List<Input> inputs, Inputs all, int groups) {
        this.inputs = inputs;
        this.all = all;
        this.groups = groups;
    }

    int batch() {
        return all.batch();
    }

    /**
     * @param baselines one for all attributed inputs, or one per attributed input
     * @param masks     feature masks by input name (absent: one group per scalar)
     */
    static FeatureGroups of(Model model, Inputs in, List<Baseline> baselines, Map<String, Tensor> masks,
            boolean acrossInputs, String method) {
        model.check(in);
        List<String> names = model.attributed(in);
        for (String m : masks.keySet()) {
            if (!names.contains(m)) {
                throw new InvalidInputException(method + ": a feature mask for '" + m + "', which is not an attributed input "
                        + names);
            }
        }
        if (baselines.size() != 1 && baselines.size() != names.size()) {
            throw new InvalidInputException(method + ": " + baselines.size() + " baselines for " + names.size()
                    + " attributed inputs " + names + "; give one per input, in this order, or one for all");
        }
        List<Input> out = new ArrayList<>();
        int next = 0;
        int most = 0;
        for (int i = 0; i < names.size(); i++) {
            String name = names.get(i);
            Tensor x = in.get(name);
            Tensor base = baselines.get(baselines.size() == 1 ? 0 : i).expand(x);
            Tensor mask = masks.get(name);
            int[] ids;
            boolean perRow;
            if (mask == null) {
                ids = new int[x.rowSize()];
                for (int f = 0; f < ids.length; f++) {
                    ids[f] = (acrossInputs ? next : 0) + f;
                }
                perRow = false;
            } else {
                perRow = maskRows(method, name, mask, x) > 1;
                ids = ids(method, name, mask);
            }
            int n = Arrays.stream(ids).max().orElse(-1) + 1;
            next = acrossInputs ? Math.max(next, n) : 0;
            most = Math.max(most, n);
            out.add(new Input(name, x, base, ids, perRow, n));
        }
        return new FeatureGroups(out, in, acrossInputs ? next : most);
    }

    /**
     * The groups of one intermediate value (LayerFeatureAblation's layer): {@code value} at the batch
     * is the attributed "input", ablated to {@code baseline} (scalar, the value's shape, or one example
     * broadcast) per group of {@code mask} (absent: one group per element); the model's inputs go with
     * it unchanged, so that the rest of the graph reads them (Captum's forward hook replaces only the
     * layer's output).
     */
    static FeatureGroups forValue(String name, Tensor value, dev.kxai.attr.Baseline baseline, Tensor mask, Inputs in,
            String method) {
        Tensor base = baseline.expand(value);
        int[] ids;
        boolean perRow;
        if (mask == null) {
            ids = new int[value.rowSize()];
            for (int f = 0; f < ids.length; f++) {
                ids[f] = f;
            }
            perRow = false;
        } else {
            perRow = maskRows(method, name, mask, value) > 1;
            ids = ids(method, name, mask);
        }
        int n = Arrays.stream(ids).max().orElse(-1) + 1;
        Inputs all = Inputs.empty().and(name, value);
        for (Map.Entry<String, Tensor> e : in.values().entrySet()) {
            all = all.additional(e.getKey(), e.getValue());
        }
        return new FeatureGroups(List.of(new Input(name, value, base, ids, perRow, n)), all, n);
    }

    /** 1 for a mask of one example, the batch for a mask per row; else an error naming the shapes. */
    private static int maskRows(String method, String name, Tensor mask, Tensor x) {
        int[] ms = mask.shape();
        int[] xs = x.shape();
        int[] example = Arrays.copyOfRange(xs, 1, xs.length);
        if (Arrays.equals(ms, example)) {
            return 1;
        }
        if (ms.length == xs.length && Arrays.equals(Arrays.copyOfRange(ms, 1, ms.length), example)
                && (ms[0] == 1 || ms[0] == xs[0])) {
            return ms[0];
        }
        throw new InvalidInputException(method + ": feature mask of '" + name + "' has shape " + Shapes.str(ms)
                + "; its input " + Shapes.str(xs) + " needs " + Shapes.str(example) + ", [1, ...] or [" + xs[0] + ", ...]");
    }

    private static int[] ids(String method, String name, Tensor mask) {
        float[] v = mask.data();
        int[] ids = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            if (v[i] != Math.rint(v[i]) || v[i] < 0 || v[i] >= dev.kxai.backend.Perturbation.MAX_ID) {
                throw new InvalidInputException(method + ": feature mask of '" + name + "' holds " + v[i] + " at flat index "
                        + i + "; group ids are integers from 0");
            }
            ids[i] = (int) v[i];
        }
        return ids;
    }

    /** Per input name, its attributions from per-row, per-group values. */
    Map<String, Tensor> spread(double[][] value) {
        Map<String, Tensor> by = new LinkedHashMap<>();
        for (Input i : inputs) {
            by.put(i.name(), i.spread(value));
        }
        return by;
    }
}
