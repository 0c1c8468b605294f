package dev.kxai.backend.cuda;

import java.util.ArrayDeque;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;
import jcuda.CudaException;

/**
 * A model's device buffers kept between pieces of work, so that a chunk of path steps (and a later
 * call of the same shapes) reuses the previous chunk's memory instead of a cuMemAlloc/cuMemFree per
 * tensor. Owned by one {@link CudaOpSet} (one loaded model) and freed when the model closes.
 * <ul>
 *   <li><b>Checkout.</b> A {@link DeviceScope} built over the pool takes each buffer here and gives
 *       them all back when it closes; a buffer is held by one scope at a time, so concurrent requests
 *       on one model never share memory (they also run one at a time under the device's lock).</li>
 *   <li><b>Fit.</b> Best fit: the smallest idle buffer of at least the bytes asked for and at most
 *       twice as many (or 64 KiB more, for small ones), so a chunk halved after an out-of-memory, or
 *       the path's last, smaller chunk, reuses the larger chunk's buffers; the caller sees a view of
 *       exactly the size it asked for.</li>
 *   <li><b>Bounds.</b> Idle bytes are capped ({@value #MAX_PROPERTY}, default 90% of the device's
 *       memory; 0 turns pooling off); beyond the cap a returned buffer is freed. An allocation that
 *       runs out of memory first frees every idle buffer of every model's pool and tries once more
 *       (the path loop's halve-and-retry still follows if that fails too).</li>
 *   <li><b>Poison.</b> On the emulator a reused buffer is refilled with 0xFF, as the fake driver fills
 *       a fresh allocation, so that output a kernel fails to write still reads as NaN in tests.</li>
 * </ul>
 */
final class BufferPool implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(BufferPool.class.getName());
    /** System property: the most idle bytes one model's pool keeps (0: no pooling). */
    static final String MAX_PROPERTY = "kxai.cuda.pool.maxBytes";
    /** Slack a small request may waste on a larger idle buffer. */
    private static final long SMALL_SLACK = 64 << 10;
    /** Every open pool of the process: an out-of-memory in one frees the idle buffers of all. */
    private static final Set<BufferPool> OPEN = ConcurrentHashMap.newKeySet();

    /** Idle buffers by capacity (the allocation's size). */
    private final TreeMap<Long, ArrayDeque<DeviceBuffer>> idle = new TreeMap<>();
    private final long maxIdleBytes;
    private final boolean poison;
    private long idleBytes;
    private long outBytes;
    private long peakOutBytes;
    private long reuses;
    private boolean closed;

    BufferPool(long maxIdleBytes, boolean poison) {
        this.maxIdleBytes = maxIdleBytes;
        this.poison = poison;
        OPEN.add(this);
    }

    /** The cap for a device of {@code totalBytes}: the system property, else 90% of the device. */
    static long defaultMax(long totalBytes) {
        String p = System.getProperty(MAX_PROPERTY);
        if (p != null && !p.isBlank()) {
            return Math.max(0, Long.parseLong(p.trim()));
        }
        return totalBytes / 10 * 9;
    }

    /**
     * A buffer of at least {@code bytes} (its capacity may be larger; hand out {@link DeviceBuffer#prefix}),
     * reused when one fits, else newly allocated; give it back with {@link #give}.
     */
    DeviceBuffer take(long bytes) {
        long want = Math.max(4, bytes);
        DeviceBuffer b = reuse(want);
        if (b != null) {
            if (poison) {
                b.fill(0xFFFFFFFF, want / 4);
            }
            return b;
        }
        b = allocate(want);
        synchronized (this) {
            outBytes += want;
            peakOutBytes = Math.max(peakOutBytes, outBytes);
        }
        return b;
    }

    /**
     * cuMemAlloc; when the device is out of memory, frees the idle buffers of every pool and tries
     * once more (pooled or not: weights too, so that a model loads while others hold idle memory).
     */
    static DeviceBuffer allocate(long bytes) {
        try {
            return DeviceBuffer.allocate(bytes);
        } catch (CudaException e) {
            long freed;
            if (!CudaOpSet.outOfMemory(e) || (freed = trimAll()) == 0) {
                throw e;
            }
            LOG.fine(() -> "device out of memory for " + bytes + " bytes: freed " + freed
                    + " bytes of idle pooled buffers, trying again");
            return DeviceBuffer.allocate(bytes);
        }
    }

    private synchronized DeviceBuffer reuse(long want) {
        Map.Entry<Long, ArrayDeque<DeviceBuffer>> e = idle.ceilingEntry(want);
        if (e == null || (e.getKey() > 2 * want && e.getKey() - want > SMALL_SLACK)) {
            return null;
        }
        DeviceBuffer b = e.getValue().pop();
        if (e.getValue().isEmpty()) {
            idle.remove(e.getKey());
        }
        idleBytes -= b.bytes();
        outBytes += b.bytes();
        peakOutBytes = Math.max(peakOutBytes, outBytes);
        reuses++;
        return b;
    }

    /** Takes back a buffer from {@link #take}: kept idle for the next request, or freed (pool closed, or over its cap). */
    void give(DeviceBuffer b) {
        synchronized (this) {
            outBytes -= b.bytes();
            if (!closed && idleBytes + b.bytes() <= maxIdleBytes) {
                idle.computeIfAbsent(b.bytes(), k -> new ArrayDeque<>()).push(b);
                idleBytes += b.bytes();
                return;
            }
        }
        b.close();
    }

    /** Frees every idle buffer; returns the bytes freed. */
    long trim() {
        java.util.List<DeviceBuffer> free = new java.util.ArrayList<>();
        long bytes;
        synchronized (this) {
            idle.values().forEach(free::addAll);
            idle.clear();
            bytes = idleBytes;
            idleBytes = 0;
        }
        CudaException first = null;
        for (DeviceBuffer b : free) {
            try {
                b.close();
            } catch (CudaException e) {
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            throw first;
        }
        return bytes;
    }

    /** {@link #trim} on every open pool of the process (on an out-of-memory); the bytes freed. */
    static long trimAll() {
        long freed = 0;
        for (BufferPool p : OPEN) {
            freed += p.trim();
        }
        return freed;
    }

    /**
     * Bytes per row (its fixed part, such as weight gradients, included) of the chunk of path steps with
     * the most rows so far (the most of those if several), or 0 before one ran: the largest chunk spreads
     * the fixed part the thinnest, so a one-row call does not make later chunks needlessly small.
     */
    private long chunkBytesPerRow;
    private long chunkRows;

    /** A chunk of {@code rows} path rows asked for {@code bytes} in all. */
    synchronized void observeChunk(long bytes, long rows) {
        long perRow = (bytes + rows - 1) / rows;
        if (rows > chunkRows || rows == chunkRows && perRow > chunkBytesPerRow) {
            chunkRows = rows;
            chunkBytesPerRow = perRow;
        }
    }

    /** Bytes per row of the largest chunk so far (0: no chunk yet). */
    synchronized long chunkBytesPerRow() {
        return chunkBytesPerRow;
    }

    /** Idle bytes (free for this model's next request, but not in the device's free memory). */
    synchronized long idleBytes() {
        return idleBytes;
    }

    /** Bytes checked out now, the most ever checked out at once, and how many requests a reuse served. */
    synchronized long[] stats() {
        return new long[] {outBytes, peakOutBytes, reuses};
    }

    /** Frees the idle buffers; buffers still checked out are freed when given back. Idempotent. */
    @Override
    public void close() {
        synchronized (this) {
            closed = true;
        }
        OPEN.remove(this);
        trim();
    }
}
