package dev.kxai.backend.cuda;

import dev.kxai.DeviceException;
import dev.kxai.KxaiException;
import dev.kxai.exec.Arena;
import dev.kxai.exec.ExecutionPlan;
import dev.kxai.exec.FusionGroup;
import dev.kxai.exec.OpSet;
import dev.kxai.exec.Support;
import dev.kxai.graph.Graph;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.logging.Logger;
import jcuda.CudaException;

/**
 * CUDA's operators behind the {@link OpSet} the executor drives: weights uploaded once (batch-norm
 * scale and shift folded on the host first); each piece of work allocates in a {@link DeviceScope}
 * (the arena); the Integrated Gradients path stays on the device from interpolation to
 * accumulation. Device work is serialised on the runtime (one device, one cuBLAS handle) with the
 * context current on the entering thread; a CUDA failure becomes a {@link DeviceException}, and
 * one other than out-of-memory leaves the device unusable ({@link #unusableReason}).
 */
final class CudaOpSet implements OpSet<DTensor> {
    private static final Logger LOG = Logger.getLogger(CudaOpSet.class.getName());

    private final Graph graph;
    private final CudaRuntime rt;
    private final Kernels k;
    final DenseOps dense;
    final ConvOps conv;
    final PoolOps pool;
    final ElementwiseOps elementwise;
    private final OpDispatch.Forwards forwards = new OpDispatch.Forwards(this);
    private final OpDispatch.Backwards backwards = new OpDispatch.Backwards(this);
    private final DeviceScope weightScope = new DeviceScope();
    /** The model's buffers between pieces of work (chunks, calls): no cuMemAlloc per chunk after the first. */
    private final BufferPool buffers;
    /** The model's pinned host buffer for the copies of its work on a stream ({@link Work}); freed at close. */
    private final PinnedStaging staging = new PinnedStaging();
    /** The model's CUDA graphs per chunk shape ({@link ChunkGraphs}, with {@code kxai.cuda.graphs=true}). */
    private final ChunkGraphs graphs = new ChunkGraphs();
    /**
     * The host data of uploaded 1-D tensors (the path's α's and quadrature weights), by buffer: with chunk
     * graphs each chunk uploads its slice of them through the pinned staging buffer into a buffer of its
     * own, so that its kernels read the same addresses in every chunk (a view at the chunk's offset
     * would differ per chunk, and a captured graph could not be replayed).
     */
    private final Map<DeviceBuffer, float[]> hostData = java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());
    /** The plan built over this op set (its working-set estimate sizes the chunks); set while it is built. */
    private volatile ExecutionPlan plan;
    private final Map<String, DTensor> constants = new HashMap<>();
    /** Per batch-norm node: scale and shift per channel, folded on the host once. */
    private final Map<String, DeviceBuffer[]> batchNorm = new HashMap<>();
    /** Per Conv node with constant parameters: its weights and Σ|w| for the FP32 bounds. */
    private final Map<String, ConvOps.Weights> convWeights = new HashMap<>();
    /** Per Conv node with a foldable batch norm after it: the weights with the batch norm folded in. */
    private final Map<String, ConvOps.Weights> foldedWeights = new HashMap<>();
    /** Batch-norm nodes foldable into the preceding Conv ({@link ConvPlan}): folded where the two run as a group. */
    private final java.util.Set<String> foldedBatchNorms = new java.util.HashSet<>();
    /** The load-time analysis of the convolutions (null when the device failed before the upload). */
    private ConvPlan convPlan;
    /** Conv nodes whose forward runs in FP32 with the exact-decision repair ({@link ConvPlan}); after the plan's shapes. */
    private volatile java.util.Set<String> fp32Convs;

    /** Uploads the weights, unless the device failed earlier (then {@link #unusableReason} sends the work to the CPU). */
    CudaOpSet(Graph graph, CudaRuntime rt) {
        this.graph = graph;
        this.rt = rt;
        this.k = new Kernels(rt);
        this.dense = new DenseOps(rt, k);
        this.conv = new ConvOps(k, dense);
        this.pool = new PoolOps(k);
        this.elementwise = new ElementwiseOps(k);
        this.buffers = new BufferPool(BufferPool.defaultMax(totalBytes(rt)), rt.emulated());
        if (rt.brokenReason() != null) {
            LOG.fine(() -> "the CUDA device failed earlier (" + rt.brokenReason() + "); " + graph.source()
                    + " is not uploaded");
            return;
        }
        synchronized (rt) {
            rt.enter();
            Work upload = null;
            try {
                upload = Work.begin(rt, staging);
                for (Map.Entry<String, Tensor> e : graph.constants().entrySet()) {
                    constants.put(e.getKey(), new DTensor(e.getValue().shape(), weightScope.upload(e.getValue().data())));
                }
                ConvPlan cp = new ConvPlan(graph);
                for (Node n : graph.nodes()) {
                    if (n.op() instanceof Op.BatchNormalization b
                            && n.inputs().stream().skip(1).allMatch(graph.constants()::containsKey)) {
                        if (cp.folds(n)) {
                            foldedBatchNorms.add(n.name());
                        }
                        batchNorm.put(n.name(), foldBatchNorm(n, b)); // also for a foldable one run alone
                    }
                }
                for (Node n : graph.nodes()) {
                    if (n.op() instanceof Op.Conv) {
                        float[][] wb = cp.weights(n, false);
                        if (wb != null) {
                            DTensor w = constants.get(n.inputs().get(1));
                            DTensor b = wb[1] == null ? null : constants.get(n.inputs().get(2));
                            int[] ws = w.shape();
                            float[] abs = ConvOps.absTapSums(wb[0], ws[0], ws[1], ws[2] * ws[3]);
                            convWeights.put(n.name(), new ConvOps.Weights(w, b, weightScope.upload(abs)));
                            if (cp.foldedInto(n) != null) {
                                float[][] fw = cp.weights(n, true);
                                float[] fabs = ConvOps.absTapSums(fw[0], ws[0], ws[1], ws[2] * ws[3]);
                                foldedWeights.put(n.name(), new ConvOps.Weights(new DTensor(ws, weightScope.upload(fw[0])),
                                        new DTensor(new int[] {fw[1].length}, weightScope.upload(fw[1])),
                                        weightScope.upload(fabs)));
                            }
                        }
                    }
                }
                convPlan = cp;
                DeviceBuffer counter = weightScope.ints(1);
                counter.zero();
                conv.counter(counter);
                if (upload != null) {
                    upload.end();
                }
            } catch (CudaException e) {
                long bytes = graph.constants().values().stream().mapToLong(t -> 4L * t.size()).sum();
                try {
                    buffers.close();
                    weightScope.close();
                } catch (CudaException ignored) {
                    // the device is failing already; the first error is the one to report
                }
                if (!outOfMemory(e) && !healthy()) {
                    rt.markBroken(e.getMessage());
                }
                throw new KxaiException(graph.source() + ": cannot load the model's " + bytes + " bytes of weights on "
                        + rt.deviceName() + ": " + e.getMessage(), e);
            } finally {
                if (upload != null) {
                    upload.release();
                }
            }
            // the weights went through the staging buffer in large slices: do not keep that much pinned
            // memory for the model's small per-chunk copies (the first chunk grows it to what it needs)
            if (staging.capacity() > STAGING_KEPT_AFTER_LOAD) {
                try {
                    staging.close();
                } catch (CudaException e) {
                    LOG.fine(() -> "freeing the staging buffer failed: " + e.getMessage());
                }
            }
        }
    }

    /** Pinned bytes kept after the weights' upload (more is freed; the first chunk allocates what it needs). */
    private static final long STAGING_KEPT_AFTER_LOAD = 1L << 20;

    /** The device's memory in bytes (0 when the device failed earlier: no pooling then). */
    private static long totalBytes(CudaRuntime rt) {
        if (rt.brokenReason() != null) {
            return 0;
        }
        synchronized (rt) {
            try {
                rt.enter();
                return rt.memInfo()[1];
            } catch (CudaException e) {
                return 0;
            }
        }
    }

    private DeviceBuffer[] foldBatchNorm(Node n, Op.BatchNormalization b) {
        float[][] p = new float[4][];
        for (int j = 0; j < 4; j++) {
            p[j] = graph.constants().get(n.inputs().get(j + 1)).data();
        }
        float[][] scaleShift = ElementwiseOps.foldBatchNorm(p[0], p[1], p[2], p[3], b.epsilon());
        return new DeviceBuffer[] {weightScope.upload(scaleShift[0]), weightScope.upload(scaleShift[1])};
    }

    /** The typed launchers (for the families without their own instance, like {@link ShapeOps}). */
    Kernels kernels() {
        return k;
    }

    DeviceBuffer[] batchNorm(Node n) {
        return batchNorm.get(n.name());
    }

    /** Whether a batch norm is folded into the preceding convolution where the two run as one group. */
    boolean folded(Node n) {
        return foldedBatchNorms.contains(n.name());
    }

    /**
     * A Conv node's weights and Σ|w| ({@code folded}: with its batch norm folded in), or null where
     * the node's inputs are not its own constants (LRP's modified weights, parameters computed at run
     * time): the forward then takes its inputs as they are, in double.
     */
    ConvOps.Weights convWeights(Node n, DTensor[] in, boolean folded) {
        ConvOps.Weights w = convWeights.get(n.name());
        if (w == null || in[1] != w.w() || (in.length > 2 && in[2] != w.bias())) {
            return null;
        }
        return folded ? foldedWeights.get(n.name()) : w;
    }

    /**
     * Whether a Conv node's forward runs in FP32 with the repair: not on the exact path, and not for a
     * conv run apart from its foldable batch norm (the decisions after that batch norm assume the fold).
     */
    boolean fp32(Node n, boolean folded) {
        return !ConvOps.exactPath && fp32Convs().contains(n.name()) && (folded || !foldedWeights.containsKey(n.name()));
    }

    /** The Conv nodes that run in FP32 unless {@link ConvOps#exactPath} (tests). */
    java.util.Set<String> fp32Convs() {
        java.util.Set<String> s = fp32Convs;
        if (s == null) {
            synchronized (this) {
                if (fp32Convs == null) {
                    fp32Convs = convPlan == null ? java.util.Set.of() : java.util.Set.copyOf(convPlan.fp32(convWeights.keySet()));
                }
                s = fp32Convs;
            }
        }
        return s;
    }

    /** Outputs recomputed in double by the repair kernels since the model loaded (tests). */
    int repairedOutputs() {
        return onDevice(() -> conv.repairedCount());
    }

    static boolean outOfMemory(CudaException e) {
        return e.getMessage() != null && e.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY");
    }

    private static DeviceScope scope(Arena a) {
        return (DeviceScope) a;
    }

    @Override
    public String device() {
        return "cuda";
    }

    // ---------------------------------------------------------------- plan time

    @Override
    public Support support(Node node, int[][] inShapes, ExecutionPlan plan) {
        this.plan = plan;
        if (node.op() instanceof Op.Add && convPlan != null && (inShapes.length != 2
                || !java.util.Arrays.equals(inShapes[0], inShapes[1]) || !plan.dependsOnInput(node.inputs().get(0))
                || !plan.dependsOnInput(node.inputs().get(1)))) {
            convPlan.broadcastAdds.add(node.name()); // the sum repair needs two per-row operands of one shape
        }
        return node.op().accept(CudaSupport.RULES, new CudaSupport.In(node, inShapes, plan));
    }

    @Override
    public List<FusionGroup> fusions(ExecutionPlan plan) {
        List<FusionGroup> out = new java.util.ArrayList<>(Fusion.plan(plan));
        out.addAll(ConvPlan.convFusions(plan, fp32Convs(), foldedBatchNorms));
        return out;
    }

    // ---------------------------------------------------------------- operators

    @Override
    public Arena arena() {
        return new DeviceScope(buffers);
    }

    /** A forward or gradient called again and again with one shape: its device work may replay a graph. */
    @Override
    public void repeatedWork(Arena a, Object key) {
        Work.chunk(graphs, key, scope(a));
    }

    /** The model's chunk graphs (tests). */
    ChunkGraphs graphs() {
        return graphs;
    }

    /** The model's buffer pool (tests read its statistics). */
    BufferPool buffers() {
        return buffers;
    }

    @Override
    public DTensor constant(String name) {
        return constants.get(name);
    }

    @Override
    public Forward<DTensor> forward(Arena a, Node node, DTensor[] in, int[] outShape) {
        return node.op().accept(forwards, new OpDispatch.Fwd(scope(a), node, in, outShape));
    }

    /** A {@link Fusion}: one GEMM, then bias + activation in one kernel; null where a MatMul's run-time shapes do not fit. */
    @Override
    @SuppressWarnings("unchecked")
    public Forward<DTensor>[] forwardFused(Arena a, ExecutionPlan plan, FusionGroup group, DTensor[] in, int batch) {
        DeviceScope s = scope(a);
        Node n = plan.node(group.head());
        if (group.detail() instanceof ConvPlan.ConvGroup cg) {
            // Conv (+ its batch norm folded into the weights) (+ Relu: bias and ReLU in the FP32 kernel's epilogue)
            DTensor y = conv.forward(s, n, (Op.Conv) n.op(), in, convWeights(n, in, cg.bn()), fp32(n, cg.bn()), cg.relu(),
                    plan.shape(plan.node(group.last()).output(), batch));
            Forward<DTensor>[] r = new Forward[group.nodes().length];
            java.util.Arrays.fill(r, new Forward<DTensor>(null, null));
            r[r.length - 1] = new Forward<>(y, null);
            return r;
        }
        Fusion f = (Fusion) group.detail();
        DTensor out;
        DeviceBuffer saved;
        if (n.op() instanceof Op.Gemm g) {
            DenseOps.Fused r = dense.gemmForward(s, g, in, plan.shape(n.output(), batch), f);
            out = r.out();
            saved = r.saved();
        } else {
            DTensor x = in[0];
            DTensor b = in[1];
            DTensor bias = constants.get(f.bias());
            int[] as = x.shape();
            if (!(as.length >= 2 && b.rank() == 2 && as[as.length - 1] == b.dim(0) && bias.size() == b.dim(1)
                    && bias.rank() <= as.length)) {
                return null;
            }
            DTensor z = dense.matmul(s, x, b, plan.shape(n.output(), batch));
            int cols = b.dim(1);
            DeviceBuffer[] outSaved = dense.biasAct(s, z.buf(), bias.buf(), z.size() / cols, cols, f);
            out = new DTensor(z.shape(), outSaved[0]);
            saved = outSaved[1];
        }
        Forward<DTensor>[] r = new Forward[group.nodes().length];
        java.util.Arrays.fill(r, new Forward<DTensor>(null, null)); // intermediates not materialised
        r[r.length - 1] = new Forward<>(out, saved);
        return r;
    }

    @Override
    public DTensor[] backward(Arena a, Node node, DTensor[] in, int[][] inShapes, DTensor out, Object saved,
            DTensor gradOut, boolean[] need) {
        return node.op().accept(backwards, new OpDispatch.Bwd(scope(a), node, in, inShapes, out, saved, gradOut, need));
    }

    // ---------------------------------------------------------------- tensors

    @Override
    public DTensor[] array(int n) {
        return new DTensor[n];
    }

    @Override
    public DTensor upload(Arena a, Tensor host) {
        DTensor t = new DTensor(host.shape(), scope(a).upload(host.data()));
        if (host.shape().length == 1) {
            hostData.put(t.buf(), host.data());
        }
        return t;
    }

    /**
     * Steps k0..k1 of a per-step vector (α's or weights): with chunk graphs on, the slice uploaded into a
     * buffer of the chunk's scope (same address every chunk, host data through the pinned staging);
     * otherwise a view of the vector at k0.
     */
    private DeviceBuffer steps(DTensor v, int k0, int k1, DeviceScope s) {
        float[] host = s == null ? null : hostData.get(v.buf());
        if (host == null) {
            return v.buf().viewFloats(k0, k1 - k0);
        }
        return s.upload(java.util.Arrays.copyOfRange(host, k0, k1));
    }

    @Override
    public Tensor download(DTensor t) {
        return new Tensor(t.shape(), t.buf().download(Math.toIntExact(t.size())));
    }

    @Override
    public int[] shape(DTensor t) {
        return t.shape().clone();
    }

    @Override
    public DTensor reshape(DTensor t, int[] shape) {
        return t.reshape(shape.clone());
    }

    @Override
    public DTensor zeros(Arena a, int[] shape) {
        DTensor z = new DTensor(shape.clone(), scope(a).floats(Shapes.size(shape)));
        z.buf().zero();
        return z;
    }

    /** x + y into a fresh buffer (either may be a view of another value). */
    @Override
    public DTensor add(Arena a, DTensor x, DTensor y) {
        DTensor sum = new DTensor(x.shape(), scope(a).floats(x.size()));
        sum.buf().copyFrom(x.buf(), x.size());
        k.addInplace(sum.buf(), y.buf(), sum.size());
        return sum;
    }

    @Override
    public DTensor indices(Arena a, int[] values) {
        return new DTensor(new int[] {values.length}, scope(a).upload(values));
    }

    @Override
    public DTensor seedOneHot(Arena a, int[] outShape, DTensor targets) {
        DTensor g = new DTensor(outShape.clone(), scope(a).floats(Shapes.size(outShape)));
        int rows = outShape[0];
        k.seedOneHot(g.buf(), targets.buf(), rows, (int) (g.size() / rows));
        return g;
    }

    @Override
    public double[] gatherTargets(Arena a, DTensor y, DTensor targets, int firstRow, int rows) {
        int outs = (int) (y.size() / y.dim(0));
        DeviceBuffer picked = scope(a).floats(rows);
        k.gatherTarget(picked, y.buf().viewFloats((long) firstRow * outs, (long) rows * outs), targets.buf(), rows, outs);
        float[] v = picked.download(rows);
        return java.util.stream.IntStream.range(0, rows).mapToDouble(i -> v[i]).toArray();
    }

    // ---------------------------------------------------------------- perturbed rows (perturb.cu)

    private DTensor samples(Arena a, DTensor x, int n) {
        int[] s = x.shape().clone();
        s[0] = n;
        return new DTensor(s, scope(a).floats(Shapes.size(s)));
    }

    @Override
    public DTensor perturbSingle(Arena a, DTensor x, DTensor base, DTensor mask, DTensor home, DTensor group) {
        int n = (int) home.size();
        DTensor out = samples(a, x, n);
        long f = x.size() / x.dim(0);
        k.perturbSingle(out.buf(), x.buf(), base.buf(), base.dim(0), mask.buf(), (int) (mask.size() / f), home.buf(),
                group.buf(), n, f);
        return out;
    }

    @Override
    public DTensor perturbCoalition(Arena a, DTensor x, DTensor base, DTensor mask, DTensor home, DTensor take,
            int groups) {
        int n = (int) home.size();
        DTensor out = samples(a, x, n);
        long f = x.size() / x.dim(0);
        k.perturbCoalition(out.buf(), x.buf(), base.buf(), base.dim(0), mask.buf(), (int) (mask.size() / f),
                home.buf(), take.buf(), groups, n, f);
        return out;
    }

    @Override
    public DTensor perturbBox(Arena a, DTensor x, DTensor base, DTensor home, DTensor boxes) {
        int n = (int) home.size();
        DTensor out = samples(a, x, n);
        int[] dims = java.util.Arrays.copyOfRange(x.shape(), 1, x.shape().length);
        k.perturbBox(out.buf(), x.buf(), base.buf(), base.dim(0), home.buf(), boxes.buf(), scope(a).upload(dims),
                dims.length, n, x.size() / x.dim(0));
        return out;
    }

    // ---------------------------------------------------------------- replaced backward rules (rules.cu)

    @Override
    public DTensor deepLiftScale(Arena a, DTensor gradOut, DTensor out, boolean maxPool) {
        DTensor num = new DTensor(out.shape().clone(), scope(a).floats(out.size()));
        k.deepLiftScale(num.buf(), gradOut.buf(), out.buf(), out.size() / 2, maxPool);
        return num;
    }

    @Override
    public DTensor deepLiftRescale(Arena a, DTensor plain, DTensor num, DTensor in, boolean sumHalves) {
        DTensor gx = new DTensor(in.shape().clone(), scope(a).floats(in.size()));
        k.deepLiftRescale(gx.buf(), plain.buf(), num.buf(), in.buf(), in.size() / 2, sumHalves,
                dev.kxai.backend.RuleOps.EPS);
        return gx;
    }

    @Override
    public DTensor lrpStabilize(Arena a, DTensor r, DTensor z, float eps) {
        DTensor out = new DTensor(z.shape().clone(), scope(a).floats(z.size()));
        k.lrpStabilize(out.buf(), r.buf(), z.buf(), z.size(), eps);
        return out;
    }

    // ---------------------------------------------------------------- the path

    private static int[] pathShape(int[] rowShape, int steps) {
        int[] s = rowShape.clone();
        s[0] = steps * rowShape[0];
        return s;
    }

    @Override
    public DTensor interpolate(Arena a, DTensor x, DTensor base, DTensor alphas, int k0, int k1) {
        int batch = x.dim(0);
        long features = x.size() / batch;
        scope(a).rows((long) (k1 - k0) * batch);
        Work.chunk(graphs, java.util.List.of("path", k1 - k0, batch, features), scope(a));
        DTensor path = new DTensor(pathShape(x.shape(), k1 - k0), scope(a).floats((k1 - k0) * batch * features));
        k.pathInterpolate(path.buf(), x.buf(), base.buf(), steps(alphas, k0, k1, Work.chunkScope()), k1 - k0, batch,
                features);
        return path;
    }

    @Override
    public void accumulate(DTensor acc, DTensor grads, DTensor weights, int k0, int k1) {
        int batch = acc.dim(0);
        k.pathAccumulate(acc.buf(), grads.buf(), steps(weights, k0, k1, Work.chunkScope()), k1 - k0, batch,
                acc.size() / batch);
    }

    /**
     * ARCHITECTURE.md's first saving on the device: the layer at x and at the baseline once, kept in
     * double (conv2d_forward_f64 / gemm_f64); each step's pre-activation z_b + α (z_x − z_b) is
     * formed in double and rounded once (path_interpolate_f64), as on the CPU.
     */
    @Override
    public AffineEndpoints<DTensor> affineEndpoints(Arena a, Node layer, DTensor x, DTensor base, int[] outShape) {
        LOG.fine(() -> "integrated gradients with the first-layer saving at node '" + layer.name() + "' ("
                + layer.opType() + ")");
        DTensor zx = firstLayerF64(scope(a), layer, x, outShape);
        DTensor zb = firstLayerF64(scope(a), layer, base, outShape);
        int batch = outShape[0];
        long features = zx.size() / batch;
        return (arena, alphas, k0, k1) -> {
            scope(arena).rows((long) (k1 - k0) * batch);
            Work.chunk(graphs, java.util.List.of("saving", k1 - k0, batch, features), scope(arena));
            DTensor path = new DTensor(pathShape(outShape, k1 - k0), scope(arena).floats((k1 - k0) * batch * features));
            k.pathInterpolateF64(path.buf(), zx.buf(), zb.buf(), steps(alphas, k0, k1, Work.chunkScope()), k1 - k0,
                    batch, features);
            return path;
        };
    }

    private DTensor firstLayerF64(DeviceScope s, Node layer, DTensor x, int[] outShape) {
        DTensor w = constants.get(layer.inputs().get(1));
        DTensor c = layer.inputs().size() > 2 ? constants.get(layer.inputs().get(2)) : null;
        if (layer.op() instanceof Op.Conv op) {
            return conv.forwardF64(s, layer, op, x, w, c, outShape);
        }
        return dense.gemmF64(s, (Op.Gemm) layer.op(), x, w, c, outShape);
    }

    // ---------------------------------------------------------------- the device

    /** Under the device's lock with the context current; a CUDA failure becomes a {@link DeviceException}. */
    @Override
    public <R> R onDevice(Supplier<R> work) {
        synchronized (rt) {
            Work w = null;
            try {
                rt.enter();
                w = Work.begin(rt, staging);
                R r = work.get();
                if (w != null) {
                    w.end(); // the stream's errors surface here, inside this catch
                }
                return r;
            } catch (CudaException e) {
                if (w != null) {
                    w.abort(); // a capture in progress must end before the health check synchronizes
                }
                boolean oom = outOfMemory(e);
                // only a context that no longer works is broken for every model (issue 13: one failed copy
                // used to move the whole process to the CPU); a transient failure fails this request only
                if (!oom && !healthy()) {
                    rt.markBroken(e.getMessage());
                }
                throw new DeviceException(e.getMessage(), oom, e);
            } finally {
                if (w != null) {
                    w.release();
                }
            }
        }
    }

    /** Whether the context works (the caller holds the device's lock). */
    private boolean healthy() {
        try {
            rt.enter();
        } catch (CudaException e) {
            return false;
        }
        return rt.healthy();
    }

    /**
     * Device memory a chunk leaves alone: cuBLAS workspaces, other models, allocation granularity;
     * 5% of the device, at least 256 MiB, at most a quarter of a (small, emulated) device.
     */
    static long marginBytes(long totalBytes) {
        return Math.min(Math.max(MIN_MARGIN_BYTES, totalBytes / 20), totalBytes / 4);
    }

    private static final long MIN_MARGIN_BYTES = 256L << 20;

    /**
     * What the device allocates per row over the plan's working-set estimate (activations and their
     * gradients), before a chunk has run: CUDA also keeps im2col columns, double-precision
     * intermediates, masks and weight gradients for the whole chunk. Measured on the emulator (bytes per
     * row of a chunk over the estimate): 1.6 mobile_block, 1.7 digits_cnn, 2.5 tinyvgg, 2.6 resnet_mini
     * (8 rows each), 2.4 resnet18 (one row, its 47 MB of weight gradients included).
     */
    static final double DEFAULT_OVERHEAD = 3.0;
    /** Headroom over the measured bytes per row of the chunks that ran. */
    static final double MEASURED_HEADROOM = 1.1;

    /**
     * Bytes one chunk may use, in the plan's estimate's units ({@link dev.kxai.attr.ChunkPolicy} divides
     * by the estimate per row): the device's free memory plus this model's idle pooled buffers (a chunk
     * reuses them), less a margin ({@link #marginBytes}: 5% of the device, at least 256 MiB), divided by how much more
     * than the estimate the device really takes per row: {@link #DEFAULT_OVERHEAD} until a chunk of
     * this model has run, then the most it took (per row, its fixed part included) with 10% headroom.
     * An underestimate is still caught by the path loop's halve-and-retry.
     */
    @Override
    public long chunkBudgetBytes() {
        return onDevice(() -> {
            long[] m = rt.memInfo();
            long avail = Math.max(0, m[0] + buffers.idleBytes() - marginBytes(m[1]));
            return (long) (avail / overhead());
        });
    }

    /** Device bytes per row over the plan's estimate per row. */
    double overhead() {
        long measured = buffers.chunkBytesPerRow();
        ExecutionPlan p = plan;
        if (measured == 0 || p == null) {
            return DEFAULT_OVERHEAD;
        }
        long row = 1;
        for (int d : p.exampleShape()) {
            row *= d;
        }
        double estimate = 4.0 * (p.workingFloatsPerExample() + row);
        return Math.max(0.25, MEASURED_HEADROOM * measured / estimate);
    }

    @Override
    public String unusableReason() {
        return rt.brokenReason();
    }

    @Override
    public void close() {
        synchronized (rt) {
            try {
                rt.enter();
                buffers.close();
            } catch (CudaException e) {
                LOG.fine(() -> "freeing pooled buffers of " + graph.source() + " failed: " + e.getMessage());
            }
            try {
                rt.enter();
                weightScope.close();
            } catch (CudaException e) {
                LOG.fine(() -> "freeing weights of " + graph.source() + " failed: " + e.getMessage());
            }
            try {
                rt.enter();
                graphs.close();
            } catch (CudaException e) {
                LOG.fine(() -> "destroying the CUDA graphs of " + graph.source() + " failed: " + e.getMessage());
            }
            try {
                rt.enter();
                if (Work.active()) {
                    jcuda.driver.JCudaDriver.cuStreamSynchronize(Work.stream()); // no copy still reads the block
                }
                staging.close();
            } catch (CudaException e) {
                LOG.fine(() -> "freeing the staging buffer of " + graph.source() + " failed: " + e.getMessage());
            }
        }
    }
}
