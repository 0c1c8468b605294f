package dev.kxai.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The verdict on the bounded fuzzing of {@code mvn verify} (antrun execution {@code fuzz-verdict}, after the
 * {@code fuzz-*} surefire executions, which do not fail the build themselves: {@code testFailureIgnore}).
 * Fails the build, naming each reproducer and how to keep it as a regression test, when a target wrote a
 * finding ({@code crash-*}, {@code timeout-*}, {@code oom-*}, {@code leak-*} under {@code target/fuzz/<target>/}),
 * when its surefire report has a failure or an error, or when a target that should have run left no report.
 * Otherwise prints one line per target. libFuzzer's {@code slow-unit-*} (an input that took over 10 s, which
 * does not stop the run) is listed but fails nothing: under instrumentation on a loaded machine slowness is
 * load; a hang still ends as a finding after the per-input deadline (60 s).
 *
 * <p>Arguments: the build directory ({@code target}), the value of {@code skipTests}, then the target ids.
 */
public final class FuzzVerdict {
    private FuzzVerdict() {
    }

    private static final Pattern FINDING = Pattern.compile("(crash|timeout|oom|leak)-[0-9a-f]+");
    /** libFuzzer's -report_slow_units (an input over 10 s): reported, not a failure; on a loaded machine it is load. */
    private static final Pattern SLOW = Pattern.compile("slow-unit-[0-9a-f]+");
    private static final Pattern SUITE = Pattern.compile("<testsuite[^>]*?\\stests=\"(\\d+)\"[^>]*?\\serrors=\"(\\d+)\"[^>]*?"
            + "\\sfailures=\"(\\d+)\"|<testsuite[^>]*?\\stests=\"(\\d+)\"[^>]*?\\sfailures=\"(\\d+)\"[^>]*?\\serrors=\"(\\d+)\"");
    private static final Pattern PROBLEM = Pattern.compile("<(failure|error) message=\"([^\"]*)\"");

    public static void main(String[] args) throws IOException {
        Path build = Path.of(args[0]).toAbsolutePath();
        if (Boolean.parseBoolean(args[1])) {
            System.out.println("[fuzz] skipped with the tests");
            return;
        }
        List<String> problems = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            for (String id : args[i].trim().split("\\s+")) {
                check(build, id, problems);
            }
        }
        if (!problems.isEmpty()) {
            System.out.println("[fuzz] FAILED: " + problems.size() + " problem(s) in the bounded fuzzing of mvn verify");
            problems.forEach(p -> System.out.println("[fuzz] " + p.replace("\n", "\n[fuzz]   ")));
            System.out.flush();
            System.exit(1);
        }
    }

    private static void check(Path build, String id, List<String> problems) throws IOException {
        Path dir = build.resolve("fuzz").resolve(id);
        Path reports = build.resolve("surefire-reports-fuzz-" + id);
        String test = testOf(dir);
        List<Path> findings = new ArrayList<>();
        if (Files.isDirectory(dir)) {
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> FINDING.matcher(p.getFileName().toString()).matches()).sorted().forEach(findings::add);
            }
        }
        if (Files.isDirectory(dir)) {
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> SLOW.matcher(p.getFileName().toString()).matches()).sorted().forEach(p -> System.out.println(
                        "[fuzz] " + id + ": slow input (over libFuzzer's 10 s report threshold; not a failure): "
                                + build.getParent().relativize(p.toAbsolutePath())));
            }
        }
        List<Path> xml = new ArrayList<>();
        if (Files.isDirectory(reports)) {
            try (Stream<Path> s = Files.list(reports)) {
                s.filter(p -> p.getFileName().toString().startsWith("TEST-")).sorted().forEach(xml::add);
            }
        }
        if (xml.isEmpty()) {
            problems.add(id + ": no surefire report in " + reports + " (the fuzzing JVM did not run or did not finish)");
        }
        int tests = 0;
        List<String> messages = new ArrayList<>();
        for (Path x : xml) {
            String text = Files.readString(x);
            Matcher m = SUITE.matcher(text);
            if (m.find()) {
                boolean first = m.group(1) != null;
                tests += Integer.parseInt(first ? m.group(1) : m.group(4));
                int bad = Integer.parseInt(first ? m.group(2) : m.group(5)) + Integer.parseInt(first ? m.group(3) : m.group(6));
                if (bad > 0) {
                    Matcher p = PROBLEM.matcher(text);
                    while (p.find()) {
                        messages.add(unescape(p.group(2)));
                    }
                    if (messages.isEmpty()) {
                        messages.add(bad + " failed test(s), see " + x);
                    }
                }
            }
        }
        String keep = test == null ? null : "src/test/resources/" + test.substring(0, test.lastIndexOf('.')).replace('.', '/')
                + "Inputs/" + test.substring(test.lastIndexOf('.') + 1) + "/";
        for (Path f : findings) {
            problems.add(id + " (" + (test == null ? "?" : test) + "): finding " + build.getParent().relativize(f.toAbsolutePath())
                    + (messages.isEmpty() ? "" : "\n" + messages.get(0))
                    + "\nreplay it: mvn -o test -Dtest=" + (test == null ? "<FuzzTest>" : test.substring(test.lastIndexOf('.', test.lastIndexOf('.') - 1) + 1, test.lastIndexOf('.')))
                    + " after copying it to " + (keep == null ? "the target's Inputs/ directory" : keep)
                    + " (every test run replays that directory: fix the bug, keep the file)");
        }
        if (findings.isEmpty()) {
            for (String m : messages) {
                problems.add(id + ": " + m);
            }
        }
        if (findings.isEmpty() && messages.isEmpty() && !xml.isEmpty()) {
            long corpus = 0;
            Path c = test == null ? null : dir.resolve(".cifuzz-corpus").resolve(test.substring(0, test.lastIndexOf('.')))
                    .resolve(test.substring(test.lastIndexOf('.') + 1));
            if (c != null && Files.isDirectory(c)) {
                try (Stream<Path> s = Files.list(c)) {
                    corpus = s.count();
                }
            }
            System.out.println("[fuzz] " + id + ": no finding (" + test + ", " + tests + " test(s), " + corpus
                    + " generated corpus inputs in " + build.getParent().relativize(dir.toAbsolutePath()) + ")");
        }
    }

    /** The fuzz test as class.method, from the generated corpus directory Jazzer made. */
    private static String testOf(Path dir) throws IOException {
        Path corpus = dir.resolve(".cifuzz-corpus");
        if (!Files.isDirectory(corpus)) {
            return null;
        }
        try (Stream<Path> classes = Files.list(corpus)) {
            for (Path cls : classes.toList()) {
                try (Stream<Path> methods = Files.list(cls)) {
                    for (Path m : methods.toList()) {
                        return cls.getFileName() + "." + m.getFileName();
                    }
                }
            }
        }
        return null;
    }

    private static String unescape(String s) {
        return s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#10;", "\n")
                .replace("&apos;", "'").replace("&amp;", "&");
    }
}
