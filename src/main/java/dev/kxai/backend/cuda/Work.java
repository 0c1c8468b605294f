package dev.kxai.backend.cuda;

import java.nio.ByteBuffer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.cublasHandle;

/**
 * The piece of device work the current thread is issuing (one {@link CudaOpSet#onDevice} call: a
 * chunk of path steps, a forward, a backward, a model's weight upload) and where it goes: a stream of
 * its own from the runtime's pool ({@link CudaRuntime.Lane}, created non-blocking, so that nothing on
 * the legacy default stream orders it), the cuBLAS handle bound to that stream (a handle is not shared
 * between streams: cuBLAS keeps per-handle state, and a handle driven from two threads with two
 * streams is a race), and the model's pinned staging buffer for host↔device copies
 * ({@link PinnedStaging}: cuMemcpyHtoDAsync/DtoHAsync from pinned memory, a cuStreamSynchronize before
 * the host reads a result). {@link #end} synchronizes the stream before the device lock is released,
 * so the next piece of work (perhaps on another stream) sees all of this one's writes.
 * <p>
 * Without a current piece of work (the JMH kernel benchmarks, kernel tests that launch directly) and
 * with {@value #PROPERTY}{@code =false}, everything goes to the legacy default stream with synchronous
 * copies from Java arrays, as before streams: the parity tests compare the two bit for bit.
 */
final class Work {
    /** System property: {@code false} sends all work to the legacy default stream (the previous path). */
    static final String PROPERTY = "kxai.cuda.streams";
    /** Whether pieces of work get a stream (read once; tests flip it to compare with the previous path). */
    static volatile boolean enabled = !"false".equalsIgnoreCase(System.getProperty(PROPERTY, "true").trim());

    private static final ThreadLocal<Work> CURRENT = new ThreadLocal<>();

    private final CudaRuntime rt;
    private final CudaRuntime.Lane lane;
    private final PinnedStaging staging;

    private Work(CudaRuntime rt, CudaRuntime.Lane lane, PinnedStaging staging) {
        this.rt = rt;
        this.lane = lane;
        this.staging = staging;
    }

    /**
     * Starts a piece of work on this thread (the caller holds the device lock, context current), or
     * returns null: streams off, a piece of work already running on this thread (a nested
     * onDevice joins the outer one's stream), or a context that failed (sticky: every call fails;
     * what still runs, freeing, reports its errors as before, without a stream to synchronize).
     */
    static Work begin(CudaRuntime rt, PinnedStaging staging) {
        if (!enabled || CURRENT.get() != null || rt.brokenReason() != null) {
            return null;
        }
        Work w = new Work(rt, rt.acquireLane(), staging);
        CURRENT.set(w);
        return w;
    }

    /** Waits for the work issued (errors of async work surface here); the staging buffer is then free. */
    void end() {
        segmentEnd();
        JCudaDriver.cuStreamSynchronize(lane.stream());
        staging.reset();
    }

    // ------------------------------------------------------------------ chunk graphs (ChunkGraphs)

    private enum Mode { EAGER, CAPTURE, REPLAY }

    private Mode mode = Mode.EAGER;
    /** Whether this piece of work was marked as a chunk already (one graph segment per piece of work). */
    private boolean chunked;
    private ChunkGraphs.Entry entry;
    /** CAPTURE: the operations issued into the capture; REPLAY: those matched, not issued yet. */
    private java.util.List<StreamOp> ops;
    /** The scope of the current chunk (per-chunk host data is uploaded into its buffers), or null. */
    private DeviceScope chunkScope;

    /**
     * Marks the current piece of work as a chunk of path steps of shape {@code key} (on {@code graphs}'
     * model) whose device work starts now: its operations up to the first boundary are captured or
     * replayed ({@link ChunkGraphs}). No-op without a piece of work, with graphs off, or the second time.
     */
    static void chunk(ChunkGraphs graphs, Object key, DeviceScope scope) {
        Work w = CURRENT.get();
        if (w == null || !ChunkGraphs.enabled || w.chunked) {
            return;
        }
        w.chunked = true;
        w.chunkScope = scope;
        ChunkGraphs.Entry e = graphs.entry(java.util.List.of(w.lane, key));
        e.seen++;
        w.entry = e;
        if (e.exec != null) {
            w.mode = Mode.REPLAY;
            w.ops = new java.util.ArrayList<>();
        } else if (e.seen >= 2 && e.capturable()) {
            // thread-local mode: what is unsafe during a capture (an allocation, a synchronous copy, a
            // synchronize) is refused on this thread, where a boundary should have ended the capture
            // first; other threads are not involved (their device work waits for the device lock anyway)
            JCudaDriver.cuStreamBeginCapture(w.lane.stream(),
                    jcuda.driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
            w.mode = Mode.CAPTURE;
            w.ops = new java.util.ArrayList<>();
        }
    }

    /** The current chunk's scope while its piece of work runs with chunk graphs on, else null. */
    static DeviceScope chunkScope() {
        Work w = CURRENT.get();
        return w == null ? null : w.chunkScope;
    }

    /** Whether stream operations must go through {@link #submit} (a capture or a replay in progress). */
    static boolean recording() {
        Work w = CURRENT.get();
        return w != null && w.mode != Mode.EAGER;
    }

    /** An operation while {@link #recording}: issued into the capture, or compared with the captured one. */
    static void submit(StreamOp op) {
        Work w = CURRENT.get();
        if (w.mode == Mode.CAPTURE) {
            op.issue(w.lane.stream()); // recorded by the driver, not run
            w.ops.add(op);
        } else if (w.ops.size() < w.entry.ops.size() && w.entry.ops.get(w.ops.size()).same(op)) {
            w.ops.add(op); // replaced by the graph at the boundary
        } else {
            w.fallBack();
            op.issue(w.lane.stream());
        }
    }

    /**
     * What cannot be in a graph is about to happen (a download, a synchronize, an allocation or free of
     * device or pinned memory): the capture or replay in progress ends here.
     */
    static void boundary() {
        Work w = CURRENT.get();
        if (w != null && w.mode != Mode.EAGER) {
            w.segmentEnd();
        }
    }

    private void segmentEnd() {
        if (mode == Mode.CAPTURE) {
            mode = Mode.EAGER;
            jcuda.driver.CUgraph g = new jcuda.driver.CUgraph();
            JCudaDriver.cuStreamEndCapture(lane.stream(), g);
            jcuda.driver.CUgraphExec x = new jcuda.driver.CUgraphExec();
            try {
                JCudaDriver.cuGraphInstantiate(x, g, 0);
            } finally {
                JCudaDriver.cuGraphDestroy(g);
            }
            entry.exec = x;
            entry.ops = ops;
            ChunkGraphs.captured();
            JCudaDriver.cuGraphLaunch(x, lane.stream()); // the captured work has not run yet
            ChunkGraphs.launched(ops.size());
        } else if (mode == Mode.REPLAY) {
            if (ops.size() == entry.ops.size()) {
                mode = Mode.EAGER;
                JCudaDriver.cuGraphLaunch(entry.exec, lane.stream());
                ChunkGraphs.launched(ops.size());
            } else {
                fallBack(); // the boundary came before the captured operations were all seen
            }
        }
    }

    /** A replay that does not match: the matched operations eagerly, the rest of the work eagerly, the graph dropped. */
    private void fallBack() {
        mode = Mode.EAGER;
        for (StreamOp op : ops) {
            op.issue(lane.stream());
        }
        ops = null;
        ChunkGraphs.fellBack();
        entry.drop();
    }

    /** After a failure: a capture in progress is ended and discarded (its work never ran). */
    void abort() {
        Mode m = mode;
        mode = Mode.EAGER;
        if (m == Mode.CAPTURE) {
            try {
                jcuda.driver.CUgraph g = new jcuda.driver.CUgraph();
                JCudaDriver.cuStreamEndCapture(lane.stream(), g);
                JCudaDriver.cuGraphDestroy(g);
            } catch (RuntimeException ignored) {
                // an invalidated capture ends without a graph; the failure being handled is the one reported
            }
        }
    }

    /**
     * Leaves the thread without a piece of work and returns the stream to the pool; after a failure,
     * first waits for what is still queued (ignoring its errors: the first one is reported) so the
     * staging slices it reads are not reused under it.
     */
    void release() {
        abort();
        CURRENT.remove();
        try {
            JCudaDriver.cuStreamSynchronize(lane.stream());
        } catch (RuntimeException ignored) {
            // the work failed already; its error is the one reported
        }
        staging.reset();
        rt.releaseLane(lane);
    }

    /** The stream of the current piece of work, or null (the legacy default stream). */
    static CUstream stream() {
        Work w = CURRENT.get();
        return w == null ? null : w.lane.stream();
    }

    /** The cuBLAS handle bound to the current stream, or the runtime's own (legacy stream). */
    static cublasHandle cublas(CudaRuntime rt) {
        Work w = CURRENT.get();
        return w == null ? rt.cublas() : w.lane.cublas();
    }

    /** Whether a piece of work is running on this thread (copies then go through pinned staging). */
    static boolean active() {
        return CURRENT.get() != null;
    }

    // ------------------------------------------------------------------ copies through the staging buffer

    /** Host array → device, through pinned slices, async on the current stream (call only when {@link #active}). */
    static void upload(CUdeviceptr dst, long dstAddress, Object src, int count, int elementBytes) {
        Work w = CURRENT.get();
        long total = (long) count * elementBytes;
        long piece = w.staging.maxSlice() / elementBytes * elementBytes;
        for (long off = 0; off < total; off += piece) {
            long n = Math.min(piece, total - off);
            PinnedStaging.Slice s = w.staging.take(n, w.lane.stream());
            put(s.bytes(), src, (int) (off / elementBytes), (int) (n / elementBytes));
            if (w.mode != Mode.EAGER) {
                submit(new StreamOp.Upload(dst.withByteOffset(off), dstAddress + off, s.ptr(), s.address(), n));
            } else {
                JCudaDriver.cuMemcpyHtoDAsync(dst.withByteOffset(off), s.ptr(), n, w.lane.stream());
            }
        }
    }

    /** Device → host array: async copies into pinned slices, a stream synchronize, then the host reads them. */
    static void download(Object dst, CUdeviceptr src, int count, int elementBytes) {
        boundary();
        Work w = CURRENT.get();
        long total = (long) count * elementBytes;
        long piece = w.staging.maxSlice() / elementBytes * elementBytes;
        for (long off = 0; off < total; off += piece) {
            long n = Math.min(piece, total - off);
            PinnedStaging.Slice s = w.staging.take(n, w.lane.stream());
            JCudaDriver.cuMemcpyDtoHAsync(s.ptr(), src.withByteOffset(off), n, w.lane.stream());
            JCudaDriver.cuStreamSynchronize(w.lane.stream());
            get(s.bytes(), dst, (int) (off / elementBytes), (int) (n / elementBytes));
            w.staging.reset();
        }
    }

    private static void put(ByteBuffer b, Object src, int from, int n) {
        if (src instanceof float[] f) {
            b.asFloatBuffer().put(f, from, n);
        } else if (src instanceof int[] i) {
            b.asIntBuffer().put(i, from, n);
        } else if (src instanceof double[] d) {
            b.asDoubleBuffer().put(d, from, n);
        } else {
            throw new IllegalArgumentException("cannot stage " + src.getClass());
        }
    }

    private static void get(ByteBuffer b, Object dst, int from, int n) {
        if (dst instanceof float[] f) {
            b.asFloatBuffer().get(f, from, n);
        } else if (dst instanceof double[] d) {
            b.asDoubleBuffer().get(d, from, n);
        } else if (dst instanceof int[] i) {
            b.asIntBuffer().get(i, from, n);
        } else {
            throw new IllegalArgumentException("cannot stage " + dst.getClass());
        }
    }
}
