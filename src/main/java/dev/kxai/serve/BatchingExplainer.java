package dev.kxai.serve;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.KxaiException;
import dev.kxai.Model;
import dev.kxai.attr.Attribution;
import dev.kxai.attr.Methods;
import dev.kxai.tensor.Tensor;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Explanation requests from many threads coalesced into batched attributions, as a dynamic batcher
 * does (Triton's: a maximum batch, a maximum queue delay, a bounded queue): requests for the same
 * method and parameters that arrive within {@code maxDelay} of the first are run as one batch of
 * up to {@code maxBatchRows} rows, and each caller gets its own rows back through a
 * {@link CompletableFuture}.
 *
 * <p><b>The same numbers as alone.</b> A batch only joins requests whose method computes every row
 * from that row alone (gradients, paths, rule-based backward passes: {@link #ROW_WISE}); the
 * sampling methods, whose draws depend on the batch, and anything else run one request per batch.
 * The CPU backend computes convolutions image by image with forwards accumulated in double, so a
 * row's attribution does not depend on its neighbours there; dense layers' float GEMMs would (OpenBLAS
 * picks kernels by shape), so the explainer switches the process to batch-invariant dense GEMMs
 * ({@link dev.kxai.backend.cpu.CpuBackend#batchInvariant}, double accumulation, about twice the cost
 * of dense layers) unless {@link Settings#batchInvariant} is off. On CUDA, cuBLAS picks kernels by
 * shape too: batched answers agree with lone ones to float rounding, not bit for bit.
 *
 * <p><b>Limits.</b> The queue holds at most {@code maxQueue} requests; {@link #submit} refuses more at
 * once ({@link QueueFullException}), so memory is bounded whatever the load. Each request has a
 * deadline: a request still queued at its deadline is dropped, and its future fails with
 * {@link DeadlineExceededException}; one whose batch runs past it fails the same way (its result
 * is discarded). Cancelling a future drops the request if its batch has not started.
 * {@link #close} stops taking requests, finishes everything queued, then returns.
 *
 * <p>Thread-safe. Batches run on {@code workers} threads (default 1: the backend already spreads
 * one batch over the cores).
 */
public final class BatchingExplainer implements AutoCloseable {
    /** The methods whose rows are independent of each other (deterministic, no batch-level sampling). */
    public static final java.util.Set<String> ROW_WISE = java.util.Set.of("integrated_gradients", "saliency",
            "input_x_gradient", "layer_integrated_gradients", "deeplift", "guided_backprop", "deconvolution",
            "layer_grad_cam", "guided_grad_cam", "layer_conductance", "layer_activation", "layer_gradient_x_activation",
            "internal_influence", "occlusion", "feature_ablation", "shapley_values", "lrp", "layer_lrp", "idgi",
            "blur_integrated_gradients", "guided_integrated_gradients");

    /**
     * @param maxBatchRows rows (examples) per batched attribution
     * @param maxDelay     how long the first request of a batch waits for others
     * @param maxQueue     requests waiting at most; more are refused
     * @param deadline     the deadline of a request that gives none
     * @param workers      batches computed at once
     * @param batchInvariant switch the process's CPU dense GEMMs to batch-invariant ones (bit-for-bit answers)
     */
    public record Settings(int maxBatchRows, Duration maxDelay, int maxQueue, Duration deadline, int workers,
            boolean batchInvariant) {
        public Settings {
            if (maxBatchRows < 1) {
                throw new InvalidInputException("max batch must be at least 1 row, got " + maxBatchRows);
            }
            if (maxDelay == null || maxDelay.isNegative()) {
                throw new InvalidInputException("max delay must be 0 or more, got " + maxDelay);
            }
            if (maxQueue < 1) {
                throw new InvalidInputException("max queue must be at least 1, got " + maxQueue);
            }
            if (deadline == null || deadline.isNegative() || deadline.isZero()) {
                throw new InvalidInputException("the default deadline must be positive, got " + deadline);
            }
            if (workers < 1) {
                throw new InvalidInputException("workers must be at least 1, got " + workers);
            }
        }

        /** 64 rows, 5 ms, 1024 queued, 30 s, one worker. */
        public static Settings defaults() {
            return new Settings(64, Duration.ofMillis(5), 1024, Duration.ofSeconds(30), 1, true);
        }

        /** No coalescing: every request is its own batch (for comparison). */
        public Settings unbatched() {
            return new Settings(1, Duration.ZERO, maxQueue, deadline, workers, batchInvariant);
        }

        public Settings maxBatchRows(int rows) {
            return new Settings(rows, maxDelay, maxQueue, deadline, workers, batchInvariant);
        }

        public Settings maxDelay(Duration d) {
            return new Settings(maxBatchRows, d, maxQueue, deadline, workers, batchInvariant);
        }

        public Settings maxQueue(int n) {
            return new Settings(maxBatchRows, maxDelay, n, deadline, workers, batchInvariant);
        }

        public Settings deadline(Duration d) {
            return new Settings(maxBatchRows, maxDelay, maxQueue, d, workers, batchInvariant);
        }

        public Settings batchInvariant(boolean on) {
            return new Settings(maxBatchRows, maxDelay, maxQueue, deadline, workers, on);
        }

        public Settings workers(int n) {
            return new Settings(maxBatchRows, maxDelay, maxQueue, deadline, n, batchInvariant);
        }
    }

    /**
     * One request: a method by name (or alias) with Captum-named parameters, a batch of one or more
     * examples, their targets (one per row, or one for all; null = the predicted class), and a
     * deadline (null = the settings').
     */
    public record Request(String method, Map<String, Object> params, Inputs inputs, int[] targets, Duration deadline) {
        public Request {
            if (method == null || inputs == null) {
                throw new InvalidInputException("a request needs a method and inputs");
            }
            params = params == null ? Map.of() : Map.copyOf(params);
        }
    }

    /** What a service watches (each called on the thread where it happens; keep them cheap). */
    public interface Observer {
        default void queued(int depth) {
        }

        default void rejected() {
        }

        default void timedOut() {
        }

        default void batch(int requests, int rows) {
        }

        default void done(long latencyNanos, boolean ok) {
        }
    }

    /** Counters since start. */
    public record Stats(long submitted, long rejected, long timedOut, long cancelled, long completed, long failed,
            long batches, long batchedRequests, int queueDepth) {
    }

    private final Model model;
    private final Settings settings;
    private final Observer observer;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final Deque<Pending> queue = new ArrayDeque<>();
    private final List<Thread> workers = new ArrayList<>();
    private final ScheduledExecutorService timer;
    private boolean closing;
    private final AtomicLong submitted = new AtomicLong();
    private final AtomicLong rejected = new AtomicLong();
    private final AtomicLong timedOut = new AtomicLong();
    private final AtomicLong cancelled = new AtomicLong();
    private final AtomicLong completed = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong batchedRequests = new AtomicLong();

    public BatchingExplainer(Model model, Settings settings) {
        this(model, settings, new Observer() {
        });
    }

    public BatchingExplainer(Model model, Settings settings, Observer observer) {
        if (model == null || settings == null || observer == null) {
            throw new InvalidInputException("BatchingExplainer needs a model, settings and an observer");
        }
        this.model = model;
        this.settings = settings;
        this.observer = observer;
        if (settings.batchInvariant()) {
            dev.kxai.backend.cpu.CpuBackend.batchInvariant(true);
        }
        java.util.concurrent.ScheduledThreadPoolExecutor t0 = new java.util.concurrent.ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "kxai-deadlines");
            t.setDaemon(true);
            return t;
        });
        t0.setRemoveOnCancelPolicy(true); // a request answered in time leaves no task behind
        this.timer = t0;
        for (int i = 0; i < settings.workers(); i++) {
            Thread t = new Thread(this::work, "kxai-batcher-" + i);
            t.setDaemon(true);
            t.start();
            workers.add(t);
        }
    }

    public Settings settings() {
        return settings;
    }

    public Model model() {
        return model;
    }

    public Stats stats() {
        lock.lock();
        try {
            return new Stats(submitted.get(), rejected.get(), timedOut.get(), cancelled.get(), completed.get(),
                    failed.get(), batches.get(), batchedRequests.get(), queue.size());
        } finally {
            lock.unlock();
        }
    }

    /** Requests waiting now. */
    public int queueDepth() {
        lock.lock();
        try {
            return queue.size();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Queues a request. The method and parameters are checked now (an unknown method or a bad
     * parameter fails here, not in the future), as are the inputs against the model.
     *
     * @throws QueueFullException when {@code maxQueue} requests are waiting
     * @throws ServiceClosedException after {@link #close}
     */
    public CompletableFuture<Attribution> submit(Request r) {
        if (r == null) {
            throw new InvalidInputException("request is null");
        }
        Methods.Entry entry = Methods.entry(r.method());
        Methods.checkParameters(entry.name(), Methods.Params.of(r.params())); // a parameter the method does not take
        model.check(r.inputs());
        int rows = r.inputs().batch();
        int[] targets = r.targets() == null ? null : model.targets(r.targets(), rows);
        Key key = new Key(entry.name(), canonical(r.params()));
        Duration d = r.deadline() != null ? r.deadline() : settings.deadline();
        if (d.isNegative() || d.isZero()) {
            throw new InvalidInputException("deadline must be positive, got " + d);
        }
        Pending p = new Pending(key, r, targets, rows, System.nanoTime(), System.nanoTime() + d.toNanos());
        lock.lock();
        try {
            if (closing) {
                throw new ServiceClosedException("the explainer is closed: no new requests");
            }
            if (queue.size() >= settings.maxQueue()) {
                rejected.incrementAndGet();
                observer.rejected();
                throw new QueueFullException("queue full: " + queue.size() + " requests waiting (max " + settings.maxQueue()
                        + "); retry later");
            }
            queue.addLast(p);
            submitted.incrementAndGet();
            observer.queued(queue.size());
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        // the deadline: fail the future then, whether the request is still queued or its batch is running
        var expiry = timer.schedule(() -> {
            if (p.future.isDone()) {
                return;
            }
            timedOut.incrementAndGet(); // counted before the caller can see the failure
            if (p.future.completeExceptionally(new DeadlineExceededException("deadline of " + d.toMillis()
                    + " ms exceeded"))) {
                observer.timedOut();
                observer.done(System.nanoTime() - p.arrived, false);
            } else {
                timedOut.decrementAndGet(); // answered in the meantime
            }
        }, Math.max(0, p.deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        p.future.whenComplete((a, e) -> expiry.cancel(false));
        return p.future;
    }

    /** Waits for the next batch: the oldest request and those that may join it, within the delay. */
    private List<Pending> nextBatch() throws InterruptedException {
        lock.lock();
        try {
            while (true) {
                dropFinished();
                if (!queue.isEmpty()) {
                    break;
                }
                if (closing) {
                    return null;
                }
                changed.await();
            }
            Pending first = queue.peekFirst();
            boolean joinable = ROW_WISE.contains(first.key.method) && settings.maxBatchRows() > 1;
            if (joinable) {
                long until = first.arrived + settings.maxDelay().toNanos();
                while (!closing && rowsJoinable(first.key) < settings.maxBatchRows()) {
                    long left = until - System.nanoTime();
                    if (left <= 0) {
                        break;
                    }
                    changed.awaitNanos(left);
                }
            }
            List<Pending> batch = new ArrayList<>();
            int rows = 0;
            for (var it = queue.iterator(); it.hasNext();) {
                Pending p = it.next();
                if (p.future.isDone()) {
                    it.remove();
                    continue;
                }
                if (!p.key.equals(first.key)) {
                    continue; // another method or parameters: a later batch
                }
                if (!batch.isEmpty() && (!joinable || rows + p.rows > settings.maxBatchRows())) {
                    if (!joinable) {
                        break;
                    }
                    continue;
                }
                batch.add(p);
                rows += p.rows;
                it.remove();
                if (!joinable) {
                    break;
                }
            }
            return batch;
        } finally {
            lock.unlock();
        }
    }

    private int rowsJoinable(Key key) {
        int rows = 0;
        for (Pending p : queue) {
            if (p.key.equals(key) && !p.future.isDone()) {
                rows += p.rows;
            }
        }
        return rows;
    }

    /** Drops requests whose future is done (deadline passed, cancelled) while queued. */
    private void dropFinished() {
        for (var it = queue.iterator(); it.hasNext();) {
            Pending p = it.next();
            if (p.future.isDone()) {
                if (p.future.isCancelled()) {
                    cancelled.incrementAndGet();
                }
                it.remove();
            }
        }
    }

    private void work() {
        while (true) {
            List<Pending> batch;
            try {
                batch = nextBatch();
            } catch (InterruptedException e) {
                return;
            }
            if (batch == null) {
                return;
            }
            if (!batch.isEmpty()) {
                run(batch);
            }
        }
    }

    private void run(List<Pending> batch) {
        int rows = batch.stream().mapToInt(p -> p.rows).sum();
        batches.incrementAndGet();
        batchedRequests.addAndGet(batch.size());
        observer.batch(batch.size(), rows);
        try {
            Pending first = batch.get(0);
            Methods.Method method = Methods.create(first.key.method, model, Methods.Params.of(first.request.params()));
            Inputs in = batch.size() == 1 ? first.request.inputs() : concat(batch);
            int[] targets = new int[rows];
            int[] predicted = null;
            int off = 0;
            for (Pending p : batch) {
                if (p.targets == null && predicted == null) {
                    predicted = model.predict(in); // rows without a target explain their predicted class
                }
                System.arraycopy(p.targets != null ? p.targets : predicted, p.targets != null ? 0 : off, targets, off, p.rows);
                off += p.rows;
            }
            Attribution all = method.attribute(in, targets);
            off = 0;
            for (Pending p : batch) {
                Attribution mine = batch.size() == 1 ? all : slice(all, off, p.rows, rows);
                off += p.rows;
                completed.incrementAndGet(); // counted before the caller can see the answer
                if (p.future.complete(mine)) {
                    observer.done(System.nanoTime() - p.arrived, true);
                } else {
                    completed.decrementAndGet(); // cancelled or past its deadline meanwhile
                }
            }
        } catch (RuntimeException e) {
            RuntimeException failure = e instanceof KxaiException ? e
                    : new KxaiException("internal error while explaining a batch of " + batch.size() + " request(s): "
                            + e, e);
            for (Pending p : batch) {
                failed.incrementAndGet();
                if (p.future.completeExceptionally(failure)) {
                    observer.done(System.nanoTime() - p.arrived, false);
                } else {
                    failed.decrementAndGet();
                }
            }
        }
    }

    /** The requests' inputs stacked along the batch axis, input by input. */
    private static Inputs concat(List<Pending> batch) {
        Inputs first = batch.get(0).request.inputs();
        Inputs out = Inputs.empty();
        for (String name : first.values().keySet()) {
            List<Tensor> parts = new ArrayList<>();
            for (Pending p : batch) {
                parts.add(p.request.inputs().get(name));
            }
            Tensor t = stack(parts);
            out = first.isAdditional(name) ? out.additional(name, t) : out.and(name, t);
        }
        return out;
    }

    static Tensor stack(List<Tensor> parts) {
        int rows = 0;
        int size = 0;
        for (Tensor t : parts) {
            rows += t.dim(0);
            size += t.size();
        }
        float[] all = new float[size];
        int off = 0;
        for (Tensor t : parts) {
            System.arraycopy(t.data(), 0, all, off, t.size());
            off += t.size();
        }
        int[] shape = parts.get(0).shape();
        shape[0] = rows;
        return new Tensor(shape, all);
    }

    /** Rows [off, off + n) of a batch's attribution (every tensor whose first axis is the batch). */
    static Attribution slice(Attribution a, int off, int n, int batchRows) {
        Map<String, Tensor> by = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : a.byInputOr("attributions").entrySet()) {
            by.put(e.getKey(), rows(e.getValue(), off, n, batchRows));
        }
        Tensor delta = a.convergenceDelta() == null ? null : rows(a.convergenceDelta(), off, n, batchRows);
        return new Attribution(by.values().iterator().next(), delta, a.device(), a.fallbackReason(),
                a.byInput().isEmpty() ? Map.of() : by);
    }

    private static Tensor rows(Tensor t, int off, int n, int batchRows) {
        if (t.dim(0) != batchRows) {
            throw new KxaiException("internal error: a result of shape " + Arrays.toString(t.shape())
                    + " has no row per example of a batch of " + batchRows);
        }
        int per = t.rowSize();
        int[] shape = t.shape();
        shape[0] = n;
        return new Tensor(shape, Arrays.copyOfRange(t.data(), off * per, (off + n) * per));
    }

    /**
     * Stops taking requests, finishes every queued one (or fails it at its deadline), then returns.
     * The model is the caller's: it is not closed.
     */
    @Override
    public synchronized void close() {
        lock.lock();
        try {
            closing = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        for (Thread t : workers) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        timer.shutdownNow();
        if (settings.batchInvariant() && !released) {
            released = true;
            dev.kxai.backend.cpu.CpuBackend.batchInvariant(false);
        }
    }

    private boolean released;

    /** Parameters as a comparable key: arrays and tensors by content. */
    static String canonical(Map<String, Object> params) {
        StringBuilder sb = new StringBuilder();
        new java.util.TreeMap<>(params).forEach((k, v) -> sb.append(k).append('=').append(text(v)).append(';'));
        return sb.toString();
    }

    private static String text(Object v) {
        if (v instanceof Tensor t) {
            return "tensor" + Arrays.toString(t.shape()) + "#" + Arrays.hashCode(t.data()) + "/" + t.size();
        }
        if (v instanceof Object[] a) {
            StringBuilder sb = new StringBuilder("[");
            for (Object o : a) {
                sb.append(text(o)).append(',');
            }
            return sb.append(']').toString();
        }
        if (v instanceof int[] a) {
            return Arrays.toString(a);
        }
        if (v instanceof float[] a) {
            return Arrays.toString(a);
        }
        if (v instanceof double[] a) {
            return Arrays.toString(a);
        }
        if (v instanceof long[] a) {
            return Arrays.toString(a);
        }
        if (v instanceof java.util.Collection<?> c) {
            StringBuilder sb = new StringBuilder("(");
            for (Object o : c) {
                sb.append(text(o)).append(',');
            }
            return sb.append(')').toString();
        }
        if (v instanceof Map<?, ?> m) {
            StringBuilder sb = new StringBuilder("{");
            new java.util.TreeMap<>(m).forEach((k, x) -> sb.append(k).append(':').append(text(x)).append(','));
            return sb.append('}').toString();
        }
        return v.getClass().getSimpleName() + ":" + v;
    }

    private record Key(String method, String params) {
    }

    private static final class Pending {
        final Key key;
        final Request request;
        final int[] targets;
        final int rows;
        final long arrived;
        final long deadline;
        final CompletableFuture<Attribution> future = new CompletableFuture<>();

        Pending(Key key, Request request, int[] targets, int rows, long arrived, long deadline) {
            this.key = key;
            this.request = request;
            this.targets = targets;
            this.rows = rows;
            this.arrived = arrived;
            this.deadline = deadline;
        }
    }
}
