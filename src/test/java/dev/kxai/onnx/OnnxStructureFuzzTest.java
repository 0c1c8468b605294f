package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Structure-aware, coverage-guided fuzz target (Jazzer): the fuzzer's bytes choose a seed model
 * (the corpus of {@link OnnxImporterFuzzTest}) and up to six edits of its protobuf, the kinds a
 * malformed or hostile model carries: attribute values (zero, negative, huge, wrong length), tensor
 * dims and data (declared size against the bytes present, element type), input dims, wiring
 * (undefined, duplicate or cyclic names), node order and type, dropped nodes and initializers,
 * opset. The result loads and runs or is refused with a {@code KxaiException}; byte-level fuzzing
 * rarely gets past protobuf's own checks, this target starts past them.
 */
class OnnxStructureFuzzTest {
    private static final List<OnnxMl.ModelProto> SEEDS = seeds();

    private static List<OnnxMl.ModelProto> seeds() {
        Path dir = Path.of("src/test/resources/dev/kxai/onnx/OnnxImporterFuzzTestInputs/parse");
        List<OnnxMl.ModelProto> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path p : files.filter(f -> f.toString().endsWith(".onnx")).sorted().toList()) {
                out.add(OnnxMl.ModelProto.parseFrom(Files.readAllBytes(p)));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    private static final long[] EXTREMES = {0, -1, 1, 2, -2, 3, Integer.MAX_VALUE, Integer.MIN_VALUE,
            (1L << 32) + 8, 1L << 40, Long.MAX_VALUE, Long.MIN_VALUE, 65536, 7};

    private static long value(FuzzedDataProvider d) {
        return d.consumeBoolean() ? d.pickValue(EXTREMES) : d.consumeLong(-4, 16);
    }

    @FuzzTest(maxDuration = "30s")
    @Timeout(value = 10, unit = TimeUnit.SECONDS) // per input while fuzzing (libFuzzer -timeout): a hang is a finding
    void mutate(FuzzedDataProvider d) throws Exception {
        OnnxMl.ModelProto seed = SEEDS.get(d.consumeInt(0, SEEDS.size() - 1));
        OnnxMl.ModelProto.Builder m = seed.toBuilder();
        OnnxMl.GraphProto.Builder g = m.getGraphBuilder();
        int edits = d.consumeInt(1, 6);
        for (int e = 0; e < edits && d.remainingBytes() > 0; e++) {
            edit(d, m, g);
        }
        byte[] bytes = m.build().toByteArray();
        dev.kxai.io.FuzzChecks.withDeadline(() -> FuzzRun.parseAndRun(bytes));
    }

    private static void edit(FuzzedDataProvider d, OnnxMl.ModelProto.Builder m, OnnxMl.GraphProto.Builder g) {
        int nodes = g.getNodeCount();
        int inits = g.getInitializerCount();
        switch (d.consumeInt(0, 12)) {
            case 0 -> { // an int or ints attribute
                if (nodes == 0) {
                    return;
                }
                OnnxMl.NodeProto.Builder n = g.getNodeBuilder(d.consumeInt(0, nodes - 1));
                if (n.getAttributeCount() == 0) {
                    return;
                }
                OnnxMl.AttributeProto.Builder a = n.getAttributeBuilder(d.consumeInt(0, n.getAttributeCount() - 1));
                if (a.getIntsCount() > 0 || d.consumeBoolean()) {
                    int len = d.consumeBoolean() ? a.getIntsCount() : d.consumeInt(0, 6);
                    a.clearInts();
                    for (int i = 0; i < len; i++) {
                        a.addInts(value(d));
                    }
                } else {
                    a.setI(value(d));
                }
            }
            case 1 -> { // a float attribute or a type change of an attribute
                if (nodes == 0) {
                    return;
                }
                OnnxMl.NodeProto.Builder n = g.getNodeBuilder(d.consumeInt(0, nodes - 1));
                if (n.getAttributeCount() == 0) {
                    n.addAttribute(OnnxMl.AttributeProto.newBuilder().setName(d.pickValue(new String[] {"axis",
                            "strides", "pads", "kernel_shape", "group", "dilations", "perm", "alpha", "epsilon"}))
                            .setI(value(d)).setType(OnnxMl.AttributeProto.AttributeType.INT));
                    return;
                }
                OnnxMl.AttributeProto.Builder a = n.getAttributeBuilder(d.consumeInt(0, n.getAttributeCount() - 1));
                a.setF(d.pickValue(new float[] {Float.NaN, Float.POSITIVE_INFINITY, -1f, 0f, 1e30f, d.consumeFloat()}));
                if (d.consumeBoolean()) {
                    OnnxMl.AttributeProto.AttributeType type = OnnxMl.AttributeProto.AttributeType.forNumber(
                            d.consumeInt(0, 14));
                    a.setType(type == null ? OnnxMl.AttributeProto.AttributeType.FLOAT : type);
                }
            }
            case 2 -> { // an initializer's dims
                if (inits == 0) {
                    return;
                }
                OnnxMl.TensorProto.Builder t = g.getInitializerBuilder(d.consumeInt(0, inits - 1));
                int len = d.consumeBoolean() ? t.getDimsCount() : d.consumeInt(0, 5);
                List<Long> old = new ArrayList<>(t.getDimsList());
                t.clearDims();
                for (int i = 0; i < len; i++) {
                    t.addDims(i < old.size() && d.consumeBoolean() ? old.get(i) : value(d));
                }
            }
            case 3 -> { // an initializer's data: truncated, extended, retyped
                if (inits == 0) {
                    return;
                }
                OnnxMl.TensorProto.Builder t = g.getInitializerBuilder(d.consumeInt(0, inits - 1));
                switch (d.consumeInt(0, 3)) {
                    case 0 -> t.setRawData(t.getRawData().substring(0,
                            d.consumeInt(0, Math.max(0, t.getRawData().size()))));
                    case 1 -> t.setRawData(t.getRawData().concat(ByteString.copyFrom(d.consumeBytes(16))));
                    case 2 -> t.setDataType(d.consumeInt(0, 17));
                    default -> {
                        t.clearRawData();
                        int n = d.consumeInt(0, 8);
                        for (int i = 0; i < n; i++) {
                            t.addFloatData(d.consumeFloat());
                            t.addInt64Data(value(d));
                        }
                    }
                }
            }
            case 4 -> { // a graph input's dims
                if (g.getInputCount() == 0) {
                    return;
                }
                OnnxMl.ValueInfoProto.Builder v = g.getInputBuilder(d.consumeInt(0, g.getInputCount() - 1));
                OnnxMl.TensorShapeProto.Builder s = v.getTypeBuilder().getTensorTypeBuilder().getShapeBuilder();
                if (s.getDimCount() > 0 && d.consumeBoolean()) {
                    OnnxMl.TensorShapeProto.Dimension.Builder dim = s.getDimBuilder(d.consumeInt(0, s.getDimCount() - 1));
                    if (d.consumeBoolean()) {
                        dim.setDimValue(value(d));
                    } else {
                        dim.setDimParam(d.consumeString(4));
                    }
                } else if (d.consumeBoolean()) {
                    s.addDim(OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(value(d)));
                } else if (s.getDimCount() > 0) {
                    s.removeDim(s.getDimCount() - 1);
                }
                if (d.consumeBoolean()) {
                    v.getTypeBuilder().getTensorTypeBuilder().setElemType(d.consumeInt(0, 17));
                }
            }
            case 5 -> { // rewire a node input to another name (maybe undefined, maybe a later output: a cycle)
                if (nodes == 0) {
                    return;
                }
                OnnxMl.NodeProto.Builder n = g.getNodeBuilder(d.consumeInt(0, nodes - 1));
                String name = name(d, g);
                if (n.getInputCount() > 0 && d.consumeBoolean()) {
                    n.setInput(d.consumeInt(0, n.getInputCount() - 1), name);
                } else {
                    n.addInput(name);
                }
            }
            case 6 -> { // a node output renamed (maybe a duplicate of another value)
                if (nodes == 0) {
                    return;
                }
                OnnxMl.NodeProto.Builder n = g.getNodeBuilder(d.consumeInt(0, nodes - 1));
                if (n.getOutputCount() > 0) {
                    n.setOutput(d.consumeInt(0, n.getOutputCount() - 1), name(d, g));
                } else {
                    n.addOutput(name(d, g));
                }
            }
            case 7 -> { // drop a node or an initializer
                if (d.consumeBoolean() && nodes > 0) {
                    g.removeNode(d.consumeInt(0, nodes - 1));
                } else if (inits > 0) {
                    g.removeInitializer(d.consumeInt(0, inits - 1));
                }
            }
            case 8 -> { // duplicate or move a node
                if (nodes == 0) {
                    return;
                }
                OnnxMl.NodeProto n = g.getNode(d.consumeInt(0, nodes - 1));
                if (d.consumeBoolean()) {
                    g.addNode(d.consumeInt(0, nodes), n);
                } else {
                    int from = d.consumeInt(0, nodes - 1);
                    OnnxMl.NodeProto moved = g.getNode(from);
                    g.removeNode(from);
                    g.addNode(d.consumeInt(0, nodes - 1), moved);
                }
            }
            case 9 -> { // another operator type
                if (nodes == 0) {
                    return;
                }
                g.getNodeBuilder(d.consumeInt(0, nodes - 1)).setOpType(d.consumeBoolean()
                        ? d.pickValue(OnnxImporter.SUPPORTED) : d.consumeString(12));
            }
            case 10 -> { // opset and IR version
                m.clearOpsetImport().addOpsetImport(OnnxMl.OperatorSetIdProto.newBuilder()
                        .setDomain(d.consumeBoolean() ? "" : d.consumeString(8)).setVersion(value(d)));
                if (d.consumeBoolean()) {
                    m.setIrVersion(value(d));
                }
            }
            case 11 -> { // the graph output renamed, or a second output
                if (g.getOutputCount() > 0 && d.consumeBoolean()) {
                    g.getOutputBuilder(d.consumeInt(0, g.getOutputCount() - 1)).setName(name(d, g));
                } else {
                    g.addOutput(OnnxMl.ValueInfoProto.newBuilder().setName(name(d, g)));
                }
            }
            default -> { // an initializer named like an input, or a new input
                if (inits > 0 && g.getInputCount() > 0 && d.consumeBoolean()) {
                    g.getInitializerBuilder(d.consumeInt(0, inits - 1)).setName(
                            g.getInput(d.consumeInt(0, g.getInputCount() - 1)).getName());
                } else if (g.getInputCount() > 0) {
                    g.addInput(g.getInput(0).toBuilder().setName(name(d, g)));
                }
            }
        }
    }

    /** An existing value's name (node output, input, initializer) or a fresh one. */
    private static String name(FuzzedDataProvider d, OnnxMl.GraphProto.Builder g) {
        List<String> names = new ArrayList<>();
        g.getNodeList().forEach(n -> names.addAll(n.getOutputList()));
        g.getInputList().forEach(v -> names.add(v.getName()));
        g.getInitializerList().forEach(t -> names.add(t.getName()));
        if (names.isEmpty() || d.consumeInt(0, 7) == 0) {
            return d.consumeString(6);
        }
        return names.get(d.consumeInt(0, names.size() - 1));
    }
}
