package dev.kxai.exec;

import dev.kxai.graph.Node;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.function.Supplier;

/**
 * What a backend implements: its operators (forward and backward, dispatched per family through
 * {@link dev.kxai.graph.Op.Visitor}), the fusions it accepts, and the few tensor primitives the
 * {@link Executor} and the path loop need. Everything graph-level (order, shapes, which values
 * need gradients, liveness, seeding, summing gradients of shared values) is the executor's and
 * the plan's; an op set only computes. Thread-safe: per-call state lives in the {@link Arena}.
 *
 * @param <T> the backend's tensor: {@link Tensor} on the CPU, a device tensor on CUDA
 */
public interface OpSet<T> {
    /** The device name results report: "cpu", "cuda". */
    String device();

    // ---------------------------------------------------------------- plan time

    /** Whether this backend runs {@code node} on inputs of these shapes; asked once, when the plan is built. */
    default Support support(Node node, int[][] inShapes, ExecutionPlan plan) {
        return Support.YES;
    }

    /** The fusion groups this backend runs on the plan (consulting its readers, shapes and constants). */
    default List<FusionGroup> fusions(ExecutionPlan plan) {
        return List.of();
    }

    // ---------------------------------------------------------------- operators

    /** Memory for one piece of work. */
    Arena arena();

    /** A graph constant (weights), on this backend. */
    T constant(String name);

    /** One node's output (of the planned shape {@code outShape}), and whatever its backward needs beyond its inputs and output. */
    Forward<T> forward(Arena a, Node node, T[] in, int[] outShape);

    /**
     * A fusion group in one pass from the head's inputs: one {@link Forward} per member (in the
     * group's order), whose output may be null where the group does not materialise it (never for
     * the last member). Null where run-time shapes do not fit the fusion: the nodes then run one by one.
     */
    default Forward<T>[] forwardFused(Arena a, ExecutionPlan plan, FusionGroup group, T[] headInputs, int batch) {
        throw new IllegalStateException(device() + " planned a fusion it cannot run: " + group);
    }

    /**
     * The gradients of a node's inputs given the gradient at its output; null entries where
     * {@code need} is false. {@code in} and {@code out} may hold null for values a fusion did not
     * materialise; the op set then finds what it needs in {@code saved}.
     */
    T[] backward(Arena a, Node node, T[] in, int[][] inShapes, T out, Object saved, T gradOut, boolean[] need);

    /** A forward result: the output and what the backward needs besides inputs and output (or null). */
    record Forward<T>(T output, Object saved) {
    }

    // ---------------------------------------------------------------- tensors

    /** A new array of this backend's tensors (generic arrays cannot be created otherwise): {@code new DTensor[n]}. */
    T[] array(int n);

    T upload(Arena a, Tensor host);

    Tensor download(T t);

    int[] shape(T t);

    /** The same data seen with another shape of equal size. */
    T reshape(T t, int[] shape);

    T zeros(Arena a, int[] shape);

    /** x + y into a fresh tensor (the gradient of a value read by several nodes). */
    T add(Arena a, T x, T y);

    /** Row indices (targets), as this backend keeps them. */
    T indices(Arena a, int[] values);

    /** A [rows, ...] tensor of zeros with 1 at row r's flat output {@code targets[r]}: the backward's seed. */
    T seedOneHot(Arena a, int[] outShape, T targets);

    /** y[firstRow + r, targets[r]] for r in [0, rows): the targeted outputs of some rows. */
    double[] gatherTargets(Arena a, T y, T targets, int firstRow, int rows);

    // ---------------------------------------------------------------- the straight path (Integrated Gradients)

    /**
     * Path rows of steps [k0, k1), step-major (row (k − k0)·B + i is step k of example i):
     * b_i + α_k (x_i − b_i), in the float expression order of {@code kernels/path.cu}.
     */
    T interpolate(Arena a, T x, T base, T alphas, int k0, int k1);

    /** acc[i] += Σ_{k in [k0, k1)} w_k · grads[(k − k0)·B + i], the chunk summed from zero first. */
    void accumulate(T acc, T grads, T weights, int k0, int k1);

    /**
     * The first-layer saving's endpoints: the affine node {@code layer} evaluated at x and at the
     * baseline, unrounded (double), from which each step's layer output is interpolated.
     */
    AffineEndpoints<T> affineEndpoints(Arena a, Node layer, T x, T base, int[] outShape);

    /** A layer's outputs at both ends of the path, kept unrounded. */
    interface AffineEndpoints<T> {
        /** The layer's outputs for the path rows of steps [k0, k1): z_b + α (z_x − z_b), formed in double, rounded once. */
        T interpolate(Arena a, T alphas, int k0, int k1);
    }

    // ---------------------------------------------------------------- perturbed rows (dev.kxai.backend.Perturbation)

    /**
     * Samples of feature ablation, one per entry of {@code home} and {@code group} (uploaded with
     * {@link #indices}): out[s, f] = mask[m(s), f] == group[s] ? base[b(s), f] : x[home[s], f],
     * where m(s), b(s) are 0 for a mask or baseline of one row, else home[s] (kernels/perturb.cu).
     */
    T perturbSingle(Arena a, T x, T base, T mask, T home, T group);

    /**
     * Samples of coalitions: t = take[s·groups + mask[m(s), f]] (a feature of group −1 keeps its
     * home row); out[s, f] = t ≥ 0 ? x[t, f] : base[b(s), f].
     */
    T perturbCoalition(Arena a, T x, T base, T mask, T home, T take, int groups);

    /** Samples of occlusion: out[s, f] = f inside box s (boxes[s·2R ...], [start, end) per example axis) ? base[b(s), f] : x[home[s], f]. */
    T perturbBox(Arena a, T x, T base, T home, T boxes);

    // ---------------------------------------------------------------- replaced backward rules (DeepLift)

    /** DeepLift's numerator on [x; x_ref] rows: gy ⊙ Δout ({@code dev.kxai.backend.RuleOps#scale}, kernels/rules.cu). */
    T deepLiftScale(Arena a, T gradOut, T out, boolean maxPool);

    /** DeepLift's multiplier applied: |Δin| < eps ? plain : num / Δin ({@code dev.kxai.backend.RuleOps#rescale}). */
    T deepLiftRescale(Arena a, T plain, T num, T in, boolean sumHalves);

    /**
     * LRP's z-rule division: r / (z + sign(z)·eps), sign(0) = 1 ({@code dev.kxai.backend.RuleOps#lrpStabilize},
     * kernels/rules.cu {@code lrp_stabilize}); r and z of one shape.
     */
    T lrpStabilize(Arena a, T r, T z, float eps);

    // ---------------------------------------------------------------- the device

    /**
     * Runs work on the device: on CUDA under the device's lock with its context current, device
     * failures turned into {@link dev.kxai.backend.DeviceException}; on the CPU it just runs.
     */
    default <R> R onDevice(Supplier<R> work) {
        return work.get();
    }

    /**
     * The piece of work that starts in arena {@code a} is one of many alike ({@code key} names its
     * kind and shapes: a forward or a gradient of one batch shape, called again and again by a caller
     * that loops); a backend may record its device work once and replay it (CUDA graphs, validated
     * operation by operation: a key is a hint, never trusted). Default: nothing.
     */
    default void repeatedWork(Arena a, Object key) {
    }

    /** Bytes one chunk of path steps may use: free device memory, or the CPU's heap budget. */
    long chunkBudgetBytes();

    /** Why this backend can no longer run anything (a device that failed), or null while it can. */
    default String unusableReason() {
        return null;
    }

    /** Frees what the op set holds (uploaded weights). */
    default void close() {
    }
}
