package dev.kxai.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Tensor;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * How an image becomes a model input: torchvision's {@code Resize(size)} (the shorter side to
 * {@code resize}, the longer in proportion, truncated as torchvision does), {@code CenterCrop},
 * {@code ToTensor} ({@code scale} 1: values in [0, 1]; 255: [0, 255]) and {@code Normalize(mean, std)},
 * channels in {@code RGB} or {@code BGR} order (or 1 channel: the luma L = 0.299 R + 0.587 G + 0.114 B
 * in PIL's fixed point, its convert("L")), layout NCHW.
 *
 * <p>Resizing is <b>bilinear with antialiasing</b>: a triangle filter whose support widens with the
 * downscale factor (the filter PIL's {@code Image.resize(BILINEAR)} uses, and so torchvision's
 * {@code Resize} on PIL images and on tensors with {@code antialias=True}, its default since 0.17),
 * pixel centres aligned (half-pixel), applied separably (horizontal, then vertical) on the 8-bit values
 * with Pillow's 22-bit fixed-point weights, each pass rounded to 8 bits: bit for bit Pillow's result
 * ({@code PreprocessTest} holds pixels from Pillow 12.3.0). Upscaling is plain bilinear
 * interpolation. A resize to the current size is the identity.
 *
 * <p>Immutable and thread-safe. JSON form (every field optional except mean/std defaults):
 * <pre>{"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
 *  "channel_order": "RGB", "scale": 1, "channels": 3, "layout": "NCHW"}</pre>
 * {@code crop} is one side (square) or {@code [height, width]}; {@code resize} null or absent: no resize;
 * {@code crop} absent: no crop. Unknown fields are refused with their name.
 */
public final class Preprocess {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> FIELDS = Set.of("resize", "crop", "mean", "std", "channel_order", "scale", "channels",
            "layout");

    /** Channel order of the model's input. */
    public enum ChannelOrder { RGB, BGR }

    private final Integer resize;
    private final int[] crop;
    private final float[] mean;
    private final float[] std;
    private final ChannelOrder order;
    private final float scale;
    private final int channels;

    private Preprocess(Integer resize, int[] crop, float[] mean, float[] std, ChannelOrder order, float scale,
            int channels, String where) {
        if (resize != null && resize < 1) {
            throw bad(where, "resize", "must be at least 1, got " + resize);
        }
        if (crop != null && (crop.length != 2 || crop[0] < 1 || crop[1] < 1)) {
            throw bad(where, "crop", "must be a positive side or [height, width], got " + Arrays.toString(crop));
        }
        if (channels != 1 && channels != 3) {
            throw bad(where, "channels", "must be 1 or 3, got " + channels);
        }
        if (mean.length != channels && mean.length != 1) {
            throw bad(where, "mean", "needs 1 or " + channels + " values, got " + mean.length);
        }
        if (std.length != channels && std.length != 1) {
            throw bad(where, "std", "needs 1 or " + channels + " values, got " + std.length);
        }
        for (float s : std) {
            if (!(s > 0) || !Float.isFinite(s)) {
                throw bad(where, "std", "values must be positive and finite, got " + Arrays.toString(std));
            }
        }
        for (float m : mean) {
            if (!Float.isFinite(m)) {
                throw bad(where, "mean", "values must be finite, got " + Arrays.toString(mean));
            }
        }
        if (scale != 1f && scale != 255f) {
            throw bad(where, "scale", "must be 1 (values in [0, 1]) or 255 (values in [0, 255]), got " + scale);
        }
        this.resize = resize;
        this.crop = crop;
        this.mean = mean;
        this.std = std;
        this.order = order;
        this.scale = scale;
        this.channels = channels;
    }

    /** torchvision's ImageNet preset: resize 256, centre crop 224, ImageNet mean/std, RGB, [0, 1]. */
    public static Preprocess imagenet() {
        return new Preprocess(256, new int[] {224, 224}, new float[] {0.485f, 0.456f, 0.406f},
                new float[] {0.229f, 0.224f, 0.225f}, ChannelOrder.RGB, 1f, 3, "preset imagenet");
    }

    /** No resize, no crop, values in [0, 1], no normalisation, RGB: the image as it is. */
    public static Preprocess identity() {
        return new Preprocess(null, null, new float[] {0f}, new float[] {1f}, ChannelOrder.RGB, 1f, 3, "identity");
    }

    /** A spec with the given geometry (null: none) and normalisation. */
    public static Preprocess of(Integer resize, int[] crop, float[] mean, float[] std, ChannelOrder order, float scale,
            int channels) {
        return new Preprocess(resize, crop == null ? null : crop.length == 1 ? new int[] {crop[0], crop[0]} : crop.clone(),
                mean.clone(), std.clone(), order, scale, channels, "preprocess");
    }

    /** A named preset ({@code imagenet}) or a JSON file. */
    public static Preprocess parse(String presetOrFile) {
        if (presetOrFile.equalsIgnoreCase("imagenet")) {
            return imagenet();
        }
        if (presetOrFile.equalsIgnoreCase("none") || presetOrFile.equalsIgnoreCase("identity")) {
            return identity();
        }
        Path f = Path.of(presetOrFile);
        if (!Files.exists(f)) {
            throw new InvalidInputException("--preprocess " + presetOrFile + ": not a preset (imagenet, none) and no such file");
        }
        return fromJson(f);
    }

    /** The spec stored beside a model: {@code NAME.preprocess.json} for {@code NAME.onnx}; null when there is none. */
    public static Preprocess besideModel(Path model) {
        Path f = besideModelFile(model);
        return Files.isRegularFile(f) ? fromJson(f) : null;
    }

    /** Where {@link #besideModel} looks. */
    public static Path besideModelFile(Path model) {
        String name = model.getFileName().toString();
        String stem = name.toLowerCase(Locale.ROOT).endsWith(".onnx") ? name.substring(0, name.length() - 5) : name;
        return model.resolveSibling(stem + ".preprocess.json");
    }

    public static Preprocess fromJson(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new InvalidInputException("cannot read preprocessing spec " + file + ": " + e.getMessage(), e);
        }
        return fromJson(text, file.toString());
    }

    /** Parses the JSON form; errors name {@code where} and the field. */
    public static Preprocess fromJson(String json, String where) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (IOException e) {
            throw new InvalidInputException("preprocessing spec " + where + " is not valid JSON: "
                    + (e instanceof com.fasterxml.jackson.core.JsonProcessingException j ? j.getOriginalMessage() : e.getMessage()), e);
        }
        if (root == null || !root.isObject()) {
            throw new InvalidInputException("preprocessing spec " + where + " must be a JSON object");
        }
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!FIELDS.contains(f)) {
                throw bad(where, f, "unknown field (known: resize, crop, mean, std, channel_order, scale, channels, layout)");
            }
        }
        Integer resize = root.hasNonNull("resize") ? positiveInt(root.get("resize"), where, "resize") : null;
        int[] crop = null;
        if (root.hasNonNull("crop")) {
            JsonNode c = root.get("crop");
            if (c.isArray()) {
                if (c.size() != 2) {
                    throw bad(where, "crop", "must be one side or [height, width], got " + c);
                }
                crop = new int[] {positiveInt(c.get(0), where, "crop"), positiveInt(c.get(1), where, "crop")};
            } else {
                int s = positiveInt(c, where, "crop");
                crop = new int[] {s, s};
            }
        }
        int channels = root.hasNonNull("channels") ? positiveInt(root.get("channels"), where, "channels") : 3;
        float[] mean = root.hasNonNull("mean") ? floats(root.get("mean"), where, "mean") : new float[] {0f};
        float[] std = root.hasNonNull("std") ? floats(root.get("std"), where, "std") : new float[] {1f};
        ChannelOrder order = ChannelOrder.RGB;
        if (root.hasNonNull("channel_order")) {
            String o = root.get("channel_order").asText("");
            try {
                order = ChannelOrder.valueOf(o.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw bad(where, "channel_order", "must be RGB or BGR, got " + root.get("channel_order"));
            }
        }
        float scale = 1f;
        if (root.hasNonNull("scale")) {
            JsonNode s = root.get("scale");
            if (!s.isNumber()) {
                throw bad(where, "scale", "must be 1 or 255, got " + s);
            }
            scale = s.floatValue();
        }
        if (root.hasNonNull("layout") && !root.get("layout").asText("").equalsIgnoreCase("NCHW")) {
            throw bad(where, "layout", "only NCHW is supported, got " + root.get("layout"));
        }
        return new Preprocess(resize, crop, mean, std, order, scale, channels, where);
    }

    private static int positiveInt(JsonNode n, String where, String field) {
        if (n == null || !n.isIntegralNumber() || n.asLong() < 1 || n.asLong() > 1 << 16) {
            throw bad(where, field, "must be a positive integer (at most 65536), got " + n);
        }
        return n.asInt();
    }

    private static float[] floats(JsonNode n, String where, String field) {
        if (n.isNumber()) {
            return new float[] {n.floatValue()};
        }
        if (!n.isArray() || n.isEmpty()) {
            throw bad(where, field, "must be a number or an array of numbers, got " + n);
        }
        float[] out = new float[n.size()];
        for (int i = 0; i < out.length; i++) {
            if (!n.get(i).isNumber()) {
                throw bad(where, field, "must be an array of numbers, got " + n);
            }
            out[i] = n.get(i).floatValue();
        }
        return out;
    }

    private static InvalidInputException bad(String where, String field, String what) {
        return new InvalidInputException("preprocessing spec " + where + ": field '" + field + "' " + what);
    }

    public int channels() {
        return channels;
    }

    /** The input's [channels, height, width] for an image of this size. */
    public int[] outputShape(int width, int height) {
        int[] hw = resizedSize(width, height);
        if (crop != null) {
            return new int[] {channels, crop[0], crop[1]};
        }
        return new int[] {channels, hw[1], hw[0]};
    }

    /** {width, height} after the resize step (torchvision: the shorter side to {@code resize}, the longer truncated). */
    int[] resizedSize(int width, int height) {
        if (resize == null) {
            return new int[] {width, height};
        }
        if (width <= height) {
            return new int[] {resize, (int) ((long) resize * height / width)};
        }
        return new int[] {(int) ((long) resize * width / height), resize};
    }

    /**
     * The geometric steps only (resize, centre crop) on an 8-bit RGB copy: what the model sees before
     * normalisation, the picture a report shows under its overlay.
     */
    public BufferedImage geometry(BufferedImage image) {
        BufferedImage rgb = Images.toRgb(image);
        int[] wh = resizedSize(rgb.getWidth(), rgb.getHeight());
        BufferedImage resized = Images.resizeBilinear(rgb, wh[0], wh[1]);
        if (crop == null) {
            return resized;
        }
        return Images.centerCrop(resized, crop[0], crop[1]);
    }

    /** Normalises an image already through {@link #geometry}: [channels, height, width] floats. */
    public float[] normalise(BufferedImage geometric) {
        int w = geometric.getWidth();
        int h = geometric.getHeight();
        int plane = w * h;
        int[] px = geometric.getRGB(0, 0, w, h, null, 0, w);
        float[] out = new float[channels * plane];
        for (int c = 0; c < channels; c++) {
            float m = mean.length == 1 ? mean[0] : mean[c];
            float s = std.length == 1 ? std[0] : std[c];
            for (int p = 0; p < plane; p++) {
                int v = px[p];
                float value;
                if (channels == 1) {
                    // PIL's convert("L"), in its fixed point: (19595 R + 38470 G + 7471 B + 2^15) >> 16
                    value = (((v >> 16) & 0xFF) * 19595 + ((v >> 8) & 0xFF) * 38470 + (v & 0xFF) * 7471 + 0x8000) >> 16;
                } else {
                    int source = order == ChannelOrder.RGB ? c : 2 - c; // 0 = R, 1 = G, 2 = B
                    value = (v >> (16 - 8 * source)) & 0xFF;
                }
                // ToTensor divides by 255 in float32, then Normalize subtracts and divides in float32
                float x = scale == 1f ? value / 255f : value;
                out[c * plane + p] = (x - m) / s;
            }
        }
        return out;
    }

    /** The batch [N, C, H, W] of these images (all must come out the same size: with a crop they do). */
    public Tensor apply(BufferedImage... images) {
        return apply(Arrays.asList(images));
    }

    public Tensor apply(List<BufferedImage> images) {
        if (images.isEmpty()) {
            throw new InvalidInputException("no images to preprocess");
        }
        float[][] rows = new float[images.size()][];
        int[] shape = null;
        for (int i = 0; i < rows.length; i++) {
            BufferedImage g = geometry(images.get(i));
            int[] s = {channels, g.getHeight(), g.getWidth()};
            if (shape == null) {
                shape = s;
            } else if (!Arrays.equals(shape, s)) {
                throw new InvalidInputException("image " + i + " comes out " + Arrays.toString(s) + ", image 0 "
                        + Arrays.toString(shape) + ": give a crop in the preprocessing spec so all images have one size");
            }
            rows[i] = normalise(g);
        }
        int per = rows[0].length;
        float[] data = new float[Math.multiplyExact(per, rows.length)];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, data, i * per, per);
        }
        return new Tensor(new int[] {rows.length, shape[0], shape[1], shape[2]}, data);
    }

    /** A one-line description for reports: the spec in its JSON form. */
    public String describe() {
        StringBuilder b = new StringBuilder("{");
        if (resize != null) {
            b.append("\"resize\": ").append(resize).append(", ");
        }
        if (crop != null) {
            b.append("\"crop\": [").append(crop[0]).append(", ").append(crop[1]).append("], ");
        }
        b.append("\"mean\": ").append(Arrays.toString(mean)).append(", \"std\": ").append(Arrays.toString(std))
                .append(", \"channel_order\": \"").append(order).append("\", \"scale\": ").append((int) scale)
                .append(", \"channels\": ").append(channels).append(", \"layout\": \"NCHW\"}");
        return b.toString();
    }

    @Override
    public String toString() {
        return describe();
    }
}
