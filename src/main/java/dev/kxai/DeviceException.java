package dev.kxai;

/**
 * A device (CUDA) failed while running a request: out of memory, or a failed launch or copy.
 * {@link dev.kxai.backend.DevicePolicy} catches it and reruns the work on the CPU; the result then
 * says it ran there. After a failure other than running out of memory the device is unusable for
 * the rest of the process.
 */
public class DeviceException extends KxaiException {
    private final boolean outOfMemory;

    public DeviceException(String message, boolean outOfMemory, Throwable cause) {
        super(message, cause);
        this.outOfMemory = outOfMemory;
    }

    /** True when the device ran out of memory: a smaller piece of work may still fit. */
    public boolean outOfMemory() {
        return outOfMemory;
    }
}
