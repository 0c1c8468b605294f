package dev.kxai.backend.cuda;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import jcuda.driver.CUgraphExec;
import jcuda.driver.JCudaDriver;

/**
 * One model's CUDA graphs, one per chunk shape (and stream), with a <b>validated</b> replay.
 * <p>
 * The path loop runs many chunks of the same rows; each issues the same kernels, copies and GEMMs on
 * the same pooled buffers, the same pinned staging slices, with the same arguments: only the host data
 * in the slices differs (the chunk's α's and weights are uploaded through them, {@link CudaOpSet}).
 * A captured graph bakes all of that in, so a replay is only right when the chunk would issue exactly
 * the captured operations. Hence ({@link Work}):
 * <ol>
 *   <li>the first chunk of a shape runs eagerly (it allocates the pool's buffers and grows the staging
 *       buffer: allocations are not allowed in a capture);</li>
 *   <li>the second is captured (cuStreamBeginCapture in thread-local mode … cuStreamEndCapture, cuGraphInstantiate) up to its
 *       first <i>boundary</i> (a download, a synchronize, an allocation or free: what cannot be in a
 *       graph), and the graph launched there; the rest of the chunk runs eagerly;</li>
 *   <li>later chunks replay: the host code runs as always, but each operation is compared with the
 *       captured one ({@link StreamOp#same}) instead of issued; at the boundary, if all matched, the
 *       graph is launched. On the first mismatch (another shape, a buffer at another address, a
 *       shorter last chunk) the operations matched so far are issued eagerly, the chunk goes on
 *       eagerly, and the graph is dropped (the next chunk of the shape captures again; after
 *       {@value #MAX_FALLBACKS} fallbacks a shape stays eager).</li>
 * </ol>
 * Off by default ({@value #PROPERTY}{@code =true} turns it on): the saving (one launch instead of a
 * few hundred per chunk) is argued, not measured, since no machine that builds kxai has a GPU, and
 * the validation costs host time on every replayed operation; the emulator proves it correct (results
 * bit for bit those without graphs), not faster. Used under the device lock only.
 */
final class ChunkGraphs implements AutoCloseable {
    /** System property: {@code true} captures and replays chunk graphs. */
    static final String PROPERTY = "kxai.cuda.graphs";
    /** Whether chunks use graphs (read once; tests flip it). */
    static volatile boolean enabled = Boolean.parseBoolean(System.getProperty(PROPERTY, "false").trim());
    /** Fallbacks after which a shape is not captured again. */
    static final int MAX_FALLBACKS = 3;

    private static final AtomicLong CAPTURES = new AtomicLong();
    private static final AtomicLong LAUNCHES = new AtomicLong();
    private static final AtomicLong FALLBACKS = new AtomicLong();
    private static final AtomicLong REPLAYED_OPS = new AtomicLong();

    /** Process-wide counts: graphs captured, graph launches, replays that fell back, operations a launch replaced. */
    record Stats(long captures, long launches, long fallbacks, long replayedOps) {
        Stats minus(Stats o) {
            return new Stats(captures - o.captures, launches - o.launches, fallbacks - o.fallbacks,
                    replayedOps - o.replayedOps);
        }
    }

    static Stats stats() {
        return new Stats(CAPTURES.get(), LAUNCHES.get(), FALLBACKS.get(), REPLAYED_OPS.get());
    }

    static void captured() {
        CAPTURES.incrementAndGet();
    }

    static void launched(int ops) {
        LAUNCHES.incrementAndGet();
        REPLAYED_OPS.addAndGet(ops);
    }

    static void fellBack() {
        FALLBACKS.incrementAndGet();
    }

    /** A chunk shape's graph: how often it was seen, and the executable graph with the operations it holds. */
    static final class Entry {
        int seen;
        int fallbacks;
        CUgraphExec exec;
        List<StreamOp> ops;

        /** Forgets the graph (after a fallback): the next chunk of this shape captures again, up to a limit. */
        void drop() {
            fallbacks++;
            if (exec != null) {
                CUgraphExec x = exec;
                exec = null;
                ops = null;
                JCudaDriver.cuGraphExecDestroy(x);
            }
        }

        boolean capturable() {
            return fallbacks < MAX_FALLBACKS;
        }
    }

    private final Map<Object, Entry> entries = new HashMap<>();
    /** Shapes remembered at most (a server sees many batch sizes): beyond, every graph is dropped and counting restarts. */
    static final int MAX_ENTRIES = 64;

    Entry entry(Object key) {
        Entry e = entries.get(key);
        if (e == null) {
            if (entries.size() >= MAX_ENTRIES) {
                close();
            }
            e = new Entry();
            entries.put(key, e);
        }
        return e;
    }

    /** Destroys every graph (the model closes). */
    @Override
    public void close() {
        RuntimeException first = null;
        for (Entry e : entries.values()) {
            try {
                if (e.exec != null) {
                    JCudaDriver.cuGraphExecDestroy(e.exec);
                }
            } catch (RuntimeException ex) {
                first = first == null ? ex : first;
            }
            e.exec = null;
        }
        entries.clear();
        if (first != null) {
            throw first;
        }
    }
}
