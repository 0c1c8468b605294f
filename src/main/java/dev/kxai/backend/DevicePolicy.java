package dev.kxai.backend;

import dev.kxai.DeviceException;
import dev.kxai.ModelClosedException;
import dev.kxai.graph.Graph;
import java.util.List;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * The one place that decides where a model's work runs and when it falls back to the CPU:
 * <ul>
 *   <li>at load, when the chosen backend's plan has nodes it does not run (named, with the
 *       reason): every call runs on the CPU;</li>
 *   <li>per call, when the device fails ({@link DeviceException}): that call is rerun on the CPU;
 *       after a failure other than out-of-memory the device is unusable, and later calls go to the
 *       CPU directly.</li>
 * </ul>
 * Every result says where it actually ran ({@link Ran}). Thread-safe.
 */
public final class DevicePolicy implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(DevicePolicy.class.getName());

    private final Graph graph;
    private final ModelRunner primary;
    /** Why the primary never runs this model (nodes it lacks), or null. */
    private final String notRun;
    private volatile ModelRunner cpu;
    private volatile boolean closed;

    private DevicePolicy(Graph graph, ModelRunner primary, String notRun) {
        this.graph = graph;
        this.primary = primary;
        this.notRun = notRun;
        this.cpu = primary.device().equals("cpu") ? primary : null;
    }

    /** Prepares a graph on a backend, planning the CPU instead where that backend lacks a node. */
    public static DevicePolicy prepare(Graph graph, Backend backend) {
        ModelRunner r = backend.prepare(graph);
        List<String> missing = r.plan().unsupported();
        if (missing.isEmpty() || r.device().equals("cpu")) {
            return new DevicePolicy(graph, r, null);
        }
        String why = backend.name() + " does not run " + String.join("; ", missing);
        LOG.warning(graph.source() + ": " + why + "; the model runs on the CPU");
        r.close();
        return new DevicePolicy(graph, Backends.cpu().prepare(graph), why);
    }

    /** The runner of the chosen backend (the CPU's where that backend lacks a node of the model). */
    public ModelRunner primary() {
        return primary;
    }

    /** Where the next call will run, and why not on the chosen backend if it falls back. */
    public String device() {
        String why = fallbackReason();
        return why == null ? primary.device() : "cpu (" + why + ")";
    }

    private String fallbackReason() {
        if (notRun != null) {
            return notRun;
        }
        String broken = primary.unusableReason();
        return broken == null ? null : primary.device() + " is unusable: " + broken;
    }

    /**
     * Runs {@code work} on the chosen backend, or on the CPU where it falls back; {@code what} names
     * the work in the warning a fallback logs.
     */
    public <R> Ran<R> run(String what, Function<ModelRunner, R> work) {
        checkOpen();
        String why = fallbackReason();
        if (why == null) {
            try {
                return new Ran<>(work.apply(primary), primary.device(), null);
            } catch (DeviceException e) {
                why = primary.device() + " failed during " + what + ": " + e.getMessage();
                LOG.warning(why + (primary.unusableReason() == null ? "; computing this call on the CPU"
                        : "; the device is unusable for the rest of this process: computing on the CPU from now on"));
            }
        }
        ModelRunner host = cpu();
        return new Ran<>(work.apply(host), host.device(), why);
    }

    /** Throws {@link ModelClosedException} once {@link #close()} was called. */
    public void checkOpen() {
        if (closed) {
            throw new ModelClosedException("model " + graph.source() + " is closed: its weights are freed; load it again");
        }
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return closed;
    }

    /** The backend the next call runs on: the chosen one, or the CPU's where this policy falls back. */
    public Backend backend() {
        return fallbackReason() == null ? primary.backend() : Backends.cpu();
    }

    private ModelRunner cpu() {
        ModelRunner c = cpu;
        if (c == null) {
            synchronized (this) {
                checkOpen();
                if (cpu == null) {
                    cpu = Backends.cpu().prepare(graph);
                }
                c = cpu;
            }
        }
        return c;
    }

    /**
     * Frees the runners (idempotent). A call made afterwards throws {@link ModelClosedException}; a
     * call in flight on the device finishes first (the runner closes under the device's lock).
     */
    @Override
    public void close() {
        ModelRunner c;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            c = cpu;
        }
        primary.close();
        if (c != null && c != primary) {
            c.close();
        }
    }

    /**
     * A result and where it was computed.
     *
     * @param device         the backend that computed it: "cpu", "cuda"
     * @param fallbackReason why it ran on the CPU rather than the chosen backend, or null
     */
    public record Ran<R>(R value, String device, String fallbackReason) {
        /** The device, with the fallback reason where there was one: "cuda", "cpu (cuda failed during ...)". */
        public String describe() {
            return fallbackReason == null ? device : device + " (fell back: " + fallbackReason + ")";
        }
    }
}
