package dev.kxai.backend.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Owns the device buffers of one piece of work (a pass, a chunk of steps) and frees them all when
 * closed, also when the work fails half way (an injected or real out-of-memory): CUDA's
 * {@link dev.kxai.exec.Arena}.
 * <p>
 * Public, with its constructor, {@link #floats}, {@link #ints} and {@link #upload(float[])}, only
 * so that the JMH kernel benchmarks ({@code bench/}) can launch and time the real kernels: exposed
 * for benchmarks, not part of kxai's API.
 */
public final class DeviceScope implements dev.kxai.exec.Arena {
    private final List<DeviceBuffer> owned = new ArrayList<>();

    public DeviceScope() {
    }

    public DeviceBuffer floats(long n) {
        return track(DeviceBuffer.allocate(n * 4));
    }

    DeviceBuffer doubles(long n) {
        return track(DeviceBuffer.allocate(n * 8));
    }

    public DeviceBuffer ints(long n) {
        return track(DeviceBuffer.allocate(n * 4));
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
                owned.get(i).close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        owned.clear();
        if (first != null) {
            throw first;
        }
    }
}
