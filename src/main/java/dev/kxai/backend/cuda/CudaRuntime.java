package dev.kxai.backend.cuda;

import dev.kxai.KxaiException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.CudaException;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;

/**
 * The process's CUDA state, created once by the probe: one device (ordinal 0, or the system property
 * {@value #DEVICE_PROPERTY}, read once at the probe: a Spark executor sets it to the GPU address Spark
 * assigned, see kxai-spark), its primary context, the kernel
 * modules (PTX packed into the jar, loaded with cuModuleLoadData, never compiled at run time) and
 * a cuBLAS handle. Threads that use it call {@link #enter()} first, which makes the context
 * current on that thread.
 * <p>
 * Public, with {@link #probe()}, {@link Probe}, {@link #enter()}, {@link #cublas()},
 * {@link #deviceName()} and {@link #emulated()}, only so that the JMH kernel benchmarks
 * ({@code bench/}) can launch and time the real kernels: exposed for benchmarks, not part of
 * kxai's API.
 */
public final class CudaRuntime {
    /** Kernel families, one PTX module each (kernels/*.cu). */
    static final List<String> MODULES = List.of("path", "dense", "conv", "head", "shape", "perturb", "rules");

    private final CUcontext context;
    private final Map<String, CUfunction> functions;
    private final cublasHandle cublas;
    private final String deviceName;
    private final int driverVersion;
    private final boolean emulated;
    /** Set after a device failure that is not out-of-memory: the context is unusable from then on. */
    private volatile String brokenReason;

    private CudaRuntime(CUcontext context, Map<String, CUfunction> functions, cublasHandle cublas, String deviceName,
            int driverVersion, boolean emulated) {
        this.context = context;
        this.functions = functions;
        this.cublas = cublas;
        this.deviceName = deviceName;
        this.driverVersion = driverVersion;
        this.emulated = emulated;
    }

    /** The outcome of the one probe: a runtime, or the reason there is none. */
    public record Probe(CudaRuntime runtime, String reason) {
    }

    private static volatile Probe probe;

    /** The system property naming the device ordinal the process drives (default 0). */
    public static final String DEVICE_PROPERTY = "kxai.cuda.device";

    /**
     * Loads the driver, finds a device, loads the kernels. JCuda's native load fails inside a
     * static initializer: the first failure is an UnsatisfiedLinkError, every later one a
     * NoClassDefFoundError; hence one probe, cached with its reason.
     */
    public static Probe probe() {
        Probe p = probe;
        if (p == null) {
            synchronized (CudaRuntime.class) {
                if (probe == null) {
                    probe = doProbe();
                }
                p = probe;
            }
        }
        return p;
    }

    private static Probe doProbe() {
        Map<String, byte[]> ptx = new HashMap<>();
        for (String m : MODULES) {
            byte[] code = resource("/dev/kxai/kernels/" + m + ".ptx");
            if (code == null) {
                return new Probe(null, "the jar holds no PTX for kernels/" + m + ".cu (built without nvcc)");
            }
            ptx.put(m, code);
        }
        try {
            JCudaDriver.setExceptionsEnabled(true);
            JCublas2.setExceptionsEnabled(true);
            JCudaDriver.cuInit(0);
            int[] count = new int[1];
            JCudaDriver.cuDeviceGetCount(count);
            if (count[0] == 0) {
                return new Probe(null, "the CUDA driver loaded but reports no device");
            }
            String wanted = System.getProperty(DEVICE_PROPERTY, "0").trim();
            int ordinal;
            try {
                ordinal = Integer.parseInt(wanted);
            } catch (NumberFormatException e) {
                ordinal = -1;
            }
            if (ordinal < 0 || ordinal >= count[0]) {
                return new Probe(null, DEVICE_PROPERTY + "=" + wanted + " names no device: the driver reports "
                        + count[0] + " (ordinals 0.." + (count[0] - 1) + ")");
            }
            CUdevice dev = new CUdevice();
            JCudaDriver.cuDeviceGet(dev, ordinal);
            byte[] name = new byte[256];
            JCudaDriver.cuDeviceGetName(name, name.length, dev);
            int[] version = new int[1];
            JCudaDriver.cuDriverGetVersion(version);
            CUcontext ctx = new CUcontext();
            JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev);
            JCudaDriver.cuCtxSetCurrent(ctx);
            Map<String, CUfunction> functions = new HashMap<>();
            for (String m : MODULES) {
                CUmodule module = new CUmodule();
                try {
                    JCudaDriver.cuModuleLoadData(module, nullTerminated(ptx.get(m)));
                } catch (CudaException e) {
                    String error = firstLine(e);
                    if (error.contains("CUDA_ERROR_UNSUPPORTED_PTX_VERSION")) {
                        return new Probe(null, PtxIsa.refusal(m, version[0], ptx.get(m)));
                    }
                    return new Probe(null, "the CUDA driver " + PtxIsa.driver(version[0]) + " refused the PTX of kernels/" + m
                            + ".cu (PTX ISA " + PtxIsa.declared(ptx.get(m)) + "): " + error);
                }
                for (String fn : KernelNames.in(ptx.get(m))) {
                    CUfunction f = new CUfunction();
                    JCudaDriver.cuModuleGetFunction(f, module, fn);
                    functions.put(fn, f);
                }
            }
            cublasHandle h = new cublasHandle();
            JCublas2.cublasCreate(h);
            String deviceName = cString(name);
            boolean emulated = System.getenv("KXAI_CUDA_EMULATOR") != null || deviceName.toLowerCase().contains("emulat");
            return new Probe(new CudaRuntime(ctx, Map.copyOf(functions), h, deviceName, version[0], emulated),
                    "device " + ordinal + ": " + deviceName + ", driver " + PtxIsa.driver(version[0]) + " (kernels: PTX ISA "
                            + PtxIsa.declared(ptx.get(MODULES.get(0))) + ")");
        } catch (LinkageError e) {
            return new Probe(null, "the CUDA driver library could not be loaded (" + driverCause(e) + ")");
        } catch (CudaException e) {
            return new Probe(null, "CUDA initialisation failed: " + firstLine(e));
        } catch (RuntimeException e) {
            return new Probe(null, "CUDA initialisation failed: " + firstLine(e));
        }
    }

    /** JCuda's load error is many lines; the one naming libcuda says what is missing. */
    private static String driverCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            for (String line : m.split("\n")) {
                if (line.contains("libcuda")) {
                    return line.trim() + "; is an NVIDIA driver installed?";
                }
            }
        }
        return firstLine(e);
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    private static byte[] resource(String path) {
        try (InputStream in = CudaRuntime.class.getResourceAsStream(path)) {
            if (in == null) {
                return null;
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toByteArray();
        } catch (IOException e) {
            return null;
        }
    }

    private static byte[] nullTerminated(byte[] b) {
        byte[] z = java.util.Arrays.copyOf(b, b.length + 1);
        z[b.length] = 0;
        return z;
    }

    private static String cString(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, java.nio.charset.StandardCharsets.UTF_8);
    }

    /**
     * A failed launch leaves a CUDA context in a sticky error state: every later call fails. From
     * then on the backend computes on the CPU; resetting the primary context would invalidate the
     * weights of every loaded model, which is not attempted.
     */
    /**
     * Whether the context still works after a failed call (call with the context current): a sticky
     * error (a failed launch, an illegal address) makes every later call fail, cuCtxSynchronize
     * included; a transient failure (one copy) leaves it usable, and only that request fails.
     */
    boolean healthy() {
        try {
            jcuda.driver.JCudaDriver.cuCtxSynchronize();
            return true;
        } catch (jcuda.CudaException e) {
            return false;
        }
    }

    void markBroken(String reason) {
        if (brokenReason == null) {
            brokenReason = reason;
        }
    }

    String brokenReason() {
        return brokenReason;
    }

    /** A stream and the cuBLAS handle bound to it: what one piece of work ({@link Work}) issues on. */
    record Lane(jcuda.driver.CUstream stream, cublasHandle cublas) {
    }

    /** Idle lanes; a piece of work takes one (creating it when none is idle) and gives it back. */
    private final java.util.ArrayDeque<Lane> lanes = new java.util.ArrayDeque<>();

    /**
     * A lane for one piece of work (context current): a non-blocking stream, so that nothing on the
     * legacy default stream orders it, with a cuBLAS handle of its own set to that stream. Lanes live as
     * long as the process's context (they are few: one per piece of work running at once).
     */
    Lane acquireLane() {
        synchronized (lanes) {
            Lane l = lanes.poll();
            if (l != null) {
                return l;
            }
        }
        jcuda.driver.CUstream s = new jcuda.driver.CUstream();
        JCudaDriver.cuStreamCreate(s, jcuda.driver.CUstream_flags.CU_STREAM_NON_BLOCKING);
        cublasHandle h = new cublasHandle();
        try {
            JCublas2.cublasCreate(h);
            JCublas2.cublasSetStream(h, new jcuda.runtime.cudaStream_t(s));
        } catch (RuntimeException e) {
            JCudaDriver.cuStreamDestroy(s);
            throw e;
        }
        lanesCreated++;
        return new Lane(s, h);
    }

    /** Lanes created so far (tests: pieces of work reuse them). */
    private volatile int lanesCreated;

    int lanesCreated() {
        return lanesCreated;
    }

    void releaseLane(Lane l) {
        synchronized (lanes) {
            lanes.push(l);
        }
    }

    /** Each cuBLAS handle's math mode as last set (TF32 or not), so it is set only when it changes. */
    private final Map<cublasHandle, Boolean> tf32Handles = new java.util.IdentityHashMap<>();

    /** Puts {@code h} in CUBLAS_TF32_TENSOR_OP_MATH or CUBLAS_DEFAULT_MATH (host-side handle state, not stream work). */
    void mathMode(cublasHandle h, boolean tf32) {
        synchronized (tf32Handles) {
            Boolean was = tf32Handles.get(h);
            if (was != null && was == tf32) {
                return;
            }
            JCublas2.cublasSetMathMode(h, tf32 ? jcuda.jcublas.cublasMath.CUBLAS_TF32_TENSOR_OP_MATH
                    : jcuda.jcublas.cublasMath.CUBLAS_DEFAULT_MATH);
            tf32Handles.put(h, tf32);
        }
    }

    /** Makes the context current on the calling thread (cheap; call on every entry). */
    public void enter() {
        JCudaDriver.cuCtxSetCurrent(context);
    }

    CUfunction function(String name) {
        CUfunction f = functions.get(name);
        if (f == null) {
            throw new KxaiException("kernel " + name + " is not loaded");
        }
        return f;
    }

    public cublasHandle cublas() {
        return cublas;
    }

    public String deviceName() {
        return deviceName;
    }

    int driverVersion() {
        return driverVersion;
    }

    public boolean emulated() {
        return emulated;
    }

    /** Free and total device memory in bytes. */
    long[] memInfo() {
        long[] free = new long[1];
        long[] total = new long[1];
        JCudaDriver.cuMemGetInfo(free, total);
        return new long[] {free[0], total[0]};
    }
}
