package dev.kxai.testing;

import dev.kxai.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;

/** One in-process run of the {@code kxai} command line, through the jar's entry point: its status and output. */
public record CliRun(int status, String out, String err) {
    public static CliRun of(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new CliRun(status, out.toString(), err.toString());
    }
}
