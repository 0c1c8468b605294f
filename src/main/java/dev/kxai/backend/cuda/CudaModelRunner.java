package dev.kxai.backend.cuda;

import dev.kxai.InvalidInputException;
import dev.kxai.KxaiException;
import dev.kxai.backend.Backend;
import dev.kxai.backend.ModelRunner;
import dev.kxai.backend.PathIntegral;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Logger;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasOperation;

/**
 * Runs a graph on the CUDA device: weights uploaded once; each pass allocates its activations in
 * a {@link DeviceScope}; the Integrated Gradients path stays on the device from interpolation to
 * accumulation, with chunks sized from the free device memory. Device work is serialised on the
 * runtime (one device, one cuBLAS handle); the context is made current on every entering thread.
 * A device failure (out of memory at the smallest chunk, a failed launch) falls back to the CPU
 * twin for that call, logged, so the caller still gets the right numbers.
 *
 * <p>Two plans are fixed when the runner is built (immutable, so shared request threads see the
 * same): which Gemm (or MatMul + bias Add) nodes absorb the activation after them
 * ({@link Fusion}), and which node, if any, qualifies for the first-layer saving.
 */
final class CudaModelRunner implements ModelRunner {
    private static final Logger LOG = Logger.getLogger(CudaModelRunner.class.getName());

    private final Graph graph;
    private final Backend backend;
    private final CudaRuntime rt;
    private final Kernels k;
    /** Shapes, output size, working-set estimate, and the fallback when the device fails. */
    private final ModelRunner cpu;
    private final List<Node> nodes;
    private final Set<String> dependsOnInput = new HashSet<>();
    private final DeviceScope weightScope = new DeviceScope();
    private final Map<String, DTensor> constants = new HashMap<>();
    /** Per batch-norm node: scale and shift per channel, folded on the host once. */
    private final Map<String, DeviceBuffer[]> batchNorm = new HashMap<>();
    /** Per node: the activation (and bias Add) a Gemm/MatMul node absorbs; null where none. */
    private final Fusion[] fusions;
    /** The node that alone reads the input, when it is an affine layer with constant parameters; else -1. */
    private final int affineFirst;

    /**
     * A Gemm, or a MatMul followed by an Add of a constant row bias, whose output is read only by
     * an activation: one kernel adds the bias and applies the activation on the GEMM's output
     * (bias_act_forward), and the backward runs the activation's backward on what it saved. The
     * intermediate values (the Gemm's, the MatMul's and the Add's outputs) are never
     * materialised: nothing else reads them.
     *
     * @param add  the Add node absorbed after a MatMul, or -1 (Gemm: its own C is the bias)
     * @param bias the constant row bias added by that Add, or null
     * @param act  the activation node absorbed
     */
    record Fusion(int add, String bias, int act, int code, float alpha) {
        /** LeakyReLU with alpha < 0: the output's sign does not tell the input's, so keep the pre-activation. */
        boolean keepsInput() {
            return code == Kernels.ACT_LEAKY_RELU && alpha < 0f;
        }
    }

    /** A tensor on the device. */
    record DTensor(int[] shape, DeviceBuffer buf) {
        long size() {
            return Shapes.size(shape);
        }

        int dim(int i) {
            return shape[i];
        }

        DTensor reshape(int[] s) {
            return new DTensor(s, buf);
        }
    }

    CudaModelRunner(Graph graph, Backend backend, CudaRuntime rt, ModelRunner cpu) {
        this(graph, backend, rt, cpu, true);
    }

    /** {@code fuse = false} runs every activation as its own kernel (the parity tests' reference). */
    CudaModelRunner(Graph graph, Backend backend, CudaRuntime rt, ModelRunner cpu, boolean fuse) {
        this.graph = graph;
        this.backend = backend;
        this.rt = rt;
        this.k = new Kernels(rt);
        this.cpu = cpu;
        this.nodes = graph.nodes();
        dependsOnInput.add(graph.inputName());
        for (Node n : nodes) {
            if (n.inputs().stream().anyMatch(dependsOnInput::contains)) {
                dependsOnInput.add(n.output());
            }
        }
        this.fusions = fuse ? planFusions() : new Fusion[nodes.size()];
        this.affineFirst = affineFirstNode();
        synchronized (rt) {
            rt.enter();
            try {
                for (Map.Entry<String, Tensor> e : graph.constants().entrySet()) {
                    constants.put(e.getKey(), new DTensor(e.getValue().shape(), weightScope.upload(e.getValue().data())));
                }
                for (Node n : nodes) {
                    if (n.op() instanceof Op.BatchNormalization b) {
                        batchNorm.put(n.name(), foldBatchNorm(n, b));
                    }
                }
            } catch (CudaException e) {
                long bytes = graph.constants().values().stream().mapToLong(t -> 4L * t.size()).sum();
                try {
                    weightScope.close();
                } catch (CudaException ignored) {
                    // the device is failing already; the first error is the one to report
                }
                if (!outOfMemory(e)) {
                    rt.markBroken(e.getMessage());
                }
                throw new KxaiException(graph.source() + ": cannot load the model's " + bytes + " bytes of weights on "
                        + rt.deviceName() + ": " + e.getMessage(), e);
            }
        }
    }

    /** Where each value is read: its readers' node indices (one entry per reading input). */
    private Map<String, List<Integer>> readers() {
        Map<String, List<Integer>> r = new HashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            for (String in : nodes.get(i).inputs()) {
                r.computeIfAbsent(in, key -> new java.util.ArrayList<>()).add(i);
            }
        }
        return r;
    }

    /** The one node reading {@code value} (once, as its first input), unless the value is also the graph's output. */
    private int soleReader(Map<String, List<Integer>> readers, String value) {
        List<Integer> r = readers.get(value);
        if (r == null || r.size() != 1 || value.equals(graph.outputName())) {
            return -1;
        }
        int j = r.get(0);
        return nodes.get(j).inputs().get(0).equals(value) ? j : -1;
    }

    private Fusion[] planFusions() {
        Map<String, List<Integer>> readers = readers();
        Fusion[] plan = new Fusion[nodes.size()];
        for (int i = 0; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            if (!(n.op() instanceof Op.Gemm || n.op() instanceof Op.MatMul)) {
                continue;
            }
            String last = n.output();
            int add = -1;
            String bias = null;
            if (n.op() instanceof Op.MatMul) {
                List<Integer> r = readers.get(last);
                if (r == null || r.size() != 1 || last.equals(graph.outputName())) {
                    continue;
                }
                Node a = nodes.get(r.get(0));
                if (!(a.op() instanceof Op.Add)) {
                    continue;
                }
                String other = a.inputs().get(a.inputs().get(0).equals(last) ? 1 : 0);
                Tensor b = graph.constants().get(other);
                Tensor w = graph.constants().get(n.inputs().get(1));
                if (b == null || !isRowBias(b.shape())
                        || (w != null && (w.shape().length != 2 || w.dim(1) != b.size()))) {
                    continue; // (a right operand computed at run time is checked per pass)
                }
                add = r.get(0);
                bias = other;
                last = a.output();
            }
            int act = soleReader(readers, last);
            if (act < 0 || act(nodes.get(act).op()) < 0) {
                continue;
            }
            Op op = nodes.get(act).op();
            plan[i] = new Fusion(add, bias, act, act(op), op instanceof Op.LeakyRelu l ? l.alpha() : 0f);
        }
        return plan;
    }

    /** [N], [1, N], [1, 1, N]...: a bias added to every row. */
    private static boolean isRowBias(int[] shape) {
        for (int d = 0; d < shape.length - 1; d++) {
            if (shape[d] != 1) {
                return false;
            }
        }
        return shape.length >= 1;
    }

    /** The activation nodes absorbed into the Gemm/MatMul before them (for tests). */
    Set<String> fusedActivations() {
        Set<String> names = new java.util.TreeSet<>();
        for (Fusion f : fusions) {
            if (f != null) {
                names.add(nodes.get(f.act()).name());
            }
        }
        return names;
    }

    /** The node the first-layer saving applies to ({@link dev.kxai.backend.FirstLayer}), or -1. */
    int affineFirstNode() {
        return dev.kxai.backend.FirstLayer.affineNode(graph);
    }

    private DeviceBuffer[] foldBatchNorm(Node n, Op.BatchNormalization b) {
        float[] gamma = graph.constants().get(n.inputs().get(1)).data();
        float[] beta = graph.constants().get(n.inputs().get(2)).data();
        float[] mean = graph.constants().get(n.inputs().get(3)).data();
        float[] var = graph.constants().get(n.inputs().get(4)).data();
        float[] scale = new float[gamma.length];
        float[] shift = new float[gamma.length];
        for (int c = 0; c < gamma.length; c++) {
            float inv = (float) (1.0 / Math.sqrt(var[c] + b.epsilon()));
            scale[c] = gamma[c] * inv;
            shift[c] = beta[c] - mean[c] * scale[c];
        }
        return new DeviceBuffer[] {weightScope.upload(scale), weightScope.upload(shift)};
    }

    @Override
    public String affineFirstLayerNode() {
        int i = affineFirst;
        return i >= 0 ? nodes.get(i).name() : null;
    }

    @Override
    public Graph graph() {
        return graph;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public int[] exampleShape() {
        return cpu.exampleShape();
    }

    @Override
    public int outputsPerExample() {
        return cpu.outputsPerExample();
    }

    @Override
    public long workingFloatsPerExample() {
        return cpu.workingFloatsPerExample();
    }

    // ------------------------------------------------------------------ public entry points

    /** The CPU runner's checks, so that the device never sees a batch or targets that do not fit. */
    private void checkBatch(Tensor x) {
        int[] ex = exampleShape();
        int[] s = x.shape();
        boolean fits = s.length == ex.length + 1;
        for (int i = 0; fits && i < ex.length; i++) {
            fits = s[i + 1] == ex[i];
        }
        if (!fits) {
            throw new InvalidInputException("input of shape " + Shapes.str(s) + " does not fit model input '"
                    + graph.inputName() + "' (" + graph.source() + ")");
        }
        if (s[0] == 0) {
            throw new InvalidInputException("empty batch: input of shape " + Shapes.str(s) + " has no rows");
        }
    }

    @Override
    public Tensor forward(Tensor x) {
        checkBatch(x);
        return onDevice("forward", () -> {
            try (DeviceScope s = new DeviceScope()) {
                Pass p = run(s, new DTensor(x.shape(), s.upload(x.data())));
                DTensor y = p.values.get(graph.outputName());
                return new Tensor(y.shape(), y.buf().download((int) y.size()));
            }
        }, () -> cpu.forward(x));
    }

    @Override
    public Gradient gradient(Tensor x, int[] targets) {
        checkBatch(x);
        checkTargets(targets, x.dim(0));
        return onDevice("gradient", () -> {
            try (DeviceScope s = new DeviceScope()) {
                Pass p = run(s, new DTensor(x.shape(), s.upload(x.data())));
                DTensor y = p.values.get(graph.outputName());
                DTensor seed = seed(s, y, s.upload(targets), x.dim(0));
                DTensor g = backward(s, p, seed);
                return new Gradient(new Tensor(y.shape(), y.buf().download((int) y.size())),
                        new Tensor(x.shape(), g.buf().download(x.size())));
            }
        }, () -> cpu.gradient(x, targets));
    }

    /**
     * The path on the device. With {@code affineFirstLayer} and a qualifying first node
     * ({@link #affineFirstNode}) the first-layer saving runs on the device too; otherwise the flag
     * changes nothing. A device failure falls back to the CPU runner with the same flag.
     */
    @Override
    public PathIntegral.Result integratePath(Tensor x, Tensor base, float[] alphas, float[] weights, int[] targets,
            int stepsPerChunk, PathIntegral.Progress progress, boolean affineFirstLayer) {
        checkBatch(x);
        checkTargets(targets, x.dim(0));
        int first = affineFirstLayer ? affineFirst : -1;
        return onDevice("integrated gradients", () -> first >= 0
                ? devicePathAffine(first, x, base, alphas, weights, targets, stepsPerChunk, progress)
                : devicePath(x, base, alphas, weights, targets, stepsPerChunk, progress),
                () -> cpu.integratePath(x, base, alphas, weights, targets, stepsPerChunk, progress, affineFirstLayer));
    }

    private void checkTargets(int[] targets, int rows) {
        if (targets.length != rows) {
            throw new IllegalArgumentException(targets.length + " targets for " + rows + " rows");
        }
        int per = outputsPerExample();
        for (int r = 0; r < targets.length; r++) {
            if (targets[r] < 0 || targets[r] >= per) {
                throw new InvalidInputException("target " + targets[r] + " of row " + r + " is outside the model's "
                        + per + " outputs (valid: 0.." + (per - 1) + ")");
            }
        }
    }

    private interface DeviceWork<T> {
        T run();
    }

    /**
     * Runs device work under the runtime's lock; a CUDA failure falls back to the CPU twin. Out of
     * memory (after the path's own retries) affects this call only; any other failure leaves the
     * context unusable, so every later call goes to the CPU directly.
     */
    private <T> T onDevice(String what, DeviceWork<T> device, java.util.function.Supplier<T> host) {
        if (rt.brokenReason() != null) {
            return host.get();
        }
        try {
            synchronized (rt) {
                rt.enter();
                return device.run();
            }
        } catch (CudaException e) {
            if (outOfMemory(e)) {
                LOG.warning("CUDA ran out of memory during " + what + " (" + e.getMessage()
                        + "); computing it on the CPU instead");
            } else {
                rt.markBroken(e.getMessage());
                LOG.warning("CUDA failed during " + what + " (" + e.getMessage()
                        + "); the device is unusable for the rest of this process: computing on the CPU from now on");
            }
            return host.get();
        }
    }

    static boolean outOfMemory(CudaException e) {
        return e.getMessage() != null && e.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY");
    }

    // ------------------------------------------------------------------ the path on the device

    private PathIntegral.Result devicePath(Tensor x, Tensor base, float[] alphas, float[] weights, int[] targets,
            int stepsPerChunk, PathIntegral.Progress progress) {
        try (DeviceScope keep = new DeviceScope()) {
            DeviceBuffer dx = keep.upload(x.data());
            DeviceBuffer db = keep.upload(base.data());
            DevicePath r = pathLoop(keep, (path, da, steps) -> k.pathInterpolate(path, dx, db, da, steps, x.dim(0),
                    x.rowSize()), x.shape(), graph.inputName(), -1, alphas, weights, targets, stepsPerChunk, progress);
            return new PathIntegral.Result(new Tensor(x.shape(), r.acc().download(x.size())), r.atBase(), r.atInput());
        }
    }

    /**
     * DESIGN.md's first saving on the device. The first layer (node {@code first}) runs once at x
     * and once at b, its outputs z_x, z_b kept in double (conv2d_forward_f64 / gemm_f64); each
     * step's pre-activation z_b + α (z_x − z_b) is formed in double and rounded once
     * (path_interpolate_f64), as the CPU runner does; the layers after it run per step with the
     * gradient taken with respect to z and accumulated there; then the layer's transpose is
     * applied once per example (the layer's own input-gradient code).
     */
    private PathIntegral.Result devicePathAffine(int first, Tensor x, Tensor base, float[] alphas, float[] weights,
            int[] targets, int stepsPerChunk, PathIntegral.Progress progress) {
        Node layer = nodes.get(first);
        LOG.fine(() -> "integrated gradients with the first-layer saving at node '" + layer.name() + "' ("
                + layer.opType() + ")");
        try (DeviceScope keep = new DeviceScope()) {
            DTensor dx = new DTensor(x.shape(), keep.upload(x.data()));
            DTensor zx = firstLayerF64(keep, layer, dx);
            DTensor zb = firstLayerF64(keep, layer, new DTensor(base.shape(), keep.upload(base.data())));
            int batch = x.dim(0);
            long zFeatures = zx.size() / batch;
            DevicePath r = pathLoop(keep, (path, da, steps) -> k.pathInterpolateF64(path, zx.buf(), zb.buf(), da, steps,
                    batch, zFeatures), zx.shape(), layer.output(), first, alphas, weights, targets, stepsPerChunk,
                    progress);
            // Σ_k w_k Wᵀ g_k = Wᵀ Σ_k w_k g_k: the layer's transpose once per example
            DTensor gz = new DTensor(zx.shape(), r.acc());
            DTensor[] in = new DTensor[layer.inputs().size()];
            in[0] = dx;
            for (int j = 1; j < in.length; j++) {
                in[j] = constants.get(layer.inputs().get(j));
            }
            DTensor gx;
            if (layer.op() instanceof Op.Conv c) {
                gx = convInputGrad(keep, layer, c, dx, in[1], gz);
            } else {
                boolean[] need = new boolean[in.length];
                need[0] = true;
                gx = gemmBackward(keep, layer, (Op.Gemm) layer.op(), in, gz, need)[0];
            }
            return new PathIntegral.Result(new Tensor(x.shape(), gx.buf().download(x.size())), r.atBase(), r.atInput());
        }
    }

    /** The first layer's output at x, in double (unrounded), shaped as its float output would be. */
    private DTensor firstLayerF64(DeviceScope s, Node layer, DTensor x) {
        DTensor w = constants.get(layer.inputs().get(1));
        DTensor c = layer.inputs().size() > 2 ? constants.get(layer.inputs().get(2)) : null;
        if (layer.op() instanceof Op.Conv op) {
            Window win = convWindow(layer, op, x, w);
            int m = w.dim(0);
            int[] shape = {x.dim(0), m, win.outH(), win.outW()};
            DTensor y = new DTensor(shape, s.doubles(Shapes.size(shape)));
            k.conv2dForwardF64(y.buf(), x.buf(), w.buf(), c != null ? c.buf() : null, x.dim(0), x.dim(1), x.dim(2),
                    x.dim(3), m, op.group(), Kernels.geometry(win));
            return y;
        }
        Op.Gemm op = (Op.Gemm) layer.op();
        if (x.shape().length != 2) {
            throw new InvalidInputException("node '" + layer.name() + "' (Gemm): needs 2-D operands, got "
                    + Shapes.str(x.shape()) + " and " + Shapes.str(w.shape()));
        }
        int kk = x.dim(1);
        int n = op.transB() ? w.dim(0) : w.dim(1);
        if ((op.transB() ? w.dim(1) : w.dim(0)) != kk) {
            throw new InvalidInputException("node '" + layer.name() + "' (Gemm): inner dimensions differ: "
                    + Shapes.str(x.shape()) + " × " + Shapes.str(w.shape()));
        }
        DTensor y = new DTensor(new int[] {x.dim(0), n}, s.doubles((long) x.dim(0) * n));
        k.gemmF64(y.buf(), x.buf(), w.buf(), c != null && op.beta() != 0f ? c.buf() : null, x.dim(0), n, kk, op.transB(),
                op.alpha(), op.beta());
        return y;
    }

    /** Writes the path rows of {@code steps} steps (alphas {@code da}) into {@code path}. */
    private interface DeviceInterpolation {
        void rows(DeviceBuffer path, DeviceBuffer da, int steps);
    }

    /** The accumulated Σ_k w_k g_k (on the device, in the path rows' space) and the endpoint outputs. */
    private record DevicePath(DeviceBuffer acc, double[] atBase, double[] atInput) {
    }

    /**
     * The chunked path loop on the device: rows interpolated by {@code interpolation}, a pass that
     * starts at value {@code start} (the model input, or the first layer's output with node
     * {@code skip} not run), the gradient taken with respect to that value and accumulated. A chunk
     * that runs out of device memory is retried with half the steps; the accumulator is untouched
     * until a chunk has succeeded.
     *
     * @param rowShape the shape of one step's rows, batch first
     */
    private DevicePath pathLoop(DeviceScope keep, DeviceInterpolation interpolation, int[] rowShape, String start,
            int skip, float[] alphas, float[] weights, int[] targets, int stepsPerChunk,
            PathIntegral.Progress progress) {
        int batch = rowShape[0];
        long features = Shapes.size(rowShape) / batch;
        int steps = alphas.length;
        long perStepBytes = 4L * batch * (workingFloatsPerExample() + features);
        long free = rt.memInfo()[0];
        int chunk = (int) Math.max(1, Math.min(Math.min(stepsPerChunk, steps), free / 2 / Math.max(1, perStepBytes)));
        int outs = outputsPerExample();
        double[] atBase = null;
        double[] atInput = null;
        DeviceBuffer da = keep.upload(alphas);
        DeviceBuffer dw = keep.upload(weights);
        DeviceBuffer acc = keep.floats(batch * features);
        acc.zero();
        int[] rowTargets = new int[steps * batch];
        for (int r = 0; r < rowTargets.length; r++) {
            rowTargets[r] = targets[r % batch];
        }
        DeviceBuffer dt = keep.upload(rowTargets);
        int[] pathShape = rowShape.clone();
        int k0 = 0;
        while (k0 < steps) {
            int k1 = Math.min(steps, k0 + chunk);
            int rows = (k1 - k0) * batch;
            try (DeviceScope s = new DeviceScope()) {
                DeviceBuffer path = s.floats(rows * features);
                interpolation.rows(path, da.viewFloats(k0, k1 - k0), k1 - k0);
                pathShape[0] = rows;
                Pass p = run(s, start, new DTensor(pathShape.clone(), path), skip);
                DTensor y = p.values.get(graph.outputName());
                DeviceBuffer chunkTargets = dt.viewFloats(0, rows);
                DTensor g = backward(s, p, seed(s, y, chunkTargets, rows), start);
                double[] chunkBase = null;
                double[] chunkInput = null;
                for (int step = k0; step < k1; step++) {
                    if (alphas[step] == 0f || alphas[step] == 1f) {
                        DeviceBuffer picked = s.floats(batch);
                        k.gatherTarget(picked, y.buf().viewFloats((long) (step - k0) * batch * outs, (long) batch * outs),
                                chunkTargets, batch, outs);
                        float[] v = picked.download(batch);
                        double[] o = new double[batch];
                        for (int i = 0; i < batch; i++) {
                            o[i] = v[i];
                        }
                        if (alphas[step] == 0f) {
                            chunkBase = o;
                        } else {
                            chunkInput = o;
                        }
                    }
                }
                // last, so that an out-of-memory retry of this chunk never finds it accumulated already
                k.pathAccumulate(acc, g.buf(), dw.viewFloats(k0, k1 - k0), k1 - k0, batch, features);
                atBase = chunkBase != null ? chunkBase : atBase;
                atInput = chunkInput != null ? chunkInput : atInput;
            } catch (CudaException e) {
                if (outOfMemory(e) && k1 - k0 > 1) {
                    chunk = Math.max(1, (k1 - k0) / 2); // retry this chunk smaller; acc is untouched
                    LOG.info("device out of memory at " + (k1 - k0) + " steps per chunk; retrying with " + chunk);
                    continue;
                }
                throw e;
            }
            progress.stepsDone(k1, steps);
            k0 = k1;
        }
        return new DevicePath(acc, atBase, atInput);
    }

    // ------------------------------------------------------------------ forward and backward passes

    private static final class Pass {
        final Map<String, DTensor> values = new HashMap<>();
        final Object[] saved;
        /** Nodes already computed by a fused producer (an absorbed Add or activation). */
        final boolean[] done;
        /** Per absorbed activation node: what its backward reads (its output, or the pre-activation). */
        final DeviceBuffer[] actSaved;
        /** Per absorbed activation node: the Gemm/MatMul node that ran it. */
        final int[] producer;

        Pass(int n) {
            saved = new Object[n];
            done = new boolean[n];
            actSaved = new DeviceBuffer[n];
            producer = new int[n];
        }
    }

    private DTensor value(Pass p, String name) {
        DTensor t = p.values.get(name);
        return t != null ? t : constants.get(name);
    }

    private Pass run(DeviceScope s, DTensor x) {
        return run(s, graph.inputName(), x, -1);
    }

    /**
     * A forward pass that starts from a given value: the model input, or (first-layer saving) the
     * output of node {@code skip}, which is then not run. A Gemm/MatMul that the fusion plan lets
     * absorb its activation runs it in the same kernel unless it is the skipped node, whose
     * activation then runs on its own.
     */
    private Pass run(DeviceScope s, String startName, DTensor start, int skip) {
        Pass p = new Pass(nodes.size());
        p.values.put(startName, start);
        for (int i = 0; i < nodes.size(); i++) {
            if (i == skip || p.done[i]) {
                continue;
            }
            Node n = nodes.get(i);
            DTensor[] in = new DTensor[n.inputs().size()];
            for (int j = 0; j < in.length; j++) {
                in[j] = value(p, n.inputs().get(j));
            }
            if (fusions[i] != null && fusedForward(s, p, i, n, in)) {
                continue;
            }
            p.values.put(n.output(), forwardNode(s, p, i, n, in));
        }
        return p;
    }

    /**
     * Node {@code i} with the activation (and bias Add) it absorbs: one GEMM, then one kernel for
     * bias + activation. Returns false, having computed nothing, where a run-time shape does not
     * fit the fusion (the nodes then run one by one and report any error as usual).
     */
    private boolean fusedForward(DeviceScope s, Pass p, int i, Node n, DTensor[] in) {
        Fusion f = fusions[i];
        DeviceBuffer[] outSaved;
        int[] shape;
        if (n.op() instanceof Op.Gemm g) {
            Fused r = gemmForward(s, n, g, in, f);
            outSaved = new DeviceBuffer[] {r.out().buf(), r.saved()};
            shape = r.out().shape();
        } else {
            DTensor a = in[0];
            DTensor b = in[1];
            DTensor bias = constants.get(f.bias());
            int[] as = a.shape();
            if (!(as.length >= 2 && b.shape().length == 2 && as[as.length - 1] == b.dim(0) && bias.size() == b.dim(1)
                    && bias.shape().length <= as.length)) {
                return false;
            }
            DTensor z = matmul(s, n, a, b);
            int cols = b.dim(1);
            outSaved = biasAct(s, z.buf(), bias.buf(), z.size() / cols, cols, f);
            shape = z.shape();
            p.done[f.add()] = true;
        }
        p.done[f.act()] = true;
        p.actSaved[f.act()] = outSaved[1];
        p.producer[f.act()] = i;
        p.values.put(nodes.get(f.act()).output(), new DTensor(shape, outSaved[0]));
        return true;
    }

    /**
     * act(y + bias) on a GEMM's output y in one kernel (bias may be null). In place, the backward
     * then reading the output; for LeakyReLU with alpha &lt; 0 into a new buffer, the pre-activation
     * kept in y for the backward. Returns {output, what the backward reads}.
     */
    private DeviceBuffer[] biasAct(DeviceScope s, DeviceBuffer y, DeviceBuffer bias, long rows, int cols, Fusion f) {
        if (f.keepsInput()) {
            DeviceBuffer out = s.floats(rows * cols);
            k.biasActForwardKeep(out, y, bias, rows, cols, f.code(), f.alpha());
            return new DeviceBuffer[] {out, y};
        }
        k.biasActForward(y, bias, rows, cols, f.code(), f.alpha());
        return new DeviceBuffer[] {y, y};
    }

    private DTensor seed(DeviceScope s, DTensor y, DeviceBuffer targets, int rows) {
        DTensor g = new DTensor(y.shape(), s.floats(y.size()));
        k.seedOneHot(g.buf(), targets, rows, (int) (y.size() / rows));
        return g;
    }

    private KxaiException unsupported(Node n, String why) {
        return new KxaiException("node '" + n.name() + "' (" + n.opType() + "): " + why + " is not supported on cuda");
    }

    private static int act(Op op) {
        if (op instanceof Op.Relu) {
            return Kernels.ACT_RELU;
        } else if (op instanceof Op.LeakyRelu) {
            return Kernels.ACT_LEAKY_RELU;
        } else if (op instanceof Op.Sigmoid) {
            return Kernels.ACT_SIGMOID;
        } else if (op instanceof Op.Tanh) {
            return Kernels.ACT_TANH;
        }
        return -1;
    }

    private DTensor forwardNode(DeviceScope s, Pass p, int index, Node n, DTensor[] in) {
        Op op = n.op();
        int act = act(op);
        if (act >= 0) {
            DTensor y = new DTensor(in[0].shape(), s.floats(in[0].size()));
            k.actForward(y.buf(), in[0].buf(), y.size(), act, op instanceof Op.LeakyRelu l ? l.alpha() : 0f);
            return y;
        } else if (op instanceof Op.Gemm g) {
            return gemmForward(s, n, g, in, null).out();
        } else if (op instanceof Op.MatMul) {
            return matmul(s, n, in[0], in[1]);
        } else if (op instanceof Op.Add || op instanceof Op.Sub || op instanceof Op.Mul) {
            int code = op instanceof Op.Add ? 0 : op instanceof Op.Sub ? 1 : 2;
            int[] out = Shapes.broadcast(in[0].shape(), in[1].shape());
            if (out == null) {
                throw new InvalidInputException("node '" + n.name() + "' (" + n.opType() + "): shapes "
                        + Shapes.str(in[0].shape()) + " and " + Shapes.str(in[1].shape()) + " do not broadcast");
            }
            DTensor y = new DTensor(out, s.floats(Shapes.size(out)));
            Broadcast b = Broadcast.of(n, out, in[0].shape(), in[1].shape());
            k.binaryForward(y.buf(), in[0].buf(), in[1].buf(), code, b.dims, b.a, b.b);
            return y;
        } else if (op instanceof Op.Softmax sm) {
            int axis = axis(n, sm.axis(), in[0].shape().length);
            DTensor y = new DTensor(in[0].shape(), s.floats(in[0].size()));
            long[] oni = softmaxLines(sm, in[0].shape(), axis);
            k.softmaxForward(y.buf(), in[0].buf(), oni[0], (int) oni[1], oni[2]);
            return y;
        } else if (op instanceof Op.Flatten f) {
            int a = f.axis() < 0 ? f.axis() + in[0].shape().length : f.axis();
            int outer = 1;
            for (int d = 0; d < a; d++) {
                outer *= in[0].dim(d);
            }
            return in[0].reshape(new int[] {outer, (int) (in[0].size() / Math.max(1, outer))});
        } else if (op instanceof Op.Reshape) {
            // the shape rule is the CPU's: reuse it on a shape-only host tensor
            Tensor shapeT = graph.constants().get(n.inputs().get(1));
            if (shapeT == null) {
                throw unsupported(n, "a shape computed at run time");
            }
            int[] target = reshapeTarget(n, in[0].shape(), shapeT.data());
            return in[0].reshape(target);
        } else if (op instanceof Op.Identity) {
            return in[0];
        } else if (op instanceof Op.Conv c) {
            return convForward(s, n, c, in);
        } else if (op instanceof Op.MaxPool mp) {
            int[] x = in[0].shape();
            Window w = Window.of(n.name(), mp.kernel(), mp.strides(), mp.pads(), mp.dilations(), mp.autoPad(),
                    mp.ceilMode(), x[2], x[3]);
            if ((long) x[0] * x[1] * x[2] * x[3] >= Integer.MAX_VALUE) {
                throw unsupported(n, "an input of 2^31 elements or more");
            }
            long planes = (long) x[0] * x[1];
            DTensor y = new DTensor(new int[] {x[0], x[1], w.outH(), w.outW()}, s.floats(planes * w.outH() * w.outW()));
            DeviceBuffer arg = s.ints(planes * w.outH() * w.outW());
            k.maxpoolForward(y.buf(), arg, in[0].buf(), planes, x[2], x[3], Kernels.geometry(w));
            p.saved[index] = arg;
            return y;
        } else if (op instanceof Op.AveragePool ap) {
            int[] x = in[0].shape();
            Window w = Window.of(n.name(), ap.kernel(), ap.strides(), ap.pads(), null, ap.autoPad(), ap.ceilMode(), x[2],
                    x[3]);
            long planes = (long) x[0] * x[1];
            DTensor y = new DTensor(new int[] {x[0], x[1], w.outH(), w.outW()}, s.floats(planes * w.outH() * w.outW()));
            k.avgpoolForward(y.buf(), in[0].buf(), planes, x[2], x[3], Kernels.geometry(w), ap.countIncludePad());
            return y;
        } else if (op instanceof Op.GlobalAveragePool) {
            int[] x = in[0].shape();
            long planes = (long) x[0] * x[1];
            int[] out = new int[x.length];
            java.util.Arrays.fill(out, 1);
            out[0] = x[0];
            out[1] = x[1];
            DTensor y = new DTensor(out, s.floats(planes));
            k.globalAvgpoolForward(y.buf(), in[0].buf(), planes, in[0].size() / planes);
            return y;
        } else if (op instanceof Op.BatchNormalization) {
            DeviceBuffer[] sc = batchNorm.get(n.name());
            DTensor y = new DTensor(in[0].shape(), s.floats(in[0].size()));
            int c = in[0].dim(1);
            k.channelAffine(y.buf(), in[0].buf(), sc[0], sc[1], y.size(), c, y.size() / ((long) in[0].dim(0) * c));
            return y;
        } else if (op instanceof Op.Concat cc) {
            return concat(s, n, cc, in);
        }
        throw unsupported(n, "this operator");
    }

    private static int axis(Node n, int axis, int rank) {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) {
            throw new InvalidInputException("node '" + n.name() + "' (" + n.opType() + "): axis " + axis
                    + " is out of range for rank " + rank);
        }
        return a;
    }

    private static long[] outerInner(int[] shape, int axis) {
        long outer = 1;
        long inner = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        for (int d = axis + 1; d < shape.length; d++) {
            inner *= shape[d];
        }
        return new long[] {outer, inner};
    }

    private static int[] reshapeTarget(Node n, int[] in, float[] spec) {
        int[] s = new int[spec.length];
        int infer = -1;
        long known = 1;
        long size = Shapes.size(in);
        for (int i = 0; i < s.length; i++) {
            int v = (int) spec[i];
            if (v == 0 && !((Op.Reshape) n.op()).allowZero()) {
                v = in[i];
            }
            if (v == -1) {
                infer = i;
            } else {
                known *= v;
            }
            s[i] = v;
        }
        if (infer >= 0) {
            s[infer] = (int) (size / Math.max(1, known));
        }
        if (Shapes.size(s) != size) {
            throw new InvalidInputException("node '" + n.name() + "' (Reshape): cannot reshape " + Shapes.str(in) + " to "
                    + Shapes.str(s));
        }
        return s;
    }

    /**
     * {outer, n, inner} of a Softmax: n values along the axis, strided by inner; with the opset-12
     * flattening, one line of prod(dims[axis:]) contiguous values per outer index.
     */
    private static long[] softmaxLines(Op.Softmax sm, int[] shape, int axis) {
        long[] oi = outerInner(shape, axis);
        if (sm.flatten()) {
            return new long[] {oi[0], shape[axis] * oi[1], 1};
        }
        return new long[] {oi[0], shape[axis], oi[1]};
    }

    // ---- dense

    /** Row-major C[M×N] = alpha·op(A)·op(B) + beta·C through column-major cuBLAS (Cᵀ = op(B)ᵀ op(A)ᵀ). */
    private void gemm(boolean ta, boolean tb, int m, int n, int kk, float alpha, DeviceBuffer a, int lda,
            DeviceBuffer b, int ldb, float beta, DeviceBuffer c, int ldc) {
        JCublas2.cublasSgemm(rt.cublas(), tb ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
                ta ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N, n, m, kk, Pointer.to(new float[] {alpha}),
                b.ptr(), ldb, a.ptr(), lda, Pointer.to(new float[] {beta}), c.ptr(), ldc);
    }

    private void gemmBatched(boolean ta, boolean tb, int m, int n, int kk, float alpha, DeviceBuffer a, int lda,
            long strideA, DeviceBuffer b, int ldb, long strideB, float beta, DeviceBuffer c, int ldc, long strideC,
            int count) {
        JCublas2.cublasSgemmStridedBatched(rt.cublas(), tb ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N,
                ta ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N, n, m, kk, Pointer.to(new float[] {alpha}),
                b.ptr(), ldb, strideB, a.ptr(), lda, strideA, Pointer.to(new float[] {beta}), c.ptr(), ldc, strideC,
                count);
    }

    /** A Gemm's output (after the fused activation, if any) and what that activation's backward reads. */
    private record Fused(DTensor out, DeviceBuffer saved) {
    }

    /** Gemm, and with a {@link Fusion} the activation after it (null: the Gemm alone). */
    private Fused gemmForward(DeviceScope s, Node node, Op.Gemm op, DTensor[] in, Fusion fusion) {
        DTensor a = in[0];
        DTensor b = in[1];
        if (a.shape().length != 2 || b.shape().length != 2) {
            throw new InvalidInputException("node '" + node.name() + "' (Gemm): needs 2-D operands, got "
                    + Shapes.str(a.shape()) + " and " + Shapes.str(b.shape()));
        }
        int m = op.transA() ? a.dim(1) : a.dim(0);
        int kk = op.transA() ? a.dim(0) : a.dim(1);
        int n = op.transB() ? b.dim(0) : b.dim(1);
        if ((op.transB() ? b.dim(1) : b.dim(0)) != kk) {
            throw new InvalidInputException("node '" + node.name() + "' (Gemm): inner dimensions differ: "
                    + Shapes.str(a.shape()) + " × " + Shapes.str(b.shape()));
        }
        DTensor y = new DTensor(new int[] {m, n}, s.floats((long) m * n));
        DTensor c = in.length > 2 ? in[2] : null;
        DeviceBuffer rowBias = null;
        float beta = op.beta();
        boolean fullC = c != null && c.shape().length == 2 && c.size() == (long) m * n;
        if (c != null && beta != 0f && beta != 1f && !fullC) {
            // a broadcast C (row, column, scalar) is scaled once and then added as it is; a full
            // [M, N] C takes beta inside the GEMM
            DeviceBuffer scaled = s.floats(c.size());
            k.scaleCopy(scaled, c.buf(), c.size(), beta);
            c = new DTensor(c.shape(), scaled);
            beta = 1f;
        }
        if (c != null && beta != 0f) {
            boolean rowBiasShape = c.shape().length == 1 || (c.shape().length == 2 && c.dim(0) == 1);
            if (rowBiasShape && c.size() == n && beta == 1f) {
                gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), 0f, y.buf(), n);
                rowBias = c.buf();
            } else if (c.size() != (long) m * n || c.shape().length != 2) {
                // any other C that broadcasts to [M, N] (a column, a scalar): GEMM, then a broadcast add
                int[] out = {m, n};
                if (!java.util.Arrays.equals(Shapes.broadcast(c.shape(), out), out)) {
                    throw new InvalidInputException("node '" + node.name() + "' (Gemm): C " + Shapes.str(c.shape())
                            + " does not broadcast to " + Shapes.str(out));
                }
                DTensor prod = new DTensor(out, s.floats((long) m * n));
                gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), 0f,
                        prod.buf(), n);
                Broadcast bc = Broadcast.of(node, out, out, c.shape());
                k.binaryForward(y.buf(), prod.buf(), c.buf(), 0, bc.dims, bc.a, bc.b);
                return activate(s, y, null, fusion);
            } else {
                y.buf().copyFrom(c.buf(), c.size());
                gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), op.beta(),
                        y.buf(), n);
                return activate(s, y, null, fusion);
            }
        } else {
            gemm(op.transA(), op.transB(), m, n, kk, op.alpha(), a.buf(), a.dim(1), b.buf(), b.dim(1), 0f, y.buf(), n);
        }
        return activate(s, y, rowBias, fusion);
    }

    /** The row bias (may be null) and the fused activation (may be null) on a GEMM's output, in one kernel. */
    private Fused activate(DeviceScope s, DTensor y, DeviceBuffer rowBias, Fusion fusion) {
        long rows = y.dim(0);
        int cols = y.dim(1);
        if (fusion == null) {
            if (rowBias != null) {
                k.biasActForward(y.buf(), rowBias, rows, cols, Kernels.ACT_NONE, 0f);
            }
            return new Fused(y, null);
        }
        DeviceBuffer[] outSaved = biasAct(s, y.buf(), rowBias, rows, cols, fusion);
        return new Fused(new DTensor(y.shape(), outSaved[0]), outSaved[1]);
    }

    private DTensor matmul(DeviceScope s, Node node, DTensor a, DTensor b) {
        int[] as = a.shape();
        int[] bs = b.shape();
        if (as.length >= 2 && bs.length == 2 && as[as.length - 1] == bs[0]) {
            int kk = bs[0];
            int n = bs[1];
            int rows = (int) (a.size() / kk);
            int[] out = as.clone();
            out[out.length - 1] = n;
            DTensor y = new DTensor(out, s.floats((long) rows * n));
            gemm(false, false, rows, n, kk, 1f, a.buf(), kk, b.buf(), n, 0f, y.buf(), n);
            return y;
        }
        int batches = equalBatches(as, bs);
        if (batches > 0) { // [..., M, K] × [..., K, N], equal leading dimensions: one strided-batched GEMM
            int m = as[as.length - 2];
            int kk = as[as.length - 1];
            int n = bs[bs.length - 1];
            int[] out = as.clone();
            out[out.length - 1] = n;
            DTensor y = new DTensor(out, s.floats((long) batches * m * n));
            gemmBatched(false, false, m, n, kk, 1f, a.buf(), kk, (long) m * kk, b.buf(), n, (long) kk * n, 0f, y.buf(), n,
                    (long) m * n, batches);
            return y;
        }
        throw unsupported(node, "operand shapes " + Shapes.str(as) + " × " + Shapes.str(bs)
                + " (supported: [..., M, K] × [K, N], and [..., M, K] × [..., K, N] with equal leading dimensions)");
    }

    /** The number of [M, K] × [K, N] products of an equal-batch MatMul (rank ≥ 3, same leading dims), else 0. */
    private static int equalBatches(int[] as, int[] bs) {
        if (as.length != bs.length || as.length < 3 || as[as.length - 1] != bs[bs.length - 2]) {
            return 0;
        }
        int batches = 1;
        for (int d = 0; d < as.length - 2; d++) {
            if (as[d] != bs[d]) {
                return 0;
            }
            batches *= as[d];
        }
        return batches;
    }

    /** dA = dY·Bᵀ, and for an equal-batch MatMul dB = Aᵀ·dY, per batch. */
    private DTensor[] matmulBackward(DeviceScope s, Node node, DTensor a, DTensor b, DTensor gy, boolean[] need) {
        int[] as = a.shape();
        int[] bs = b.shape();
        DTensor ga = need[0] ? new DTensor(as, s.floats(a.size())) : null;
        DTensor gb = need[1] ? new DTensor(bs, s.floats(b.size())) : null;
        int batches = equalBatches(as, bs);
        if (batches > 0) {
            int m = as[as.length - 2];
            int kk = as[as.length - 1];
            int nn = bs[bs.length - 1];
            if (ga != null) {
                gemmBatched(false, true, m, kk, nn, 1f, gy.buf(), nn, (long) m * nn, b.buf(), nn, (long) kk * nn, 0f,
                        ga.buf(), kk, (long) m * kk, batches);
            }
            if (gb != null) {
                gemmBatched(true, false, kk, nn, m, 1f, a.buf(), kk, (long) m * kk, gy.buf(), nn, (long) m * nn, 0f,
                        gb.buf(), nn, (long) kk * nn, batches);
            }
            return new DTensor[] {ga, gb};
        }
        if (gb != null) {
            throw unsupported(node, "a 2-D right operand computed from the input");
        }
        int kk = bs[0];
        int nn = bs[1];
        int rows = (int) (a.size() / kk);
        gemm(false, true, rows, kk, nn, 1f, gy.buf(), nn, b.buf(), nn, 0f, ga.buf(), kk);
        return new DTensor[] {ga, null};
    }

    // ---- conv

    private Window convWindow(Node n, Op.Conv op, DTensor x, DTensor w) {
        if (x.shape().length != 4 || w.shape().length != 4) {
            throw new InvalidInputException("node '" + n.name() + "' (Conv): needs NCHW input and 4-D weights, got "
                    + Shapes.str(x.shape()) + " and " + Shapes.str(w.shape()));
        }
        int c = x.dim(1);
        if (c % op.group() != 0 || w.dim(1) != c / op.group()) {
            throw new InvalidInputException("node '" + n.name() + "' (Conv): input " + Shapes.str(x.shape())
                    + " does not fit weights " + Shapes.str(w.shape()) + " with group=" + op.group());
        }
        int[] kernel = op.kernel() != null ? op.kernel() : new int[] {w.dim(2), w.dim(3)};
        return Window.of(n.name(), kernel, op.strides(), op.pads(), op.dilations(), op.autoPad(), false, x.dim(2),
                x.dim(3));
    }

    private DTensor convForward(DeviceScope s, Node n, Op.Conv op, DTensor[] in) {
        DTensor x = in[0];
        DTensor w = in[1];
        Window win = convWindow(n, op, x, w);
        int m = w.dim(0);
        DTensor y = new DTensor(new int[] {x.dim(0), m, win.outH(), win.outW()},
                s.floats((long) x.dim(0) * m * win.outH() * win.outW()));
        k.conv2dForward(y.buf(), x.buf(), w.buf(), in.length > 2 ? in[2].buf() : null, x.dim(0), x.dim(1), x.dim(2),
                x.dim(3), m, op.group(), Kernels.geometry(win));
        return y;
    }

    /** dX = col2im(Wᵀ·dY): one strided-batched GEMM per group over the images, then a gather. */
    private DTensor convInputGrad(DeviceScope s, Node n, Op.Conv op, DTensor x, DTensor w, DTensor gy) {
        Window win = convWindow(n, op, x, w);
        int imgs = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        long colsPerImage = (long) c * win.kh() * win.kw() * hw;
        DeviceBuffer dcols = s.floats(imgs * colsPerImage);
        for (int g = 0; g < groups; g++) {
            gemmBatched(true, false, kk, hw, mg, 1f, w.buf().viewFloats((long) g * mg * kk, (long) mg * kk), kk, 0,
                    gy.buf().viewFloats((long) g * mg * hw, gy.size() - (long) g * mg * hw), hw, (long) m * hw, 0f,
                    dcols.viewFloats((long) g * kk * hw, imgs * colsPerImage - (long) g * kk * hw), hw, colsPerImage, imgs);
        }
        DTensor dx = new DTensor(x.shape(), s.floats(x.size()));
        k.im2colInputGrad(dx.buf(), dcols, imgs, c, x.dim(2), x.dim(3), Kernels.geometry(win));
        return dx;
    }

    private DTensor concat(DeviceScope s, Node n, Op.Concat cc, DTensor[] in) {
        int rank = in[0].shape().length;
        int a = axis(n, cc.axis(), rank);
        int[] out = in[0].shape().clone();
        out[a] = 0;
        for (DTensor t : in) {
            out[a] += t.dim(a);
        }
        long outer = outerInner(out, a)[0];
        DTensor y = new DTensor(out, s.floats(Shapes.size(out)));
        long outRow = y.size() / Math.max(1, outer);
        long at = 0;
        for (DTensor t : in) {
            long chunk = t.size() / Math.max(1, outer);
            for (long o = 0; o < outer; o++) {
                y.buf().viewFloats(o * outRow + at, chunk).copyFrom(t.buf().viewFloats(o * chunk, chunk), chunk);
            }
            at += chunk;
        }
        return y;
    }

    // ---- backward

    private DTensor backward(DeviceScope s, Pass p, DTensor seed) {
        return backward(s, p, seed, graph.inputName());
    }

    /** Backward from a seed on the output to the value {@code wrt} (the input, or the first layer's output). */
    private DTensor backward(DeviceScope s, Pass p, DTensor seed, String wrt) {
        Map<String, DTensor> grads = new HashMap<>();
        grads.put(graph.outputName(), seed);
        for (int i = nodes.size() - 1; i >= 0; i--) {
            Node n = nodes.get(i);
            if (n.output().equals(wrt)) {
                continue; // the pass started at this node's output: nothing before it ran
            }
            DTensor g = grads.remove(n.output());
            if (g == null) {
                continue;
            }
            boolean[] need = new boolean[n.inputs().size()];
            boolean any = false;
            for (int j = 0; j < need.length; j++) {
                need[j] = dependsOnInput.contains(n.inputs().get(j));
                any |= need[j];
            }
            if (!any) {
                continue;
            }
            if (p.actSaved[i] != null) {
                // an activation absorbed by the Gemm/MatMul before it: its gradient goes straight to
                // that node's output (an absorbed bias Add passes the gradient through unchanged)
                Fusion f = fusions[p.producer[i]];
                DTensor gz = new DTensor(g.shape(), s.floats(g.size()));
                k.actBackward(gz.buf(), g.buf(), p.actSaved[i], gz.size(), f.code(), f.alpha());
                grads.put(nodes.get(p.producer[i]).output(), gz);
                continue;
            }
            DTensor[] in = new DTensor[need.length];
            for (int j = 0; j < in.length; j++) {
                in[j] = value(p, n.inputs().get(j));
            }
            DTensor[] gi = backwardNode(s, p, i, n, in, p.values.get(n.output()), g, need);
            for (int j = 0; j < need.length; j++) {
                if (need[j] && gi[j] != null) {
                    DTensor prev = grads.get(n.inputs().get(j));
                    if (prev == null) {
                        grads.put(n.inputs().get(j), gi[j]);
                    } else {
                        // a value read by several nodes: sum into a fresh buffer (gi may alias a view)
                        DTensor sum = new DTensor(prev.shape(), s.floats(prev.size()));
                        sum.buf().copyFrom(prev.buf(), prev.size());
                        k.addInplace(sum.buf(), gi[j].buf(), sum.size());
                        grads.put(n.inputs().get(j), sum);
                    }
                }
            }
        }
        DTensor gx = grads.get(wrt);
        if (gx == null) {
            DTensor x = p.values.get(wrt);
            gx = new DTensor(x.shape(), s.floats(x.size()));
            gx.buf().zero();
        }
        return gx;
    }

    private DTensor[] backwardNode(DeviceScope s, Pass p, int index, Node n, DTensor[] in, DTensor y, DTensor gy,
            boolean[] need) {
        Op op = n.op();
        int act = act(op);
        if (act >= 0) {
            DTensor gx = new DTensor(in[0].shape(), s.floats(in[0].size()));
            // LeakyReLU's slope is decided by the input's sign (x > 0), as on the CPU; the output's
            // sign agrees only for alpha > 0. The other activations read their output.
            DeviceBuffer saved = op instanceof Op.LeakyRelu ? in[0].buf() : y.buf();
            k.actBackward(gx.buf(), gy.buf(), saved, gx.size(), act, op instanceof Op.LeakyRelu l ? l.alpha() : 0f);
            return new DTensor[] {gx};
        } else if (op instanceof Op.Gemm g) {
            return gemmBackward(s, n, g, in, gy, need);
        } else if (op instanceof Op.MatMul) {
            return matmulBackward(s, n, in[0], in[1], gy, need);
        } else if (op instanceof Op.Add || op instanceof Op.Sub || op instanceof Op.Mul) {
            return binaryBackward(s, n, op, in, y.shape(), gy, need);
        } else if (op instanceof Op.Softmax sm) {
            int axis = axis(n, sm.axis(), y.shape().length);
            long[] oni = softmaxLines(sm, y.shape(), axis);
            DTensor gx = new DTensor(y.shape(), s.floats(y.size()));
            k.softmaxBackward(gx.buf(), gy.buf(), y.buf(), oni[0], (int) oni[1], oni[2]);
            return new DTensor[] {gx};
        } else if (op instanceof Op.Flatten || op instanceof Op.Reshape || op instanceof Op.Identity) {
            DTensor[] r = new DTensor[in.length];
            r[0] = gy.reshape(in[0].shape());
            return r;
        } else if (op instanceof Op.Conv c) {
            if (need[1] || (need.length > 2 && need[2])) {
                throw unsupported(n, "weights or bias computed from the input");
            }
            return new DTensor[] {convInputGrad(s, n, c, in[0], in[1], gy), null, null};
        } else if (op instanceof Op.MaxPool) {
            DTensor gx = new DTensor(in[0].shape(), s.floats(in[0].size()));
            gx.buf().zero();
            k.maxpoolBackward(gx.buf(), gy.buf(), (DeviceBuffer) p.saved[index], gy.size());
            return new DTensor[] {gx};
        } else if (op instanceof Op.AveragePool ap) {
            int[] x = in[0].shape();
            Window w = Window.of(n.name(), ap.kernel(), ap.strides(), ap.pads(), null, ap.autoPad(), ap.ceilMode(), x[2],
                    x[3]);
            DTensor gx = new DTensor(x, s.floats(in[0].size()));
            gx.buf().zero();
            k.avgpoolBackward(gx.buf(), gy.buf(), (long) x[0] * x[1], x[2], x[3], Kernels.geometry(w), ap.countIncludePad());
            return new DTensor[] {gx};
        } else if (op instanceof Op.GlobalAveragePool) {
            long planes = (long) in[0].dim(0) * in[0].dim(1);
            DTensor gx = new DTensor(in[0].shape(), s.floats(in[0].size()));
            k.globalAvgpoolBackward(gx.buf(), gy.buf(), planes, in[0].size() / planes);
            return new DTensor[] {gx};
        } else if (op instanceof Op.BatchNormalization) {
            for (int j = 1; j < need.length; j++) {
                if (need[j]) {
                    throw unsupported(n, "parameters computed from the input");
                }
            }
            DeviceBuffer[] sc = batchNorm.get(n.name());
            int c = in[0].dim(1);
            DTensor gx = new DTensor(in[0].shape(), s.floats(in[0].size()));
            k.channelAffine(gx.buf(), gy.buf(), sc[0], null, gx.size(), c, gx.size() / ((long) in[0].dim(0) * c));
            return new DTensor[] {gx, null, null, null, null};
        } else if (op instanceof Op.Concat cc) {
            int a = axis(n, cc.axis(), y.shape().length);
            long outer = outerInner(y.shape(), a)[0];
            long outRow = y.size() / Math.max(1, outer);
            DTensor[] r = new DTensor[in.length];
            long at = 0;
            for (int j = 0; j < in.length; j++) {
                long chunk = in[j].size() / Math.max(1, outer);
                if (need[j]) {
                    r[j] = new DTensor(in[j].shape(), s.floats(in[j].size()));
                    for (long o = 0; o < outer; o++) {
                        r[j].buf().viewFloats(o * chunk, chunk).copyFrom(gy.buf().viewFloats(o * outRow + at, chunk), chunk);
                    }
                }
                at += chunk;
            }
            return r;
        }
        throw unsupported(n, "the backward of this operator");
    }

    private DTensor[] gemmBackward(DeviceScope s, Node node, Op.Gemm op, DTensor[] in, DTensor gy, boolean[] need) {
        DTensor a = in[0];
        DTensor b = in[1];
        int m = gy.dim(0);
        int n = gy.dim(1);
        int kk = op.transA() ? a.dim(0) : a.dim(1);
        DTensor[] r = new DTensor[in.length];
        if (need[0]) {
            DTensor ga = new DTensor(a.shape(), s.floats(a.size()));
            if (!op.transA()) {
                gemm(false, !op.transB(), m, kk, n, op.alpha(), gy.buf(), n, b.buf(), b.dim(1), 0f, ga.buf(), kk);
            } else {
                gemm(op.transB(), true, kk, m, n, op.alpha(), b.buf(), b.dim(1), gy.buf(), n, 0f, ga.buf(), m);
            }
            r[0] = ga;
        }
        if (need[1] || (in.length > 2 && need[2])) {
            throw unsupported(node, "weights or bias computed from the input");
        }
        return r;
    }

    private DTensor[] binaryBackward(DeviceScope s, Node n, Op op, DTensor[] in, int[] out, DTensor gy, boolean[] need) {
        DTensor[] r = new DTensor[2];
        Broadcast b = Broadcast.of(n, out, in[0].shape(), in[1].shape());
        for (int j = 0; j < 2; j++) {
            if (!need[j]) {
                continue;
            }
            DTensor operand = in[j];
            DTensor other = in[1 - j];
            long[] ownStrides = j == 0 ? b.a : b.b;
            long[] otherStrides = j == 0 ? b.b : b.a;
            float scale = op instanceof Op.Sub && j == 1 ? -1f : 1f;
            DTensor g = new DTensor(operand.shape(), s.floats(operand.size()));
            boolean full = java.util.Arrays.equals(operand.shape(), out);
            if (full && !(op instanceof Op.Mul)) {
                k.scaleCopy(g.buf(), gy.buf(), g.size(), scale);
            } else if (full) {
                // gy ⊙ other, other broadcast: the forward kernel with "mul"
                long[] dense = Broadcast.of(n, out, out, out).a;
                k.binaryForward(g.buf(), gy.buf(), other.buf(), 2, b.dims, dense, otherStrides);
            } else {
                g.buf().zero();
                long[] dense = Broadcast.of(n, out, out, out).a;
                if (op instanceof Op.Mul) {
                    k.binaryBackward(g.buf(), gy.buf(), other.buf(), 1f, b.dims, ownStrides, otherStrides);
                } else {
                    k.binaryBackward(g.buf(), gy.buf(), null, scale, b.dims, ownStrides, dense);
                }
            }
            r[j] = g;
        }
        return r;
    }

    /** Output dims and per-operand element strides for the 4-D broadcasting kernels. */
    static final class Broadcast {
        final int[] dims = new int[4];
        final long[] a = new long[4];
        final long[] b = new long[4];

        static Broadcast of(Node n, int[] out, int[] as, int[] bs) {
            if (out.length > 4) {
                throw new KxaiException("node '" + n.name() + "' (" + n.opType()
                        + "): broadcasting over more than 4 dimensions is not supported on cuda");
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

    @Override
    public void close() {
        synchronized (rt) {
            try {
                rt.enter();
                weightScope.close();
            } catch (CudaException e) {
                LOG.fine(() -> "freeing weights of " + graph.source() + " failed: " + e.getMessage());
            }
        }
    }
}
