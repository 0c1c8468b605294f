package dev.kxai.backend;

import dev.kxai.KxaiException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.ServiceLoader;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * Chooses a backend: {@code auto} takes the highest-ranked available provider; a named device
 * that is unknown or unavailable is an error, never a silent fallback. The choice can be set by
 * {@code --device}, or by the {@code KXAI_DEVICE} environment variable / {@code kxai.device}
 * system property when the caller passes null.
 */
public final class Backends {
    private static final Logger LOG = Logger.getLogger(Backends.class.getName());
    private static final ConcurrentHashMap<String, Backend> CREATED = new ConcurrentHashMap<>();
    private static volatile List<Probe> probes;

    private Backends() {
    }

    /** A provider with its (cached) probe result. */
    public record Probe(BackendProvider provider, BackendProvider.Availability availability) {
    }

    /** Every provider found, best rank first, probed once per JVM. */
    public static List<Probe> probes() {
        List<Probe> p = probes;
        if (p == null) {
            synchronized (Backends.class) {
                if (probes == null) {
                    List<BackendProvider> found = new ArrayList<>();
                    ServiceLoader.load(BackendProvider.class, Backends.class.getClassLoader()).forEach(found::add);
                    found.sort(Comparator.comparingInt(BackendProvider::rank).reversed());
                    List<Probe> list = new ArrayList<>();
                    for (BackendProvider bp : found) {
                        BackendProvider.Availability a;
                        try {
                            a = bp.probe();
                        } catch (RuntimeException | LinkageError e) {
                            a = BackendProvider.Availability.no("probe failed: " + e);
                        }
                        list.add(new Probe(bp, a));
                    }
                    probes = List.copyOf(list);
                }
                p = probes;
            }
        }
        return p;
    }

    /** The device requested by the environment: system property kxai.device, then KXAI_DEVICE, else auto. */
    public static String requestedDevice() {
        String d = System.getProperty("kxai.device");
        if (d == null || d.isBlank()) {
            d = System.getenv("KXAI_DEVICE");
        }
        return d == null || d.isBlank() ? "auto" : d;
    }

    /**
     * The backend for a device name ({@code auto}, {@code cpu}, {@code cuda}); null means
     * {@link #requestedDevice()}.
     */
    public static Backend select(String device) {
        String want = (device == null ? requestedDevice() : device).trim().toLowerCase(Locale.ROOT);
        List<Probe> all = probes();
        if (want.equals("auto")) {
            for (Probe p : all) {
                if (p.availability().available()) {
                    return create(p);
                }
                LOG.fine(() -> "backend " + p.provider().name() + " not used: " + p.availability().reason());
            }
            throw new KxaiException("no backend is available: " + describe(all));
        }
        for (Probe p : all) {
            if (p.provider().name().equals(want)) {
                if (!p.availability().available()) {
                    throw new KxaiException("device '" + want + "' is not available: " + p.availability().reason());
                }
                return create(p);
            }
        }
        throw new KxaiException("unknown device '" + want + "'; known: auto, "
                + String.join(", ", all.stream().map(p -> p.provider().name()).toList()));
    }

    /** The CPU backend (always available): where other backends fall back. */
    public static Backend cpu() {
        return select("cpu");
    }

    private static Backend create(Probe p) {
        return CREATED.computeIfAbsent(p.provider().name(), n -> p.provider().create());
    }

    private static String describe(List<Probe> all) {
        StringBuilder sb = new StringBuilder();
        for (Probe p : all) {
            sb.append(p.provider().name()).append(": ").append(p.availability().reason()).append("; ");
        }
        return sb.toString();
    }
}
