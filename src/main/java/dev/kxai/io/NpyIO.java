package dev.kxai.io;

import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.openlca.npy.Npy;
import org.openlca.npy.NpyArray;
import org.openlca.npy.NpyFloatArray;
import org.openlca.npy.Npz;

/**
 * NumPy {@code .npy} / {@code .npz} files as float32 tensors, through the openLCA npy library.
 * Any numeric dtype is read (and converted to float32); Fortran-ordered arrays are reordered to
 * row-major on read. Writes are always float32, C order.
 */
public final class NpyIO {
    private NpyIO() {
    }

    public static Tensor read(Path file) {
        checkReadable(file);
        checkComplete(file);
        NpyArray<?> array;
        try {
            array = Npy.read(file.toFile());
        } catch (RuntimeException e) {
            throw new InvalidInputException("cannot read " + file + " as a NumPy .npy file: " + reason(e), e);
        }
        return toTensor(array, file.toString());
    }

    /** All arrays of an {@code .npz} archive, in archive order, keyed by name without ".npy". */
    public static Map<String, Tensor> readNpz(Path file) {
        checkReadable(file);
        Map<String, Tensor> out = new LinkedHashMap<>();
        try {
            List<String> entries = Npz.entries(file.toFile());
            for (String entry : entries) {
                NpyArray<?> array = Npz.read(file.toFile(), entry);
                String key = entry.endsWith(".npy") ? entry.substring(0, entry.length() - 4) : entry;
                out.put(key, toTensor(array, file + ":" + entry));
            }
        } catch (RuntimeException e) {
            throw new InvalidInputException("cannot read " + file + " as a NumPy .npz archive: " + reason(e), e);
        }
        return out;
    }

    public static void write(Path file, Tensor t) {
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

    /** The reader fills missing data with zeros; a short file must be an error instead. */
    private static void checkComplete(Path file) {
        try (var in = Files.newInputStream(file)) {
            org.openlca.npy.NpyHeader h = org.openlca.npy.NpyHeader.read(in);
            long need = h.dataOffset() + h.dict().dataSize();
            long have = Files.size(file);
            if (have < need) {
                throw new InvalidInputException(file + ": truncated .npy: header shape " + Shapes.str(h.dict().shape())
                        + " needs " + h.dict().dataSize() + " data bytes, the file holds " + Math.max(0, have - h.dataOffset()));
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof InvalidInputException iie) {
                throw iie;
            }
            throw new InvalidInputException("cannot read " + file + " as a NumPy .npy file: " + reason(e), e);
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

    private static Tensor toTensor(NpyArray<?> array, String where) {
        int[] shape = array.shape();
        float[] values;
        try {
            values = array.asFloatArray().data();
        } catch (RuntimeException e) {
            throw new InvalidInputException(where + ": dtype " + array.dataType() + " cannot be read as float32", e);
        }
        if (array.hasColumnOrder() && shape.length > 1) {
            values = fortranToC(values, shape);
        }
        if (Shapes.size(shape) != values.length) {
            throw new InvalidInputException(where + ": header shape " + Shapes.str(shape) + " does not match "
                    + values.length + " stored elements");
        }
        return new Tensor(shape, values);
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
