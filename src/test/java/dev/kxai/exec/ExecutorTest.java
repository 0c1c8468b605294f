package dev.kxai.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.TestData;
import dev.kxai.backend.GraphRunner;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.onnx.OnnxImporter;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The executor's seams that layer methods, rule-based backward and multi-value runs build on,
 * on the CPU: a forward pass from an intermediate value, taps, gradients with respect to an
 * intermediate value (checked against finite differences), and a replaced backward rule.
 */
class ExecutorTest {
    private static final String RELU = "/1/Relu_output_0";
    private static final String CONV2 = "/2/Conv_output_0";

    private static Graph load(String model) {
        return OnnxImporter.load(TestData.reference(model).resolve("model.onnx"));
    }

    private static Tensor random(long seed, int... shape) {
        Random r = new Random(seed);
        Tensor t = Tensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = r.nextFloat() * 2 - 1;
        }
        return t;
    }

    @Test
    void forwardFromAnIntermediateValueEqualsTheWholeForward() {
        Graph g = load("digits_cnn");
        ModelRunner r = new CpuBackend().prepare(g);
        Tensor x = random(1, 3, 1, 8, 8);
        Map<String, Tensor> whole = r.evaluate(Map.of(g.inputName(), x), Set.of(RELU, CONV2));
        assertArrayEquals(r.plan().shape(RELU, 3), whole.get(RELU).shape(), "tap shape from the plan");
        Map<String, Tensor> tail = r.evaluate(Map.of(RELU, whole.get(RELU)), Set.of());
        assertArrayEquals(whole.get(g.outputName()).data(), tail.get(g.outputName()).data(), 0f);
        assertArrayEquals(r.forward(x).data(), whole.get(g.outputName()).data(), 0f, "taps change nothing");
    }

    @Test
    void aTapInsideAFusionGroupRunsItUnfusedWithTheSameResult() {
        Graph g = load("digits_cnn");
        ModelRunner r = new CpuBackend().prepare(g);
        assertEquals(2, r.plan().fusions().size(), "both Conv+Relu pairs fuse");
        Tensor x = random(2, 2, 1, 8, 8);
        Map<String, Tensor> v = r.evaluate(Map.of(g.inputName(), x), Set.of(CONV2));
        float min = Float.MAX_VALUE;
        for (float f : v.get(CONV2).data()) {
            min = Math.min(min, f);
        }
        assertTrue(min < 0, "the tapped Conv output is the pre-activation, not the ReLU'd tensor");
        assertArrayEquals(r.forward(x).data(), v.get(g.outputName()).data(), 0f);
    }

    @Test
    void aValueThatCannotBeComputedFromWhatIsGivenIsNamed() {
        Graph g = load("digits_cnn");
        ModelRunner r = new CpuBackend().prepare(g);
        InvalidInputException e = assertThrows(InvalidInputException.class,
                () -> r.evaluate(Map.of(RELU, random(3, 1, 8, 8, 8)), Set.of("/0/Conv_output_0")));
        assertTrue(e.getMessage().contains("'input'"), e.getMessage());
        assertThrows(InvalidInputException.class, () -> r.evaluate(Map.of("no_such_value", random(3, 1, 2)), Set.of()));
    }

    /** d output[target] / d h by central differences in double-checked float, h an intermediate value. */
    @Test
    void gradientWithRespectToAnIntermediateValueMatchesFiniteDifferences() {
        Graph g = load("mlp_tabular");
        ModelRunner r = new CpuBackend().prepare(g);
        String h = "/1/Relu_output_0";
        Tensor x = random(4, 2, 8);
        int[] targets = {2, 0};
        Tensor hv = r.evaluate(Map.of(g.inputName(), x), Set.of(h)).get(h);
        Tensor fromInput = r.gradients(Map.of(g.inputName(), x), targets, Set.of(h, g.inputName())).get(h);
        Tensor fromH = r.gradients(Map.of(h, hv), targets, Set.of(h)).get(h);
        assertArrayEquals(fromInput.data(), fromH.data(), 0f, "the same gradient from the input or from h");
        int per = r.outputsPerExample();
        float eps = 1e-2f;
        for (int i = 0; i < hv.size(); i++) {
            int row = i / hv.rowSize();
            Tensor up = hv.copy();
            Tensor down = hv.copy();
            up.data()[i] += eps;
            down.data()[i] -= eps;
            float yu = r.evaluate(Map.of(h, up), Set.of()).get(g.outputName()).data()[row * per + targets[row]];
            float yd = r.evaluate(Map.of(h, down), Set.of()).get(g.outputName()).data()[row * per + targets[row]];
            double fd = (yu - yd) / (2.0 * eps);
            assertEquals(fd, fromH.data()[i], 1e-3 + 1e-2 * Math.abs(fd), "d y / d h[" + i + "]");
        }
    }

    /**
     * A backward rule that passes the gradient straight through every Relu makes the network's
     * input gradient that of the same network without the Relu (a linear map, whatever the
     * forward values): the rule replaced the operator's gradient and only it.
     */
    @Test
    @SuppressWarnings("unchecked")
    void aBackwardRuleReplacesTheGradientOfItsOperatorKind() {
        Graph g = load("mlp_tabular");
        Graph linear = withoutActivations(g);
        GraphRunner<Tensor> r = (GraphRunner<Tensor>) new CpuBackend().prepare(g);
        ModelRunner lin = new CpuBackend().prepare(linear);
        Tensor x = random(5, 4, 8);
        int[] targets = {0, 1, 2, 1};
        BackwardRule<Tensor> passRelu = BackwardRule.forOp(Op.Relu.class, c -> new Tensor[] {c.gradOut()});
        BackwardRule<Tensor> passTanh = BackwardRule.forOp(Op.Tanh.class, c -> new Tensor[] {c.gradOut()});
        BackwardRule<Tensor> both = c -> {
            Tensor[] a = passRelu.backward(c);
            return a != null ? a : passTanh.backward(c);
        };
        Tensor ruled = r.gradients(Map.of(g.inputName(), x), targets, Set.of(g.inputName()), both).get(g.inputName());
        Tensor want = lin.gradient(x, targets).inputGradient();
        assertArrayEquals(want.data(), ruled.data(), 1e-6f);
        Tensor plain = r.gradient(x, targets).inputGradient();
        boolean differs = false;
        for (int i = 0; i < plain.size(); i++) {
            differs |= Math.abs(plain.data()[i] - want.data()[i]) > 1e-4;
        }
        assertTrue(differs, "the plain gradient goes through the activations (the test could fail)");
    }

    /** The graph with every Relu and Tanh replaced by Identity. */
    private static Graph withoutActivations(Graph g) {
        List<Node> nodes = g.nodes().stream().map(n -> n.op() instanceof Op.Relu || n.op() instanceof Op.Tanh
                ? new Node(n.name(), "Identity", new Op.Identity(), n.inputs(), n.output()) : n).toList();
        return new Graph(g.source(), g.inputName(), g.inputShape(), g.outputName(), nodes, g.constants());
    }

    @Test
    void shapesAreLinearInTheBatchAndOneRowOnlyGraphsSaySo() {
        Graph g = load("digits_cnn");
        ExecutionPlan p = new CpuBackend().prepare(g).plan();
        assertArrayEquals(new int[] {7, 16, 4, 4}, p.shape("/4/MaxPool_output_0", 7));
        assertArrayEquals(new int[] {7, 256}, p.shape("/5/Flatten_output_0", 7));
        assertEquals(10, p.outputsPerExample());
        // Reshape to a fixed [1, 8]: runs for one row, refused for two with the node named
        Map<String, Tensor> c = Map.of("s", new Tensor(new int[] {2}, new float[] {1, 8}));
        Graph fixed = new Graph("test:fixed", "x", new int[] {-1, 8}, "y",
                List.of(new Node("fix", "Reshape", new Op.Reshape(false), List.of("x", "s"), "y")), c);
        ModelRunner r = new CpuBackend().prepare(fixed);
        assertEquals(8, r.forward(random(6, 1, 8)).size());
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> r.forward(random(6, 2, 8)));
        assertTrue(e.getMessage().contains("fix") && e.getMessage().contains("one row"), e.getMessage());
    }
}
