package dev.kxai.onnx;

import ai.onnx.proto.OnnxMl;
import dev.kxai.ModelException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Tensors stored outside the model file (ONNX's external data: {@code data_location = EXTERNAL},
 * with {@code location}, {@code offset} and {@code length} entries). Exporters write them for models
 * over protobuf's 2 GiB limit and on request ({@code torch.onnx.export(..., external_data=True)},
 * {@code onnx.save(..., save_as_external_data=True)}, Hugging Face Optimum's {@code model.onnx_data}).
 * <p>
 * The location is a path relative to the model file's folder, as the ONNX spec says; like ONNX's own
 * checker, kxai refuses absolute paths and paths that leave that folder, so a model cannot make kxai
 * read an arbitrary file. The declared region is checked against the file's size before it is mapped.
 */
final class ExternalData {
    private final Path dir;

    /** @param dir the model file's folder, or null for a model parsed from bytes (then external data is refused) */
    ExternalData(Path dir) {
        this.dir = dir;
    }

    /**
     * The bytes of {@code t}'s data, little-endian, exactly {@code bytes} long.
     *
     * @param bytes the size the tensor's dims and element type call for
     */
    ByteBuffer read(OnnxMl.TensorProto t, long bytes, String what, String source) {
        String location = null;
        long offset = 0;
        long length = -1;
        for (OnnxMl.StringStringEntryProto e : t.getExternalDataList()) {
            switch (e.getKey()) {
                case "location" -> location = e.getValue();
                case "offset" -> offset = number(e.getValue(), "offset", what, source);
                case "length" -> length = number(e.getValue(), "length", what, source);
                default -> {
                    // "checksum" and keys of later specs: nothing kxai needs to read the bytes
                }
            }
        }
        if (location == null || location.isEmpty()) {
            throw new ModelException(source + ": " + what + " uses external data but names no 'location'");
        }
        if (dir == null) {
            throw new ModelException(source + ": " + what + " stores its data in the external file '" + location
                    + "'; load the model from its file (Model.load(Path) or --model) so that kxai finds that file"
                    + " beside it");
        }
        Path file;
        try {
            Path rel = Path.of(location);
            file = dir.resolve(rel).normalize();
            if (rel.isAbsolute() || !file.startsWith(dir.normalize())) {
                throw new ModelException(source + ": " + what + " names external data file '" + location
                        + "', outside the model's folder " + dir + "; ONNX locations are relative to the model's folder");
            }
        } catch (java.nio.file.InvalidPathException e) {
            throw new ModelException(source + ": " + what + " names external data file '" + location
                    + "', which is not a valid path: " + e.getMessage());
        }
        if (length >= 0 && length != bytes) {
            throw new ModelException(source + ": " + what + " declares " + bytes + " bytes of data (its dims and type) but"
                    + " its external data entry says length " + length);
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new ModelException(source + ": " + what + " stores its data in " + file
                    + ", which is missing or not a readable file (copy it beside the model)");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (offset > size || bytes > size - offset) {
                throw new ModelException(source + ": " + what + " reads " + bytes + " bytes at offset " + offset + " of "
                        + file + ", which holds " + size + " bytes (truncated or the wrong file?)");
            }
            if (bytes == 0) {
                return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
            }
            // a tensor fits an int-indexed buffer: TensorReader caps elements at 2^31 - 9 and checks
            // bytes against that before it calls here, but a width of 8 could still pass 2 GiB
            if (bytes > Integer.MAX_VALUE - 8) {
                throw new ModelException(source + ": " + what + " holds " + bytes + " bytes of external data; kxai reads"
                        + " at most " + (Integer.MAX_VALUE - 8) + " per tensor");
            }
            return ch.map(FileChannel.MapMode.READ_ONLY, offset, bytes).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelException(source + ": cannot read the external data of " + what + " from " + file + ": "
                    + e.getMessage(), e);
        }
    }

    private static long number(String v, String key, String what, String source) {
        try {
            long n = Long.parseLong(v.trim());
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new ModelException(source + ": " + what + " has external data " + key + " '" + v
                    + "', not a non-negative whole number");
        }
    }
}
