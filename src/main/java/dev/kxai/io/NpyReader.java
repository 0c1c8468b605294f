package dev.kxai.io;

import dev.kxai.InvalidInputException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The NPY format (versions 1.0, 2.0 and 3.0) read from a stream, with every size the file declares
 * checked before anything of that size is allocated: the header length against {@link #MAX_HEADER_BYTES},
 * every dimension and the element count against Java's array limit (in long arithmetic, overflow
 * checked), and the data bytes against what the file holds. Numeric dtypes (bool, int8..int64,
 * uint8..uint64, float16/32/64, either byte order) are converted to float32; Fortran order is
 * reordered to C order by {@link NpyIO}.
 */
final class NpyReader {
    /** NumPy itself refuses headers over 10000 bytes by default ({@code max_header_size}); a little room beyond. */
    static final int MAX_HEADER_BYTES = 1 << 16;
    /** The most elements a Java float array holds. */
    static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8L;

    private NpyReader() {
    }

    /** A parsed header: shape (int dims, checked), dtype, byte order, order. */
    record Header(int[] shape, char kind, int itemSize, ByteOrder order, boolean fortran, long elements, int headerBytes) {
        long dataBytes() {
            return elements * itemSize;
        }
    }

    private static final Pattern DESCR = Pattern.compile("['\"]descr['\"]\\s*:\\s*['\"]([^'\"]*)['\"]");
    private static final Pattern FORTRAN = Pattern.compile("['\"]fortran_order['\"]\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("['\"]shape['\"]\\s*:\\s*\\(([^)]*)\\)");

    /** Reads and checks the header; {@code available} is the bytes the source holds in all (or -1 when unknown). */
    static Header header(InputStream in, String where, long available) throws IOException {
        byte[] pre = readN(in, 8, where, "the magic string and version");
        if ((pre[0] & 0xff) != 0x93 || !new String(pre, 1, 5, StandardCharsets.ISO_8859_1).equals("NUMPY")) {
            throw new InvalidInputException(where + " is not a NumPy .npy file (no \\x93NUMPY magic string)");
        }
        int major = pre[6] & 0xff;
        int minor = pre[7] & 0xff;
        long len;
        int prefix;
        if (major == 1) {
            byte[] l = readN(in, 2, where, "the header length");
            len = (l[0] & 0xff) | (l[1] & 0xff) << 8;
            prefix = 10;
        } else if (major == 2 || major == 3) {
            byte[] l = readN(in, 4, where, "the header length");
            len = ByteBuffer.wrap(l).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffffffffL;
            prefix = 12;
        } else {
            throw new InvalidInputException(where + ": NPY format version " + major + "." + minor
                    + " is not supported (1.0, 2.0, 3.0)");
        }
        if (len > MAX_HEADER_BYTES) {
            throw new InvalidInputException(where + ": the .npy header declares " + len + " bytes; at most "
                    + MAX_HEADER_BYTES + " are accepted (NumPy writes a few hundred)");
        }
        if (available >= 0 && prefix + len > available) {
            throw new InvalidInputException(where + ": truncated .npy: the header declares " + len + " bytes, the file holds "
                    + Math.max(0, available - prefix) + " after the preamble");
        }
        byte[] hb = readN(in, (int) len, where, "the header");
        String h = new String(hb, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        Matcher d = DESCR.matcher(h);
        Matcher f = FORTRAN.matcher(h);
        Matcher s = SHAPE.matcher(h);
        if (!d.find() || !f.find() || !s.find()) {
            throw new InvalidInputException(where + ": the .npy header is not a dict of descr, fortran_order and shape: "
                    + abbreviate(h.trim()));
        }
        // nothing else may be in the dict: a stray quote or key (issue 13: descr '<f4'}' was read as '<f4')
        StringBuilder rest = new StringBuilder(h);
        Matcher[] ms = {d, f, s};
        java.util.Arrays.sort(ms, (a, b) -> Integer.compare(b.start(), a.start()));
        for (Matcher m : ms) {
            rest.replace(m.start(), m.end(), ",");
        }
        if (!rest.toString().matches("(?s)\\s*\\{[\\s,]*\\}[\\s\\x00]*")) {
            throw new InvalidInputException(where + ": the .npy header holds more than a dict of descr, fortran_order and "
                    + "shape: " + abbreviate(h.trim()));
        }
        String descr = d.group(1);
        if (descr.length() < 3) {
            throw new InvalidInputException(where + ": dtype '" + descr + "' is not a numeric NumPy dtype");
        }
        char endian = descr.charAt(0);
        char kind = descr.charAt(1);
        int size;
        try {
            size = Integer.parseInt(descr.substring(2));
        } catch (NumberFormatException e) {
            throw new InvalidInputException(where + ": dtype '" + descr + "' cannot be read as float32 (numeric dtypes only)");
        }
        boolean known = switch (kind) {
            case 'f' -> size == 2 || size == 4 || size == 8;
            case 'i', 'u' -> size == 1 || size == 2 || size == 4 || size == 8;
            case 'b' -> size == 1;
            default -> false;
        };
        if (!known || "<>|=".indexOf(endian) < 0) {
            throw new InvalidInputException(where + ": dtype '" + descr + "' cannot be read as float32 (bool, int, uint "
                    + "and float dtypes only)");
        }
        ByteOrder order = endian == '>' ? ByteOrder.BIG_ENDIAN
                : endian == '=' ? ByteOrder.nativeOrder() : ByteOrder.LITTLE_ENDIAN;
        List<Long> dims = new ArrayList<>();
        for (String part : s.group(1).split(",")) {
            String p = part.trim();
            if (p.endsWith("L")) {
                p = p.substring(0, p.length() - 1); // Python 2's long literals
            }
            if (p.isEmpty()) {
                continue;
            }
            try {
                dims.add(Long.parseLong(p));
            } catch (NumberFormatException e) {
                throw new InvalidInputException(where + ": shape (" + s.group(1).trim() + ") holds '" + p
                        + "', not a whole number" + (p.matches("\\d+") ? " within the range of a 64-bit integer" : ""));
            }
        }
        int[] shape = new int[dims.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            long v = dims.get(i);
            if (v < 0) {
                throw new InvalidInputException(where + ": shape " + dims + " has a negative dimension " + v + " (axis " + i + ")");
            }
            if (v > Integer.MAX_VALUE) {
                throw new InvalidInputException(where + ": shape " + dims + " has dimension " + v + " at axis " + i
                        + ", beyond the " + Integer.MAX_VALUE + " kxai takes per axis");
            }
            shape[i] = (int) v;
            elements = multiply(elements, v, where, dims);
        }
        if (elements > MAX_ELEMENTS) {
            throw new InvalidInputException(where + ": shape " + dims + " holds " + elements + " elements; at most "
                    + MAX_ELEMENTS + " fit a float32 tensor");
        }
        long dataBytes = elements * size;
        if (available >= 0 && prefix + len + dataBytes > available) {
            throw new InvalidInputException(where + ": truncated .npy: header shape " + dims + " (" + descr + ") needs "
                    + dataBytes + " data bytes, the file holds " + Math.max(0, available - prefix - len));
        }
        return new Header(shape, kind, size, order, f.group(1).equals("True"), elements, (int) (prefix + len));
    }

    private static long multiply(long a, long b, String where, List<Long> dims) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new InvalidInputException(where + ": shape " + dims + " holds more elements than a 64-bit count");
        }
    }

    /** The data after the header, converted to float32 in file order, read in chunks (no copy of the whole file). */
    static float[] data(InputStream in, Header h, String where) throws IOException {
        float[] out = new float[(int) h.elements()];
        int item = h.itemSize();
        int perChunk = Math.max(1, (1 << 20) / item);
        byte[] buf = new byte[(int) Math.min((long) perChunk * item, Math.max(item, h.dataBytes()))];
        ByteBuffer bb = ByteBuffer.wrap(buf).order(h.order());
        int done = 0;
        while (done < out.length) {
            int n = Math.min(perChunk, out.length - done);
            int bytes = n * item;
            int got = in.readNBytes(buf, 0, bytes);
            if (got < bytes) {
                throw new InvalidInputException(where + ": truncated .npy: the data ends after "
                        + ((long) done * item + got) + " of " + h.dataBytes() + " bytes");
            }
            bb.clear();
            for (int i = 0; i < n; i++) {
                out[done + i] = value(bb, h.kind(), item);
            }
            done += n;
        }
        return out;
    }

    private static float value(ByteBuffer b, char kind, int size) {
        switch (kind) {
            case 'f':
                return size == 4 ? b.getFloat() : size == 8 ? (float) b.getDouble() : half(b.getShort());
            case 'b':
                return b.get() != 0 ? 1f : 0f;
            case 'i':
                return switch (size) {
                    case 1 -> b.get();
                    case 2 -> b.getShort();
                    case 4 -> b.getInt();
                    default -> b.getLong();
                };
            default: // 'u'
                return switch (size) {
                    case 1 -> b.get() & 0xff;
                    case 2 -> b.getShort() & 0xffff;
                    case 4 -> b.getInt() & 0xffffffffL;
                    default -> unsigned(b.getLong());
                };
        }
    }

    private static float unsigned(long v) {
        return v >= 0 ? v : (float) ((v >>> 1) * 2.0 + (v & 1));
    }

    private static byte[] readN(InputStream in, int n, String where, String what) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length < n) {
            throw new InvalidInputException(where + ": truncated .npy: the file ends inside " + what);
        }
        return b;
    }

    private static String abbreviate(String s) {
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }

    /** IEEE 754 binary16 to float32 (exact). */
    static float half(short h) {
        return dev.kxai.tensor.Float16.toFloat(h);
    }
}
