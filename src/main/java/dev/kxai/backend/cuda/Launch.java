package dev.kxai.backend.cuda;

import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.JCudaDriver;

/**
 * The one place that calls cuLaunchKernel. Arguments are boxed by the typed launchers in
 * {@link Kernels}, whose signatures mirror the kernels': Integer is a 32-bit int, Long a 64-bit
 * long long, Float a float, a {@link DeviceBuffer} a device pointer, null a null pointer.
 * An argument of another type is a programming error caught here, before the driver sees it.
 */
final class Launch {
    private Launch() {
    }

    static void run(CUfunction f, int grid, int block, int sharedBytes, Object... args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) {
                params[i] = Pointer.to(new long[] {0L});
            } else if (a instanceof DeviceBuffer b) {
                params[i] = Pointer.to(b.ptr());
            } else if (a instanceof Integer v) {
                params[i] = Pointer.to(new int[] {v});
            } else if (a instanceof Long v) {
                params[i] = Pointer.to(new long[] {v});
            } else if (a instanceof Float v) {
                params[i] = Pointer.to(new float[] {v});
            } else {
                throw new IllegalArgumentException("kernel argument " + i + " has unsupported type " + a.getClass());
            }
        }
        // on the current piece of work's stream ({@link Work}), else the legacy default stream (null)
        JCudaDriver.cuLaunchKernel(f, grid, 1, 1, block, 1, 1, sharedBytes, Work.stream(), Pointer.to(params), null);
    }
}
