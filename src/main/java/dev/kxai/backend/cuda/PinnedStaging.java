package dev.kxai.backend.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import jcuda.Pointer;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * One model's page-locked (pinned) host buffer through which every host↔device copy of its work
 * passes when that work runs on a stream ({@link Work}): an async copy from pageable memory
 * (a Java array) is staged by the driver and becomes synchronous on a GPU, one from pinned memory
 * is a DMA the host does not wait for.
 * <p>
 * A bump allocator over one block: a copy takes the next slice, and the slices stay in use until the
 * stream is synchronized (an async upload still reads its slice after the call returns), when
 * {@link #reset} makes the whole block free again. A window of copies that does not fit synchronizes
 * the stream, and the block grows to hold the whole window (a power of two, at most
 * {@value #MAX_PROPERTY}, default 64 MiB; a larger copy goes through in pieces), so the next window of
 * the same shapes fits: a chunk of path steps after the first allocates no pinned memory
 * ({@link #allocations()} counts cuMemAllocHost calls; {@code BufferPoolTest} asserts it). Freed when
 * the model closes. Used under the device lock only.
 */
final class PinnedStaging implements AutoCloseable {
    /** System property: the largest pinned block one model keeps, in bytes. */
    static final String MAX_PROPERTY = "kxai.cuda.staging.maxBytes";
    private static final long DEFAULT_MAX = 64L << 20;
    /** Slices start on this boundary (a float4/double2 load from a slice stays aligned). */
    private static final long ALIGN = 256;
    private static final AtomicLong ALLOCATIONS = new AtomicLong();
    private static final AtomicLong FREES = new AtomicLong();

    private final long maxBytes;
    private Pointer block;
    private ByteBuffer bytes;
    private long capacity;
    private long used;

    PinnedStaging() {
        String p = System.getProperty(MAX_PROPERTY);
        this.maxBytes = p == null || p.isBlank() ? DEFAULT_MAX : Math.min(1L << 30, Math.max(ALIGN, Long.parseLong(p.trim())));
    }

    /** A piece of the block: the pointer to pass to the async copy, its host address, and the bytes behind it (native order). */
    record Slice(Pointer ptr, long address, ByteBuffer bytes) {
    }

    /** A Pointer that tells its address (JCuda keeps it protected). */
    private static final class Addressed extends Pointer {
        long address() {
            return getNativePointer() + getByteOffset();
        }
    }

    private long blockAddress;

    /** The most bytes one slice can hold: a copy larger than this goes through in pieces. */
    long maxSlice() {
        return maxBytes;
    }

    /**
     * A slice of {@code n} bytes ({@code n <= maxSlice()}), free until the next {@link #reset}; when the
     * block is full, synchronizes {@code stream} (the slices in use are then done with) and grows it.
     */
    Slice take(long n, CUstream stream) {
        if (n > maxBytes) {
            throw new IllegalArgumentException(n + " bytes > the largest slice " + maxBytes);
        }
        if (used + n > capacity) {
            Work.boundary(); // a synchronize (and perhaps cuMemAllocHost) follows: not in a graph
            long want = Math.min(maxBytes, Long.highestOneBit(Math.max(4096, used + n) - 1) << 1);
            if (used > 0) {
                JCudaDriver.cuStreamSynchronize(stream);
            }
            used = 0;
            if (capacity < want) {
                grow(want);
            }
        }
        long at = used;
        used = Math.min(capacity, (used + n + ALIGN - 1) / ALIGN * ALIGN);
        ByteBuffer b = bytes.duplicate().order(ByteOrder.nativeOrder());
        b.position((int) at).limit((int) (at + n));
        return new Slice(block.withByteOffset(at), blockAddress + at, b.slice().order(ByteOrder.nativeOrder()));
    }

    private void grow(long want) {
        free();
        Addressed p = new Addressed();
        JCudaDriver.cuMemAllocHost(p, want);
        ALLOCATIONS.incrementAndGet();
        block = p;
        blockAddress = p.address();
        capacity = want;
        bytes = p.getByteBuffer(0, want).order(ByteOrder.nativeOrder());
    }

    /** The stream was synchronized: every slice is free again. */
    void reset() {
        used = 0;
    }

    /** Bytes of pinned memory held. */
    long capacity() {
        return capacity;
    }

    private void free() {
        if (block != null) {
            Work.boundary();
            Pointer p = block;
            block = null;
            bytes = null;
            capacity = 0;
            used = 0;
            JCudaDriver.cuMemFreeHost(p);
            FREES.incrementAndGet();
        }
    }

    /** cuMemAllocHost calls of the process (the allocations-per-chunk tests read it). */
    static long allocations() {
        return ALLOCATIONS.get();
    }

    /** cuMemFreeHost calls of the process. */
    static long frees() {
        return FREES.get();
    }

    /** Frees the block (idempotent; the next {@link #take} allocates again). */
    @Override
    public void close() {
        free();
    }
}
