package dev.kxai.backend.cuda;

import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PTX ISA versions against CUDA driver versions, to say in words why a driver refuses the jar's
 * kernels. A driver JIT-compiles PTX up to the ISA of its own CUDA release and refuses newer PTX
 * with CUDA_ERROR_UNSUPPORTED_PTX_VERSION. The table is the PTX ISA's release history (PTX ISA
 * manual, "Release Notes"): ISA 8.0 came with CUDA 12.0, …, 8.5 with 12.5 (12.6 kept it), 8.6 with
 * 12.7, 8.7 with 12.8, 8.8 with 12.9, 9.0 with 13.0. The jar's kernels are built at ISA 8.0
 * ({@code kernels/compile-ptx.sh}), so every driver JCuda 12.0 supports (CUDA 12.0, R525+) loads them.
 */
final class PtxIsa {
    private PtxIsa() {
    }

    /** {driver version (1000 * major + 10 * minor), ISA major, ISA minor}, ascending. */
    private static final int[][] TABLE = {
        {11000, 7, 0}, {11010, 7, 1}, {11020, 7, 2}, {11030, 7, 3}, {11040, 7, 4}, {11050, 7, 5},
        {11060, 7, 6}, {11070, 7, 7}, {11080, 7, 8}, {12000, 8, 0}, {12010, 8, 1}, {12020, 8, 2},
        {12030, 8, 3}, {12040, 8, 4}, {12050, 8, 5}, {12070, 8, 6}, {12080, 8, 7}, {12090, 8, 8},
        {13000, 9, 0}, {13010, 9, 1}};

    private static final Pattern VERSION = Pattern.compile("(?m)^\\s*\\.version\\s+(\\d+)\\.(\\d+)");

    /** The ISA a PTX text declares ({@code .version}), as "8.0"; null when it has none. */
    static String declared(byte[] ptx) {
        Matcher m = VERSION.matcher(new String(ptx, StandardCharsets.US_ASCII));
        return m.find() ? m.group(1) + "." + m.group(2) : null;
    }

    /** The newest ISA a driver of this version JIT-compiles, as "8.0"; null when older than the table. */
    static String newestFor(int driverVersion) {
        String newest = null;
        for (int[] row : TABLE) {
            if (row[0] <= driverVersion) {
                newest = row[1] + "." + row[2];
            }
        }
        return newest;
    }

    /** The oldest CUDA release whose driver JIT-compiles this ISA, as "13.0"; null when unknown. */
    static String firstCudaFor(String isa) {
        for (int[] row : TABLE) {
            if ((row[1] + "." + row[2]).equals(isa)) {
                return driver(row[0]);
            }
        }
        return null;
    }

    /** A driver version as CUDA writes it: 12000 -> "12.0", 12020 -> "12.2". */
    static String driver(int version) {
        return version / 1000 + "." + (version % 1000) / 10;
    }

    /**
     * Why a driver refused a module's PTX with CUDA_ERROR_UNSUPPORTED_PTX_VERSION: the driver's
     * version, the ISA it takes, the ISA the PTX declares, and what would load it.
     */
    static String refusal(String module, int driverVersion, byte[] ptx) {
        String isa = declared(ptx);
        String newest = newestFor(driverVersion);
        String first = isa == null ? null : firstCudaFor(isa);
        return "the CUDA driver " + driver(driverVersion) + " (cuDriverGetVersion " + driverVersion + ") refused the PTX of kernels/"
                + module + ".cu: it declares PTX ISA " + (isa == null ? "(no .version)" : isa) + ", and this driver JIT-compiles PTX ISA "
                + (newest == null ? "of no version kxai knows" : "up to " + newest)
                + " (CUDA_ERROR_UNSUPPORTED_PTX_VERSION); update the NVIDIA driver"
                + (first == null ? "" : " to one for CUDA " + first + " or newer")
                + ", or use a kxai jar whose kernels are built at PTX ISA 8.0 (kernels/compile-ptx.sh)";
    }
}
