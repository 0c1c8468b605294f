package dev.kxai.errors;

import static dev.kxai.onnx.MalformedModelTest.CONV;
import static dev.kxai.onnx.MalformedModelTest.POOL;

import ai.onnx.proto.OnnxMl;
import dev.kxai.Inputs;
import dev.kxai.Model;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.IntegratedGradients;
import dev.kxai.attr.Methods;
import dev.kxai.attr.Saliency;
import dev.kxai.io.NpyIO;
import dev.kxai.onnx.MalformedModelTest;
import dev.kxai.onnx.OnnxModels;
import dev.kxai.tensor.Tensor;
import dev.kxai.testing.HostileInputs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;

/**
 * The hostile inputs of issue 13's acceptance table, generated: corrupt ONNX attributes, shapes, dtypes,
 * initializers and graph structure (each a spoiled copy of {@link MalformedModelTest#cnn}), raw bytes,
 * {@code .npy}/{@code .npz} headers, command-line misuse, API misuse (nulls, wrong parameter types, closed
 * models, bad targets) and extreme sizes. Every case is run through the API (load, then a short IG) and
 * the CLI ({@code explain}) on the harness's device.
 */
public final class HostileCases {
    private HostileCases() {
    }

    /**
     * Runs every case on {@code device} (each within {@code limitSeconds}), prints the table, and asserts
     * at least 300 cases and none bad.
     */
    public static void assertAllRefused(String device, Path tmp, int limitSeconds) throws IOException {
        HostileInputs h = new HostileInputs(device);
        addAll(h, tmp);
        List<HostileInputs.Result> results = h.run(limitSeconds);
        System.out.print(HostileInputs.table(device, results));
        List<String> bad = HostileInputs.bad(results);
        org.junit.jupiter.api.Assertions.assertTrue(results.size() >= 300, "only " + results.size() + " cases");
        org.junit.jupiter.api.Assertions.assertEquals(List.of(), bad, bad.size() + " bad of " + results.size() + ":\n"
                + String.join("\n", bad));
    }

    /** Adds every case for {@code h}'s device; files go under {@code tmp}. */
    public static void addAll(HostileInputs h, Path tmp) throws IOException {
        String dev = h.device();
        Path cnnInput = tmp.resolve("cnn_x.npy");
        NpyIO.write(cnnInput, ErrorFixtures.filled(2, 2, 6, 6));
        models(h, tmp, cnnInput);
        rawBytes(h, tmp);
        npy(h, tmp);
        cliMisuse(h, tmp);
        apiMisuse(h, dev);
        extremeSizes(h, tmp);
    }

    // ---------------------------------------------------------------- spoiled models

    private static void models(HostileInputs h, Path tmp, Path cnnInput) throws IOException {
        long[][] badInts2 = {{0, 1}, {1, -1}, {-3, -3}, {1}, {1, 1, 1}, {}, {1L << 33, 1}, {Long.MIN_VALUE, 1}};
        for (String a : List.of("strides", "dilations")) {
            for (long[] v : badInts2) {
                if (v.length == 0) {
                    continue; // an empty list is the default for these
                }
                model(h, tmp, cnnInput, "onnx attributes", "conv " + a + " " + Arrays.toString(v),
                        MalformedModelTest.ints(CONV, a, v));
            }
        }
        for (long[] v : badInts2) {
            if (v.length > 0) { // an empty kernel_shape on a Conv is the default: the weights' dims
                model(h, tmp, cnnInput, "onnx attributes", "conv kernel_shape " + Arrays.toString(v),
                        MalformedModelTest.ints(CONV, "kernel_shape", v));
            }
            model(h, tmp, cnnInput, "onnx attributes", "pool kernel_shape " + Arrays.toString(v),
                    MalformedModelTest.ints(POOL, "kernel_shape", v));
            if (v.length > 0) {
                model(h, tmp, cnnInput, "onnx attributes", "pool strides " + Arrays.toString(v),
                        MalformedModelTest.ints(POOL, "strides", v));
            }
        }
        long[][] badPads = {{-1, 0, 0, 0}, {0, 0, 0, -7}, {1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, {1L << 32, 0, 0, 0}};
        for (long[] v : badPads) {
            model(h, tmp, cnnInput, "onnx attributes", "conv pads " + Arrays.toString(v),
                    MalformedModelTest.ints(CONV, "pads", v));
            model(h, tmp, cnnInput, "onnx attributes", "pool pads " + Arrays.toString(v),
                    MalformedModelTest.ints(POOL, "pads", v));
        }
        for (long g : new long[] {0, -1, 3, 2, 8, 1L << 33}) {
            model(h, tmp, cnnInput, "onnx attributes", "conv group " + g, MalformedModelTest.i(CONV, "group", g));
        }
        for (long c : new long[] {2, -1, 1L << 40}) {
            model(h, tmp, cnnInput, "onnx attributes", "pool ceil_mode " + c, MalformedModelTest.i(POOL, "ceil_mode", c));
        }
        for (String p : List.of("SOMETIMES", "same_upper ", "")) {
            model(h, tmp, cnnInput, "onnx attributes", "conv auto_pad '" + p + "'",
                    MalformedModelTest.attr(CONV, OnnxModels.attr("auto_pad", p)));
        }
        // attributes of the wrong type
        for (String a : List.of("strides", "dilations", "kernel_shape", "pads")) {
            model(h, tmp, cnnInput, "onnx attributes", "conv " + a + " as a FLOAT", MalformedModelTest.attr(CONV,
                    OnnxMl.AttributeProto.newBuilder().setName(a).setF(1f).setType(OnnxMl.AttributeProto.AttributeType.FLOAT)
                            .build()));
            model(h, tmp, cnnInput, "onnx attributes", "conv " + a + " as a STRING", MalformedModelTest.attr(CONV,
                    OnnxModels.attr(a, "1,1")));
        }
        model(h, tmp, cnnInput, "onnx attributes", "conv group as INTS", MalformedModelTest.ints(CONV, "group", 1, 1));
        model(h, tmp, cnnInput, "onnx attributes", "pool kernel as a FLOATS", MalformedModelTest.attr(POOL,
                OnnxMl.AttributeProto.newBuilder().setName("kernel_shape").addFloats(2f).addFloats(2f)
                        .setType(OnnxMl.AttributeProto.AttributeType.FLOATS).build()));

        // ---- shapes: graph inputs and weights
        long[][] badDims = {{-1, 2, 6, -6}, {-1, 2, (1L << 32) + 6, 6}, {-1, 2, 65536, 65536}, {-1, 3, 6, 6},
            {-1, 2, 6}, {-1, 2, 6, 6, 6}, {-1, 2, 2, 2}, {-1, 2, 1, 1}};
        for (long[] d : badDims) {
            model(h, tmp, cnnInput, "onnx shapes", "input dims " + Arrays.toString(d), g -> g.setInput(0,
                    OnnxMl.ValueInfoProto.newBuilder().setName("x").setType(dims(d))));
        }
        int[][] badW = {{4, 3, 3, 3}, {4, 2, 3}, {4, 2, 9, 9}, {4, 1, 3, 3}, {0, 2, 3, 3}, {4, 2, 3, 3, 1}};
        for (int[] w : badW) {
            model(h, tmp, cnnInput, "onnx shapes", "conv weights " + Arrays.toString(w), g -> g.setInitializer(0,
                    OnnxModels.floats("W", w, new float[Math.max(0, Arrays.stream(w).reduce(1, (a, b) -> a * b))])));
        }
        for (int b : new int[] {3, 5, 1, 0}) {
            model(h, tmp, cnnInput, "onnx shapes", "conv bias of " + b, g -> g.setInitializer(1,
                    OnnxModels.floats("B", new int[] {b}, new float[b])));
        }

        // ---- element types
        // (16, bfloat16, is read since: models in bfloat16 run in float32; 17 is float8e4m3fn)
        for (int t : new int[] {0, 8, 9, 14, 17, 999, -1}) {
            model(h, tmp, cnnInput, "onnx dtypes", "graph input elem_type " + t, g -> g.getInputBuilder(0)
                    .getTypeBuilder().getTensorTypeBuilder().setElemType(t));
        }
        for (int t : new int[] {0, 8, 14, 999, 7, 6}) {
            model(h, tmp, cnnInput, "onnx dtypes", "weight data_type " + t, g -> g.setInitializer(0,
                    g.getInitializer(0).toBuilder().setDataType(t)));
        }
        model(h, tmp, cnnInput, "onnx dtypes", "graph input of a sequence type", g -> g.getInputBuilder(0).setType(
                OnnxMl.TypeProto.newBuilder().setSequenceType(OnnxMl.TypeProto.Sequence.newBuilder()
                        .setElemType(MalformedModelTest.type(-1, 2, 6, 6)))));
        model(h, tmp, cnnInput, "onnx dtypes", "graph input without a type", g -> g.getInputBuilder(0).clearType());

        // ---- initializers: declared sizes against data
        model(h, tmp, cnnInput, "onnx initializers", "weights missing", g -> g.removeInitializer(0));
        model(h, tmp, cnnInput, "onnx initializers", "weights with 71 of 72 floats", g -> g.setInitializer(0,
                OnnxModels.floats("W", new int[] {4, 2, 3, 3}, new float[71])));
        model(h, tmp, cnnInput, "onnx initializers", "weights with 73 of 72 floats", g -> g.setInitializer(0,
                OnnxModels.floats("W", new int[] {4, 2, 3, 3}, new float[73])));
        for (int n : new int[] {0, 3, 287, 289, 1000}) {
            model(h, tmp, cnnInput, "onnx initializers", "weights raw_data of " + n + " bytes", g -> g.setInitializer(0,
                    OnnxMl.TensorProto.newBuilder().setName("W").setDataType(1).addAllDims(List.of(4L, 2L, 3L, 3L))
                            .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[n])).build()));
        }
        model(h, tmp, cnnInput, "onnx initializers", "weights both raw_data and float_data", g -> g.setInitializer(0,
                g.getInitializer(0).toBuilder().setRawData(com.google.protobuf.ByteString.copyFrom(new byte[288]))));
        model(h, tmp, cnnInput, "onnx initializers", "weights in external data", g -> g.setInitializer(0,
                g.getInitializer(0).toBuilder().clearFloatData().setDataLocation(
                        OnnxMl.TensorProto.DataLocation.EXTERNAL).addExternalData(OnnxMl.StringStringEntryProto
                                .newBuilder().setKey("location").setValue("../../etc/passwd"))));
        for (long[] d : new long[][] {{-4}, {1L << 31}, {(1L << 32) + 4}, {1L << 30}, {Integer.MAX_VALUE, Integer.MAX_VALUE,
            Integer.MAX_VALUE}, {4, 0}}) {
            model(h, tmp, cnnInput, "onnx initializers", "bias dims " + Arrays.toString(d), g -> g.setInitializer(1,
                    OnnxMl.TensorProto.newBuilder().setName("B").setDataType(1).addAllDims(
                            Arrays.stream(d).boxed().toList()).addAllFloatData(List.of(1f, 2f, 3f, 4f)).build()));
        }
        model(h, tmp, cnnInput, "onnx initializers", "two initializers named B", g -> g.addInitializer(g.getInitializer(1)));
        model(h, tmp, cnnInput, "onnx initializers", "initializer without a name", g -> g.setInitializer(1,
                g.getInitializer(1).toBuilder().setName("")));

        // ---- graph structure
        model(h, tmp, cnnInput, "onnx graph", "cycle relu <-> pool", g -> g.getNodeBuilder(1).setInput(0, "p"));
        model(h, tmp, cnnInput, "onnx graph", "self loop", g -> g.getNodeBuilder(1).setInput(0, "r"));
        model(h, tmp, cnnInput, "onnx graph", "undefined input", g -> g.getNodeBuilder(1).setInput(0, "nowhere"));
        model(h, tmp, cnnInput, "onnx graph", "two nodes write 'c'", g -> {
            g.getNodeBuilder(1).setOutput(0, "c");
            g.getNodeBuilder(POOL).setInput(0, "c");
        });
        model(h, tmp, cnnInput, "onnx graph", "output never computed", g -> g.setOutput(0, g.getOutput(0).toBuilder()
                .setName("ghost")));
        model(h, tmp, cnnInput, "onnx graph", "no graph output", g -> g.clearOutput());
        model(h, tmp, cnnInput, "onnx graph", "no graph input", g -> g.clearInput());
        model(h, tmp, cnnInput, "onnx graph", "no nodes", g -> g.clearNode());
        model(h, tmp, cnnInput, "onnx graph", "empty op_type", g -> g.getNodeBuilder(1).setOpType(""));
        model(h, tmp, cnnInput, "onnx graph", "unknown op", g -> g.getNodeBuilder(1).setOpType("Frobnicate"));
        model(h, tmp, cnnInput, "onnx graph", "unknown domain", g -> g.getNodeBuilder(1).setDomain("com.evil"));
        model(h, tmp, cnnInput, "onnx graph", "conv with one input", g -> g.getNodeBuilder(CONV).clearInput().addInput("x"));
        model(h, tmp, cnnInput, "onnx graph", "relu with three inputs", g -> g.getNodeBuilder(1).addInput("c")
                .addInput("c"));
        model(h, tmp, cnnInput, "onnx graph", "relu without output", g -> g.getNodeBuilder(1).clearOutput());
        model(h, tmp, cnnInput, "onnx graph", "node output named ''", g -> g.getNodeBuilder(1).setOutput(0, ""));
        model(h, tmp, cnnInput, "onnx graph", "graph input declared twice", g -> g.addInput(g.getInput(0)));
        model(h, tmp, cnnInput, "onnx graph", "nodes out of order", g -> {
            OnnxMl.NodeProto first = g.getNode(0);
            g.removeNode(0).addNode(first);
        });
        model(h, tmp, cnnInput, "onnx graph", "node writes the graph input", g -> g.getNodeBuilder(1).setOutput(0, "x"));
        model(h, tmp, cnnInput, "onnx graph", "a subgraph attribute", g -> g.getNodeBuilder(1).addAttribute(
                OnnxMl.AttributeProto.newBuilder().setName("body").setType(OnnxMl.AttributeProto.AttributeType.GRAPH)
                        .setG(OnnxMl.GraphProto.newBuilder().setName("inner"))));
        modelBytes(h, tmp, cnnInput, "onnx graph", "opset 999", setModel(m -> m.setOpsetImport(0, m.getOpsetImport(0)
                .toBuilder().setVersion(999))));
        modelBytes(h, tmp, cnnInput, "onnx graph", "opset 0", setModel(m -> m.setOpsetImport(0, m.getOpsetImport(0)
                .toBuilder().setVersion(0))));
        modelBytes(h, tmp, cnnInput, "onnx graph", "opset -5", setModel(m -> m.setOpsetImport(0, m.getOpsetImport(0)
                .toBuilder().setVersion(-5))));
        modelBytes(h, tmp, cnnInput, "onnx graph", "no graph", OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .build().toByteArray());
    }

    private static byte[] setModel(Consumer<OnnxMl.ModelProto.Builder> edit) {
        try {
            OnnxMl.ModelProto.Builder m = OnnxMl.ModelProto.parseFrom(MalformedModelTest.cnn(g -> { })).toBuilder();
            edit.accept(m);
            return m.build().toByteArray();
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new AssertionError(e);
        }
    }

    private static OnnxMl.TypeProto dims(long[] d) {
        OnnxMl.TypeProto t = MalformedModelTest.type(Arrays.stream(d).map(x -> x == -1 ? -1 : 1).toArray());
        for (int i = 0; i < d.length; i++) {
            if (d[i] != -1) {
                t = MalformedModelTest.withDim(t, i, d[i]);
            }
        }
        return t;
    }

    private static int fileCount;

    /** A spoiled copy of the CNN, through the API and the CLI. */
    private static void model(HostileInputs h, Path tmp, Path cnnInput, String cls, String name,
            Consumer<OnnxMl.GraphProto.Builder> tweak) throws IOException {
        modelBytes(h, tmp, cnnInput, cls, name, MalformedModelTest.cnn(tweak));
    }

    private static void modelBytes(HostileInputs h, Path tmp, Path cnnInput, String cls, String name, byte[] bytes)
            throws IOException {
        Path f = Files.write(tmp.resolve("m" + fileCount++ + ".onnx"), bytes);
        String dev = h.device();
        h.api(cls, name, () -> {
            try (Model m = Model.load(f, dev)) {
                Tensor x = NpyIO.read(cnnInput);
                return new IntegratedGradients(m).nSteps(4).attribute(x, 0, 1);
            }
        });
        h.cli(cls, name, "explain", "--model", f.toString(), "--input", cnnInput.toString(), "--steps", "4", "--target",
                "0", "--device", dev, "--out", tmp.resolve("out-" + fileCount).toString(), "--progress", "off");
    }

    // ---------------------------------------------------------------- raw bytes

    private static void rawBytes(HostileInputs h, Path tmp) throws IOException {
        byte[] digits = Files.readAllBytes(ErrorFixtures.digitsModel());
        Path x = ErrorFixtures.digitsInput();
        for (int k = 1; k < 8; k++) {
            bytes(h, tmp, x, "truncated at " + k + "/8", Arrays.copyOf(digits, digits.length * k / 8));
        }
        Random r = new Random(13);
        for (int k = 0; k < 6; k++) {
            byte[] b = new byte[1 + r.nextInt(4096)];
            r.nextBytes(b);
            bytes(h, tmp, x, "random bytes #" + k, b);
        }
        bytes(h, tmp, x, "empty file", new byte[0]);
        bytes(h, tmp, x, "text", "not a model\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        bytes(h, tmp, x, "an .npy as the model", Files.readAllBytes(x));
        bytes(h, tmp, x, "zeros", new byte[1000]);
        bytes(h, tmp, x, "0xFF bytes", filledBytes(1000, (byte) 0xFF));
        // a protobuf length prefix claiming 2 GiB
        bytes(h, tmp, x, "graph field of 2 GiB", new byte[] {0x3a, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff,
            0x07, 1, 2, 3});
        String dev = h.device();
        Path dir = Files.createDirectories(tmp.resolve("a_dir.onnx"));
        for (Path p : List.of(dir, tmp.resolve("absent.onnx"))) {
            h.api("onnx raw bytes", "model path " + p.getFileName(), () -> Model.load(p, dev));
            h.cli("onnx raw bytes", "model path " + p.getFileName(), "explain", "--model", p.toString(), "--input",
                    x.toString(), "--device", dev, "--out", tmp.resolve("o").toString());
        }
    }

    private static byte[] filledBytes(int n, byte v) {
        byte[] b = new byte[n];
        Arrays.fill(b, v);
        return b;
    }

    private static void bytes(HostileInputs h, Path tmp, Path x, String name, byte[] b) throws IOException {
        Path f = Files.write(tmp.resolve("raw" + fileCount++ + ".onnx"), b);
        String dev = h.device();
        h.api("onnx raw bytes", name, () -> {
            try (Model m = Model.load(f, dev)) {
                return m.forward(NpyIO.read(x));
            }
        });
        h.cli("onnx raw bytes", name, "explain", "--model", f.toString(), "--input", x.toString(), "--device", dev,
                "--steps", "4", "--out", tmp.resolve("o" + fileCount).toString(), "--progress", "off");
    }

    // ---------------------------------------------------------------- .npy / .npz

    private static void npy(HostileInputs h, Path tmp) throws IOException {
        byte[] ok64 = ErrorFixtures.le(new float[64]);
        Map<String, byte[]> files = new java.util.LinkedHashMap<>();
        files.put("bad magic", "\u0092NUMPY garbage".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        files.put("empty", new byte[0]);
        files.put("magic only", Arrays.copyOf(ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 8}, ok64), 8));
        for (int v : new int[] {0, 4, 9, 255}) {
            byte[] b = ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 8}, ok64);
            b[6] = (byte) v;
            files.put("version " + v, b);
        }
        byte[] hugeHeader = ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 8}, ok64);
        hugeHeader[8] = (byte) 0xff;
        hugeHeader[9] = (byte) 0xff;
        files.put("header length 65535 past the end", hugeHeader);
        byte[] v2 = ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 8}, ok64);
        v2[6] = 2;
        files.put("v2 header length field misread", v2);
        for (String d : List.of("<c8", "|O", "|S4", "<U3", "<f16", ">i9", "", "<f4'}", "V8")) {
            files.put("descr '" + d + "'", ErrorFixtures.npyBytes(d, false, new int[] {1, 1, 8, 8}, ok64));
        }
        files.put("shape of 63 for 64 floats", ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 7}, ok64));
        files.put("data truncated", ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 8}, Arrays.copyOf(ok64, 100)));
        files.put("negative dim", ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, -8}, ok64));
        files.put("zero rows", ErrorFixtures.npyBytes("<f4", false, new int[] {0, 1, 8, 8}, new byte[0]));
        files.put("rank 3", ErrorFixtures.npyBytes("<f4", false, new int[] {1, 8, 8}, ok64));
        files.put("rank 1", ErrorFixtures.npyBytes("<f4", false, new int[] {64}, ok64));
        files.put("wrong channel count", ErrorFixtures.npyBytes("<f4", false, new int[] {1, 4, 4, 4}, ok64));
        float[] nan = new float[64];
        nan[5] = Float.NaN;
        files.put("a NaN", ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 8}, ErrorFixtures.le(nan)));
        float[] inf = new float[64];
        inf[63] = Float.NEGATIVE_INFINITY;
        files.put("an -Infinity", ErrorFixtures.npyBytes("<f4", false, new int[] {1, 1, 8, 8}, ErrorFixtures.le(inf)));
        for (String hdr : List.of("{'descr': '<f4', 'fortran_order': False, }", "[1, 2, 3]", "{'descr': '<f4', "
                + "'fortran_order': False, 'shape': (4294967306, 1, 8, 8), }", "{'descr': '<f4', 'fortran_order': "
                + "False, 'shape': (1099511627776,), }", "{'descr': '<f4', 'fortran_order': maybe, 'shape': (1, 1, 8, "
                + "8), }", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 8, 8, }", "{'descr': '<f4', "
                + "'fortran_order': False, 'shape': ('a', 1, 8, 8), }", "{'descr': '<f4', 'fortran_order': False, "
                + "'shape': (99999999999999999999999, 1), }", "{'descr': '<f4', 'fortran_order': False, 'shape': "
                + "(65536, 65536, 65536), }", "\u0000\u0001\u0002", "{" + "'a': 1, ".repeat(1000) + "}")) {
            files.put("header " + (hdr.length() > 50 ? hdr.substring(0, 47) + "..." : hdr), rawNpy(hdr, ok64));
        }
        files.put("npz that is not a zip", "PK\u0003\u0004 nonsense".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        String dev = h.device();
        Path model = ErrorFixtures.digitsModel();
        for (Map.Entry<String, byte[]> e : files.entrySet()) {
            String ext = e.getKey().startsWith("npz") ? ".npz" : ".npy";
            Path f = Files.write(tmp.resolve("x" + fileCount++ + ext), e.getValue());
            h.api("npy/npz", e.getKey(), () -> {
                try (Model m = Model.load(model, dev)) {
                    Tensor x = ext.equals(".npz") ? NpyIO.readNpz(f).values().iterator().next() : NpyIO.read(f);
                    return new Saliency(m).attribute(x, 0);
                }
            });
            h.cli("npy/npz", e.getKey(), "explain", "--model", model.toString(), "--input", f.toString(), "--device", dev,
                    "--method", "saliency", "--out", tmp.resolve("o" + fileCount).toString());
        }
        // a zip without the member the model's input names
        Path zip = tmp.resolve("wrong_member.npz");
        try (java.util.zip.ZipOutputStream z = new java.util.zip.ZipOutputStream(Files.newOutputStream(zip))) {
            z.putNextEntry(new java.util.zip.ZipEntry("other.npy"));
            z.write(ErrorFixtures.npyBytes("<f4", false, new int[] {2, 2}, ErrorFixtures.le(new float[4])));
            z.closeEntry();
            z.putNextEntry(new java.util.zip.ZipEntry("broken.npy"));
            z.write(new byte[] {1, 2, 3});
            z.closeEntry();
        }
        h.api("npy/npz", "npz with a broken member", () -> NpyIO.readNpz(zip));
        h.cli("npy/npz", "npz without the input's member", "explain", "--model", model.toString(), "--input",
                zip.toString(), "--device", dev, "--out", tmp.resolve("oz").toString());
    }

    /** An NPY v1.0 file with an arbitrary header text. */
    private static byte[] rawNpy(String header, byte[] data) {
        byte[] hb = (header + "\n").getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(10 + hb.length + data.length)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bb.put((byte) 0x93).put("NUMPY".getBytes(java.nio.charset.StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        bb.putShort((short) hb.length).put(hb).put(data);
        return bb.array();
    }

    // ---------------------------------------------------------------- command line

    private static void cliMisuse(HostileInputs h, Path tmp) throws IOException {
        String dev = h.device();
        String model = ErrorFixtures.digitsModel().toString();
        String x = ErrorFixtures.digitsInput().toString();
        String out = tmp.resolve("cli-out").toString();
        Path aFile = Files.writeString(tmp.resolve("a_file"), "x");
        String[][] bad = {
            {"--steps", "0"}, {"--steps", "-1"}, {"--steps", "abc"}, {"--steps", "1e99"}, {"--steps", "99999999999"},
            {"--target", "10"}, {"--target", "-1"}, {"--target", "abc"}, {"--target", "1,2,3"}, {"--target", ""},
            {"--internal-batch-size", "0"}, {"--internal-batch-size", "-5"}, {"--internal-batch-size", "x"},
            {"--device", "gpu9"}, {"--method", "frobnicate"}, {"--rule", "simpson"}, {"--baseline", "nothere.npy"},
            {"--baseline", "abc"}, {"--baseline", "NaN"}, {"--out", aFile.toString()}, {"--layer", "no_such_value"},
            {"--method", "layer_ig"}, {"--method", "occlusion"}, {"--method", "occlusion", "--sliding-window", "0,0,0"},
            {"--method", "occlusion", "--sliding-window", "1,99,99"}, {"--method", "occlusion", "--sliding-window", "a,b"},
            {"--method", "occlusion", "--sliding-window", "1,2,2", "--strides", "0"},
            {"--method", "shapley_value_sampling", "--n-samples", "0"}, {"--method", "lime", "--n-samples", "-3"},
            {"--alphas", "2,3"}, {"--alphas", "0.5,0.2"}, {"--alpha-weights", "1"}, {"--alphas", "0.1,0.9",
                "--alpha-weights", "1"}, {"--top-k", "-1"}, {"--overlay-alpha", "2"}, {"--progress", "sideways"},
            {"--method", "activation_max", "--lr-schedule", "wobbly"}, {"--method", "activation_max", "--iterations", "-1"},
            {"--method", "activation_max", "--channel", "3"}, {"--noise-tunnel", "louder"}, {"--nt-samples", "0",
                "--noise-tunnel", "smoothgrad"}, {"--stdevs", "-1", "--noise-tunnel", "smoothgrad"},
            {"--method", "lrp", "--lrp-rule", "Conv=bogus"}, {"--method", "lime", "--interpretable-model", "forest"},
            {"--method", "guided_ig", "--fraction", "0"}, {"--method", "blur_ig", "--max-sigma", "-1"},
            {"--method", "feature_ablation", "--feature-mask", x}, {"--input", "nope=" + x}, {"--additional", "ghost=" + x}, {"--seed", "x"},
            {"--image", tmp.toString(), "--preprocess", "sideways"}, {"--no-such-option"}, {"--steps"},
        };
        for (String[] b : bad) {
            String[] args = concat(new String[] {"explain", "--model", model, "--input", x, "--device", dev, "--out", out,
                "--progress", "off"}, b);
            h.cli("cli arguments", "explain " + String.join(" ", b), args);
        }
        String[][] other = {
            {"frobnicate"}, {"metrics", "--metric", "accuracy"}, {"metrics", "--metric", "infidelity", "--n-perturb-samples",
                "0"}, {"metrics", "--metric", "deletion", "--curve-steps", "-2"}, {"validate", tmp.resolve("nodir").toString()},
            {"validate", aFile.toString()}, {"bench", "--model", model, "--input", x, "--repeats", "0"},
            {"bench", "--model", model, "--input", x, "--threads", "-1"}, {"info", "--model", aFile.toString()},
            {"serve", "--model", "m=" + aFile}, {"serve", "--model", "m=" + model, "--port", "99999"},
            {"serve", "--model", "m=" + model, "--max-batch", "0"}, {"concepts", "--model", model, "--layer", "ghost"},
            {"loadtest", "--clients", "0"}, {"explain", "--model"}, {"info", "--device", "tpu"},
        };
        for (String[] o : other) {
            h.cli("cli arguments", String.join(" ", o), o);
        }
    }

    private static String[] concat(String[] a, String[] b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    // ---------------------------------------------------------------- API misuse

    private static void apiMisuse(HostileInputs h, String dev) {
        Path model = ErrorFixtures.digitsModel();
        Tensor x = NpyIO.read(ErrorFixtures.digitsInput()).rows(0, 2);
        String c = "api misuse";
        h.api(c, "load(null)", () -> Model.load((Path) null));
        h.api(c, "load(path, 'quantum')", () -> Model.load(model, "quantum"));
        h.api(c, "Params.of(null)", () -> Methods.Params.of(null));
        Map<String, Object> withNull = new HashMap<>();
        withNull.put("n_steps", null);
        h.api(c, "a null parameter", () -> Methods.Params.of(withNull));
        h.api(c, "NpyIO.read(null path)", () -> NpyIO.read((Path) null));
        h.api(c, "NpyIO.read(null bytes)", () -> NpyIO.read((byte[]) null, "x"));
        h.api(c, "NpyIO.readNpz(null)", () -> NpyIO.readNpz(null));
        h.api(c, "NpyIO.write(null, t)", () -> {
            NpyIO.write(null, x);
            return null;
        });
        h.api(c, "Methods.create(null name)", () -> withModel(model, dev, m -> Methods.create(null, m,
                Methods.Params.of(Map.of()))));
        h.api(c, "Methods.create(unknown)", () -> withModel(model, dev, m -> Methods.create("nope", m,
                Methods.Params.of(Map.of()))));
        h.api(c, "Methods.create(null model)", () -> Methods.create("ig", null, Methods.Params.of(Map.of())));
        h.api(c, "Methods.create(null params)", () -> withModel(model, dev, m -> Methods.create("ig", m, null)));
        // wrong parameter types: each must name the parameter, the expected and the given type
        Object[][] wrong = {
            {"ig", "n_steps", "50"}, {"ig", "n_steps", 2.5}, {"ig", "n_steps", 1L << 40}, {"ig", "method", 3},
            {"ig", "baselines", "zeros"}, {"ig", "baselines", List.of("zeros")}, {"ig", "internal_batch_size", 2.5},
            {"ig", "internal_batch_size", "8"}, {"ig", "multiply_by_inputs", "yes"}, {"ig", "alphas", "0.5"},
            {"ig", "alphas", List.of("a")}, {"ig", "progress", "bar"}, {"ig", "return_convergence_delta", 1},
            {"saliency", "abs", "true"}, {"layer_ig", "layer", 5}, {"layer_grad_cam", "layer", List.of()},
            {"ig", "nt_type", 1}, {"ig", "nt_type", "smoothgrad", "stdevs", "big"}, {"saliency", "nt_type", "smoothgrad", "stdevs", List.of("a")},
            {"gradient_shap", "seed", "s"}, {"gradient_shap", "n_samples", 3.0}, {"occlusion", "sliding_window_shapes", "3"},
            {"occlusion", "sliding_window_shapes", List.of("3")}, {"feature_ablation", "feature_mask", "mask"},
            {"feature_ablation", "feature_mask", Map.of("input", "mask")}, {"feature_permutation", "permutation",
                List.of(1, 0)}, {"shapley_value_sampling", "permutations", "all"}, {"shapley_value_sampling",
                    "permutations", List.of(1)}, {"lime", "alpha", "a"}, {"lime", "interpretable_model", 1},
            {"lime", "samples", new int[] {1}}, {"lrp", "rules", 5}, {"neuron_gradient", "layer", "x", "neuron", "0"},
            {"activation_max", "channel", "1", "layer", "x"}, {"activation_max", "lr", "fast"}, {"guided_ig", "fraction",
                "half"}, {"blur_ig", "sqrt", "no"}, {"idgi", "alphas", 0.5}, {"layer_conductance", "layer", 1.0},
        };
        for (Object[] w : wrong) {
            Map<String, Object> p = new HashMap<>();
            for (int i = 1; i < w.length; i += 2) {
                p.put((String) w[i], w[i + 1]);
            }
            String name = w[0] + " " + p;
            h.api("api parameter types", name, () -> withModel(model, dev, m -> Methods.create((String) w[0], m,
                    Methods.Params.of(p)).attribute(Inputs.of(m.graph().inputName(), x), new int[] {0, 1})));
        }
        // closed model: every method refuses with ModelClosedException
        for (String method : List.of("ig", "saliency", "ixg", "deeplift", "guided_backprop", "occlusion", "lrp",
                "feature_ablation", "gradient_shap", "blur_ig")) {
            Map<String, Object> p = method.equals("occlusion") ? Map.of("sliding_window_shapes", new int[] {1, 2, 2})
                    : Map.of();
            h.api("api closed model", method, () -> {
                Model m = Model.load(model, dev);
                Methods.Method meth = Methods.create(method, m, Methods.Params.of(p));
                m.close();
                return meth.attribute(Inputs.of(m.graph().inputName(), x), new int[] {0, 1});
            });
        }
        h.api("api closed model", "forward", () -> {
            Model m = Model.load(model, dev);
            m.close();
            return m.forward(x);
        });
        // targets and inputs that do not fit
        int[][] targets = {{10, 0}, {-1, 0}, {0, 1, 2}, {Integer.MIN_VALUE, 0}, {}};
        for (int[] t : targets) {
            h.api("api inputs", "targets " + Arrays.toString(t), () -> withModel(model, dev, m ->
                    new IntegratedGradients(m).nSteps(4).attribute(x, t)));
        }
        float[][] values = {{Float.NaN}, {Float.POSITIVE_INFINITY}, {Float.NEGATIVE_INFINITY}};
        for (float[] v : values) {
            h.api("api inputs", "input holding " + v[0], () -> withModel(model, dev, m -> {
                Tensor y = x.copy();
                y.data()[17] = v[0];
                return new Saliency(m).attribute(y, 0, 1);
            }));
        }
        int[][] shapes = {{2, 1, 8, 7}, {2, 64}, {2, 2, 8, 8}, {0, 1, 8, 8}, {2, 1, 8, 8, 1}, {1}};
        for (int[] s : shapes) {
            h.api("api inputs", "input of shape " + Arrays.toString(s), () -> withModel(model, dev, m ->
                    new IntegratedGradients(m).nSteps(4).attribute(Tensor.zeros(s), 0, 1)));
        }
        h.api("api inputs", "baseline of the wrong shape", () -> withModel(model, dev, m -> new IntegratedGradients(m)
                .nSteps(4).baselines(Baseline.of(Tensor.zeros(3, 3))).attribute(x, 0, 1)));
        h.api("api inputs", "n_steps 0", () -> withModel(model, dev, m -> new IntegratedGradients(m).nSteps(0)
                .attribute(x, 0, 1)));
        h.api("api inputs", "n_steps -7", () -> withModel(model, dev, m -> new IntegratedGradients(m).nSteps(-7)
                .attribute(x, 0, 1)));
        h.api("api inputs", "internal batch size 0", () -> withModel(model, dev, m -> new IntegratedGradients(m)
                .internalBatchSize(0).attribute(x, 0, 1)));
        h.api("api inputs", "internal batch size -1", () -> withModel(model, dev, m -> new IntegratedGradients(m)
                .internalBatchSize(-1).attribute(x, 0, 1)));
        h.api("api inputs", "Inputs with an unknown name", () -> withModel(model, dev, m -> new IntegratedGradients(m)
                .attribute(Inputs.of("ghost", x), 0, 1)));
    }

    private interface WithModel {
        Object apply(Model m) throws Exception;
    }

    private static Object withModel(Path model, String dev, WithModel f) throws Exception {
        try (Model m = Model.load(model, dev)) {
            return f.apply(m);
        }
    }

    // ---------------------------------------------------------------- extreme sizes

    private static void extremeSizes(HostileInputs h, Path tmp) throws IOException {
        String dev = h.device();
        Path model = ErrorFixtures.digitsModel();
        Tensor x = NpyIO.read(ErrorFixtures.digitsInput()).rows(0, 1);
        String c = "extreme sizes";
        h.api(c, "n_steps 10^7", () -> withModel(model, dev, m -> new IntegratedGradients(m).nSteps(10_000_000)
                .attribute(x, 0)));
        h.api(c, "n_steps Integer.MAX_VALUE", () -> withModel(model, dev, m -> new IntegratedGradients(m)
                .nSteps(Integer.MAX_VALUE).attribute(x, 0)));
        for (String method : List.of("layer_conductance", "guided_ig", "blur_ig", "idgi", "internal_influence")) {
            Map<String, Object> p = new HashMap<>(Map.of("n_steps", Integer.MAX_VALUE));
            if (method.startsWith("layer") || method.startsWith("internal")) {
                p.put("layer", "/conv1/Conv_output_0");
            }
            h.api(c, method + " n_steps MAX", () -> withModel(model, dev, m -> Methods.create(method, m,
                    Methods.Params.of(p)).attribute(Inputs.of(m.graph().inputName(), x), new int[] {0})));
        }
        h.api(c, "shapley_value_sampling n_samples MAX", () -> withModel(model, dev, m -> Methods.create(
                "shapley_value_sampling", m, Methods.Params.of(Map.of("n_samples", Integer.MAX_VALUE)))
                .attribute(Inputs.of(m.graph().inputName(), x), new int[] {0})));
        h.api(c, "smoothgrad nt_samples MAX", () -> withModel(model, dev, m -> Methods.create("saliency", m,
                Methods.Params.of(Map.of("nt_type", "smoothgrad", "nt_samples", Integer.MAX_VALUE)))
                .attribute(Inputs.of(m.graph().inputName(), x), new int[] {0})));
        h.api(c, "activation_max iterations MAX", () -> withModel(model, dev, m -> Methods.create("activation_max", m,
                Methods.Params.of(Map.of("iterations", Integer.MAX_VALUE)))
                .attribute(Inputs.of(m.graph().inputName(), x), new int[] {0})));
        String xs = ErrorFixtures.digitsInput().toString();
        String[][] cli = {{"--steps", "10000000"}, {"--steps", "2147483647"}, {"--method", "guided_ig", "--steps",
            "2147483647"}, {"--method", "shapley_value_sampling", "--n-samples", "2147483647"}, {"--method", "lime",
                "--n-samples", "2147483647"}, {"--method", "activation_max", "--iterations", "2147483647"},
            {"--noise-tunnel", "smoothgrad", "--nt-samples", "2147483647"},
            {"--method", "occlusion", "--sliding-window", "1,2147483647,1"}};
        for (String[] b : cli) {
            h.cli(c, "explain " + String.join(" ", b), concat(new String[] {"explain", "--model", model.toString(),
                "--input", xs, "--device", dev, "--out", tmp.resolve("ox").toString(), "--progress", "off"}, b));
        }
    }
}
