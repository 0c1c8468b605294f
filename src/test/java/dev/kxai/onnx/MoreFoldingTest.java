package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.ModelException;
import dev.kxai.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The load-time operators of {@link MoreFolding} against values worked out by hand from the ONNX spec. */
class MoreFoldingTest {
    private static ConstantFolding.Node node(String op, long opset, boolean integer, Map<String, Object> attrs) {
        return new ConstantFolding.Node() {
            @Override
            public String name() {
                return "n";
            }

            @Override
            public String opType() {
                return op;
            }

            @Override
            public long opset() {
                return opset;
            }

            @Override
            public long intAttr(String a, long dflt) {
                return attrs.containsKey(a) ? ((Number) attrs.get(a)).longValue() : dflt;
            }

            @Override
            public int[] intsAttr(String a) {
                return (int[]) attrs.get(a);
            }

            @Override
            public Tensor tensorAttr(String a) {
                return null;
            }

            @Override
            public boolean integer() {
                return integer;
            }

            @Override
            public String stringAttr(String a, String dflt) {
                return attrs.containsKey(a) ? (String) attrs.get(a) : dflt;
            }
        };
    }

    private static Tensor t(int[] shape, float... v) {
        return new Tensor(shape, v);
    }

    private static Tensor v(float... v) {
        return new Tensor(new int[] {v.length}, v);
    }

    private static Tensor fold(String op, Map<String, Object> attrs, Tensor... in) {
        return ConstantFolding.fold(node(op, 18, false, attrs), Arrays.asList(in));
    }

    private static void same(int[] shape, float[] want, Tensor got) {
        assertArrayEquals(shape, got.shape(), "shape");
        assertArrayEquals(want, got.data(), 1e-6f);
    }

    @Test
    void modFollowsTheDivisorUnlessFmod() {
        // Python's %: 7 % -3 = -2, -7 % 3 = 2, 7 % -5 = -3, -7 % 5 = 3
        same(new int[] {4}, new float[] {-2, 2, -3, 3}, fold("Mod", Map.of(), v(7, -7, 7, -7), v(-3, 3, -5, 5)));
        same(new int[] {4}, new float[] {1, -1, 2, -2}, fold("Mod", Map.of("fmod", 1), v(7, -7, 7, -7), v(3, 3, 5, 5)));
        ModelException zero = assertThrows(ModelException.class,
                () -> ConstantFolding.fold(node("Mod", 13, true, Map.of()), List.of(v(1), v(0))));
        assertTrue(zero.getMessage().contains("'n' (Mod)"), zero.getMessage());
    }

    @Test
    void argMaxArgMinCumSumTriluOneHot() {
        Tensor m = t(new int[] {2, 3}, 1, 5, 5, -2, -2, 0);
        same(new int[] {2, 1}, new float[] {1, 2}, fold("ArgMax", Map.of("axis", 1), m));
        same(new int[] {2}, new float[] {2, 2}, fold("ArgMax", Map.of("axis", 1, "keepdims", 0, "select_last_index", 1), m));
        same(new int[] {1, 3}, new float[] {1, 1, 1}, fold("ArgMin", Map.of(), m));
        same(new int[] {2, 3}, new float[] {11, 10, 5, -4, -2, 0}, fold("CumSum", Map.of("reverse", 1), m, v(1)));
        same(new int[] {2, 3}, new float[] {0, 1, 6, 0, -2, -4}, fold("CumSum", Map.of("exclusive", 1), m, v(-1)));
        same(new int[] {2, 3}, new float[] {0, 5, 5, 0, 0, 0}, fold("Trilu", Map.of(), m, v(1)));
        same(new int[] {2, 3}, new float[] {1, 0, 0, -2, -2, 0}, fold("Trilu", Map.of("upper", 0), m));
        // indices [2, -1] with depth 3 on axis 0: one column per index
        same(new int[] {3, 2}, new float[] {0, 0, 0, 0, 9, 9}, fold("OneHot", Map.of("axis", 0), v(2, -1), v(3), v(0, 9)));
    }

    @Test
    void nonZeroScatterNdTileAndReductions() {
        Tensor m = t(new int[] {2, 2}, 0, 3, 4, 0);
        same(new int[] {2, 2}, new float[] {0, 1, 1, 0}, fold("NonZero", Map.of(), m));
        same(new int[] {2, 2}, new float[] {0, 6, 14, 0}, fold("ScatterND", Map.of("reduction", "add"), m,
                t(new int[] {2, 2}, 1, 0, 0, 1), v(10, 3)));
        same(new int[] {2, 2}, new float[] {7, 8, 4, 0}, fold("ScatterND", Map.of(), m, t(new int[] {1, 1}, 0), v(7, 8)));
        same(new int[] {2, 4}, new float[] {0, 3, 0, 3, 4, 0, 4, 0}, fold("Tile", Map.of(), m, v(1, 2)));
        same(new int[] {1, 2}, new float[] {0, 0}, fold("ReduceProd", Map.of(), m, v(0)));
        same(new int[] {}, new float[] {7}, fold("ReduceSum", Map.of("keepdims", 0), m));
        same(new int[] {2}, new float[] {1.5f, 2}, fold("ReduceMean", Map.of("keepdims", 0), m, v(1)));
        same(new int[] {3}, new float[] {2, 4, 6}, fold("Sum", Map.of(), v(1, 2, 3), v(1), v(0, 1, 2)));
        same(new int[] {2}, new float[] {1, 0}, fold("Xor", Map.of(), v(1, 1), v(0, 2)));
        same(new int[] {2}, new float[] {0, 1}, fold("Sin", Map.of(), v(0, (float) (Math.PI / 2))));
    }
}
