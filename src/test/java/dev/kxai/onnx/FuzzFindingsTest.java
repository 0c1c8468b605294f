package dev.kxai.onnx;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * The bugs the fuzz targets found ({@link OnnxImporterFuzzTest}, {@link OnnxStructureFuzzTest}),
 * each as a readable edit of a seed model: refused with a {@link ModelException} naming the node or
 * value, where each used to end in a raw Java exception. The fuzzers' own reproducers (crash-*
 * beside their seeds) replay the exact inputs.
 */
class FuzzFindingsTest {
    private static final Path SEEDS = Path.of("src/test/resources/dev/kxai/onnx/OnnxImporterFuzzTestInputs/parse");

    private static OnnxMl.ModelProto seed(String name) throws Exception {
        return OnnxMl.ModelProto.parseFrom(Files.readAllBytes(SEEDS.resolve(name + ".onnx")));
    }

    private static ModelException refused(String seed, Consumer<OnnxMl.GraphProto.Builder> edit, String... words)
            throws Exception {
        OnnxMl.ModelProto.Builder m = seed(seed).toBuilder();
        edit.accept(m.getGraphBuilder());
        byte[] bytes = m.build().toByteArray();
        ModelException e = assertThrows(ModelException.class, () -> OnnxImporter.parse(bytes, "fuzz.onnx"));
        for (String w : words) {
            assertTrue(e.getMessage().contains(w), "'" + w + "' not in: " + e.getMessage());
        }
        return e;
    }

    private static OnnxMl.NodeProto.Builder first(OnnxMl.GraphProto.Builder g, String opType) {
        for (int i = 0; i < g.getNodeCount(); i++) {
            if (g.getNode(i).getOpType().equals(opType)) {
                return g.getNodeBuilder(i);
            }
        }
        throw new AssertionError("no " + opType + " in the seed");
    }

    /** A constant node appended to the graph: op over the given (initializer) inputs. */
    private static void constantNode(OnnxMl.GraphProto.Builder g, String op, String out, String... inputs) {
        OnnxMl.NodeProto.Builder n = OnnxMl.NodeProto.newBuilder().setOpType(op).setName("fuzzed_" + op).addOutput(out);
        for (String i : inputs) {
            n.addInput(i);
        }
        g.addNode(0, n);
    }

    @Test
    void rangeWithTwoInputs() throws Exception {
        refused("mlp_shapley", g -> {
            g.addInitializer(OnnxModels.intScalar("r0", 0));
            g.addInitializer(OnnxModels.intScalar("r1", 4));
            constantNode(g, "Range", "r", "r0", "r1");
        }, "fuzzed_Range", "at least 3 input");
    }

    @Test
    void sliceWithoutStartsAndEnds() throws Exception {
        refused("mlp_shapley", g -> {
            g.addInitializer(OnnxModels.ints("s0", 1, 2, 3));
            constantNode(g, "Slice", "s", "s0");
        }, "fuzzed_Slice");
    }

    @Test
    void transposeWithAPermThatIsNoPermutation() throws Exception {
        refused("mlp_shapley", g -> {
            g.addInitializer(OnnxModels.floats("t0", new int[] {2, 3}, 1, 2, 3, 4, 5, 6));
            constantNode(g, "Transpose", "t", "t0");
            g.getNodeBuilder(0).addAttribute(OnnxModels.intsAttr("perm", 0, 0));
        }, "fuzzed_Transpose", "perm [0, 0]");
        refused("mlp_shapley", g -> {
            g.addInitializer(OnnxModels.floats("t0", new int[] {2, 3}, 1, 2, 3, 4, 5, 6));
            constantNode(g, "Transpose", "t", "t0");
            g.getNodeBuilder(0).addAttribute(OnnxModels.intsAttr("perm", 1, 5));
        }, "perm [1, 5]");
    }

    @Test
    void nodeWithoutInputs() throws Exception {
        refused("mlp_shapley", g -> first(g, "Gemm").clearInput(), "has no first input");
        refused("text_tokens", g -> first(g, "Gather").clearInput(), "Gather", "has no first input");
    }

    @Test
    void graphInputDeclaredTwice() throws Exception {
        refused("mlp_shapley", g -> g.addInput(g.getInput(0)), "declares input", "twice");
    }

    @Test
    void recurrentNodesWithBadSizes() throws Exception {
        String op = seed("recurrent").getGraph().getNodeList().stream().map(OnnxMl.NodeProto::getOpType)
                .filter(t -> t.equals("LSTM") || t.equals("GRU")).findFirst().orElseThrow();
        // a dynamic sequence length: used to be new String[-1]; now refused at the input, naming the free dimension
        refused("recurrent", g -> g.getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder().getShapeBuilder()
                .getDimBuilder(1).setDimParam("seq"), "free dimension 'seq' at axis 1");
        refused("recurrent", g -> setInt(first(g, op), "hidden_size", (1L << 32) + 8), "hidden_size 4294967304");
        refused("recurrent", g -> setInt(first(g, op), "layout", 2), "layout 2");
        // a sequence of 65536 steps: used to unroll into 3.5 million nodes (20 s, gigabytes)
        refused("recurrent", g -> g.getInputBuilder(0).getTypeBuilder().getTensorTypeBuilder().getShapeBuilder()
                .getDimBuilder(1).setDimValue(65536), "sequence length 65536 exceeds the limit of 4096");
    }

    /**
     * Was the open timeout finding (issue 13): a 7 KiB file whose ConstantOfShape declares 19,398,660
     * elements, folded at load through Concat, Reshape, Slice, Transpose and Cast before the Pad refused
     * it: 2.5 s uninstrumented, past the fuzzer's 10 s instrumented. Now refused at the ConstantOfShape in
     * well under a second.
     */
    @Test
    void hugeFoldedConstant() throws Exception {
        byte[] bytes = Files.readAllBytes(SEEDS.resolve("timeout-huge-constant-of-shape"));
        long t0 = System.nanoTime();
        ModelException e = assertThrows(ModelException.class, () -> OnnxImporter.parse(bytes, "fuzz.onnx"));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(e.getMessage().contains("'/pad/ConstantOfShape'") && e.getMessage().contains("19398660")
                && e.getMessage().contains("kxai.max.folded.elements"), e.getMessage());
        assertTrue(ms < 1000, "took " + ms + " ms");
        refused("mlp_shapley", g -> {
            g.addNode(0, OnnxMl.NodeProto.newBuilder().setName("big").setOpType("ConstantOfShape").addInput("s")
                    .addOutput("big_out"));
            g.addInitializer(OnnxModels.ints("s", 1L << 20, 1L << 10));
        }, "'big'", "[1048576, 1024]", "more than 4194304 elements");
    }

    private static void setInt(OnnxMl.NodeProto.Builder n, String name, long v) {
        for (int i = 0; i < n.getAttributeCount(); i++) {
            if (n.getAttribute(i).getName().equals(name)) {
                n.setAttribute(i, n.getAttribute(i).toBuilder().setI(v));
                return;
            }
        }
        n.addAttribute(OnnxModels.intAttr(name, v));
    }
}
