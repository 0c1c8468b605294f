package dev.kxai.backend.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Owns the device buffers of one piece of work (a pass, a chunk of steps) and frees them all when
 * closed, also when the work fails half way (an injected or real out-of-memory): CUDA's
 * {@link dev.kxai.exec.Arena}. Over a {@link BufferPool} (the model's arenas) it takes its buffers
 * from the pool and gives them back instead of allocating and freeing each one.
 * <p>
 * Public, with its constructor, {@link #floats}, {@link #ints} and {@link #upload(float[])}, only
 * so that the JMH kernel benchmarks ({@code bench/}) can launch and time the real kernels: exposed
 * for benchmarks, not part of kxai's API.
 */
public final class DeviceScope implements dev.kxai.exec.Arena {
    private final List<DeviceBuffer> owned = new ArrayList<>();
    /** Where buffers come from and go back to; null: each its own cuMemAlloc/cuMemFree. */
    private final BufferPool pool;

    public DeviceScope() {
        this(null);
    }

    DeviceScope(BufferPool pool) {
        this.pool = pool;
    }

    public DeviceBuffer floats(long n) {
        return take(n * 4);
    }

    DeviceBuffer doubles(long n) {
        return take(n * 8);
    }

    public DeviceBuffer ints(long n) {
        return take(n * 4);
    }

    /** Rows of path steps this scope evaluates (set by the op set for a chunk; 0 otherwise). */
    private long rows;
    /** Bytes asked for through this scope. */
    private long taken;

    /** Marks the scope as a chunk of {@code n} path rows: at close its bytes per row teach the pool's sizing. */
    void rows(long n) {
        rows = n;
    }

    private DeviceBuffer take(long bytes) {
        if (pool == null) {
            return track(BufferPool.allocate(bytes));
        }
        taken += bytes;
        DeviceBuffer b = pool.take(bytes);
        owned.add(b);
        return b.prefix(bytes);
    }

    public DeviceBuffer upload(float[] data) {
        DeviceBuffer b = floats(data.length);
        b.upload(data);
        return b;
    }

    DeviceBuffer upload(int[] data) {
        DeviceBuffer b = ints(data.length);
        b.upload(data);
        return b;
    }

    private DeviceBuffer track(DeviceBuffer b) {
        owned.add(b);
        return b;
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                if (pool != null) {
                    pool.give(owned.get(i));
                } else {
                    owned.get(i).close();
                }
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        owned.clear();
        if (pool != null && rows > 0) {
            pool.observeChunk(taken, rows);
            rows = 0;
        }
        if (first != null) {
            throw first;
        }
    }
}
