package dev.kxai.errors;

import static dev.kxai.errors.ErrorFixtures.le;
import static dev.kxai.errors.ErrorFixtures.npyBytes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** NumPy files in and out: float32 round trip, Fortran order, other dtypes, .npz, bad files. */
class NpyIOTest {
    @TempDir
    Path tmp;

    @Test
    void float32RoundTrip() {
        float[] v = new float[24];
        for (int i = 0; i < v.length; i++) {
            v[i] = (i - 11) * 0.37f;
        }
        v[5] = Float.MIN_VALUE;
        v[6] = -Float.MAX_VALUE;
        v[7] = -0.0f;
        Path f = tmp.resolve("sub/dir/rt.npy"); // parent folders are created
        NpyIO.write(f, new Tensor(new int[] {2, 3, 4}, v));
        Tensor t = NpyIO.read(f);
        assertArrayEquals(new int[] {2, 3, 4}, t.shape());
        assertArrayEquals(v, t.data());
        assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(t.data()[7]));
    }

    @Test
    void writesLittleEndianFloat32InCOrder() throws IOException {
        Path f = tmp.resolve("c.npy");
        NpyIO.write(f, new Tensor(new int[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6}));
        byte[] b = Files.readAllBytes(f);
        assertEquals((byte) 0x93, b[0]);
        assertEquals("NUMPY", new String(b, 1, 5, StandardCharsets.US_ASCII));
        int major = b[6];
        int start = major == 1 ? 10 : 12;
        ByteBuffer lenField = ByteBuffer.wrap(b, 8, start - 8).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen = major == 1 ? lenField.getShort() & 0xffff : lenField.getInt();
        int offset = start + headerLen;
        String header = new String(b, start, headerLen, StandardCharsets.US_ASCII);
        assertTrue(header.contains("'<f4'"), header);
        assertTrue(header.contains("'fortran_order': False"), header);
        assertEquals(0, offset % 16, "data aligned per the NPY spec");
        ByteBuffer data = ByteBuffer.wrap(b, offset, b.length - offset).order(ByteOrder.LITTLE_ENDIAN);
        for (float expected : new float[] {1, 2, 3, 4, 5, 6}) {
            assertEquals(expected, data.getFloat());
        }
        assertEquals(0, data.remaining());
    }

    @Test
    void handMadeHeaderIsValidNpy() throws IOException {
        // the fixture writer itself: C-ordered float32 reads back unchanged
        Path f = Files.write(tmp.resolve("hand.npy"), npyBytes("<f4", false, new int[] {2, 3}, le(1f, 2f, 3f, 4f, 5f, 6f)));
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, NpyIO.read(f).data());
        assertEquals(0, (Files.size(f) - 24) % 64, "header padded to a multiple of 64 bytes");
    }

    @Test
    void fortranOrderIsReorderedToC() throws IOException {
        // C-order [[1, 2, 3], [4, 5, 6]] stored column by column
        byte[] bytes = npyBytes("<f4", true, new int[] {2, 3}, le(1f, 4f, 2f, 5f, 3f, 6f));
        assertTrue(new String(bytes, StandardCharsets.US_ASCII)
                .contains("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"));
        Path f = Files.write(tmp.resolve("fortran.npy"), bytes);
        Tensor t = NpyIO.read(f);
        assertArrayEquals(new int[] {2, 3}, t.shape());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, t.data());
    }

    @Test
    void fortranOrderThreeDimensions() throws IOException {
        int[] shape = {2, 3, 4};
        float[] fortran = new float[24];
        float[] c = new float[24];
        int k = 0;
        for (int l = 0; l < 4; l++) {
            for (int j = 0; j < 3; j++) {
                for (int i = 0; i < 2; i++) {
                    fortran[k++] = 100 * i + 10 * j + l; // first index varies fastest
                }
            }
        }
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                for (int l = 0; l < 4; l++) {
                    c[i * 12 + j * 4 + l] = 100 * i + 10 * j + l;
                }
            }
        }
        Path f = Files.write(tmp.resolve("f3.npy"), npyBytes("<f4", true, shape, le(fortran)));
        Tensor t = NpyIO.read(f);
        assertArrayEquals(shape, t.shape());
        assertArrayEquals(c, t.data());
    }

    @Test
    void float64IsConvertedToFloat32() throws IOException {
        Path f = Files.write(tmp.resolve("f8.npy"), npyBytes("<f8", false, new int[] {3}, le(1.5, -2.25, 1e-3)));
        Tensor t = NpyIO.read(f);
        assertArrayEquals(new int[] {3}, t.shape());
        assertArrayEquals(new float[] {1.5f, -2.25f, 1e-3f}, t.data());
    }

    @Test
    void int64IsConvertedToFloat32() throws IOException {
        Path f = Files.write(tmp.resolve("i8.npy"), npyBytes("<i8", false, new int[] {2, 2}, le(7L, -3L, 0L, 123456L)));
        Tensor t = NpyIO.read(f);
        assertArrayEquals(new int[] {2, 2}, t.shape());
        assertArrayEquals(new float[] {7, -3, 0, 123456}, t.data());
    }

    @Test
    void float64FortranOrder() throws IOException {
        Path f = Files.write(tmp.resolve("f8f.npy"), npyBytes("<f8", true, new int[] {2, 2}, le(1.0, 3.0, 2.0, 4.0)));
        assertArrayEquals(new float[] {1, 2, 3, 4}, NpyIO.read(f).data());
    }

    @Test
    void npzWithTwoArrays() throws IOException {
        Path z = tmp.resolve("pair.npz");
        try (ZipOutputStream zo = new ZipOutputStream(Files.newOutputStream(z))) {
            zo.putNextEntry(new ZipEntry("weights.npy"));
            zo.write(npyBytes("<f4", false, new int[] {2, 3}, le(1f, 2f, 3f, 4f, 5f, 6f)));
            zo.closeEntry();
            zo.putNextEntry(new ZipEntry("bias.npy"));
            zo.write(npyBytes("<f8", false, new int[] {2}, le(0.5, -0.5)));
            zo.closeEntry();
        }
        Map<String, Tensor> m = NpyIO.readNpz(z);
        assertEquals(List.of("weights", "bias"), List.copyOf(m.keySet()), "archive order, names without .npy");
        assertArrayEquals(new int[] {2, 3}, m.get("weights").shape());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, m.get("weights").data());
        assertArrayEquals(new int[] {2}, m.get("bias").shape());
        assertArrayEquals(new float[] {0.5f, -0.5f}, m.get("bias").data());
    }

    @Test
    void missingFileIsNamed() {
        Path f = tmp.resolve("nothing_here.npy");
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> NpyIO.read(f));
        assertTrue(e.getMessage().contains("nothing_here.npy"), e.getMessage());
        InvalidInputException z = assertThrows(InvalidInputException.class, () -> NpyIO.readNpz(tmp.resolve("none.npz")));
        assertTrue(z.getMessage().contains("none.npz"), z.getMessage());
    }

    @Test
    void notNpyIsNamed() throws IOException {
        Path f = Files.writeString(tmp.resolve("plain.npy"), "just text");
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> NpyIO.read(f));
        assertTrue(e.getMessage().contains("plain.npy"), e.getMessage());
        InvalidInputException z = assertThrows(InvalidInputException.class, () -> NpyIO.readNpz(f));
        assertTrue(z.getMessage().contains("plain.npy"), z.getMessage());
    }

    @Test
    void truncatedDataIsAnError() throws IOException {
        float[] v = new float[16];
        Arrays.fill(v, 1f);
        Path f = tmp.resolve("cut.npy");
        NpyIO.write(f, new Tensor(new int[] {4, 4}, v));
        byte[] b = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(b, b.length - 20));
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> NpyIO.read(f));
        assertTrue(e.getMessage().contains("cut.npy"), e.getMessage());
    }
}
