package dev.kxai.cli;

import dev.kxai.KxaiException;
import dev.kxai.backend.Backend;
import dev.kxai.backend.Backends;
import dev.kxai.backend.cpu.CpuBackend;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "info", description = "Prints the version, the backend that would be chosen and why, BLAS and cores.")
final class InfoCommand implements Callable<Integer> {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--device", description = "auto, cpu or cuda (default: KXAI_DEVICE, else auto).")
    String device;

    @Override
    public Integer call() {
        var out = spec.commandLine().getOut();
        out.println("kxai " + Version.get());
        out.println("java: " + System.getProperty("java.vm.name") + " " + Runtime.version());
        out.println("cores: " + Runtime.getRuntime().availableProcessors());
        out.println("max heap: " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB");
        out.println("blas: " + CpuBackend.blasImplementation());
        String requested = device != null ? device : Backends.requestedDevice();
        out.println("device requested: " + requested);
        for (Backends.Probe p : Backends.probes()) {
            out.println("backend " + p.provider().name() + ": "
                    + (p.availability().available() ? "available" : "unavailable") + " - " + p.availability().reason());
        }
        try {
            Backend b = Backends.select(requested);
            out.println("backend chosen: " + b.name() + " (" + b.description() + ")");
        } catch (KxaiException e) {
            out.println("backend chosen: none - " + e.getMessage());
            out.flush();
            return 2;
        }
        out.flush();
        return 0;
    }
}
