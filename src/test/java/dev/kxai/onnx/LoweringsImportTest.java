package dev.kxai.onnx;

import static dev.kxai.onnx.OnnxModels.floats;
import static dev.kxai.onnx.OnnxModels.graph;
import static dev.kxai.onnx.OnnxModels.intAttr;
import static dev.kxai.onnx.OnnxModels.ints;
import static dev.kxai.onnx.OnnxModels.n;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Model;
import dev.kxai.ModelException;
import dev.kxai.attr.Saliency;
import dev.kxai.backend.cpu.CpuBackend;
import dev.kxai.graph.Graph;
import dev.kxai.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The load-time rewrites of {@link Lowerings}: refusals name the file, node, attribute and value;
 * edge forms (one-input Sum, empty axes) load as the identity. Their numbers are checked against
 * PyTorch in OperatorModelsTest.
 */
class LoweringsImportTest {
    private static final OnnxMl.NodeProto VIEW = n("Reshape", "x3", "input", "shape3").build();
    private static final OnnxMl.TensorProto SHAPE3 = ints("shape3", 0, 2, 2);

    private static OnnxMl.AttributeProto floatAttr(String name, float v) {
        return OnnxMl.AttributeProto.newBuilder().setName(name).setType(OnnxMl.AttributeProto.AttributeType.FLOAT)
                .setF(v).build();
    }

    private static void refused(String[] want, Runnable load) {
        ModelException e = assertThrows(ModelException.class, load::run);
        for (String w : want) {
            assertTrue(e.getMessage().contains(w), "'" + w + "' in: " + e.getMessage());
        }
    }

    @Test
    void badAttributesAreRefusedWithFileNodeAttributeAndValue() {
        refused(new String[] {"graph-opset18.onnx", "'output_node'", "num_groups = 3"}, () -> graph(18, List.of(VIEW,
                n("GroupNormalization", "output", "x3", "s", "b").addAttribute(intAttr("num_groups", 3)).build()),
                SHAPE3, floats("s", new int[] {3}, 1, 1, 1), floats("b", new int[] {3}, 0, 0, 0)));
        refused(new String[] {"graph-opset21.onnx", "'output_node'", "stash_type = 0"}, () -> graph(21, List.of(VIEW,
                n("GroupNormalization", "output", "x3", "s", "b").addAttribute(intAttr("num_groups", 1))
                        .addAttribute(intAttr("stash_type", 0)).build()),
                SHAPE3, floats("s", new int[] {2}, 1, 1), floats("b", new int[] {2}, 0, 0)));
        // opset 21 takes one scale per channel: a per-group scale is refused with its shape
        refused(new String[] {"'output_node'", "scale 's'", "[1]", "expected [2]"}, () -> graph(21, List.of(VIEW,
                n("GroupNormalization", "output", "x3", "s", "b").addAttribute(intAttr("num_groups", 1)).build()),
                SHAPE3, floats("s", new int[] {1}, 1), floats("b", new int[] {1}, 0)));
        refused(new String[] {"'output_node'", "(Celu)", "alpha = 0.0"}, () -> graph(13, List.of(
                n("Celu", "output", "input").addAttribute(floatAttr("alpha", 0f)).build())));
        refused(new String[] {"'output_node'", "(LogSoftmax)", "axis = 2"}, () -> graph(13, List.of(
                n("LogSoftmax", "output", "input").addAttribute(intAttr("axis", 2)).build())));
        refused(new String[] {"'output_node'", "(ReduceL2)", "axes = [5]"}, () -> graph(13, List.of(
                n("ReduceL2", "output", "input").addAttribute(OnnxModels.intsAttr("axes", 5)).build())));
        refused(new String[] {"'output_node'", "(InstanceNormalization)", "epsilon = -1.0"}, () -> graph(13, List.of(VIEW,
                n("InstanceNormalization", "output", "x3", "s", "b").addAttribute(floatAttr("epsilon", -1f)).build()),
                SHAPE3, floats("s", new int[] {2}, 1, 1), floats("b", new int[] {2}, 0, 0)));
        refused(new String[] {"'output_node'", "(PRelu)", "1 inputs"}, () -> graph(13, List.of(n("PRelu", "output", "input")
                .build())));
    }

    /** input [batch, 4] viewed as [batch, 2, 1, 2] for the spatial operators. */
    private static final OnnxMl.NodeProto VIEW4 = n("Reshape", "x4", "input", "shape4").build();
    private static final OnnxMl.TensorProto SHAPE4 = ints("shape4", 0, 2, 1, 2);

    @Test
    void badSpatialAttributesAreRefusedWithNodeAttributeAndValue() {
        OnnxMl.TensorProto w = floats("w", new int[] {2, 1, 1, 1}, 1, 2);
        refused(new String[] {"'output_node'", "(ConvTranspose)", "group = 3"}, () -> graph(13, List.of(VIEW4,
                n("ConvTranspose", "output", "x4", "w").addAttribute(intAttr("group", 3)).build()), SHAPE4, w));
        refused(new String[] {"'output_node'", "(ConvTranspose)", "output_padding = [2, 0]"}, () -> graph(13, List.of(VIEW4,
                n("ConvTranspose", "output", "x4", "w").addAttribute(OnnxModels.intsAttr("strides", 2, 2))
                        .addAttribute(OnnxModels.intsAttr("output_padding", 2, 0)).build()), SHAPE4, w));
        refused(new String[] {"'output_node'", "(ConvTranspose)", "weights 'x4'", "computed per request"},
                () -> graph(13, List.of(VIEW4, n("ConvTranspose", "output", "x4", "x4").build()), SHAPE4));
        refused(new String[] {"'output_node'", "(DepthToSpace)", "blocksize = 2"}, () -> graph(13, List.of(VIEW4,
                n("DepthToSpace", "output", "x4").addAttribute(intAttr("blocksize", 2)).build()), SHAPE4));
        refused(new String[] {"'output_node'", "(DepthToSpace)", "mode = 'XYZ'"}, () -> graph(13, List.of(VIEW4,
                n("DepthToSpace", "output", "x4").addAttribute(intAttr("blocksize", 1))
                        .addAttribute(OnnxModels.attr("mode", "XYZ")).build()), SHAPE4));
        refused(new String[] {"'output_node'", "(Tile)", "batch axis"}, () -> graph(13, List.of(
                n("Tile", "output", "input", "reps").build()), ints("reps", 2, 1)));
        refused(new String[] {"'output_node'", "(LRN)", "size = 0"}, () -> graph(13, List.of(VIEW4,
                n("LRN", "output", "x4").addAttribute(intAttr("size", 0)).build()), SHAPE4));
        // 3-D: a group count that does not divide the channels is refused
        refused(new String[] {"'output_node'", "(Conv)", "group = 3", "dividing"}, () -> graph(13, List.of(
                n("Reshape", "x5", "input", "shape5").build(),
                n("Conv", "output", "x5", "w3").addAttribute(intAttr("group", 3)).build()),
                ints("shape5", 0, 2, 1, 1, 2), floats("w3", new int[] {2, 1, 1, 1, 1}, 1, 1)));
        // a 1-D Conv's attributes are checked as such
        refused(new String[] {"'output_node'", "(Conv)", "kernel_shape", "[1, 2]", "1-D"}, () -> graph(13, List.of(
                n("Reshape", "x3", "input", "shape3").build(),
                n("Conv", "output", "x3", "w1").addAttribute(OnnxModels.intsAttr("kernel_shape", 1, 2)).build()),
                ints("shape3", 0, 2, 2), floats("w1", new int[] {1, 2, 1}, 1, 1)));
    }

    private static OnnxMl.NodeProto.Builder einsum(String eq, String output, String... inputs) {
        return n("Einsum", output, inputs).addAttribute(OnnxModels.attr("equation", eq));
    }

    @Test
    void einsumImplicitOutputThreeOperandsAndRefusals() {
        float[] x = {1, -2, 3, 0.5f, 2, 0, -1, 4};
        float[] w = {1, 2, 0, -1, 3, 1, 0.5f, 0, -2, 1, 1, 1}; // [4, 3]
        float[] u = {1, 0, 0, 2, -1, 1}; // [3, 2]
        // "bi,ij" is "bi,ij->bj"; then (x W) U through three operands, and a transposed output
        Tensor in = new Tensor(new int[] {2, 4}, x);
        for (var g : List.of(graph(12, List.of(einsum("bi,ij", "xw", "input", "w").build(),
                        einsum("bj,jk->bk", "output", "xw", "u").build()), floats("w", new int[] {4, 3}, w),
                        floats("u", new int[] {3, 2}, u)),
                graph(12, List.of(einsum("bi,ij,jk->bk", "output", "input", "w", "u").build()),
                        floats("w", new int[] {4, 3}, w), floats("u", new int[] {3, 2}, u)))) {
            try (Model m = Model.of(g, new CpuBackend())) {
                float[] y = m.forward(in).data();
                for (int b = 0; b < 2; b++) {
                    for (int k = 0; k < 2; k++) {
                        double want = 0;
                        for (int j = 0; j < 3; j++) {
                            double xw = 0;
                            for (int i = 0; i < 4; i++) {
                                xw += x[b * 4 + i] * w[i * 3 + j];
                            }
                            want += xw * u[j * 2 + k];
                        }
                        org.junit.jupiter.api.Assertions.assertEquals(want, y[b * 2 + k], 1e-5, "row " + b + ", " + k);
                    }
                }
            }
        }
        refused(new String[] {"'output_node'", "(Einsum)", "equation = 'bii->bi'", "no letter twice"}, () -> graph(12,
                List.of(VIEW, einsum("bii->bi", "output", "x3").build()), SHAPE3));
        refused(new String[] {"'output_node'", "(Einsum)", "depends on the batch"}, () -> graph(12,
                List.of(einsum("bi,bi->i", "output", "input", "input").build())));
        refused(new String[] {"'output_node'", "(Einsum)", "one term per input"}, () -> graph(12,
                List.of(einsum("bi,ij->bj", "output", "input").build())));
    }

    @Test
    void oneInputSumAndEmptyAxesAreTheIdentity() {
        float[] x = {1, -2, 3, 0.5f};
        for (var g : List.of(graph(13, List.of(n("Sum", "output", "input").build())),
                graph(13, List.of(n("Mean", "output", "input").build())),
                graph(18, List.of(n("ReduceSumSquare", "output", "input").addAttribute(intAttr("noop_with_empty_axes", 1))
                        .build())))) {
            try (Model m = Model.of(g, new CpuBackend())) {
                assertArrayEquals(x, m.forward(new Tensor(new int[] {1, 4}, x)).data());
            }
        }
    }

    @Test
    void reduceL2OfAZeroSliceHasGradientZeroNotNaN() {
        // output = input + ‖input ⊙ 0‖₂ (kept dims): the norm of an all-zero slice is 0, and its gradient is 0
        // (torch.norm masks zero norms); √s alone gave ∞ · 0 = NaN in every input gradient
        Graph g = graph(13, List.of(n("Mul", "z", "input", "zeros").build(),
                n("ReduceL2", "norm", "z").addAttribute(OnnxModels.intsAttr("axes", 1)).build(),
                n("Add", "output", "input", "norm").build()), floats("zeros", new int[] {1, 4}, 0, 0, 0, 0));
        try (Model m = Model.of(g, new CpuBackend())) {
            float[] x = {1, -2, 3, 0.5f};
            Tensor in = new Tensor(new int[] {1, 4}, x);
            assertArrayEquals(x, m.forward(in).data());
            assertArrayEquals(new float[] {0, 0, 1, 0}, new Saliency(m).attribute(in, false, 2).attributions().data());
        }
    }

    @Test
    void globalLpPoolOfAZeroChannelHasGradientZeroNotNaN() {
        // output = input + GlobalLpPool₂(reshape(input) ⊙ 0): a dead channel's 2-norm is 0 with gradient 0
        Graph g = graph(13, List.of(n("Reshape", "image", "input", "to_image").build(),
                n("Mul", "z", "image", "zeros").build(),
                n("GlobalLpPool", "pooled", "z").addAttribute(intAttr("p", 2)).build(),
                n("Reshape", "flat", "pooled", "to_flat").build(),
                n("Add", "output", "input", "flat").build()),
                OnnxModels.ints("to_image", -1, 1, 2, 2), OnnxModels.ints("to_flat", -1, 1),
                floats("zeros", new int[] {1, 1, 2, 2}, 0, 0, 0, 0));
        try (Model m = Model.of(g, new CpuBackend())) {
            float[] x = {1, -2, 3, 0.5f};
            Tensor in = new Tensor(new int[] {1, 4}, x);
            assertArrayEquals(x, m.forward(in).data());
            assertArrayEquals(new float[] {0, 0, 1, 0}, new Saliency(m).attribute(in, false, 2).attributions().data());
        }
    }
}
