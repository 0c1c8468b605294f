package dev.kxai.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Tensor;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Images through the preprocessing specs, checked against values computed here independently. */
class PreprocessTest {
    static int r(int x, int y) {
        return (x * 7 + y) % 256;
    }

    static int g(int x, int y) {
        return (3 * x + 5 * y) % 256;
    }

    static int b(int x, int y) {
        return (x ^ y) & 0xFF;
    }

    /** A width x height PNG whose pixel (x, y) is (r, g, b) above, written and read back through the file. */
    static Path pattern(Path dir, String name, int width, int height) throws Exception {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                img.setRGB(x, y, (r(x, y) << 16) | (g(x, y) << 8) | b(x, y));
            }
        }
        Path f = dir.resolve(name);
        ImageIO.write(img, "png", f.toFile());
        return f;
    }

    @Test
    void imagenetPresetNormalisesKnownPixels(@TempDir Path dir) throws Exception {
        // 300 x 256: the shorter side is already 256, so the resize is the identity; the 224 crop starts at
        // top (256 - 224) / 2 = 16, left (300 - 224) / 2 = 38
        BufferedImage img = Images.read(pattern(dir, "p.png", 300, 256));
        Tensor t = Preprocess.imagenet().apply(img);
        assertArrayEquals(new int[] {1, 3, 224, 224}, t.shape());
        float[] mean = {0.485f, 0.456f, 0.406f};
        float[] std = {0.229f, 0.224f, 0.225f};
        int[][] at = {{0, 0}, {223, 223}, {17, 101}, {200, 3}, {112, 112}};
        for (int[] p : at) {
            int y = p[0];
            int x = p[1];
            int[] rgb = {r(x + 38, y + 16), g(x + 38, y + 16), b(x + 38, y + 16)};
            for (int c = 0; c < 3; c++) {
                float expected = (rgb[c] / 255f - mean[c]) / std[c];
                assertEquals(expected, t.data()[(c * 224 + y) * 224 + x], 1e-6, "channel " + c + " at " + y + "," + x);
            }
        }
    }

    @Test
    void bgrOrderScale255AndGrey(@TempDir Path dir) throws Exception {
        BufferedImage img = Images.read(pattern(dir, "p.png", 10, 6));
        Preprocess bgr = Preprocess.fromJson("{\"channel_order\": \"BGR\", \"scale\": 255, \"mean\": [1, 2, 3]}", "t");
        Tensor t = bgr.apply(img);
        assertArrayEquals(new int[] {1, 3, 6, 10}, t.shape());
        assertEquals(b(4, 5) - 1f, t.data()[(0 * 6 + 5) * 10 + 4], 0f);
        assertEquals(g(4, 5) - 2f, t.data()[(1 * 6 + 5) * 10 + 4], 0f);
        assertEquals(r(4, 5) - 3f, t.data()[(2 * 6 + 5) * 10 + 4], 0f);
        Tensor grey = Preprocess.fromJson("{\"channels\": 1}", "t").apply(img);
        assertArrayEquals(new int[] {1, 1, 6, 10}, grey.shape());
        // PIL's L = R * 299/1000 + G * 587/1000 + B * 114/1000, in 16-bit fixed point, rounded
        double l = (r(2, 3) * 19595 + g(2, 3) * 38470 + b(2, 3) * 7471 + 32768) / 65536;
        assertEquals(l / 255, grey.data()[3 * 10 + 2], 1e-6);
    }

    @Test
    void resizeIsAntialiasedBilinear() {
        // a ramp v = x over 256 columns halved to 128: output i averages 2i-1..2i+2 with weights 1/8, 3/8, 3/8, 1/8
        // (the triangle of support 2 around pixel centre 2i + 1), i.e. 2i + 0.5, rounded half up: 2i + 1
        BufferedImage ramp = new BufferedImage(256, 4, BufferedImage.TYPE_INT_RGB);
        for (int x = 0; x < 256; x++) {
            for (int y = 0; y < 4; y++) {
                ramp.setRGB(x, y, (x << 16) | (x << 8) | x);
            }
        }
        BufferedImage half = Images.resizeBilinear(ramp, 128, 2);
        for (int i = 1; i < 127; i++) {
            assertEquals(2 * i + 1, half.getRGB(i, 1) & 0xFF, "column " + i);
        }
        // upscaling a constant image keeps it constant; the shorter side goes to `resize`, the longer truncated
        Preprocess p = Preprocess.fromJson("{\"resize\": 7}", "t");
        assertArrayEquals(new int[] {3, 7, 17}, p.outputShape(256, 100)); // int(7 * 256 / 100) = int(17.92)
        BufferedImage c = new BufferedImage(3, 5, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 5; y++) {
            for (int x = 0; x < 3; x++) {
                c.setRGB(x, y, 0x336699);
            }
        }
        BufferedImage big = p.geometry(c);
        assertEquals(7, big.getWidth());
        assertEquals(11, big.getHeight()); // int(7 * 5 / 3)
        for (int y = 0; y < 11; y++) {
            for (int x = 0; x < 7; x++) {
                assertEquals(0x336699, big.getRGB(x, y) & 0xFFFFFF);
            }
        }
    }

    /** (x² + 3y, xy + 7, 5x + y²) mod 256: high-frequency content in every direction. */
    static BufferedImage wild(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.setRGB(x, y, ((x * x + 3 * y) % 256) << 16 | ((x * y + 7) % 256) << 8 | (5 * x + y * y) % 256);
            }
        }
        return img;
    }

    /**
     * Pixels Pillow 12.3.0 computes for the same images ({@code Image.resize(size, Image.BILINEAR)}, and
     * torchvision's Resize(256) + CenterCrop(224) on a PIL image): equal, bit for bit.
     */
    @Test
    void resizeAndCropMatchPillowAndTorchvision() {
        BufferedImage src = wild(53, 41);
        BufferedImage down = Images.resizeBilinear(src, 20, 15);
        int[][] d = {{0, 0, 0x050807}, {7, 3, 0x92B6B4}, {19, 14, 0x64AC9E}, {11, 9, 0x80865C}};
        for (int[] p : d) {
            assertEquals(p[2], down.getRGB(p[0], p[1]) & 0xFFFFFF, "53x41 -> 20x15 at " + p[0] + "," + p[1]);
        }
        BufferedImage up = Images.resizeBilinear(src, 97, 64);
        int[][] u = {{0, 0, 0x000700}, {50, 33, 0x1D3F3E}, {96, 63, 0x082744}, {13, 41, 0x7DBBCB}};
        for (int[] p : u) {
            assertEquals(p[2], up.getRGB(p[0], p[1]) & 0xFFFFFF, "53x41 -> 97x64 at " + p[0] + "," + p[1]);
        }
        BufferedImage seen = Preprocess.imagenet().geometry(wild(320, 240)); // 341x256, then the centre 224x224
        int[][] c = {{0, 0, 0xBC3AF0}, {223, 223, 0xDB122C}, {100, 57, 0x678AC5}, {31, 200, 0x9A924B}};
        for (int[] p : c) {
            assertEquals(p[2], seen.getRGB(p[0], p[1]) & 0xFFFFFF, "imagenet geometry at " + p[0] + "," + p[1]);
        }
    }

    /** Grey PNGs keep their stored levels (PIL's convert("RGB")), not Java's gamma-encoded getRGB. */
    @Test
    void greyImagesKeepTheirLevels(@TempDir Path dir) throws Exception {
        int[] levels = {0, 64, 128, 200};
        BufferedImage g8 = new BufferedImage(4, 1, BufferedImage.TYPE_BYTE_GRAY);
        BufferedImage g16 = new BufferedImage(4, 1, BufferedImage.TYPE_USHORT_GRAY);
        for (int x = 0; x < 4; x++) {
            g8.getRaster().setSample(x, 0, 0, levels[x]);
            g16.getRaster().setSample(x, 0, 0, levels[x] << 8 | 0x7F);
        }
        ImageIO.write(g8, "png", dir.resolve("g8.png").toFile());
        ImageIO.write(g16, "png", dir.resolve("g16.png").toFile());
        for (String f : new String[] {"g8.png", "g16.png"}) {
            BufferedImage rgb = Images.toRgb(Images.read(dir.resolve(f)));
            for (int x = 0; x < 4; x++) {
                assertEquals(levels[x] * 0x010101, rgb.getRGB(x, 0) & 0xFFFFFF, f + " at " + x);
            }
            Tensor t = Preprocess.fromJson("{\"channels\": 1}", "t").apply(Images.read(dir.resolve(f)));
            assertEquals(64 / 255f, t.data()[1], 1e-7, f);
        }
    }

    @Test
    void aJsonSpecBesideTheModelIsFound(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("net.preprocess.json"), "{\"resize\": 64, \"crop\": [64, 32], \"mean\": 0.5, \"std\": 0.25}");
        Preprocess p = Preprocess.besideModel(dir.resolve("net.onnx"));
        assertArrayEquals(new int[] {3, 64, 32}, p.outputShape(100, 80));
        assertEquals(null, Preprocess.besideModel(dir.resolve("other.onnx")));
        Tensor t = p.apply(List.of(new BufferedImage(90, 70, BufferedImage.TYPE_INT_RGB),
                new BufferedImage(70, 90, BufferedImage.TYPE_INT_ARGB)));
        assertArrayEquals(new int[] {2, 3, 64, 32}, t.shape());
        assertEquals((0f - 0.5f) / 0.25f, t.data()[5], 0f);
    }

    @Test
    void badSpecsNameTheFieldAndBadFilesTheFile(@TempDir Path dir) throws Exception {
        assertMessage(() -> Preprocess.fromJson("{\"resize\": 256, \"mena\": [0.5]}", "spec.json"), "spec.json", "'mena'");
        assertMessage(() -> Preprocess.fromJson("{\"std\": [0.2, 0, 0.2]}", "spec.json"), "'std'", "positive");
        assertMessage(() -> Preprocess.fromJson("{\"mean\": [0.1, 0.2]}", "s"), "'mean'", "1 or 3 values");
        assertMessage(() -> Preprocess.fromJson("{\"crop\": [1, 2, 3]}", "s"), "'crop'");
        assertMessage(() -> Preprocess.fromJson("{\"resize\": -3}", "s"), "'resize'");
        assertMessage(() -> Preprocess.fromJson("{\"channel_order\": \"RBG\"}", "s"), "'channel_order'", "RBG");
        assertMessage(() -> Preprocess.fromJson("{\"layout\": \"NHWC\"}", "s"), "'layout'", "NCHW");
        assertMessage(() -> Preprocess.fromJson("{\"scale\": 2}", "s"), "'scale'");
        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, "{\"resize\": 256,");
        assertMessage(() -> Preprocess.parse(broken.toString()), broken.toString(), "not valid JSON");
        assertMessage(() -> Preprocess.parse("imagenett"), "imagenett", "no such file");
        Path notImage = dir.resolve("cat.png");
        Files.writeString(notImage, "this is text, not a PNG");
        assertMessage(() -> Images.read(notImage), notImage.toString(), "cannot decode");
        assertMessage(() -> Images.read(dir.resolve("missing.jpg")), "missing.jpg", "no such image file");
        assertMessage(() -> Images.decode(new byte[] {1, 2, 3}, "request body"), "request body", "not a PNG or JPEG");
        // a truncated PNG: the header names a size, the pixels are missing
        byte[] png = Files.readAllBytes(pattern(dir, "t.png", 40, 30));
        assertMessage(() -> Images.decode(java.util.Arrays.copyOf(png, 60), "body"), "cannot decode body");
        assertEquals(40, Images.decode(png, "body").getWidth());
        // a header announcing 100000 x 100000 pixels is refused before any pixel is decoded
        byte[] bomb = png.clone();
        java.nio.ByteBuffer.wrap(bomb, 16, 8).putInt(100_000).putInt(100_000);
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(bomb, 12, 17);
        java.nio.ByteBuffer.wrap(bomb, 29, 4).putInt((int) crc.getValue());
        assertMessage(() -> Images.decode(bomb, "upload"), "upload", "100000x100000", "decompression bomb");
        assertMessage(() -> Images.list(List.of(Files.createDirectory(dir.resolve("empty")))), "empty", "holds no");
        assertMessage(() -> Preprocess.identity().apply(new BufferedImage(4, 4, BufferedImage.TYPE_INT_RGB),
                new BufferedImage(5, 4, BufferedImage.TYPE_INT_RGB)), "image 1", "crop");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable e, String... parts) {
        InvalidInputException x = assertThrows(InvalidInputException.class, e);
        for (String p : parts) {
            assertTrue(x.getMessage().contains(p), "'" + p + "' in: " + x.getMessage());
        }
    }
}
