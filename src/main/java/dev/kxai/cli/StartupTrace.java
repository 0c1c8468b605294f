package dev.kxai.cli;

/**
 * Start-up probes: with {@code -Dkxai.trace.startup=true} each {@link #mark} prints the milliseconds
 * since the JVM started (and since the previous mark) on stderr, to see where a cold start goes
 * (bench/RESULTS.md, start-up). Off: one static boolean test per mark.
 */
final class StartupTrace {
    static final boolean ON = Boolean.getBoolean("kxai.trace.startup");
    /** The JVM's start, from the process's start time (ms since the epoch); 0 if unknown. */
    private static final long START_MS = ON ? ProcessHandle.current().info().startInstant()
            .map(java.time.Instant::toEpochMilli).orElse(0L) : 0L;
    private static long last = START_MS;

    private StartupTrace() {
    }

    static synchronized void mark(String what) {
        if (ON) {
            long now = System.currentTimeMillis();
            System.err.printf("[startup] %6d ms (+%5d) %s%n", now - START_MS, now - last, what);
            last = now;
        }
    }
}
