package dev.kxai.backend.cuda;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernels of a module (kernels/&lt;module&gt;.cu), read from its PTX's {@code .entry}
 * declarations when the module loads: adding a kernel to a {@code .cu} file needs no list here.
 */
final class KernelNames {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_$][A-Za-z0-9_$]*)\\s*\\(");

    private KernelNames() {
    }

    static List<String> in(byte[] ptx) {
        List<String> names = new ArrayList<>();
        Matcher m = ENTRY.matcher(new String(ptx, StandardCharsets.US_ASCII));
        while (m.find()) {
            names.add(m.group(1));
        }
        return names;
    }
}
