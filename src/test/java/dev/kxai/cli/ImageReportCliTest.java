package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.TestData;
import dev.kxai.io.NpyIO;
import dev.kxai.report.TopKBars;
import dev.kxai.testing.CliRun;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** explain --image/--preprocess/--report end to end on tinyvgg (3x64x64) and the tabular MLP. */
class ImageReportCliTest {
    /** A small generated picture: a coloured disc on a gradient, w x h. */
    static Path picture(Path dir, String name, int w, int h, int hue) throws Exception {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double d = Math.hypot(x - w / 2.0, y - h / 2.0);
                int bg = (x * 255 / w) << 8 | (y * 255 / h);
                img.setRGB(x, y, d < Math.min(w, h) / 3.0 ? hue : bg);
            }
        }
        Path f = dir.resolve(name);
        ImageIO.write(img, name.endsWith(".jpg") ? "jpg" : "png", f.toFile());
        return f;
    }

    /** tinyvgg takes 3x64x64: resize to 72, crop 64, mean/std 0.5. */
    static Path spec(Path dir) throws Exception {
        Path f = dir.resolve("tiny.json");
        Files.writeString(f, "{\"resize\": 72, \"crop\": 64, \"mean\": [0.5, 0.5, 0.5], \"std\": [0.5, 0.5, 0.5]}");
        return f;
    }

    @Test
    void imagesThroughASpecGiveAReportOverlaysAndAttributions(@TempDir Path dir) throws Exception {
        Path images = Files.createDirectory(dir.resolve("images"));
        picture(images, "a_cat.png", 96, 80, 0xE08020);
        picture(images, "b_dog.jpg", 80, 120, 0x2040E0);
        Path model = TestData.reference("tinyvgg").resolve("model.onnx");
        Path out = dir.resolve("out");
        Path report = dir.resolve("r.html");
        CliRun r = CliRun.of("explain", "--image", images.toString(), "--model", model.toString(), "--preprocess",
                spec(dir).toString(), "--steps", "8", "--report", report.toString(), "--out", out.toString());
        assertEquals(0, r.status(), r.err());
        assertArrayEquals(new int[] {2, 3, 64, 64}, NpyIO.read(out.resolve("attributions.npy")).shape());
        assertTrue(r.out().contains("2 image(s)"), r.out());
        for (int i = 0; i < 2; i++) {
            BufferedImage overlay = ImageIO.read(out.resolve(String.format("overlay_%03d.png", i)).toFile());
            assertTrue(overlay.getWidth() >= 160 && overlay.getWidth() <= 512, "bounded: " + overlay.getWidth());
        }
        String html = Files.readString(report);
        assertEquals(6, count(html, "<img "), "input, signed and absolute overlays per example");
        assertEquals(6, count(html, "src=\"data:image/png;base64,"), "every image embedded");
        assertTrue(!html.contains("http://") && !html.contains("https://"), "no network references");
        assertTrue(html.contains("a_cat.png") && html.contains("b_dog.jpg"), "the files are named");
        assertTrue(html.contains("&quot;resize&quot;: 72") && html.contains("n_steps") && html.contains("delta"), html.substring(0, 2000));
        Matcher m = Pattern.compile("<dt>prediction</dt><dd>class \\d").matcher(html);
        assertTrue(m.find(), "the prediction is shown");
    }

    @Test
    void theSpecBesideTheModelIsPickedUpAndTheImagenetPresetWorks(@TempDir Path dir) throws Exception {
        Path model = Files.copy(TestData.reference("tinyvgg").resolve("model.onnx"), dir.resolve("tiny.onnx"));
        Files.copy(spec(dir), dir.resolve("tiny.preprocess.json"));
        Path img = picture(dir, "x.png", 64, 64, 0xFF0000);
        CliRun r = CliRun.of("explain", "--image", img.toString(), "--model", model.toString(), "--method", "saliency",
                "--out", dir.resolve("o").toString());
        assertEquals(0, r.status(), r.err());
        // the imagenet preset makes 3x224x224, which tinyvgg does not take: the error names both
        CliRun bad = CliRun.of("explain", "--image", img.toString(), "--model", model.toString(), "--preprocess",
                "imagenet", "--method", "saliency", "--out", dir.resolve("o2").toString());
        assertEquals(2, bad.status(), bad.err());
        assertTrue(bad.err().contains("x.png") && bad.err().contains("224"), bad.err());
    }

    @Test
    void badImagesAndSpecsAreNamed(@TempDir Path dir) throws Exception {
        Path model = TestData.reference("tinyvgg").resolve("model.onnx");
        Path fake = dir.resolve("fake.png");
        Files.writeString(fake, "not an image");
        CliRun r = CliRun.of("explain", "--image", fake.toString(), "--model", model.toString(), "--preprocess",
                spec(dir).toString(), "--out", dir.resolve("o").toString());
        assertEquals(2, r.status());
        assertTrue(r.err().contains("fake.png") && r.err().contains("cannot decode"), r.err());
        Path img = picture(dir, "ok.png", 64, 64, 0xFF0000);
        CliRun none = CliRun.of("explain", "--image", img.toString(), "--model", model.toString(), "--out",
                dir.resolve("o").toString());
        assertEquals(2, none.status());
        assertTrue(none.err().contains("--preprocess") && none.err().contains("model.preprocess.json"), none.err());
        Path badSpec = dir.resolve("bad.json");
        Files.writeString(badSpec, "{\"crop\": 64, \"sdt\": [0.5]}");
        CliRun spec = CliRun.of("explain", "--image", img.toString(), "--model", model.toString(), "--preprocess",
                badSpec.toString(), "--out", dir.resolve("o").toString());
        assertEquals(2, spec.status());
        assertTrue(spec.err().contains("bad.json") && spec.err().contains("'sdt'"), spec.err());
        CliRun both = CliRun.of("explain", "--image", img.toString(), "--input", "x.npy", "--model", model.toString());
        assertEquals(2, both.status());
        assertTrue(both.err().contains("--input or --image"), both.err());
    }

    @Test
    void tabularModelsGetBoundedBarCharts(@TempDir Path dir) throws Exception {
        Path ref = TestData.reference("mlp_tabular");
        Path out = dir.resolve("out");
        Path report = dir.resolve("t.html");
        CliRun r = CliRun.of("explain", "--model", ref.resolve("model.onnx").toString(), "--input",
                ref.resolve("input.npy").toString(), "--top-k", "5", "--report", report.toString(), "--out", out.toString());
        assertEquals(0, r.status(), r.err());
        BufferedImage bars = ImageIO.read(out.resolve("example_000.png").toFile());
        assertEquals(TopKBars.WIDTH, bars.getWidth());
        assertTrue(bars.getHeight() < 200, "5 bars: " + bars.getHeight());
        String html = Files.readString(report);
        assertEquals(16, count(html, "<img "), "one chart per example");
        Path names = dir.resolve("names.txt");
        Files.writeString(names, "age\nincome\nb\nc\nd\ne\nf\n");
        CliRun wrong = CliRun.of("explain", "--model", ref.resolve("model.onnx").toString(), "--input",
                ref.resolve("input.npy").toString(), "--feature-names", names.toString(), "--out", out.toString());
        assertEquals(2, wrong.status());
        assertTrue(wrong.err().contains("names.txt has 7 names, input input has 8 features"), wrong.err());
        Files.writeString(names, "age\nincome\nb\nc\nd\ne\nf\ng\n");
        CliRun named = CliRun.of("explain", "--model", ref.resolve("model.onnx").toString(), "--input",
                ref.resolve("input.npy").toString(), "--feature-names", names.toString(), "--out", out.toString());
        assertEquals(0, named.status(), named.err());
    }

    /**
     * The command, {@code explain --image cat.png --model M.onnx --preprocess imagenet --report r.html}, on a
     * small model of ImageNet's input shape built here: [batch, 3, 224, 224] → Conv 3→4 (3x3, pad 1) → Relu →
     * GlobalAveragePool → Flatten → Gemm 4→5.
     */
    @Test
    void theImagenetCommandWorksEndToEnd(@TempDir Path dir) throws Exception {
        Path model = imagenetShapedModel(dir.resolve("resnet_tiny.onnx"));
        Path cat = picture(dir, "cat.png", 320, 240, 0xD09050);
        Path report = dir.resolve("r.html");
        CliRun r = CliRun.of("explain", "--image", cat.toString(), "--model", model.toString(), "--preprocess", "imagenet",
                "--report", report.toString(), "--out", dir.resolve("out").toString());
        assertEquals(0, r.status(), r.err());
        assertArrayEquals(new int[] {1, 3, 224, 224}, NpyIO.read(dir.resolve("out/attributions.npy")).shape());
        String html = Files.readString(report);
        assertEquals(3, count(html, "src=\"data:image/png;base64,"), "image, signed and absolute overlay");
        assertTrue(html.contains("cat.png") && html.contains("&quot;crop&quot;: [224, 224]"), "file and preset shown");
        assertTrue(r.out().contains("wrote report"), r.out());
    }

    static Path imagenetShapedModel(Path file) throws Exception {
        java.util.Random rnd = new java.util.Random(7);
        float[] w = new float[4 * 3 * 3 * 3];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian() * 0.3f;
        }
        float[] fc = new float[5 * 4];
        for (int i = 0; i < fc.length; i++) {
            fc[i] = (float) rnd.nextGaussian();
        }
        ai.onnx.proto.OnnxMl.GraphProto.Builder g = ai.onnx.proto.OnnxMl.GraphProto.newBuilder().setName("tiny")
                .addInput(value("input", -1, 3, 224, 224)).addOutput(value("output", -1, 5))
                .addInitializer(tensor("w", new int[] {4, 3, 3, 3}, w)).addInitializer(tensor("b", new int[] {4}, new float[4]))
                .addInitializer(tensor("fc", new int[] {5, 4}, fc)).addInitializer(tensor("fb", new int[] {5}, new float[5]))
                .addNode(node("Conv", "c", "input", "w", "b").addAttribute(ints("pads", 1, 1, 1, 1))
                        .addAttribute(ints("kernel_shape", 3, 3)))
                .addNode(node("Relu", "r", "c")).addNode(node("GlobalAveragePool", "p", "r"))
                .addNode(node("Flatten", "f", "p")).addNode(node("Gemm", "output", "f", "fc", "fb")
                        .addAttribute(ai.onnx.proto.OnnxMl.AttributeProto.newBuilder().setName("transB").setI(1)
                                .setType(ai.onnx.proto.OnnxMl.AttributeProto.AttributeType.INT)));
        byte[] bytes = ai.onnx.proto.OnnxMl.ModelProto.newBuilder().setIrVersion(8)
                .addOpsetImport(ai.onnx.proto.OnnxMl.OperatorSetIdProto.newBuilder().setDomain("").setVersion(13))
                .setGraph(g).build().toByteArray();
        Files.write(file, bytes);
        return file;
    }

    private static ai.onnx.proto.OnnxMl.ValueInfoProto value(String name, int... dims) {
        ai.onnx.proto.OnnxMl.TensorShapeProto.Builder s = ai.onnx.proto.OnnxMl.TensorShapeProto.newBuilder();
        for (int d : dims) {
            s.addDim(d < 0 ? ai.onnx.proto.OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimParam("batch")
                    : ai.onnx.proto.OnnxMl.TensorShapeProto.Dimension.newBuilder().setDimValue(d));
        }
        return ai.onnx.proto.OnnxMl.ValueInfoProto.newBuilder().setName(name).setType(ai.onnx.proto.OnnxMl.TypeProto
                .newBuilder().setTensorType(ai.onnx.proto.OnnxMl.TypeProto.Tensor.newBuilder()
                        .setElemType(ai.onnx.proto.OnnxMl.TensorProto.DataType.FLOAT_VALUE).setShape(s))).build();
    }

    private static ai.onnx.proto.OnnxMl.TensorProto tensor(String name, int[] dims, float[] v) {
        ai.onnx.proto.OnnxMl.TensorProto.Builder t = ai.onnx.proto.OnnxMl.TensorProto.newBuilder().setName(name)
                .setDataType(ai.onnx.proto.OnnxMl.TensorProto.DataType.FLOAT_VALUE);
        for (int d : dims) {
            t.addDims(d);
        }
        for (float x : v) {
            t.addFloatData(x);
        }
        return t.build();
    }

    private static ai.onnx.proto.OnnxMl.NodeProto.Builder node(String op, String out, String... in) {
        ai.onnx.proto.OnnxMl.NodeProto.Builder n = ai.onnx.proto.OnnxMl.NodeProto.newBuilder().setOpType(op).setName(out)
                .addOutput(out);
        for (String i : in) {
            n.addInput(i);
        }
        return n;
    }

    private static ai.onnx.proto.OnnxMl.AttributeProto ints(String name, long... v) {
        ai.onnx.proto.OnnxMl.AttributeProto.Builder a = ai.onnx.proto.OnnxMl.AttributeProto.newBuilder().setName(name)
                .setType(ai.onnx.proto.OnnxMl.AttributeProto.AttributeType.INTS);
        for (long x : v) {
            a.addInts(x);
        }
        return a.build();
    }

    static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }
}
