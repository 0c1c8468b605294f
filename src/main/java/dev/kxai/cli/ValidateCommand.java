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

    @Option(names = "--method", paramLabel = "NAME", split = ",", description = "Only the cases of these methods "
            + "(Captum's names, e.g. occlusion,shapley_values); every model's logits are still checked.")
    java.util.List<String> methods;

    @Option(names = "--exact", description = "Every convolution accumulated in double and rounded once "
            + "(the all-double path) instead of float (CPU: sgemm; CUDA: the FP32 implicit GEMM) with exact decisions: closer to a "
            + "float64 reference where near-ties deep in a network make float32 engines differ (bench/README.md's zoo run), "
            + "about 1.5x slower on resnet18.")
    boolean exact;

    @Option(names = "--tf32", description = "CUDA only: convolutions and cuBLAS read their operands as TF32 "
            + "(see explain --help). Ignored with --exact and on the CPU.")
    boolean tf32;

    @Option(names = "--progress", paramLabel = "MODE", description = "auto (default: a bar on a terminal, plain lines "
            + "otherwise), bar, lines or off: models validated, on stderr.")
    String progressMode;

    @Override
    public Integer call() throws Exception {
        return AttributionOptions.withNumerics(exact, tf32, this::validate);
    }

    private Integer validate() {
        var out = spec.commandLine().getOut();
        ReferenceValidator v = new ReferenceValidator(device).onlyMethods(methods == null ? java.util.List.of() : methods);
        java.util.List<java.nio.file.Path> manifests = ReferenceValidator.manifests(dir);
        ProgressBar progress = ProgressBar.of(spec.commandLine().getErr(), "validate", "models", progressMode);
        java.util.List<ReferenceValidator.CaseResult> all = new java.util.ArrayList<>();
        for (int i = 0; i < manifests.size(); i++) {
            for (ReferenceValidator.CaseResult r : v.runModel(manifests.get(i))) {
                progress.clear();
                out.println(r.line());
                out.flush();
                all.add(r);
            }
            progress.stepsDone(i + 1, manifests.size());
        }
        ReferenceValidator.Summary s = ReferenceValidator.Summary.of(all);
        out.println(s.line());
        out.flush();
        return s.failed() == 0 ? 0 : 1;
    }
}
