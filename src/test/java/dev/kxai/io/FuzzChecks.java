package dev.kxai.io;

import dev.kxai.KxaiException;
import dev.kxai.tensor.Tensor;

/** What every fuzz target asserts beyond "only typed exceptions". */
public final class FuzzChecks {
    private FuzzChecks() {
    }

    /** A tensor read from {@code bytes} bytes: its shape and data agree, and it fits in them. */
    public static void consistent(Tensor t, long bytes) {
        long n = 1;
        for (int d : t.shape()) {
            if (d < 0) {
                throw new AssertionError("negative dimension in " + java.util.Arrays.toString(t.shape()));
            }
            n = Math.multiplyExact(n, d);
        }
        if (n != t.data().length) {
            throw new AssertionError("shape " + java.util.Arrays.toString(t.shape()) + " holds " + n
                    + " elements, data " + t.data().length);
        }
        if (n > bytes) { // at least one byte per element (bool/u1), nothing invented
            throw new AssertionError(n + " elements from " + bytes + " bytes");
        }
    }

    /** The per-input deadline in seconds while fuzzing inside {@code mvn verify} (0: none). */
    private static final long DEADLINE_S = Long.getLong("kxai.fuzz.deadline", 0);

    /** One input's work, as a fuzz target runs it. */
    public interface Work {
        void run() throws Exception;
    }

    private static final java.util.concurrent.ExecutorService WORKER = DEADLINE_S <= 0 ? null
            : java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "kxai-fuzz-input");
                t.setDaemon(true);
                return t;
            });

    /**
     * Runs one input. Under {@code -Dkxai.fuzz.deadline=S} (set by the fuzz executions of {@code mvn verify})
     * an input still running after S seconds becomes an ordinary finding: an AssertionError carrying the
     * worker's stack, which Jazzer writes as a crash-* reproducer and JUnit reports, where libFuzzer's own
     * -timeout would end the JVM with exit code 70 (surefire then only says "the forked VM terminated").
     * Without the property (regression runs, bench/fuzz.sh) the work runs on the caller's thread and
     * libFuzzer's -timeout (the targets' @Timeout) is the limit.
     */
    public static void withDeadline(Work work) throws Exception {
        if (WORKER == null) {
            work.run();
            return;
        }
        Thread[] runner = new Thread[1];
        java.util.concurrent.Future<?> f = WORKER.submit(() -> {
            runner[0] = Thread.currentThread();
            work.run();
            return null;
        });
        try {
            f.get(DEADLINE_S, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException hang) {
            AssertionError e = new AssertionError("no result within " + DEADLINE_S + " s (-Dkxai.fuzz.deadline):"
                    + " a hang, or an input far too slow to refuse; the stack below is where the input was");
            if (runner[0] != null) {
                e.setStackTrace(runner[0].getStackTrace());
            }
            throw e;
        } catch (java.util.concurrent.ExecutionException failed) {
            Throwable c = failed.getCause();
            if (c instanceof Exception x) {
                throw x;
            }
            throw (Error) c;
        }
    }

    /** A refusal says something: a message, not just a number or "null". */
    public static void named(KxaiException e) {
        String m = e.getMessage();
        if (m == null || m.isBlank() || m.equals("null")) {
            throw new AssertionError("refusal without a message", e);
        }
    }
}
