package dev.kxai.cli;

import dev.kxai.validate.ReferenceValidator;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "validate", description = {
    "Runs every case of every manifest.json under DIR and compares with the stored reference outputs.",
    "Prints one line per case, then 'validate: N passed, M failed, K unsupported'. Exit status 0 iff M = 0."})
final class ValidateCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(paramLabel = "DIR", description = "Folder holding reference case folders (manifest.json, model.onnx, ...).")
    Path dir;

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
    String device;

    @Override
    public Integer call() {
        var out = spec.commandLine().getOut();
        ReferenceValidator.Summary s = new ReferenceValidator(device).run(dir, r -> {
            out.println(r.line());
            out.flush();
        });
        out.println(s.line());
        out.flush();
        return s.failed() == 0 ? 0 : 1;
    }
}
