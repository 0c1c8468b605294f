package dev.kxai.backend.cpu;

import dev.kxai.graph.Window;
import java.io.IOException;
import java.io.InputStream;
import java.lang.ref.Cleaner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * oneDNN's direct convolutions for the float path (forward and input gradient, the whole batch in
 * one call), through kxai's JNI binding ({@code native/onednn/kxai_onednn.cpp}, packed in the jar).
 * <p>
 * Why: PyTorch convolves with oneDNN; on the same cores its direct kernels on blocked layouts run
 * about twice as fast as im2col + OpenBLAS sgemm, and need no im2col/col2im passes. The forward is
 * a float sum of products in some order (the direct algorithm, never Winograd), so {@link ConvOps}
 * bounds each output by γ_{k+1}·Σ|terms| and recomputes near-decision outputs in double, as for sgemm.
 * <p>
 * Optional: where the binding is not in the jar or the system has no {@code libdnnl.so.2}
 * (Debian: {@code libdnnl2}), or with {@code -Dkxai.onednn=false}, {@link #available()} is false and
 * the convolutions run as im2col + sgemm; {@link #status()} says which and why ({@code kxai info}).
 * A layer oneDNN refuses (no direct implementation) falls back the same way, layer by layer.
 */
final class OneDnn {
    private OneDnn() {
    }

    static final String RESOURCE = "/dev/kxai/native/linux-x86_64/libkxai_onednn.so";
    static final String ENV_RESOURCE = "/dev/kxai/native/linux-x86_64/libkxai_ompenv.so";

    private static final String STATUS;
    private static final boolean AVAILABLE;

    /** Layers oneDNN refused, and the last reason (for {@code kxai info} and tests). */
    static final LongAdder REFUSED = new LongAdder();
    static volatile String lastRefusal;

    /** Process-wide switch for comparisons and tests (also {@code -Dkxai.onednn=false}). */
    static volatile boolean enabled = !"false".equals(System.getProperty("kxai.onednn"));

    static {
        String status;
        boolean ok = false;
        if ("false".equals(System.getProperty("kxai.onednn"))) {
            status = "off (-Dkxai.onednn=false): im2col + sgemm";
        } else {
            try {
                boolean gompBefore = libgompLoaded();
                Path dir = Files.createTempDirectory("kxai-onednn");
                dir.toFile().deleteOnExit();
                Path env = extract(ENV_RESOURCE, dir);
                Path lib = extract(RESOURCE, dir);
                if (lib == null || env == null) {
                    status = "not in this build (built without g++ or libdnnl-dev): im2col + sgemm";
                } else {
                    // sets OMP_WAIT_POLICY=passive (unless set) before libgomp comes with the binding
                    System.load(env.toString());
                    System.load(lib.toString());
                    String policy = System.getenv("OMP_WAIT_POLICY");
                    status = version() + ", OMP_WAIT_POLICY=" + waitPolicy() + (gompBefore && policy == null
                            ? " but libgomp was loaded before kxai and read none: its threads spin between calls,"
                                    + " start the JVM with OMP_WAIT_POLICY=passive"
                            : "");
                    ok = true;
                }
            } catch (UnsatisfiedLinkError e) {
                status = "unavailable (" + e.getMessage() + "; apt-get install libdnnl2): im2col + sgemm";
            } catch (IOException e) {
                status = "unavailable (cannot extract the binding: " + e.getMessage() + "): im2col + sgemm";
            }
        }
        STATUS = status;
        AVAILABLE = ok;
    }

    /** Copies a library out of the jar (or the classes folder) into dir; null if not there. */
    private static Path extract(String resource, Path dir) throws IOException {
        try (InputStream in = OneDnn.class.getResourceAsStream(resource)) {
            if (in == null) {
                return null;
            }
            Path lib = dir.resolve(resource.substring(resource.lastIndexOf('/') + 1));
            Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
            lib.toFile().deleteOnExit();
            return lib;
        }
    }

    /** Whether this process has loaded libgomp already (then it has read its settings). */
    private static boolean libgompLoaded() {
        try {
            return Files.readString(Path.of("/proc/self/maps")).contains("libgomp");
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** The binding is loaded and switched on. */
    static boolean available() {
        return AVAILABLE && enabled;
    }

    /** "oneDNN 2.6.3 (OpenMP threads)", or why convolutions run as im2col + sgemm. */
    static String status() {
        if (AVAILABLE && !enabled) {
            return "switched off (CpuBackend.oneDnn(false)): im2col + sgemm";
        }
        return STATUS;
    }

    static native String version();

    /** OMP_WAIT_POLICY as the native side sees it (set to passive at load unless given). */
    static native String waitPolicy();

    static native long create(int[] geometry, float[] weights, float[] bias);

    static native void free(long handle);

    static native void forward(long handle, int n, float[] x, float[] y, int threads);

    static native void backwardData(long handle, int n, float[] dy, float[] dx, int threads);

    static native String implementation(long handle, int n, boolean backward);

    private static final Cleaner CLEANER = Cleaner.create();

    /**
     * One convolution layer on oneDNN: its geometry, a copy of its weights and bias in native memory
     * (freed when the layer is no longer reachable), primitives per batch size. Shared by threads.
     */
    static final class Layer {
        final int[] geometry;
        final float[] bias;
        private final long handle;
        private volatile String refused;

        private Layer(int[] geometry, float[] weights, float[] bias) {
            this.geometry = geometry;
            this.bias = bias;
            long h = create(geometry, weights, bias);
            this.handle = h;
            CLEANER.register(this, () -> free(h));
        }

        /**
         * y = conv(x) + bias for a batch of n, in float; false (y untouched) where oneDNN refuses
         * this layer, which it then does not ask again.
         */
        boolean forward(int n, float[] x, float[] y) {
            if (refused != null) {
                return false;
            }
            try {
                OneDnn.forward(handle, n, x, y, Parallel.threads());
                return true;
            } catch (IllegalStateException e) {
                refuse(e);
                return false;
            }
        }

        /** dx = the input gradient for dy, in float; false where oneDNN refuses this layer. */
        boolean backwardData(int n, float[] dy, float[] dx) {
            if (refused != null) {
                return false;
            }
            try {
                OneDnn.backwardData(handle, n, dy, dx, Parallel.threads());
                return true;
            } catch (IllegalStateException e) {
                refuse(e);
                return false;
            }
        }

        /** oneDNN's implementation for this layer at batch n (e.g. "jit:avx512_core"). */
        String implementation(int n, boolean backward) {
            return OneDnn.implementation(handle, n, backward);
        }

        private void refuse(IllegalStateException e) {
            refused = e.getMessage();
            lastRefusal = e.getMessage();
            REFUSED.increment();
        }
    }

    /**
     * Products per float sum that the forward's slices aim at: like the sgemm path's
     * {@code ConvOps.K_BLOCK}, it sets the error bound of each output and so the share of outputs
     * near a decision that must be recomputed (8.5% of a random 512-channel 3×3 layer's outputs with
     * one slice of 4608 products, 0.5% with slices of 288).
     */
    static final int SLICE_PRODUCTS = 320;

    /**
     * Input channels per slice: the most, in multiples of 16 (the blocks of oneDNN's AVX-512 kernels),
     * whose products stay within {@link #SLICE_PRODUCTS}; all of them for grouped layers.
     */
    static int sliceChannels(int c, int groups, int taps) {
        if (groups != 1) {
            return c;
        }
        int cs = Math.max(16, SLICE_PRODUCTS / taps / 16 * 16);
        return Math.min(c, cs);
    }

    /**
     * The depth of each forward output's float sum tree: a slice's products (and the bias) plus one
     * addition per further slice. Its γ bounds the rounding whatever the order inside.
     */
    static long sumDepth(int c, int groups, int taps) {
        int cs = sliceChannels(c, groups, taps);
        int slices = (c + cs - 1) / cs;
        return (long) (groups == 1 ? cs : c / groups) * taps + slices;
    }

    private static final Map<float[], Layer> LAYERS = Collections.synchronizedMap(new WeakHashMap<>());

    /**
     * The layer for these weights and this geometry (input channels c of inH × inW planes, m output
     * channels), made once and kept while the weights are; null where oneDNN is not available. The
     * input gradient takes any bias ({@code anyBias}): it does not read it.
     */
    static Layer layer(float[] weights, float[] bias, boolean anyBias, Window win, int c, int m, int groups) {
        if (!available()) {
            return null;
        }
        int[] geometry = {c, win.inH(), win.inW(), m, win.kh(), win.kw(), win.sh(), win.sw(), win.padTop(),
            win.padLeft(), win.padBottom(), win.padRight(), win.dh(), win.dw(), groups, win.outH(), win.outW(),
            sliceChannels(c, groups, win.kh() * win.kw())};
        synchronized (LAYERS) {
            Layer l = LAYERS.get(weights);
            if (l == null || !Arrays.equals(l.geometry, geometry) || (!anyBias && l.bias != bias)) {
                l = new Layer(geometry, weights, bias);
                LAYERS.put(weights, l);
            }
            return l;
        }
    }
}
