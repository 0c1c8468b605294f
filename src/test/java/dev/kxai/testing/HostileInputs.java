package dev.kxai.testing;

import dev.kxai.KxaiException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The hostile-input harness of issue 13's acceptance: cases by class, each through the CLI (in process,
 * {@code Main.run}) or the API, on one device; every outcome classified, a table printed. A case is
 * <em>refused cleanly</em> when the API throws a {@link KxaiException} with a message, or the CLI exits 2
 * with one {@code kxai: error:} line and no stack trace. Anything else is bad: a crash (an Error such as
 * OutOfMemoryError, or the CLI's exit 1 "internal error"), a hang (past the per-case limit), a stack trace
 * on the CLI's streams, a malformed input accepted (the call returned, the CLI exited 0), or an untyped
 * exception from the API (NullPointerException, IllegalArgumentException, ClassCastException ...).
 */
public final class HostileInputs {
    public enum Outcome { REFUSED, CRASH, HANG, STACK_TRACE, ACCEPTED, UNTYPED }

    /** A case: its class, the channel (CLI or API), a name, and the probe that runs it. */
    public record Case(String cls, String channel, String name, Callable<Verdict> probe) {
    }

    /** What one probe saw. */
    public record Verdict(Outcome outcome, String detail) {
    }

    /** A case and its verdict. */
    public record Result(Case c, Verdict v) {
    }

    /** An action of the API that must be refused. */
    @FunctionalInterface
    public interface Action {
        Object run() throws Exception;
    }

    private final String device;
    private final List<Case> cases = new ArrayList<>();

    public HostileInputs(String device) {
        this.device = device;
    }

    public String device() {
        return device;
    }

    public List<Case> cases() {
        return cases;
    }

    /** An API case: the action must throw a typed KxaiException with a message. */
    public void api(String cls, String name, Action a) {
        cases.add(new Case(cls, "API", name, () -> {
            try {
                Object r = a.run();
                return new Verdict(Outcome.ACCEPTED, "returned " + r);
            } catch (KxaiException e) {
                if (e.getMessage() == null || e.getMessage().isBlank()) {
                    return new Verdict(Outcome.UNTYPED, e.getClass().getSimpleName() + " without a message");
                }
                return new Verdict(Outcome.REFUSED, e.getClass().getSimpleName() + ": " + e.getMessage());
            } catch (Error e) {
                return new Verdict(Outcome.CRASH, stack(e));
            } catch (Exception e) {
                return new Verdict(Outcome.UNTYPED, stack(e));
            }
        }));
    }

    /** A CLI case: exit 2, one {@code kxai: error:} line first, no stack trace. */
    public void cli(String cls, String name, String... args) {
        cases.add(new Case(cls, "CLI", name, () -> {
            CliRun r;
            try {
                r = CliRun.of(args);
            } catch (Error e) {
                return new Verdict(Outcome.CRASH, stack(e));
            } catch (Exception e) {
                return new Verdict(Outcome.UNTYPED, "Main.run threw: " + stack(e));
            }
            String err = r.err();
            String all = r.out() + err;
            String first = err.lines().filter(l -> !l.isBlank()).findFirst().orElse("");
            if (all.contains("\tat ") || all.contains("Exception in thread")) {
                return new Verdict(Outcome.STACK_TRACE, "exit " + r.status() + ": " + clip(err));
            }
            if (r.status() == 0) {
                return new Verdict(Outcome.ACCEPTED, "exit 0: " + clip(r.out()));
            }
            if (r.status() != 2 || err.contains("internal error")) {
                return new Verdict(Outcome.CRASH, "exit " + r.status() + ": " + clip(err));
            }
            if (!first.startsWith("kxai: error: ") || first.length() <= "kxai: error: ".length()) {
                return new Verdict(Outcome.UNTYPED, "exit 2 without a 'kxai: error:' line first: " + clip(err));
            }
            return new Verdict(Outcome.REFUSED, first);
        }));
    }

    /** Runs every case, each within {@code limitSeconds} (past it: a hang). */
    public List<Result> run(int limitSeconds) {
        List<Result> out = new ArrayList<>();
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "hostile-case");
            t.setDaemon(true);
            return t;
        });
        try {
            for (Case c : cases) {
                Future<Verdict> f = pool.submit(c.probe());
                Verdict v;
                try {
                    v = f.get(limitSeconds, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    f.cancel(true);
                    v = new Verdict(Outcome.HANG, "still running after " + limitSeconds + " s");
                } catch (Exception e) {
                    v = new Verdict(Outcome.CRASH, stack(e));
                }
                out.add(new Result(c, v));
            }
        } finally {
            pool.shutdownNow();
        }
        return out;
    }

    /** The acceptance table: per class and channel, cases tried and each outcome's count. */
    public static String table(String device, List<Result> results) {
        Map<String, int[]> rows = new TreeMap<>();
        int[] total = new int[Outcome.values().length + 1];
        for (Result r : results) {
            int[] row = rows.computeIfAbsent(r.c().cls() + " | " + r.c().channel(), k -> new int[total.length]);
            row[0]++;
            row[1 + r.v().outcome().ordinal()]++;
            total[0]++;
            total[1 + r.v().outcome().ordinal()]++;
        }
        StringBuilder sb = new StringBuilder();
        String fmt = "%-34s %-7s %5s %8s %6s %5s %6s %9s %8s%n";
        sb.append(String.format(fmt, "class | channel", "device", "tried", "refused", "crash", "hang", "stack",
                "accepted", "untyped"));
        rows.forEach((k, row) -> sb.append(line(fmt, k, device, row)));
        sb.append(line(fmt, "TOTAL", device, total));
        return sb.toString();
    }

    private static String line(String fmt, String k, String device, int[] row) {
        return String.format(fmt, k, device, row[0], row[1], row[2], row[3], row[4], row[5], row[6]);
    }

    /** The bad results, one line each (empty when every case was refused cleanly). */
    public static List<String> bad(List<Result> results) {
        List<String> bad = new ArrayList<>();
        for (Result r : results) {
            if (r.v().outcome() != Outcome.REFUSED) {
                bad.add(r.v().outcome() + " [" + r.c().cls() + " | " + r.c().channel() + "] " + r.c().name() + ": "
                        + r.v().detail());
            }
        }
        return bad;
    }

    private static String stack(Throwable e) {
        StringWriter w = new StringWriter();
        e.printStackTrace(new PrintWriter(w));
        return clip(w.toString());
    }

    private static String clip(String s) {
        return s.length() > 600 ? s.substring(0, 600) + "..." : s;
    }
}
