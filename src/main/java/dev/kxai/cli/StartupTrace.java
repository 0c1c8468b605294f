package dev.kxai.cli;

/**
 * Start-up probes: with {@code -Dkxai.trace.startup=true} each {@link #mark} prints the milliseconds
 * since the JVM started (and since the previous mark) on stderr, to see where a cold start goes
 * (bench/RESULTS.md, start-up). Off: one static boolean test per mark.
 */
final class StartupTrace {
    static final boolean ON = Boolean.getBoolean("kxai.trace.startup");
    /** The JVM's start (ms since the epoch; the management classes load only when tracing). */
    private static final long START_MS = ON ? java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime() : 0L;
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
