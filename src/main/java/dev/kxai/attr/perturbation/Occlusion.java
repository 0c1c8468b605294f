package dev.kxai.attr.perturbation;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.Perturbation;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Captum's {@code Occlusion}: a window of {@code sliding_window_shapes} slides over each attributed
 * input's example axes by {@code strides}; each position is set to the baseline, and every feature
 * gets the mean of F_t(x) − F_t(x occluded) over the windows that cover it. As in Captum an axis
 * has ceil((D − W) / stride) + 1 positions, so where the stride does not divide D − W the last
 * window is cropped at the edge. Every window of every row runs in batched forward passes (the
 * device builds the occluded rows from the batch and each window's box).
 */
public final class Occlusion {
    private final Model model;
    private final Settings settings;
    private final List<int[]> windows;
    private final List<int[]> strides;

    /**
     * @param windows one window shape per attributed input (example axes), or one for all
     * @param strides one stride per axis per input (or one list for all); null = 1 on every axis
     */
    public Occlusion(Model model, List<int[]> windows, List<int[]> strides, Settings settings) {
        this.model = model;
        this.windows = List.copyOf(windows);
        this.strides = strides == null ? null : List.copyOf(strides);
        this.settings = settings;
        if (this.windows.isEmpty()) {
            throw new InvalidInputException("occlusion needs sliding_window_shapes");
        }
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        FeatureGroups groups = FeatureGroups.of(model, in, settings.baselines(), Map.of(), false, "occlusion");
        int[] t = model.targets(targets, in.batch());
        int batch = in.batch();
        int inputsN = groups.inputs.size();
        List<List<int[]>> boxesPerInput = new ArrayList<>();
        for (int i = 0; i < inputsN; i++) {
            FeatureGroups.Input gi = groups.inputs.get(i);
            int[] dims = Arrays.copyOfRange(gi.x().shape(), 1, gi.x().rank());
            boxesPerInput.add(positions(gi.name(), dims, pick(windows, i, inputsN, "sliding_window_shapes"),
                    strides == null ? null : pick(strides, i, inputsN, "strides")));
        }
        // samples: the unperturbed rows, then (input, window, row)
        List<int[]> samples = new ArrayList<>(); // {home, input, window}
        for (int r = 0; r < batch; r++) {
            samples.add(new int[] {r, -1, -1});
        }
        for (int i = 0; i < inputsN; i++) {
            for (int w = 0; w < boxesPerInput.get(i).size(); w++) {
                for (int r = 0; r < batch; r++) {
                    samples.add(new int[] {r, i, w});
                }
            }
        }
        int n = samples.size();
        int[] home = new int[n];
        Map<String, Perturbation.Rule> rules = new LinkedHashMap<>();
        for (int i = 0; i < inputsN; i++) {
            FeatureGroups.Input gi = groups.inputs.get(i);
            int axes = gi.x().rank() - 1;
            int[] boxes = new int[n * 2 * axes]; // all zeros: an empty box
            for (int s = 0; s < n; s++) {
                int[] d = samples.get(s);
                home[s] = d[0];
                if (d[1] == i) {
                    System.arraycopy(boxesPerInput.get(i).get(d[2]), 0, boxes, s * 2 * axes, 2 * axes);
                }
            }
            rules.put(gi.name(), new Perturbation.Box(gi.baseline(), boxes));
        }
        Perturbation p = new Perturbation(in.values(), home, rules);
        DevicePolicy.Ran<Attribution> ran = model.run("occlusion", runner -> {
            double[] f = PerturbationLoop.evaluate(runner, p, t, settings.chunks(batch), settings.progress(),
                    PerturbationLoop.Output.TARGET);
            Map<String, Tensor> by = new LinkedHashMap<>();
            for (int i = 0; i < inputsN; i++) {
                FeatureGroups.Input gi = groups.inputs.get(i);
                int[] dims = Arrays.copyOfRange(gi.x().shape(), 1, gi.x().rank());
                int per = gi.x().rowSize();
                double[] sum = new double[batch * per];
                int[] count = new int[per];
                List<int[]> boxes = boxesPerInput.get(i);
                for (int[] box : boxes) {
                    forEachInside(box, dims, e -> count[e]++);
                }
                for (int s = batch; s < n; s++) {
                    int[] d = samples.get(s);
                    if (d[1] != i) {
                        continue;
                    }
                    double diff = (float) (f[d[0]] - f[s]); // Captum's float32 eval_diff
                    int row = d[0] * per;
                    forEachInside(boxes.get(d[2]), dims, e -> sum[row + e] += diff);
                }
                float[] a = new float[batch * per];
                for (int e = 0; e < a.length; e++) {
                    int c = count[e % per];
                    a[e] = c == 0 ? 0f : (float) (sum[e] / c);
                }
                by.put(gi.name(), new Tensor(gi.x().shape(), a));
            }
            return Attribution.of(by, null, runner.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    private static int[] pick(List<int[]> perInput, int i, int inputs, String what) {
        if (perInput.size() == 1) {
            return perInput.get(0);
        }
        if (perInput.size() != inputs) {
            throw new InvalidInputException("occlusion: " + perInput.size() + " " + what + " for " + inputs
                    + " attributed inputs; give one per input or one for all");
        }
        return perInput.get(i);
    }

    /** Every window position as a box [start, end) per axis, Captum's count and cropping. */
    static List<int[]> positions(String input, int[] dims, int[] window, int[] stride) {
        int axes = dims.length;
        if (window.length != axes) {
            throw new InvalidInputException("occlusion: sliding_window_shapes " + Arrays.toString(window) + " has "
                    + window.length + " axes; input '" + input + "' has examples of shape " + Shapes.str(dims));
        }
        int[] st = stride == null ? filled(axes, 1) : stride.length == 1 ? filled(axes, stride[0]) : stride;
        if (st.length != axes) {
            throw new InvalidInputException("occlusion: strides " + Arrays.toString(stride) + " has " + st.length
                    + " axes; input '" + input + "' has " + axes);
        }
        int[] counts = new int[axes];
        long total = 1;
        for (int d = 0; d < axes; d++) {
            if (window[d] < 1 || window[d] > dims[d]) {
                throw new InvalidInputException("occlusion: sliding window " + Arrays.toString(window) + " does not fit input '"
                        + input + "' of example shape " + Shapes.str(dims) + " (axis " + d + ": 1.." + dims[d] + ")");
            }
            if (st[d] < 1 || (st[d] > window[d] && dims[d] != window[d])) {
                throw new InvalidInputException("occlusion: stride " + st[d] + " on axis " + d + " of input '" + input
                        + "' must be from 1 to the window's " + window[d] + " (a larger stride skips features)");
            }
            counts[d] = (dims[d] - window[d] + st[d] - 1) / st[d] + 1;
            total *= counts[d];
        }
        if (total > 1 << 24) {
            throw new InvalidInputException("occlusion of input '" + input + "': " + total + " window positions; use a "
                    + "larger window or stride");
        }
        List<int[]> boxes = new ArrayList<>();
        int[] k = new int[axes];
        for (long w = 0; w < total; w++) {
            int[] box = new int[2 * axes];
            for (int d = 0; d < axes; d++) {
                box[2 * d] = k[d] * st[d];
                box[2 * d + 1] = Math.min(dims[d], k[d] * st[d] + window[d]);
            }
            boxes.add(box);
            for (int d = axes - 1; d >= 0; d--) { // the last axis fastest
                if (++k[d] < counts[d]) {
                    break;
                }
                k[d] = 0;
            }
        }
        return boxes;
    }

    private static int[] filled(int n, int v) {
        int[] a = new int[n];
        Arrays.fill(a, v);
        return a;
    }

    /** Calls {@code f} with the flat index (within one example) of every feature inside a box. */
    static void forEachInside(int[] box, int[] dims, java.util.function.IntConsumer f) {
        int axes = dims.length;
        int[] c = new int[axes];
        for (int d = 0; d < axes; d++) {
            c[d] = box[2 * d];
            if (box[2 * d] >= box[2 * d + 1]) {
                return;
            }
        }
        while (true) {
            int flat = 0;
            for (int d = 0; d < axes; d++) {
                flat = flat * dims[d] + c[d];
            }
            f.accept(flat);
            int d = axes - 1;
            while (d >= 0 && ++c[d] >= box[2 * d + 1]) {
                c[d] = box[2 * d];
                d--;
            }
            if (d < 0) {
                return;
            }
        }
    }
}
