package dev.kxai.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The device ordinal the process drives ({@code -Dkxai.cuda.device}, which kxai-spark sets from the
 * GPU address Spark assigns a task): read once at the probe, so each case runs in its own JVM on
 * the emulator, which reports one device. Says nothing about a real multi-GPU machine.
 */
class DeviceOrdinalTest {
    @Test
    void ordinalZeroIsTheDefaultDevice() throws Exception {
        String out = info("0", 0);
        assertTrue(out.contains("backend cuda: available - device 0: "), out);
    }

    @Test
    void anOrdinalBeyondTheDevicesMakesCudaUnavailableWithTheReason() throws Exception {
        String out = info("3", 2);
        assertTrue(out.contains("backend cuda: unavailable - kxai.cuda.device=3 names no device: the driver reports 1 "
                + "(ordinals 0..0)"), out);
    }

    @Test
    void aNonNumericOrdinalIsRefusedTheSameWay() throws Exception {
        String out = info("gpu0", 2);
        assertTrue(out.contains("kxai.cuda.device=gpu0 names no device"), out);
    }

    private static String info(String ordinal, int expectedExit) throws Exception {
        Path tmp = Files.createTempDirectory("kxai-ordinal");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m", "-Djava.io.tmpdir=" + tmp, "-Dkxai.cuda.device=" + ordinal, "-cp",
                System.getProperty("java.class.path"), "dev.kxai.cli.Main", "info", "--device", "cuda"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove("KXAI_DEVICE");
        Process p = pb.start();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (InputStream in = p.getInputStream()) {
            in.transferTo(buf);
        }
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child JVM did not finish");
        String text = buf.toString(StandardCharsets.UTF_8);
        assertEquals(expectedExit, p.exitValue(), text);
        return text;
    }
}
