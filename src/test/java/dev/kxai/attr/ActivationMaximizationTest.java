package dev.kxai.attr;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.TestData;
import dev.kxai.attr.ActivationMaximization.Init;
import dev.kxai.attr.ActivationMaximization.Objective;
import dev.kxai.attr.ActivationMaximization.Result;
import dev.kxai.attr.ActivationMaximization.Schedule;
import dev.kxai.attr.ActivationMaximization.Settings;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Activation maximisation on the digits CNN: ascent, penalties, reproducibility, layer objectives. */
class ActivationMaximizationTest {
    private static final String RELU2 = "/3/Relu_output_0";
    private static final String CONV1 = "/0/Conv_output_0";
    private static Model digits;
    private static Tensor x;

    @BeforeAll
    static void load() {
        Path d = TestData.reference("digits_cnn");
        digits = Model.load(d.resolve("model.onnx"), "cpu");
        x = NpyIO.read(d.resolve("input.npy"));
    }

    @AfterAll
    static void close() {
        digits.close();
    }

    private static Result run(Objective o, Settings s, int... targets) {
        return new ActivationMaximization(digits, o, s).optimize(digits.inputs(x), targets);
    }

    @Test
    void seededGradientsAtTheLogitsAreTheTargetsGradients() {
        int[] t = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
        int outs = digits.outputs();
        float[] seed = new float[x.dim(0) * outs];
        for (int r = 0; r < t.length; r++) {
            seed[r * outs + t[r]] = 1f;
        }
        String in = digits.graph().inputName();
        String out = digits.graph().outputName();
        Map<String, Tensor> s = digits.runner().seededGradients(Map.of(in, x), out,
                new Tensor(new int[] {x.dim(0), outs}, seed), Set.of(in));
        Map<String, Tensor> g = digits.runner().gradients(Map.of(in, x), t, Set.of(in));
        assertArrayEquals(g.get(in).data(), s.get(in).data());
        assertArrayEquals(digits.forward(x).data(), s.get(out).data());
    }

    @Test
    void theTargetLogitRisesMonotonicallyUnderEachSchedule() {
        for (Schedule sc : Schedule.values()) {
            Result r = run(Objective.target(), Settings.defaults().iterations(40).lr(0.05, sc), 3);
            assertEquals(41, r.activation().length);
            for (int row = 0; row < x.dim(0); row++) {
                for (int k = 1; k <= 40; k++) {
                    assertTrue(r.activation()[k][row] > r.activation()[k - 1][row], sc + " row " + row + " iteration " + k
                            + ": " + r.activation()[k - 1][row] + " -> " + r.activation()[k][row]);
                    // no penalty: the objective is the logit
                    assertEquals(r.activation()[k][row], r.objective()[k][row]);
                }
                assertTrue(r.activation()[40][row] > r.activation()[0][row] + 5, sc + " row " + row + " rose only from "
                        + r.activation()[0][row] + " to " + r.activation()[40][row]);
            }
            // the logit the result computes is the model's
            Tensor y = digits.forward(r.optimized());
            for (int row = 0; row < x.dim(0); row++) {
                assertEquals(y.data()[row * 10 + 3], r.activation()[40][row], 1e-4);
                assertEquals(3, argmax(y.data(), row * 10, 10), "row " + row + " is now a 3");
            }
        }
    }

    private static int argmax(float[] v, int o, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (v[o + i] > v[o + best]) {
                best = i;
            }
        }
        return best;
    }

    @Test
    void theSchedulesRates() {
        assertEquals(0.05, Schedule.CONSTANT.rate(0.05, 30, 40));
        assertEquals(0.05, Schedule.LINEAR.rate(0.05, 0, 40));
        assertEquals(0.025, Schedule.LINEAR.rate(0.05, 20, 40), 1e-15);
        assertEquals(0.05, Schedule.COSINE.rate(0.05, 0, 40));
        assertEquals(0.025, Schedule.COSINE.rate(0.05, 20, 40), 1e-15);
        assertTrue(Schedule.COSINE.rate(0.05, 39, 40) > 0 && Schedule.LINEAR.rate(0.05, 39, 40) > 0, "never a zero step");
    }

    @Test
    void l2AndTotalVariationPenaltiesShrinkWhatTheyPenalise() {
        Settings base = Settings.defaults().iterations(60);
        Result free = run(Objective.target(), base, 7);
        Result l2 = run(Objective.target(), base.penalties(0.5, 0), 7);
        Result tv = run(Objective.target(), base.penalties(0, 0.5), 7);
        int per = x.rowSize();
        for (int row = 0; row < x.dim(0); row++) {
            double n0 = sq(free.optimized().data(), row * per, per);
            double n1 = sq(l2.optimized().data(), row * per, per);
            assertTrue(n1 < 0.8 * n0, "row " + row + ": ‖x‖² " + n1 + " with l2, " + n0 + " without");
            double t0 = ActivationMaximization.totalVariation(free.optimized().data(), row * per, 1, 8, 8);
            double t1 = ActivationMaximization.totalVariation(tv.optimized().data(), row * per, 1, 8, 8);
            assertTrue(t1 < 0.8 * t0, "row " + row + ": TV " + t1 + " with tv, " + t0 + " without");
            // the recorded objective subtracts the penalty
            assertEquals(l2.activation()[60][row] - 0.5 * n1, l2.objective()[60][row], 1e-6 * Math.max(1, n1));
        }
    }

    private static double sq(float[] v, int o, int n) {
        double s = 0;
        for (int i = o; i < o + n; i++) {
            s += (double) v[i] * v[i];
        }
        return s;
    }

    @Test
    void aSeedGivesBitIdenticalImagesWithJitterAndBlur() {
        Settings s = Settings.defaults().iterations(30).jitter(1).blur(5, 0.5).penalties(0.01, 0.02).seed(11);
        Result a = run(Objective.target(), s, 5);
        Result b = run(Objective.target(), s, 5);
        assertArrayEquals(a.optimized().data(), b.optimized().data());
        Result other = run(Objective.target(), s.seed(12), 5);
        assertFalse(java.util.Arrays.equals(a.optimized().data(), other.optimized().data()), "another seed, other images");
        // a row's image depends on its seed and row only, not on the batch around it
        Tensor first = new Tensor(new int[] {1, 1, 8, 8}, java.util.Arrays.copyOf(x.data(), 64));
        Result alone = new ActivationMaximization(digits, Objective.target(), s).optimize(digits.inputs(first), 5);
        assertArrayEquals(java.util.Arrays.copyOf(a.optimized().data(), 64), alone.optimized().data());
        // and the regularised ascent still raises the logit overall (not monotonically: each step sees a rolled image)
        double start = 0;
        double end = 0;
        for (int row = 0; row < x.dim(0); row++) {
            start += a.activation()[0][row] / x.dim(0);
            end += a.activation()[30][row] / x.dim(0);
        }
        assertTrue(end > start + 5, "mean logit " + start + " -> " + end);
    }

    @Test
    void aChannelAndANeuronObjectiveRaiseTheirActivation() {
        Settings s = Settings.defaults().iterations(40).init(Init.INPUT, 0);
        Result ch = run(Objective.channel(RELU2, 4), s);
        Tensor before = LayerMethods.activation(digits, RELU2, digits.inputs(x)).attributions();
        Tensor after = LayerMethods.activation(digits, RELU2, digits.inputs(ch.optimized())).attributions();
        int per = before.rowSize();
        for (int row = 0; row < x.dim(0); row++) {
            double m0 = 0;
            double m1 = 0;
            for (int i = 4 * 64; i < 5 * 64; i++) {
                m0 += before.data()[row * per + i] / 64.0;
                m1 += after.data()[row * per + i] / 64.0;
            }
            assertEquals(m0, ch.activation()[0][row], 1e-5, "row " + row + ": the recorded start is the channel's mean");
            assertEquals(m1, ch.activation()[40][row], 1e-5, "row " + row + ": the recorded end is the channel's mean");
            assertTrue(m1 > m0 + 0.5, "row " + row + ": channel mean " + m0 + " -> " + m1);
        }
        int flat = LayerMethods.flatNeuron(digits, CONV1, new int[] {2, 3, 4});
        Result ne = run(Objective.neuron(CONV1, flat), Settings.defaults().iterations(20));
        for (int row = 0; row < x.dim(0); row++) {
            for (int k = 1; k <= 20; k++) {
                // the first conv is affine: normalised ascent raises it by exactly lr·‖g‖·√n per step
                assertTrue(ne.activation()[k][row] > ne.activation()[k - 1][row], "row " + row + " iteration " + k);
            }
        }
    }

    @Test
    void theRegistryBuildsItAndBadValuesNameTheParameter() {
        Attribution a = Methods.create("activation_maximization", digits, Methods.Params.of(Map.of("iterations", 5, "seed", 3L)))
                .attribute(digits.inputs(x), new int[] {3});
        assertArrayEquals(x.shape(), a.attributions().shape());
        assertEquals("activation_max", Methods.entry("activation_maximization").name());
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> Methods.create("activation_max", digits,
                Methods.Params.of(Map.of("iterations", 0))));
        assertTrue(e.getMessage().contains("iterations") && e.getMessage().contains("0"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> Methods.create("activation_max", digits,
                Methods.Params.of(Map.of("lr_schedule", "exponential"))));
        assertTrue(e.getMessage().contains("exponential"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> Methods.create("activation_max", digits,
                Methods.Params.of(Map.of("layer", RELU2))));
        assertTrue(e.getMessage().contains("channel"), e.getMessage());
        e = assertThrows(InvalidInputException.class, () -> run(Objective.channel(RELU2, 16), Settings.defaults()));
        assertTrue(e.getMessage().contains("channel 16"), e.getMessage());
    }
}
