package dev.kxai.errors;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.attr.Methods;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Was a BUG (issue 13): Methods.create with a parameter of the wrong type threw ClassCastException. Now an
 * InvalidInputException naming the parameter, the type expected and the type given.
 */
class MethodParamTypesTest {
    @Test
    void wrongParameterTypesNameParameterExpectedAndGiven() {
        try (Model m = Model.load(ErrorFixtures.digitsModel(), "cpu")) {
            Object[][] cases = {{"ig", "internal_batch_size", 2.5, "Integer", "Double"},
                {"ig", "baselines", "zeros", "Baseline", "String"}, {"ig", "method", 3, "String", "Integer"},
                {"occlusion", "sliding_window_shapes", List.of("3"), "int[]", "String"},
                {"feature_permutation", "permutation", List.of(1, 0), "int[]", "List"},
                {"layer_ig", "layer", 5, "String", "Integer"}, {"saliency", "abs", "true", "Boolean", "String"}};
            for (Object[] c : cases) {
                InvalidInputException e = assertThrows(InvalidInputException.class, () -> Methods.create((String) c[0], m,
                        Methods.Params.of(Map.of((String) c[1], c[2]))), c[0] + " " + c[1]);
                for (int i = 1; i < 5; i += i == 1 ? 2 : 1) {
                    assertTrue(e.getMessage().contains(c[i].toString()), c[i] + " missing from: " + e.getMessage());
                }
            }
        }
    }
}
