package dev.kxai.backend.cuda;

import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Device memory owned by whoever closes it (usually a {@link DeviceScope}).
 * <p>
 * Public, with {@link #ptr()}, only so that the JMH kernel benchmarks ({@code bench/}) can launch
 * and time the real kernels: exposed for benchmarks, not part of kxai's API.
 */
public final class DeviceBuffer implements AutoCloseable {
    /** cuMemAlloc calls that succeeded, process-wide (the allocation-per-chunk tests and {@code kxai bench} read it). */
    private static final AtomicLong ALLOCATIONS = new AtomicLong();
    /** cuMemFree calls that succeeded, process-wide. */
    private static final AtomicLong FREES = new AtomicLong();

    private final CUdeviceptr ptr;
    /** The device address (with a view's offset): what a captured graph bakes in ({@link StreamOp}). */
    private final long address;
    private final long bytes;
    /** A view into another buffer: closing it frees nothing. */
    private final boolean view;
    private boolean freed;

    private DeviceBuffer(CUdeviceptr ptr, long address, long bytes, boolean view) {
        this.ptr = ptr;
        this.address = address;
        this.bytes = bytes;
        this.view = view;
    }

    /** A CUdeviceptr that tells its address (JCuda keeps it protected). */
    private static final class Addressed extends CUdeviceptr {
        long address() {
            return getNativePointer() + getByteOffset();
        }
    }

    /** The floats from {@code offset} on, as a non-owning buffer. */
    DeviceBuffer viewFloats(long offset, long count) {
        return new DeviceBuffer(ptr.withByteOffset(offset * Sizeof.FLOAT), address + offset * Sizeof.FLOAT,
                count * Sizeof.FLOAT, true);
    }

    /** The first {@code n} bytes, as a non-owning buffer of that size (a pooled buffer handed out for a smaller request). */
    DeviceBuffer prefix(long n) {
        return new DeviceBuffer(ptr, address, n, true);
    }

    static DeviceBuffer allocate(long bytes) {
        Work.boundary(); // cuMemAlloc is not stream-ordered: a capture in progress ends first
        Addressed p = new Addressed();
        JCudaDriver.cuMemAlloc(p, Math.max(4, bytes));
        ALLOCATIONS.incrementAndGet();
        return new DeviceBuffer(p, p.address(), bytes, false);
    }

    /** The device address (offset included). */
    long address() {
        return address;
    }

    /** Device allocations (cuMemAlloc) made by this process so far. */
    public static long allocations() {
        return ALLOCATIONS.get();
    }

    /** Device frees (cuMemFree) made by this process so far. */
    public static long frees() {
        return FREES.get();
    }

    public CUdeviceptr ptr() {
        return ptr;
    }

    long bytes() {
        return bytes;
    }

    long floats() {
        return bytes / Sizeof.FLOAT;
    }

    // Copies and fills go to the current piece of work's stream ({@link Work}: async, host data through
    // pinned staging), or without one to the legacy default stream (synchronous, from the Java array).

    void upload(float[] src) {
        if (Work.active()) {
            Work.upload(ptr, address, src, src.length, Sizeof.FLOAT);
        } else {
            JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(src), (long) src.length * Sizeof.FLOAT);
        }
    }

    void upload(int[] src) {
        if (Work.active()) {
            Work.upload(ptr, address, src, src.length, Sizeof.INT);
        } else {
            JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(src), (long) src.length * Sizeof.INT);
        }
    }

    void upload(double[] src) {
        if (Work.active()) {
            Work.upload(ptr, address, src, src.length, Sizeof.DOUBLE);
        } else {
            JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(src), (long) src.length * Sizeof.DOUBLE);
        }
    }

    double[] downloadDoubles(int n) {
        double[] out = new double[n];
        if (Work.active()) {
            Work.download(out, ptr, n, Sizeof.DOUBLE);
        } else {
            JCudaDriver.cuMemcpyDtoH(Pointer.to(out), ptr, (long) n * Sizeof.DOUBLE);
        }
        return out;
    }

    float[] download(int n) {
        float[] out = new float[n];
        if (Work.active()) {
            Work.download(out, ptr, n, Sizeof.FLOAT);
        } else {
            JCudaDriver.cuMemcpyDtoH(Pointer.to(out), ptr, (long) n * Sizeof.FLOAT);
        }
        return out;
    }

    void copyFrom(DeviceBuffer src, long floats) {
        if (Work.recording()) {
            Work.submit(new StreamOp.Copy(ptr, address, src.ptr, src.address, floats * Sizeof.FLOAT));
        } else if (Work.active()) {
            JCudaDriver.cuMemcpyDtoDAsync(ptr, src.ptr, floats * Sizeof.FLOAT, Work.stream());
        } else {
            JCudaDriver.cuMemcpyDtoD(ptr, src.ptr, floats * Sizeof.FLOAT);
        }
    }

    void zero() {
        fill(0, bytes / 4);
    }

    /** The first {@code words} 32-bit words set to {@code value}. */
    void fill(int value, long words) {
        if (Work.recording()) {
            Work.submit(new StreamOp.Fill(ptr, address, value, words));
        } else if (Work.active()) {
            JCudaDriver.cuMemsetD32Async(ptr, value, words, Work.stream());
        } else {
            JCudaDriver.cuMemsetD32(ptr, value, words);
        }
    }

    @Override
    public void close() {
        if (!freed && !view) {
            Work.boundary(); // as for cuMemAlloc
            freed = true;
            JCudaDriver.cuMemFree(ptr);
            FREES.incrementAndGet();
        }
    }
}
