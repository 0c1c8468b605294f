package dev.kxai.io;

import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.io.BufferedInputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.openlca.npy.Npy;
import org.openlca.npy.NpyFloatArray;

/**
 * NumPy {@code .npy} / {@code .npz} files as float32 tensors. Reads go through {@link NpyReader}
 * (format versions 1.0, 2.0, 3.0; every declared size checked before allocation); any numeric dtype
 * is converted to float32; Fortran-ordered arrays are reordered to row-major. Writes (through the
 * openLCA npy library) are always float32, C order.
 */
public final class NpyIO {
    private NpyIO() {
    }

    public static Tensor read(Path file) {
        dev.kxai.Args.notNull(file, "file");
        checkReadable(file);
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
            return read(in, file.toString(), Files.size(file));
        } catch (IOException e) {
            throw new InvalidInputException("cannot read " + file + " as a NumPy .npy file: " + reason(e), e);
        }
    }

    /** An {@code .npy} held in memory (an HTTP body), {@code where} naming it in errors. */
    public static Tensor read(byte[] npy, String where) {
        dev.kxai.Args.notNull(npy, "npy");
        try {
            return read(new java.io.ByteArrayInputStream(npy), where, npy.length);
        } catch (IOException e) {
            throw new InvalidInputException("cannot read " + where + " as a NumPy .npy array: " + reason(e), e);
        }
    }

    /** All arrays of an {@code .npz} archive, in archive order, keyed by name without ".npy". */
    public static Map<String, Tensor> readNpz(Path file) {
        dev.kxai.Args.notNull(file, "file");
        checkReadable(file);
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(file.toFile())) {
            for (ZipEntry entry : java.util.Collections.list(zip.entries())) {
                if (entry.isDirectory()) {
                    continue;
                }
                String name = entry.getName();
                String key = name.endsWith(".npy") ? name.substring(0, name.length() - 4) : name;
                try (InputStream in = new BufferedInputStream(zip.getInputStream(entry), 1 << 16)) {
                    out.put(key, read(in, file + ":" + name, entry.getSize()));
                }
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof InvalidInputException iie) {
                throw iie;
            }
            throw new InvalidInputException("cannot read " + file + " as a NumPy .npz archive: " + reason(e), e);
        }
        return out;
    }

    /** One array from a stream of {@code available} bytes (-1: unknown), checked before any allocation. */
    private static Tensor read(InputStream in, String where, long available) throws IOException {
        NpyReader.Header h = NpyReader.header(in, where, available);
        float[] values = NpyReader.data(in, h, where);
        int[] shape = h.shape();
        if (h.fortran() && shape.length > 1) {
            values = fortranToC(values, shape);
        }
        return new Tensor(shape, values);
    }

    public static void write(Path file, Tensor t) {
        dev.kxai.Args.notNull(file, "file");
        dev.kxai.Args.notNull(t, "t");
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Npy.write(file.toFile(), new NpyFloatArray(t.shape(), t.data(), false));
        } catch (IOException | RuntimeException e) {
            throw new InvalidInputException("cannot write " + file + ": " + reason(e), e);
        }
    }

    private static void checkReadable(Path file) {
        File f = file.toFile();
        if (!f.exists()) {
            throw new InvalidInputException("no such file: " + file);
        }
        if (!f.isFile() || !f.canRead()) {
            throw new InvalidInputException("not a readable file: " + file);
        }
    }

    /** Reorders column-major (Fortran) data of the given shape to row-major. */
    static float[] fortranToC(float[] f, int[] shape) {
        int r = shape.length;
        int[] cStrides = Shapes.strides(shape);
        int[] idx = new int[r];
        float[] c = new float[f.length];
        // walk the Fortran order: first index varies fastest
        for (int k = 0; k < f.length; k++) {
            int off = 0;
            for (int d = 0; d < r; d++) {
                off += idx[d] * cStrides[d];
            }
            c[off] = f[k];
            for (int d = 0; d < r; d++) {
                if (++idx[d] < shape[d]) {
                    break;
                }
                idx[d] = 0;
            }
        }
        return c;
    }

    private static String reason(Throwable e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
    }
}
