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
    private final long bytes;
    /** A view into another buffer: closing it frees nothing. */
    private final boolean view;
    private boolean freed;

    private DeviceBuffer(CUdeviceptr ptr, long bytes, boolean view) {
        this.ptr = ptr;
        this.bytes = bytes;
        this.view = view;
    }

    /** The floats from {@code offset} on, as a non-owning buffer. */
    DeviceBuffer viewFloats(long offset, long count) {
        return new DeviceBuffer(ptr.withByteOffset(offset * Sizeof.FLOAT), count * Sizeof.FLOAT, true);
    }

    /** The first {@code n} bytes, as a non-owning buffer of that size (a pooled buffer handed out for a smaller request). */
    DeviceBuffer prefix(long n) {
        return new DeviceBuffer(ptr, n, true);
    }

    static DeviceBuffer allocate(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        JCudaDriver.cuMemAlloc(p, Math.max(4, bytes));
        ALLOCATIONS.incrementAndGet();
        return new DeviceBuffer(p, bytes, false);
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

    void upload(float[] src) {
        JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(src), (long) src.length * Sizeof.FLOAT);
    }

    void upload(int[] src) {
        JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(src), (long) src.length * Sizeof.INT);
    }

    void upload(double[] src) {
        JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(src), (long) src.length * Sizeof.DOUBLE);
    }

    double[] downloadDoubles(int n) {
        double[] out = new double[n];
        JCudaDriver.cuMemcpyDtoH(Pointer.to(out), ptr, (long) n * Sizeof.DOUBLE);
        return out;
    }

    float[] download(int n) {
        float[] out = new float[n];
        JCudaDriver.cuMemcpyDtoH(Pointer.to(out), ptr, (long) n * Sizeof.FLOAT);
        return out;
    }

    void copyFrom(DeviceBuffer src, long floats) {
        JCudaDriver.cuMemcpyDtoD(ptr, src.ptr, floats * Sizeof.FLOAT);
    }

    void zero() {
        JCudaDriver.cuMemsetD32(ptr, 0, bytes / 4);
    }

    @Override
    public void close() {
        if (!freed && !view) {
            freed = true;
            JCudaDriver.cuMemFree(ptr);
            FREES.incrementAndGet();
        }
    }
}
