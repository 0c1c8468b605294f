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
// scope INHERIT: every subcommand takes --help and --version too (`kxai explain --help`)
@Command(name = "kxai", mixinStandardHelpOptions = true, versionProvider = Version.Provider.class,
        scope = CommandLine.ScopeType.INHERIT,
        description = "Explainability engine for the JVM: Captum's attributions for ONNX models.",
        subcommands = {ExplainCommand.class, ServeCommand.class, LoadTestCommand.class, ConceptsCommand.class, MetricsCommand.class, ValidateCommand.class, InfoCommand.class, BenchCommand.class,
            CommandLine.HelpCommand.class})
public final class Main implements Runnable {
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

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI with the given streams; returns the exit status (tests call this). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new Main());
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
        return cl.execute(args);
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
