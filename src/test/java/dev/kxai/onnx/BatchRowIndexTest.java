package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.graph;
import static dev.kxai.onnx.OnnxModels.intAttr;
import static dev.kxai.onnx.OnnxModels.intScalar;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.n;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.attr.Methods;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * PyTorch's {@code h[torch.arange(B), idx]} as torch.onnx.export writes it — a Gather over the batch
 * flattened into the picked axis, at offsets r·T from a Range over the batch size (dynamic axes) or
 * from the export's constant [0, T] — lowered to a per-row select: each row gets its own element,
 * whatever the batch, and its gradient reaches only that element.
 */
class BatchRowIndexTest {
    /** Rows [a, b, c, d] as h = [[a, b], [c, d]]; position = argmax(a, b); output = h[position]. */
    private static List<OnnxMl.NodeProto> nodes(boolean rangeOverBatch, String consumer) {
        List<OnnxMl.NodeProto> ns = new ArrayList<>();
        ns.add(n("Reshape", "h", "input", "h_shape").build());
        ns.add(n("Flatten", "flat", "h").addAttribute(intAttr("axis", 2)).build());
        ns.add(n("Gather", "head", "input", "first_two").addAttribute(intAttr("axis", 1)).build());
        ns.add(n("ArgMax", "position", "head").addAttribute(intAttr("axis", 1)).addAttribute(intAttr("keepdims", 0)).build());
        if (rangeOverBatch) {
            ns.add(n("Shape", "shape", "input").build());
            ns.add(n("Gather", "batch", "shape", "zero").addAttribute(intAttr("axis", 0)).build());
            ns.add(n("Range", "rows", "zero", "batch", "one").build());
            ns.add(n("Mul", "offsets", "rows", "two").build());
        }
        ns.add(n("Add", "index", "position", rangeOverBatch ? "offsets" : "export_offsets").build());
        ns.add(consumer.equals("Gather") ? n("Gather", "output", "flat", "index").addAttribute(intAttr("axis", 0)).build()
                : n(consumer, "output", "index", "two").build());
        return ns;
    }

    private static Graph model(boolean rangeOverBatch, String consumer) {
        return graph(13, nodes(rangeOverBatch, consumer), ints("h_shape", -1, 2, 2), ints("first_two", 0, 1),
                intScalar("zero", 0), intScalar("one", 1), intScalar("two", 2), ints("export_offsets", 0, 2));
    }

    private static final float[] ROWS = {1, 5, 7, 8, 9, 2, 3, 4, 0, 0, 6, 1};

    @Test
    void eachRowPicksItsOwnElementAtAnyBatchSize() {
        for (boolean range : new boolean[] {true, false}) {
            try (Model m = Model.of(model(range, "Gather"), new CpuBackend())) {
                // positions 1, 0, 0 (a tie: the first): rows [7, 8], [9, 2], [0, 0]
                assertArrayEquals(new float[] {7, 8, 9, 2, 0, 0}, m.forward(new Tensor(new int[] {3, 4}, ROWS)).data(),
                        range ? "Range over the batch" : "the export's constant offsets");
                assertArrayEquals(new float[] {9, 2}, m.forward(new Tensor(new int[] {1, 4},
                        java.util.Arrays.copyOfRange(ROWS, 4, 8))).data());
            }
        }
    }

    @Test
    void theGradientReachesOnlyThePickedElementOfItsRow() {
        try (Model m = Model.of(model(true, "Gather"), new CpuBackend())) {
            Tensor x = new Tensor(new int[] {2, 4}, java.util.Arrays.copyOf(ROWS, 8));
            float[] g = Methods.create("saliency", m, Methods.Params.of(Map.of("abs", false)))
                    .attribute(Inputs.of("input", x), new int[] {1, 0}).attributions().data();
            assertArrayEquals(new float[] {0, 0, 0, 1, 1, 0, 0, 0}, g);
        }
    }

    @Test
    void aRowIndexReadByAnythingButTheGatherIsRefusedNamingThePattern() {
        ModelException e = assertThrows(ModelException.class, () -> model(true, "Mul"));
        assertTrue(e.getMessage().contains("node 'output_node' (Mul) reads 'index', each row's offset in the flattened "
                + "batch plus a per-row position (PyTorch's h[torch.arange(B), idx])"), e.getMessage());
    }
}
