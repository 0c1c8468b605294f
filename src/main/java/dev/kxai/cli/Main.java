package dev.kxai.cli;

import dev.kxai.KxaiException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code kxai}: explain, metrics, validate, info, bench. Errors a user can cause print one line and exit with
 * status 2 (usage errors too); {@code --verbose} adds the stack trace.
 */
// scope INHERIT: every subcommand takes --help and --version too (`kxai explain --help`).
// The subcommands are added by commandLine(args), not listed here: picocli builds a command's model by
// reflection over its annotated fields, which in a cold JVM costs tens of milliseconds per command,
// so a run of one subcommand builds only that one (see commandLine).
@Command(name = "kxai", mixinStandardHelpOptions = true, versionProvider = Version.Provider.class,
        scope = CommandLine.ScopeType.INHERIT,
        description = "Explainability engine for the JVM: Captum's attributions for ONNX models.")
public final class Main implements Runnable {
    /** The subcommands, in the order of the usage text. */
    private static final String[] NAMES = {"explain", "serve", "loadtest", "concepts", "metrics", "validate", "info",
        "bench", "help"};

    /**
     * netlib logs through java.util.logging each BLAS implementation it could not load (the
     * Vector API one needs an incubator module); the CLI reports the BLAS in use in
     * {@code kxai info} instead. Held in a field: JUL keeps loggers weakly.
     */
    private static final java.util.logging.Logger NETLIB_LOG = java.util.logging.Logger.getLogger("dev.ludovic.netlib");

    static {
        NETLIB_LOG.setLevel(java.util.logging.Level.SEVERE);
    }

    @Option(names = "--verbose", description = "Print stack traces with errors.", scope = CommandLine.ScopeType.INHERIT)
    boolean verbose;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** The command line with every subcommand (usage, tests). */
    public static CommandLine commandLine() {
        return commandLine(new String[0]);
    }

    /**
     * The command line for {@code args}: where the first argument that is not an option names a
     * subcommand, only that subcommand is added (what is run, its --help and its errors are the same
     * as with all of them); otherwise (no subcommand, {@code help}, a misspelt one: usage and
     * suggestions list them all) every subcommand.
     */
    static CommandLine commandLine(String[] args) {
        String first = null;
        for (String a : args) {
            if (!a.startsWith("-")) {
                first = a;
                break;
            }
        }
        CommandLine cl = new CommandLine(new Main());
        boolean one = first != null && !first.equals("help") && java.util.Arrays.asList(NAMES).contains(first);
        for (String name : NAMES) {
            if (!one || name.equals(first)) {
                cl.addSubcommand(name, subcommand(name));
            }
        }
        return cl;
    }

    private static Object subcommand(String name) {
        return switch (name) {
            case "explain" -> new ExplainCommand();
            case "serve" -> new ServeCommand();
            case "loadtest" -> new LoadTestCommand();
            case "concepts" -> new ConceptsCommand();
            case "metrics" -> new MetricsCommand();
            case "validate" -> new ValidateCommand();
            case "info" -> new InfoCommand();
            case "bench" -> new BenchCommand();
            case "help" -> new CommandLine.HelpCommand();
            default -> throw new IllegalArgumentException(name);
        };
    }

    public static void main(String[] args) {
        StartupTrace.mark("main");
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI with the given streams; returns the exit status (tests call this). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = commandLine(args);
        StartupTrace.mark("picocli: command model built");
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            boolean verbose = parsed.originalArgs().contains("--verbose");
            if (ex instanceof KxaiException || ex instanceof IllegalArgumentException) {
                err.println("kxai: error: " + ex.getMessage());
                if (verbose) {
                    ex.printStackTrace(err);
                }
                err.flush();
                return 2;
            }
            err.println("kxai: internal error: " + ex);
            if (verbose) {
                ex.printStackTrace(err);
            } else {
                err.println("(run with --verbose for the stack trace)");
            }
            err.flush();
            return 1;
        });
        cl.setParameterExceptionHandler((ex, a) -> usageError(ex, err));
        int status = cl.execute(args);
        StartupTrace.mark("done");
        return status;
    }

    /**
     * A command line picocli cannot parse (unknown option, missing or malformed value): one
     * {@code kxai: error:} line, picocli's suggestions for a misspelt option or command, and where the
     * usage is; exit status 2. The full usage (dozens of lines) only with {@code --help}.
     */
    static int usageError(CommandLine.ParameterException ex, PrintWriter err) {
        err.println("kxai: error: " + ex.getMessage());
        if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
            err.println("did you mean: " + String.join(", ", u.getSuggestions()) + "?");
        }
        CommandLine cmd = ex.getCommandLine();
        err.println("usage: " + cmd.getCommandSpec().qualifiedName() + " --help");
        err.flush();
        return 2;
    }
}
