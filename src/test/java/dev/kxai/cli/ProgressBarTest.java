package dev.kxai.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kxai.InvalidInputException;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

/** The progress reporter: a bar redrawn in place on a terminal, throttled plain lines otherwise. */
class ProgressBarTest {
    @Test
    void modeFollowsTheOptionThenTheEnvironmentThenTheTerminal() {
        assertEquals(ProgressBar.Mode.BAR, ProgressBar.mode(null, null, true));
        assertEquals(ProgressBar.Mode.LINES, ProgressBar.mode(null, null, false));
        assertEquals(ProgressBar.Mode.LINES, ProgressBar.mode("auto", "lines", true));
        assertEquals(ProgressBar.Mode.OFF, ProgressBar.mode("off", "bar", true));
        assertEquals(ProgressBar.Mode.BAR, ProgressBar.mode("bar", null, false));
        assertTrue(assertThrows(InvalidInputException.class, () -> ProgressBar.mode("fancy", null, true)).getMessage()
                .contains("fancy"));
    }

    @Test
    void aBarIsRedrawnInPlaceAndEndsWithANewline() {
        StringWriter s = new StringWriter();
        long[] now = {0};
        ProgressBar p = new ProgressBar(new PrintWriter(s), "integrating", "steps", ProgressBar.Mode.BAR, () -> now[0]);
        p.stepsDone(5, 10);
        p.clear(); // before a line on stdout: the bar is erased, then drawn again by the next step
        assertTrue(s.toString().endsWith(" \r"), s.toString());
        now[0] = 1_500_000_000L;
        p.stepsDone(10, 10);
        String out = s.toString();
        assertTrue(out.startsWith("\rintegrating [" + "#".repeat(15) + ".".repeat(15) + "]  50% 5/10 steps 0.0 s"), out);
        assertTrue(out.contains("\rintegrating [" + "#".repeat(30) + "] 100% 10/10 steps 1.5 s\n"), out);
    }

    @Test
    void explainAndValidateReportProgressOnStderr(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        dev.kxai.testing.CliRun r = dev.kxai.testing.CliRun.of("explain", "--progress", "bar", "--out", dir.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("integrating [" + "#".repeat(30) + "] 100% 50/50 steps"), r.err());
        assertTrue(r.err().contains("rendering [" + "#".repeat(30) + "] 100% 10/10 examples"), r.err());
        assertTrue(!r.out().contains("\r"), "stdout stays clean");
        dev.kxai.testing.CliRun v = dev.kxai.testing.CliRun.of("validate", dev.kxai.TestData.reference("mlp_tabular")
                .toString(), "--device", "cpu", "--progress", "bar");
        assertEquals(0, v.status(), v.err());
        assertTrue(v.err().contains("validate [" + "#".repeat(30) + "] 100% 1/1 models"), v.err());
        dev.kxai.testing.CliRun off = dev.kxai.testing.CliRun.of("explain", "--progress", "off", "--out", dir.toString());
        assertEquals("", off.err().replaceAll("(?m)^WARNING.*\\n?", ""));
    }

    @Test
    void linesAreQuietForShortRunsThenOneEachTenth() {
        StringWriter s = new StringWriter();
        long[] now = {0};
        ProgressBar quick = new ProgressBar(new PrintWriter(s), "x", "images", ProgressBar.Mode.LINES, () -> now[0]);
        for (int i = 1; i <= 100; i++) {
            quick.stepsDone(i, 100);
        }
        assertEquals("", s.toString(), "a run under 2 s prints nothing");

        StringWriter t = new StringWriter();
        ProgressBar slow = new ProgressBar(new PrintWriter(t), "validate", "models", ProgressBar.Mode.LINES, () -> now[0]);
        for (int i = 1; i <= 100; i++) {
            now[0] = i * 100_000_000L; // 0.1 s per item: 10 s in all
            slow.stepsDone(i, 100);
        }
        String[] lines = t.toString().split("\n");
        assertTrue(lines.length >= 8 && lines.length <= 12, t.toString());
        assertEquals("validate: 100/100 models (100%), 10.0 s", lines[lines.length - 1]);
        assertTrue(!t.toString().contains("\r"), "no carriage returns in a log");
    }
}
