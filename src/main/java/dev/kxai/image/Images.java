package dev.kxai.image;

import dev.kxai.InvalidInputException;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import javax.imageio.ImageIO;

/**
 * Reading PNG and JPEG files (the JDK's ImageIO) and the geometric steps of {@link Preprocess}:
 * antialiased bilinear resize (PIL's triangle filter) and centre crop (torchvision's offsets).
 */
public final class Images {
    static {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    private static final List<String> EXTENSIONS = List.of(".png", ".jpg", ".jpeg");

    private Images() {
    }

    /**
     * The most pixels an image may have (Pillow's MAX_IMAGE_PIXELS, its decompression-bomb limit):
     * checked from the header, before the pixels are decoded.
     */
    public static final long MAX_PIXELS = 89_478_485L;

    /** Decodes a PNG or JPEG file; errors name the file. */
    public static BufferedImage read(Path file) {
        if (!Files.exists(file)) {
            throw new InvalidInputException("no such image file: " + file);
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new InvalidInputException("not a readable image file: " + file);
        }
        try (javax.imageio.stream.ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            return decode(in, "image " + file);
        } catch (IOException e) {
            throw new InvalidInputException("cannot decode image " + file + ": " + e.getMessage(), e);
        }
    }

    /** Decodes a PNG or JPEG held in memory (a request body); errors name {@code where}. */
    public static BufferedImage decode(byte[] bytes, String where) {
        try (javax.imageio.stream.ImageInputStream in = ImageIO.createImageInputStream(
                new java.io.ByteArrayInputStream(bytes))) {
            return decode(in, where);
        } catch (IOException e) {
            throw new InvalidInputException("cannot decode " + where + ": " + e.getMessage(), e);
        }
    }

    private static BufferedImage decode(javax.imageio.stream.ImageInputStream in, String where) throws IOException {
        java.util.Iterator<javax.imageio.ImageReader> readers = in == null ? java.util.Collections.emptyIterator()
                : ImageIO.getImageReaders(in);
        if (!readers.hasNext()) {
            throw new InvalidInputException("cannot decode " + where + ": not a PNG or JPEG file (no ImageIO reader"
                    + " recognises it)");
        }
        javax.imageio.ImageReader reader = readers.next();
        try {
            reader.setInput(in, true, true);
            int w;
            int h;
            BufferedImage img;
            try {
                w = reader.getWidth(0);
                h = reader.getHeight(0);
                if (w < 1 || h < 1) {
                    throw new InvalidInputException(where + " is empty (" + w + "x" + h + ")");
                }
                if ((long) w * h > MAX_PIXELS) {
                    throw new InvalidInputException(where + " is " + w + "x" + h + " = " + (long) w * h
                            + " pixels, more than the " + MAX_PIXELS + " allowed (a decompression bomb?)");
                }
                img = reader.read(0);
            } catch (IOException | RuntimeException e) {
                if (e instanceof InvalidInputException iie) {
                    throw iie;
                }
                throw new InvalidInputException("cannot decode " + where + " (" + reader.getFormatName() + "): "
                        + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()), e);
            }
            return img;
        } finally {
            reader.dispose();
        }
    }

    /**
     * The image files named: a file as it is, a folder as its .png/.jpg/.jpeg files (not recursing) in
     * name order; a folder without images is an error naming it.
     */
    public static List<Path> list(List<Path> given) {
        List<Path> out = new ArrayList<>();
        for (Path p : given) {
            if (Files.isDirectory(p)) {
                List<Path> inside;
                try (Stream<Path> s = Files.list(p)) {
                    inside = s.filter(f -> Files.isRegularFile(f) && isImageName(f)).sorted().toList();
                } catch (IOException e) {
                    throw new InvalidInputException("cannot list image folder " + p + ": " + e.getMessage(), e);
                }
                if (inside.isEmpty()) {
                    throw new InvalidInputException("image folder " + p + " holds no .png, .jpg or .jpeg file");
                }
                out.addAll(inside);
            } else {
                out.add(p);
            }
        }
        return out;
    }

    private static boolean isImageName(Path f) {
        String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
        return EXTENSIONS.stream().anyMatch(n::endsWith);
    }

    /**
     * An 8-bit RGB copy (alpha dropped, as PIL's convert("RGB")); the image itself when it already is one.
     * Grey images (PNG grey, grey + alpha, 1 to 16 bits) take their stored grey level in all three
     * channels, as PIL does: Java's own getRGB would first treat the level as linear light and
     * gamma-encode it (grey 64 would become 137). Levels of more than 8 bits keep their top 8 bits,
     * of fewer are stretched to 0..255.
     */
    public static BufferedImage toRgb(BufferedImage img) {
        if (img.getType() == BufferedImage.TYPE_INT_RGB) {
            return img;
        }
        java.awt.image.ColorModel cm = img.getColorModel();
        if (!(cm instanceof java.awt.image.IndexColorModel)
                && cm.getColorSpace().getType() == java.awt.color.ColorSpace.TYPE_GRAY) {
            java.awt.image.Raster r = img.getRaster();
            int bits = cm.getComponentSize(0);
            BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_RGB);
            int w = img.getWidth();
            int[] samples = new int[w];
            int[] row = new int[w];
            for (int y = 0; y < img.getHeight(); y++) {
                r.getSamples(0, y, w, 1, 0, samples);
                for (int x = 0; x < w; x++) {
                    int v = bits >= 8 ? samples[x] >> (bits - 8) : samples[x] * 255 / ((1 << bits) - 1);
                    row[x] = v << 16 | v << 8 | v;
                }
                out.setRGB(0, y, w, 1, row, 0, w);
            }
            return out;
        }
        BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_RGB);
        int w = img.getWidth();
        int[] row = new int[w];
        for (int y = 0; y < img.getHeight(); y++) {
            img.getRGB(0, y, w, 1, row, 0, w);
            for (int x = 0; x < w; x++) {
                row[x] &= 0xFFFFFF;
            }
            out.setRGB(0, y, w, 1, row, 0, w);
        }
        return out;
    }

    /**
     * Resizes an RGB image to {@code width} x {@code height} with Pillow's bilinear filter, as
     * {@code Image.resize(size, BILINEAR)} computes it: horizontal pass, then vertical, each a triangle
     * filter of support max(1, in/out) around pixel centres, weights in 22-bit fixed point, values
     * rounded half up to 8 bits after each pass. Same size: the image.
     */
    public static BufferedImage resizeBilinear(BufferedImage rgb, int width, int height) {
        int w0 = rgb.getWidth();
        int h0 = rgb.getHeight();
        if (w0 == width && h0 == height) {
            return rgb;
        }
        int[] px = rgb.getRGB(0, 0, w0, h0, null, 0, w0);
        int[] mid = new int[width * h0];
        if (width == w0) {
            mid = px;
        } else {
            Filter f = Filter.of(w0, width);
            for (int y = 0; y < h0; y++) {
                for (int x = 0; x < width; x++) {
                    mid[y * width + x] = f.apply(px, y * w0, 1, x);
                }
            }
        }
        int[] out = new int[width * height];
        if (height == h0) {
            out = mid;
        } else {
            Filter f = Filter.of(h0, height);
            for (int y = 0; y < height; y++) {
                for (int x = 0; x < width; x++) {
                    out[y * width + x] = f.apply(mid, x, width, y);
                }
            }
        }
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        img.setRGB(0, 0, width, height, out, 0, width);
        return img;
    }

    /**
     * The per-output-pixel windows and weights of one axis, as Pillow's {@code precompute_coeffs} and
     * {@code normalize_coeffs_8bpc}: triangle weights normalised in double, then fixed point with 22
     * fraction bits (rounded half away from zero).
     */
    private record Filter(int[] start, int[][] weights) {
        static final int PRECISION_BITS = 32 - 8 - 2;

        static Filter of(int in, int out) {
            double scale = (double) in / out;
            double filterScale = Math.max(scale, 1.0);
            double support = filterScale; // the triangle's support is 1
            int[] start = new int[out];
            int[][] weights = new int[out][];
            for (int i = 0; i < out; i++) {
                double center = (i + 0.5) * scale;
                int min = Math.max((int) (center - support + 0.5), 0);
                int max = Math.min((int) (center + support + 0.5), in);
                double[] k = new double[Math.max(max - min, 0)];
                double sum = 0;
                for (int j = 0; j < k.length; j++) {
                    double t = Math.abs((j + min - center + 0.5) / filterScale);
                    k[j] = t < 1 ? 1 - t : 0;
                    sum += k[j];
                }
                int[] fixed = new int[k.length];
                for (int j = 0; j < k.length; j++) {
                    double w = (sum != 0 ? k[j] / sum : 0) * (1 << PRECISION_BITS);
                    fixed[j] = (int) (w < 0 ? w - 0.5 : w + 0.5);
                }
                start[i] = min;
                weights[i] = fixed;
            }
            return new Filter(start, weights);
        }

        /** Output pixel i from src[base + (start + j) * stride], per channel: Σ w·v + ½, shifted, clipped to 8 bits. */
        int apply(int[] src, int base, int stride, int i) {
            long r = 1L << (PRECISION_BITS - 1);
            long g = r;
            long b = r;
            int[] k = weights[i];
            int o = base + start[i] * stride;
            for (int j = 0; j < k.length; j++) {
                int v = src[o + j * stride];
                r += (long) k[j] * ((v >> 16) & 0xFF);
                g += (long) k[j] * ((v >> 8) & 0xFF);
                b += (long) k[j] * (v & 0xFF);
            }
            return (clip(r) << 16) | (clip(g) << 8) | clip(b);
        }

        private static int clip(long acc) {
            return (int) Math.max(0, Math.min(255, acc >> PRECISION_BITS));
        }
    }

    /**
     * torchvision's CenterCrop: top = round((h − ch) / 2), left = round((w − cw) / 2) (Python's round,
     * half to even); a crop larger than the image pads with black, as torchvision does.
     */
    public static BufferedImage centerCrop(BufferedImage rgb, int cropH, int cropW) {
        int w = rgb.getWidth();
        int h = rgb.getHeight();
        if (w == cropW && h == cropH) {
            return rgb;
        }
        // a side smaller than the crop is padded first, (crop - size) // 2 before it
        int top = cropH > h ? -((cropH - h) / 2) : (int) Math.rint((h - cropH) / 2.0);
        int left = cropW > w ? -((cropW - w) / 2) : (int) Math.rint((w - cropW) / 2.0);
        BufferedImage out = new BufferedImage(cropW, cropH, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < cropH; y++) {
            int sy = y + top;
            if (sy < 0 || sy >= h) {
                continue;
            }
            for (int x = 0; x < cropW; x++) {
                int sx = x + left;
                if (sx >= 0 && sx < w) {
                    out.setRGB(x, y, rgb.getRGB(sx, sy) & 0xFFFFFF);
                }
            }
        }
        return out;
    }
}
