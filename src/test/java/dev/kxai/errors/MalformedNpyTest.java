package dev.kxai.errors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * .npy files whose declared sizes a user controls (issue 13): a shape beyond int range was read as its
 * low 32 bits ((2^32+10, 1, 8, 8) as 10 rows, (2^40,) as [0]), a huge header length allocated before
 * any check (OutOfMemoryError), and a valid NumPy 3.0 file failed with BufferUnderflowException.
 */
class MalformedNpyTest {
    @TempDir
    Path tmp;

    /** An .npy of any version with a header dict as given and raw data. */
    static byte[] npy(int major, String dict, byte[] data) {
        byte[] h = dict.getBytes(major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        int prefix = major == 1 ? 10 : 12;
        int total = prefix + h.length + 1;
        int pad = (64 - total % 64) % 64;
        int len = h.length + pad + 1;
        ByteBuffer b = ByteBuffer.allocate(prefix + len + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.ISO_8859_1)).put((byte) major).put((byte) 0);
        if (major == 1) {
            b.putShort((short) len);
        } else {
            b.putInt(len);
        }
        b.put(h);
        for (int i = 0; i < pad; i++) {
            b.put((byte) ' ');
        }
        b.put((byte) '\n').put(data);
        return b.array();
    }

    static String dict(String descr, String shape) {
        return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    }

    static byte[] floats(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    /** v2 preamble with a header length of 0xFFFFFFF0 and nothing after it. */
    static byte[] hugeHeaderLength() {
        ByteBuffer b = ByteBuffer.allocate(12 + 64).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.ISO_8859_1)).put((byte) 2).put((byte) 0);
        b.putInt(0xFFFFFFF0);
        return b.array();
    }

    static Stream<Arguments> refused() {
        return Stream.of(
                Arguments.of("rows beyond int range", npy(1, dict("<f4", "(4294967306, 1, 8, 8)"), floats(new float[640])),
                        new String[] {"4294967306", "axis 0"}),
                Arguments.of("one axis of 2^40", npy(1, dict("<f4", "(1099511627776,)"), floats(1f)),
                        new String[] {"1099511627776"}),
                Arguments.of("element count beyond a float array", npy(1, dict("<f4", "(65536, 65536)"), floats(1f)),
                        new String[] {"4294967296 elements"}),
                Arguments.of("element count beyond 64 bits",
                        npy(1, dict("<f4", "(2147483647, 2147483647, 2147483647)"), floats(1f)),
                        new String[] {"64-bit"}),
                Arguments.of("a dimension beyond 64 bits", npy(1, dict("<f4", "(99999999999999999999,)"), floats(1f)),
                        new String[] {"99999999999999999999"}),
                Arguments.of("a negative dimension", npy(1, dict("<f4", "(-3, 8)"), floats(1f)),
                        new String[] {"negative dimension -3"}),
                Arguments.of("a huge header length", hugeHeaderLength(), new String[] {"4294967280", "header"}),
                Arguments.of("shape larger than the data", npy(3, dict("<f4", "(1000, 10)"), floats(1f, 2f)),
                        new String[] {"truncated", "40000"}),
                Arguments.of("unknown version", new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 0, 0},
                        new String[] {"version 9.0"}),
                Arguments.of("a structured dtype", npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                        floats(1f, 2f)), new String[] {"descr"}),
                Arguments.of("a string dtype", npy(1, dict("<U3", "(2,)"), new byte[24]), new String[] {"'<U3'"}));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("refused")
    void refusedBeforeAllocation(String what, byte[] bytes, String[] fragments) throws IOException {
        Path f = tmp.resolve("bad.npy");
        Files.write(f, bytes);
        InvalidInputException e = assertThrows(InvalidInputException.class, () -> NpyIO.read(f), what);
        assertTrue(e.getMessage().contains("bad.npy"), e.getMessage());
        for (String frag : fragments) {
            assertTrue(e.getMessage().contains(frag), what + ": '" + frag + "' missing from: " + e.getMessage());
        }
        // the same inside an .npz archive
        Path z = tmp.resolve("bad.npz");
        try (ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(z))) {
            out.putNextEntry(new ZipEntry("x.npy"));
            out.write(bytes);
            out.closeEntry();
        }
        InvalidInputException ez = assertThrows(InvalidInputException.class, () -> NpyIO.readNpz(z), what + " (npz)");
        assertTrue(ez.getMessage().contains("bad.npz"), ez.getMessage());
    }

    @Test
    void version3IsRead() throws IOException {
        Path f = tmp.resolve("v3.npy");
        // NumPy writes 3.0 when the header needs UTF-8 (here: none does, but the version alone must not fail)
        Files.write(f, npy(3, dict("<f4", "(2, 3)"), floats(1, 2, 3, 4, 5, 6)));
        Tensor t = NpyIO.read(f);
        assertArrayEquals(new int[] {2, 3}, t.shape());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, t.data());
    }

    @Test
    void version2AndOtherDtypesAreRead() throws IOException {
        Path f = tmp.resolve("v2.npy");
        Files.write(f, npy(2, dict("<f4", "(3,)"), floats(-1, 0.5f, 7)));
        assertArrayEquals(new float[] {-1, 0.5f, 7}, NpyIO.read(f).data());

        ByteBuffer half = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        half.putShort((short) 0x3c00).putShort((short) 0xc000).putShort((short) 0x0001).putShort((short) 0x7bff);
        Files.write(f, npy(1, dict("<f2", "(4,)"), half.array()));
        assertArrayEquals(new float[] {1f, -2f, 0x1p-24f, 65504f}, NpyIO.read(f).data());

        ByteBuffer u8 = ByteBuffer.allocate(16).order(ByteOrder.BIG_ENDIAN);
        u8.putLong(-1L).putLong(5L);
        Files.write(f, npy(1, dict(">u8", "(2,)"), u8.array()));
        assertArrayEquals(new float[] {1.8446744e19f, 5f}, NpyIO.read(f).data());

        Files.write(f, npy(1, dict("|b1", "(3,)"), new byte[] {1, 0, 2}));
        assertArrayEquals(new float[] {1, 0, 1}, NpyIO.read(f).data());

        Files.write(f, npy(1, dict("<f4", "()"), floats(3.5f)));
        Tensor scalar = NpyIO.read(f);
        assertArrayEquals(new int[0], scalar.shape());
        assertArrayEquals(new float[] {3.5f}, scalar.data());
    }

    @Test
    void aLargeValidFileIsReadInChunks() throws IOException {
        int n = 700_000; // several read chunks
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i * 0.25f;
        }
        Path f = tmp.resolve("big.npy");
        Files.write(f, npy(1, dict("<f4", "(" + n + ",)"), floats(v)));
        assertArrayEquals(v, NpyIO.read(f).data());
    }
}
