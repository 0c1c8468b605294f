package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.Model;
import dev.kxai.backend.Backends;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Element-wise Max and Min of values computed per request (torch.maximum, torch.clamp with tensor
 * bounds), any number of inputs with broadcasting: the exact max/min forward, the gradient to the
 * selected operand (the earlier one on a tie).
 */
public class MinMaxTest {
    /** input [batch, 4] → op(input, c1 [4], c2 [1]) with the first {@code inputs} of them. */
    public static Graph model(String op, int inputs) {
        List<String> ins = new java.util.ArrayList<>(List.of("input"));
        for (int i = 1; i < inputs; i++) {
            ins.add("c" + i);
        }
        return OnnxModels.graph(13, List.of(OnnxModels.n(op, "output", ins.toArray(new String[0])).build()),
                OnnxModels.floats("c1", new int[] {4}, 0.5f, -1f, 2f, 0f),
                OnnxModels.floats("c2", new int[] {1}, 1f));
    }

    @Test
    void maxAndMinPerRequestWithTheirGradients() {
        float[] x = {1f, -2f, 1.5f, 0f, -3f, 4f, 3f, 0.25f};
        float[] c1 = {0.5f, -1f, 2f, 0f};
        for (String device : new String[] {"cpu"}) {
            for (String op : new String[] {"Max", "Min"}) {
                for (int n : new int[] {1, 2, 3}) {
                    try (Model m = Model.of(model(op, n), Backends.select(device))) {
                        Tensor in = new Tensor(new int[] {2, 4}, x);
                        float[] y = m.forward(m.inputs(in)).data();
                        for (int i = 0; i < 8; i++) {
                            float want = x[i];
                            boolean fromInput = true;
                            if (n > 1) {
                                float c = c1[i % 4];
                                boolean takes = op.equals("Max") ? c > want : c < want;
                                if (takes) {
                                    want = c;
                                    fromInput = false;
                                }
                            }
                            if (n > 2) {
                                boolean takes = op.equals("Max") ? 1f > want : 1f < want;
                                if (takes) {
                                    want = 1f;
                                    fromInput = false;
                                }
                            }
                            assertEquals(want, y[i], 0f, op + " of " + n + " at " + i);
                            // d output[r, j] / d input[r, j]: 1 where the input was selected (ties stay with it)
                            int r = i / 4;
                            int j = i % 4;
                            int[] t = {j, j};
                            Tensor g = m.run("g", run -> run.gradients(Map.of("input", in), t, Set.of("input")))
                                    .value().get("input");
                            assertEquals(fromInput ? 1f : 0f, g.data()[r * 4 + j], 0f, op + " gradient at " + i);
                        }
                    }
                }
            }
        }
    }
}
