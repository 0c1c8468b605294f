package dev.kxai.cli;

import dev.kxai.InvalidInputException;
import dev.kxai.attr.Progress;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Progress of a long CLI run (the steps of a path integration, images read, examples rendered,
 * validation models, bench repeats) on stderr. On a terminal ({@code bar}) one line redrawn in place:
 * {@code integrating [#########.........]  45% 23/50 steps 3.1 s}, ended with a newline when done.
 * Otherwise ({@code lines}: output redirected, CI logs) plain lines, so logs stay readable: nothing
 * for the first {@link #QUIET_NANOS} (short runs stay quiet), then a line at every tenth of the work
 * or every 5 s, whichever comes first, and one at the end. {@code off}: nothing.
 * Chosen by {@code --progress auto|bar|lines|off} (auto: bar when {@code System.console()} exists,
 * else lines; the environment variable {@code KXAI_PROGRESS} sets auto's choice). Thread-safe.
 */
final class ProgressBar implements Progress {
    enum Mode { BAR, LINES, OFF }

    static final long QUIET_NANOS = 2_000_000_000L;
    static final long LINE_EVERY_NANOS = 5_000_000_000L;
    static final int WIDTH = 30;

    private final PrintWriter err;
    private final String what;
    private final String unit;
    private final Mode mode;
    private final LongSupplier clock;
    private final long start;
    private long lastLine;
    private int lastTenth = -1;
    private boolean printed;
    private boolean finished;
    private boolean drawn;
    private int lastDone;

    ProgressBar(PrintWriter err, String what, String unit, Mode mode, LongSupplier clock) {
        this.err = err;
        this.what = what;
        this.unit = unit;
        this.mode = mode;
        this.clock = clock;
        this.start = clock.getAsLong();
        this.lastLine = start;
    }

    static ProgressBar of(PrintWriter err, String what, String unit, String option) {
        return new ProgressBar(err, what, unit, mode(option, System.getenv("KXAI_PROGRESS"), System.console() != null),
                System::nanoTime);
    }

    /** The mode for --progress (null = auto), the environment's KXAI_PROGRESS, and whether a terminal is attached. */
    static Mode mode(String option, String env, boolean terminal) {
        String o = option == null || option.equalsIgnoreCase("auto") ? env : option;
        if (o == null || o.isBlank() || o.equalsIgnoreCase("auto")) {
            return terminal ? Mode.BAR : Mode.LINES;
        }
        return switch (o.toLowerCase(Locale.ROOT)) {
            case "bar" -> Mode.BAR;
            case "lines" -> Mode.LINES;
            case "off", "none" -> Mode.OFF;
            default -> throw new InvalidInputException("--progress " + o + ": expected auto, bar, lines or off");
        };
    }

    @Override
    public synchronized void stepsDone(int done, int total) {
        if (done < lastDone) {
            // a new pass of the same work (metrics rerun a method): count it afresh
            finished = false;
            lastTenth = -1;
        }
        lastDone = done;
        if (mode == Mode.OFF || total <= 0 || finished) {
            return;
        }
        long now = clock.getAsLong();
        double secs = (now - start) / 1e9;
        boolean last = done >= total;
        if (mode == Mode.BAR) {
            int filled = (int) ((long) WIDTH * Math.min(done, total) / total);
            err.printf(Locale.ROOT, "\r%s [%s%s] %3d%% %d/%d %s %.1f s", what, "#".repeat(filled), ".".repeat(WIDTH - filled),
                    (int) (100L * Math.min(done, total) / total), done, total, unit, secs);
            drawn = true;
            if (last) {
                err.println();
                finished = true;
            }
            err.flush();
            return;
        }
        int tenth = (int) (10L * Math.min(done, total) / total);
        boolean due = now - start >= QUIET_NANOS && (tenth > lastTenth || now - lastLine >= LINE_EVERY_NANOS);
        if (due || (last && printed)) {
            err.printf(Locale.ROOT, "%s: %d/%d %s (%d%%), %.1f s%n", what, done, total, unit,
                    (int) (100L * Math.min(done, total) / total), secs);
            err.flush();
            printed = true;
            lastLine = now;
            lastTenth = tenth;
        }
        if (last) {
            finished = true;
        }
    }

    /**
     * Erases a bar drawn on the terminal, so a line written to stdout next does not land after it;
     * the next {@link #stepsDone} draws it again. Nothing to do in the other modes.
     */
    synchronized void clear() {
        if (mode == Mode.BAR && drawn && !finished) {
            err.print("\r" + " ".repeat(what.length() + WIDTH + unit.length() + 40) + "\r");
            err.flush();
            drawn = false;
        }
    }

    /** Whether anything was printed (lines mode). */
    synchronized boolean printed() {
        return printed;
    }
}
