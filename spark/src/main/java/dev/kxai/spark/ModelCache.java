package dev.kxai.spark;

import dev.kxai.Model;
import dev.kxai.backend.Backends;
import dev.kxai.onnx.OnnxImporter;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The models loaded in this JVM (an executor, or the driver in local mode), one per model content and
 * device: every task of the executor shares it ({@link Model} is thread-safe), so an executor loads
 * (and uploads to its GPU) each model once, not once per task or partition. Keyed by the SHA-256 of the
 * ONNX bytes the driver broadcast, so a changed file under the same path is a new model. Never evicted:
 * a job explains with a handful of models, and the executor's end frees them.
 */
final class ModelCache {
    private static final ConcurrentHashMap<String, Model> MODELS = new ConcurrentHashMap<>();
    /** Models loaded by this JVM so far (tests: one per model and device, whatever the tasks). */
    static final java.util.concurrent.atomic.AtomicInteger LOADS = new java.util.concurrent.atomic.AtomicInteger();
    /** The CUDA ordinal this JVM's backend was bound to (kxai drives one device per process), or null. */
    private static volatile String boundOrdinal;

    private ModelCache() {
    }

    /** The model with this content on this device, loaded from {@code bytes} the first time. */
    static Model get(String sha256, String source, Supplier<byte[]> bytes, DeviceChoice device) {
        bindOrdinal(device);
        String key = sha256 + "@" + device.backend();
        Model m = MODELS.get(key);
        if (m != null && !m.isClosed()) {
            return m;
        }
        synchronized (ModelCache.class) {
            m = MODELS.get(key);
            if (m == null || m.isClosed()) {
                m = Model.of(OnnxImporter.parse(bytes.get(), source), Backends.select(device.backend()));
                LOADS.incrementAndGet();
                MODELS.put(key, m);
            }
            return m;
        }
    }

    /**
     * Before the first backend probe of the JVM: the CUDA ordinal of the first task with a GPU address
     * (the core reads {@code kxai.cuda.device} once, at the probe). With one GPU per executor, the usual
     * configuration, that is every task's GPU; see {@link #note} for the others.
     */
    private static synchronized void bindOrdinal(DeviceChoice device) {
        if (boundOrdinal != null) {
            return;
        }
        String set = System.getProperty("kxai.cuda.device");
        if (set == null && device.gpuOrdinal() != null) {
            System.setProperty("kxai.cuda.device", Integer.toString(device.gpuOrdinal()));
        }
        boundOrdinal = System.getProperty("kxai.cuda.device", "0");
    }

    /** What to add to the device column: the GPU in use, and a mismatch with the task's assignment. */
    static String note(DeviceChoice device, String ranOn) {
        if (!ranOn.startsWith("cuda")) {
            // a GPU Spark assigned but kxai could not use: say why (auto fell back to the CPU)
            return device.gpuOrdinal() == null ? ranOn : ranOn + " (the task's gpu " + device.gpuOrdinal()
                    + " not used: cuda " + cudaReason() + ")";
        }
        String bound = boundOrdinal == null ? "0" : boundOrdinal;
        if (device.gpuOrdinal() != null && !bound.equals(Integer.toString(device.gpuOrdinal()))) {
            return ranOn + " (gpu " + bound + "; the task was assigned gpu " + device.gpuOrdinal()
                    + ": kxai drives one GPU per executor JVM)";
        }
        return ranOn + " (gpu " + bound + ")";
    }

    private static String cudaReason() {
        return Backends.probes().stream().filter(p -> p.provider().name().equals("cuda")).findFirst()
                .map(p -> (p.availability().available() ? "available, " : "unavailable, ") + p.availability().reason())
                .orElse("not on the class path");
    }
}
