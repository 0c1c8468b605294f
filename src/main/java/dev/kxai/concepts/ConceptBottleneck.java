package dev.kxai.concepts;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.ChunkPolicy;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.Map;
import java.util.Set;

/**
 * A concept bottleneck model (Koh et al. 2020) seen through a named concept layer: the value a node
 * computes whose units are concepts. {@link #concepts} reads them for a batch; {@link #intervene}
 * runs only the part of the model after the layer, from concept vectors a person sets ("what if
 * this bird had a red crown?"): the executor starts at any value, so the prefix does not run.
 * A grid of concept vectors runs in chunks of the memory budget. Thread-safe.
 */
public final class ConceptBottleneck {
    private final Model model;
    private final String layer;

    public ConceptBottleneck(Model model, String layer) {
        if (layer == null || !model.graph().valueNames().contains(layer)) {
            throw new InvalidInputException("no concept layer '" + layer + "' computed by a node of "
                    + model.graph().source() + " ('kxai info --model' lists the values)");
        }
        this.model = model;
        this.layer = layer;
    }

    /** The concept layer's value for a batch: [batch, ...concepts]. */
    public Tensor concepts(Inputs in) {
        model.check(in);
        return model.run("concept values", r -> r.evaluate(in.values(), Set.of(layer)).get(layer)).value();
    }

    /**
     * The model's output from concept vectors [K, ...concepts] (the concept layer's example shape),
     * the tail alone; {@code fixed} gives the model inputs the tail still reads besides the concepts
     * (none for a pure bottleneck), one row each, repeated for every vector.
     */
    public Tensor intervene(Tensor conceptVectors, Map<String, Tensor> fixed) {
        int[] example = example();
        int[] s = conceptVectors.shape();
        if (s.length != example.length + 1 || !java.util.Arrays.equals(java.util.Arrays.copyOfRange(s, 1, s.length),
                example)) {
            throw new InvalidInputException("concept vectors of shape " + Shapes.str(s) + " do not fit concept layer '"
                    + layer + "' of example shape " + Shapes.str(example));
        }
        int bad = conceptVectors.firstNonFinite();
        if (bad >= 0) {
            throw new InvalidInputException("concept vectors hold a non-finite value at flat index " + bad);
        }
        int k = s[0];
        return model.run("concept intervention", r -> {
            int chunk = new ChunkPolicy(null).stepsPerChunk(r, 1, k);
            float[] out = null;
            int[] outShape = null;
            for (int k0 = 0; k0 < k; k0 += chunk) {
                int k1 = Math.min(k, k0 + chunk);
                Map<String, Tensor> given = new java.util.HashMap<>();
                given.put(layer, rows(conceptVectors, k0, k1));
                for (Map.Entry<String, Tensor> e : fixed.entrySet()) {
                    given.put(e.getKey(), repeated(e.getValue(), k1 - k0));
                }
                Tensor y;
                try {
                    y = r.evaluate(given, Set.of()).get(r.graph().outputName());
                } catch (InvalidInputException e) {
                    throw new InvalidInputException("the model's tail after '" + layer + "' does not depend on it alone: "
                            + e.getMessage() + "; give those inputs as fixed values");
                }
                if (out == null) {
                    outShape = y.shape();
                    outShape[0] = k;
                    out = new float[k * y.rowSize()];
                }
                System.arraycopy(y.data(), 0, out, k0 * y.rowSize(), y.size());
            }
            return new Tensor(outShape, out);
        }).value();
    }

    /** Every 0/1 corner of the concept space ([2^C, C], binary order, first concept slowest): for C ≤ 16. */
    public Tensor corners() {
        int[] example = example();
        if (example.length != 1 || example[0] > 16) {
            throw new InvalidInputException("the corners of concept layer '" + layer + "' of shape " + Shapes.str(example)
                    + ": only for a flat layer of at most 16 concepts");
        }
        int c = example[0];
        float[] g = new float[(1 << c) * c];
        for (int v = 0; v < 1 << c; v++) {
            for (int j = 0; j < c; j++) {
                g[v * c + j] = (v >> (c - 1 - j)) & 1;
            }
        }
        return new Tensor(new int[] {1 << c, c}, g);
    }

    /** The concept layer's shape without its batch axis. */
    private int[] example() {
        int[] s = model.runner().plan().shape(layer, 1);
        return java.util.Arrays.copyOfRange(s, 1, s.length);
    }

    private static Tensor rows(Tensor t, int r0, int r1) {
        int per = t.rowSize();
        int[] s = t.shape();
        s[0] = r1 - r0;
        return new Tensor(s, java.util.Arrays.copyOfRange(t.data(), r0 * per, r1 * per));
    }

    private static Tensor repeated(Tensor one, int n) {
        if (one.dim(0) != 1) {
            throw new InvalidInputException("a fixed input for an intervention has one row, got " + one.dim(0));
        }
        float[] d = new float[n * one.size()];
        for (int i = 0; i < n; i++) {
            System.arraycopy(one.data(), 0, d, i * one.size(), one.size());
        }
        int[] s = one.shape();
        s[0] = n;
        return new Tensor(s, d);
    }
}
