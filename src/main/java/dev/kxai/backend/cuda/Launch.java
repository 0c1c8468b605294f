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
        // what a captured graph bakes in, per argument: a kind tag and the value's bits (a graph replay
        // is validated against it, StreamOp.Kernel)
        long[] signature = new long[2 * args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a == null) {
                params[i] = Pointer.to(new long[] {0L});
                signature[2 * i] = 'p';
            } else if (a instanceof DeviceBuffer b) {
                params[i] = Pointer.to(b.ptr());
                signature[2 * i] = 'p';
                signature[2 * i + 1] = b.address();
            } else if (a instanceof Integer v) {
                params[i] = Pointer.to(new int[] {v});
                signature[2 * i] = 'i';
                signature[2 * i + 1] = v;
            } else if (a instanceof Long v) {
                params[i] = Pointer.to(new long[] {v});
                signature[2 * i] = 'l';
                signature[2 * i + 1] = v;
            } else if (a instanceof Float v) {
                params[i] = Pointer.to(new float[] {v});
                signature[2 * i] = 'f';
                signature[2 * i + 1] = Float.floatToRawIntBits(v);
            } else {
                throw new IllegalArgumentException("kernel argument " + i + " has unsupported type " + a.getClass());
            }
        }
        if (Work.recording()) {
            Work.submit(new StreamOp.Kernel(f, grid, block, sharedBytes, signature, Pointer.to(params)));
            return;
        }
        // on the current piece of work's stream ({@link Work}), else the legacy default stream (null)
        JCudaDriver.cuLaunchKernel(f, grid, 1, 1, block, 1, 1, sharedBytes, Work.stream(), Pointer.to(params), null);
    }
}
