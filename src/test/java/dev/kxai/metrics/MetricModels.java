package dev.kxai.metrics;

import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.Attribution;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** The models the metrics' tests score: a linear one built here (one Gemm), and the digits CNN. */
final class MetricModels {
    private MetricModels() {
    }

    static final int FEATURES = 6;
    static final int CLASSES = 3;

    /** W [6, 3]: y = x·W + c, so the gradient of output t is column t of W, the same everywhere. */
    static final float[] W = {0.5f, -1.25f, 2f, 1.5f, 0.75f, -0.5f, -2f, 1f, 0.25f, 0.125f, -0.75f, 1.75f,
        1f, 0.5f, -1.5f, -0.25f, 2.5f, 0.625f};
    static final float[] C = {0.1f, -0.2f, 0.3f};

    /** y = x·W + c on the CPU. */
    static Model linear() {
        Node gemm = new Node("gemm", "Gemm", new Op.Gemm(1f, 1f, false, false), List.of("x", "w", "c"), "y");
        Graph g = new Graph("test:linear", "x", new int[] {-1, FEATURES}, "y", List.of(gemm),
                Map.of("w", new Tensor(new int[] {FEATURES, CLASSES}, W), "c", new Tensor(new int[] {CLASSES}, C)));
        return Model.of(g, new CpuBackend());
    }

    /** A batch of the linear model's inputs, values of about 1. */
    static Tensor linearInput(int batch, long seed) {
        Random r = new Random(seed);
        float[] d = new float[batch * FEATURES];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (2 * r.nextDouble() - 0.5);
        }
        return new Tensor(new int[] {batch, FEATURES}, d);
    }

    static Model digits() {
        return Model.load(TestData.reference("digits_cnn").resolve("model.onnx"), "cpu");
    }

    static Tensor digitsInput() {
        return NpyIO.read(TestData.reference("digits_cnn").resolve("input.npy"));
    }

    /** A method's attributions of a batch for its targets. */
    @FunctionalInterface
    interface Explain {
        Attribution of(Model m, Tensor x, int[] targets);
    }

    /** The digits CNN, its batch, the predicted classes (the targets) and a method's attributions for them. */
    record Explained(Model m, Tensor x, int[] t, Map<String, Tensor> attr) {
        Inputs in() {
            return m.inputs(x);
        }
    }

    static Explained digits(Explain method) {
        Model m = digits();
        Tensor x = digitsInput();
        int[] t = m.predict(x);
        return new Explained(m, x, t, byInput(m, method.of(m, x, t)));
    }

    /** Attributions by input name for the single-input models. */
    static Map<String, Tensor> byInput(Model m, Attribution a) {
        return a.byInputOr(m.graph().inputName());
    }
}
