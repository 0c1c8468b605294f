package dev.kxai.backend.cuda;

/** Output dims and per-operand element strides for the 4-D broadcasting kernels (ranks ≤ 4: see CudaSupport). */
final class Broadcast {
    final int[] dims = new int[4];
    final long[] a = new long[4];
    final long[] b = new long[4];

    static Broadcast of(int[] out, int[] as, int[] bs) {
        if (out.length > 4) {
            throw new IllegalStateException("broadcasting over " + out.length + " dimensions reached cuda");
        }
        Broadcast r = new Broadcast();
        int pad = 4 - out.length;
        for (int d = 0; d < 4; d++) {
            r.dims[d] = d < pad ? 1 : out[d - pad];
        }
        fill(r.a, as, r.dims);
        fill(r.b, bs, r.dims);
        return r;
    }

    private static void fill(long[] strides, int[] shape, int[] dims) {
        int pad = 4 - shape.length;
        long acc = 1;
        for (int d = 3; d >= 0; d--) {
            int sd = d < pad ? 1 : shape[d - pad];
            strides[d] = sd == 1 && dims[d] != 1 ? 0 : acc;
            acc *= sd;
        }
    }
}
