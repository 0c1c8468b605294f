package dev.kxai.attr;

import dev.kxai.Model;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;

/**
 * Runs Integrated Gradients on a model at several n_steps in one small-heap JVM and prints the
 * peak live heap of each run: {@code steps=N peak_mib=M}. "Live" is the heap in use right after
 * each garbage collection (reported by GC notifications), the largest seen during the run: the
 * raw peak only shows how far the collector let garbage pile up before it ran. Only full
 * collections count: after them the heap holds live objects only. Started by {@link MemoryFlatTest}; also
 * usable by hand: {@code java -Xmx96m -cp ... dev.kxai.attr.MemoryProbe DIR ROWS N1 N2 ...}
 * (ROWS 0 turns chunking off).
 */
public final class MemoryProbe {
    private MemoryProbe() {
    }

    private static volatile long liveAfterGc;
    /** Heap in use after any collection (minor ones leave dead old objects: an upper bound). */
    private static volatile long usedAfterAnyGc;
    private static volatile int fullCollections;
    private static final java.util.Set<String> HEAP_POOLS = ManagementFactory.getMemoryPoolMXBeans().stream()
            .filter(p -> p.getType() == java.lang.management.MemoryType.HEAP)
            .map(java.lang.management.MemoryPoolMXBean::getName).collect(java.util.stream.Collectors.toSet());

    private static void watchCollections() {
        for (java.lang.management.GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            ((javax.management.NotificationEmitter) gc).addNotificationListener((n, h) -> {
                if (!n.getType().equals(com.sun.management.GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION)) {
                    return;
                }
                var info = com.sun.management.GarbageCollectionNotificationInfo.from(
                        (javax.management.openmbean.CompositeData) n.getUserData());
                long used = 0;
                for (var e : info.getGcInfo().getMemoryUsageAfterGc().entrySet()) {
                    if (HEAP_POOLS.contains(e.getKey())) {
                        used += e.getValue().getUsed();
                    }
                }
                usedAfterAnyGc = Math.max(usedAfterAnyGc, used);
                if (!info.getGcAction().contains("major")) {
                    return; // after a minor collection the old generation still holds dead objects
                }
                fullCollections++;
                liveAfterGc = Math.max(liveAfterGc, used);
            }, null, null);
        }
    }

    public static void main(String[] args) throws InterruptedException {
        watchCollections();
        Path dir = Path.of(args[0]);
        int rows = Integer.parseInt(args[1]);
        Model m = Model.load(dir.resolve("model.onnx"), "cpu");
        Tensor x = NpyIO.read(dir.resolve("input.npy"));
        for (int i = 2; i < args.length; i++) {
            int n = Integer.parseInt(args[i]);
            System.gc();
            Thread.sleep(200); // let the notification of that collection arrive before resetting
            liveAfterGc = 0;
            usedAfterAnyGc = 0;
            fullCollections = 0;
            long t0 = System.nanoTime();
            // rows = 0: no chunking, every step at once (what Captum does by default)
            int chunkRows = rows > 0 ? rows : n * x.dim(0);
            try {
                new IntegratedGradients(m).nSteps(n).internalBatchSize(chunkRows).attribute(x, 0);
            } catch (OutOfMemoryError e) {
                System.out.printf("steps=%d out_of_memory%n", n);
                continue;
            }
            long seconds = System.nanoTime() - t0;
            Thread.sleep(200);
            // no full collection during a run: report the bound from the minor ones instead
            long peak = fullCollections > 0 ? liveAfterGc : usedAfterAnyGc;
            System.out.printf("steps=%d peak_mib=%.1f seconds=%.2f (%s)%n", n, peak / 1048576.0, seconds / 1e9,
                    fullCollections > 0 ? "live heap after " + fullCollections + " full collections"
                            : "no full collection; heap in use after minor ones, an upper bound");
        }
    }
}
