package dev.kxai.cli;

import dev.kxai.KxaiException;
import dev.kxai.backend.Backend;
import dev.kxai.backend.Backends;
import dev.kxai.backend.cpu.CpuBackend;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "info", description = {"Prints the version, the backend that would be chosen and why, BLAS and cores.",
    "With --model: the model's inputs and output, and every value a node computes with its shape per example",
    "(the names --layer takes), and which nodes the chosen backend would not run."})
final class InfoCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--device", description = "auto, cpu or cuda (default: KXAI_DEVICE, else auto).")
    String device;

    @Option(names = "--model", paramLabel = "M.onnx", description = "Also describe this model: inputs, output, the values of its nodes.")
    java.nio.file.Path model;

    @Option(names = "--dim", paramLabel = "NAME=SIZE", description = "The size of a free input dimension beyond the batch "
            + "(an export's sequence_length; INPUT:AXIS for one with no name). Repeatable.")
    java.util.List<String> dims;

    /** Which shared library backs netlib's JNI BLAS, read from the process's own memory map. */
    private static String nativeBlasLibrary() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/maps"))) {
                int slash = line.indexOf('/');
                if (slash >= 0 && line.contains("blas") && line.contains(".so") && !line.contains("netlib")) {
                    String lib = line.substring(slash);
                    java.nio.file.Path real = java.nio.file.Path.of(lib).toRealPath();
                    return " -> " + real;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            return "";
        }
        return " (no native BLAS library loaded: pure-Java GEMM; install libopenblas0-pthread for speed)";
    }

    @Override
    public Integer call() {
        var out = spec.commandLine().getOut();
        out.println("kxai " + Version.get());
        out.println("java: " + System.getProperty("java.vm.name") + " " + Runtime.version());
        out.println("cores: " + Runtime.getRuntime().availableProcessors());
        out.println("max heap: " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB");
        out.println("blas: " + CpuBackend.blasImplementation() + nativeBlasLibrary());
        out.println("blas threads: " + CpuBackend.openBlasThreads());
        out.println("cpu loops: " + CpuBackend.simdLoops());
        out.println("convolutions: " + CpuBackend.convolutions());
        String requested = device != null ? device : Backends.requestedDevice();
        out.println("device requested: " + requested);
        for (Backends.Probe p : Backends.probes()) {
            out.println("backend " + p.provider().name() + ": "
                    + (p.availability().available() ? "available" : "unavailable") + " - " + p.availability().reason());
        }
        try {
            Backend b = Backends.select(requested);
            out.println("backend chosen: " + b.name() + " (" + b.description() + ")");
            if (model != null) {
                describe(out, b);
            }
        } catch (KxaiException e) {
            out.println("backend chosen: none - " + e.getMessage());
            out.flush();
            // the report goes on; the error is also the one line on stderr every failing command prints
            spec.commandLine().getErr().println("kxai: error: " + e.getMessage());
            spec.commandLine().getErr().flush();
            return 2;
        }
        out.flush();
        return 0;
    }

    /** The model's inputs, output and node values (for --layer), on the chosen backend's plan. */
    private void describe(java.io.PrintWriter out, Backend b) {
        try (dev.kxai.Model m = dev.kxai.Model.of(dev.kxai.onnx.OnnxImporter.load(model,
                BatchOptions.freeDims(dims, null, null)), b)) {
            dev.kxai.exec.ExecutionPlan plan = m.runner().plan();
            out.println("model: " + model);
            out.println("inputs: " + m.describeInputs());
            out.println("output: " + m.graph().outputName() + " " + dev.kxai.tensor.Shapes.str(
                    plan.shape(m.graph().outputName(), 1)).replaceFirst("^\\[1", "[batch"));
            out.println("runs on: " + m.device());
            out.println("values (node: op, output value, shape at batch 1):");
            java.util.Map<String, String> d = plan.describe();
            for (dev.kxai.graph.Node n : m.graph().nodes()) {
                out.println("  " + n.name() + ": " + d.get(n.name()).replaceFirst(" ", " -> " + n.output() + " "));
            }
        }
    }
}
