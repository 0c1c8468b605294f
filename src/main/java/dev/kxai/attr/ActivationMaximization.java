package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.backend.ModelRunner;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Activation maximisation (feature visualisation, Lucid's {@code render_vis}, Captum's
 * {@code optim.InputOptimization}): the input that maximises a class logit, a layer's channel or
 * one neuron, found by gradient ascent on
 *
 * <pre>  J(x) = a(x) − l2·‖x‖² − tv·TV(x)</pre>
 *
 * per row, where a is the objective's activation ({@link Objective}: the output at the row's
 * target, the mean of a channel over its spatial positions, or one element of a layer) and TV the
 * anisotropic total variation Σ|x[h+1, w] − x[h, w]| + |x[h, w+1] − x[h, w]| per channel (Lucid's
 * and Captum optim's {@code TotalVariation}: absolute differences, subgradient 0 at 0).
 *
 * <p>Each iteration k of a fixed count: optionally roll each row's image by a random integer offset
 * in [−jitter, jitter] on both spatial axes (Lucid's {@code jitter}, as a circular roll), take the
 * gradient of a at the rolled image through {@link ModelRunner#seededGradients} and roll it back,
 * add the penalties' gradients, and step x ← x + lr_k · G / rms(G) (G normalised per row by its
 * root mean square, so that lr is the typical change of one element per step, as Adam's step size
 * is in Lucid (0.05) and Captum optim (0.025); plain normalised ascent rather than Adam keeps a
 * small enough step an ascent step). Every {@code blur_every} iterations the image is blurred by a
 * Gaussian of {@code blur_sigma} pixels (per channel, edges replicated; Yosinski et al.'s
 * regulariser). The rate follows the schedule: constant lr, linear decay lr·(1 − k/n) or cosine
 * decay lr·(1 + cos(πk/n))/2.
 *
 * <p>The start is seeded Gaussian noise of {@code noise_std} (Lucid's 0.01) or the given batch (a
 * seed image). All randomness comes from one stream per row seeded by (seed, row), so a seed gives
 * bit for bit the same images, whatever the batch around the row. The objective and the activation
 * are recorded at every iterate (at the rolled image when jittering) and once more at the result:
 * {@link Result#objective()}. Images are the last two axes ([batch, C, H, W], [batch, H, W]); a
 * [batch, F] input is one row of F pixels. One float input is optimised; additional inputs are given
 * unchanged.
 */
public final class ActivationMaximization {
    /** How the step size changes over the iterations. */
    public enum Schedule {
        CONSTANT, LINEAR, COSINE;

        public static Schedule parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "constant" -> CONSTANT;
                case "linear" -> LINEAR;
                case "cosine" -> COSINE;
                default -> throw new InvalidInputException("activation_max: unknown lr_schedule '" + s
                        + "'; known: constant, linear, cosine");
            };
        }

        /** The step size of iteration k of n. */
        public double rate(double lr, int k, int n) {
            return switch (this) {
                case CONSTANT -> lr;
                case LINEAR -> lr * (1.0 - (double) k / n);
                case COSINE -> lr * 0.5 * (1.0 + Math.cos(Math.PI * k / n));
            };
        }
    }

    /** Where the ascent starts. */
    public enum Init {
        NOISE, INPUT;

        public static Init parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "noise" -> NOISE;
                case "input" -> INPUT;
                default -> throw new InvalidInputException("activation_max: unknown init '" + s + "'; known: noise, input");
            };
        }
    }

    /** What is maximised: the output at each row's target, a channel's mean, or one neuron of a layer. */
    public record Objective(String layer, Integer channel, Integer neuron) {
        public static Objective target() {
            return new Objective(null, null, null);
        }

        public static Objective channel(String layer, int channel) {
            return new Objective(layer, channel, null);
        }

        /** A neuron by its flat index in the layer's example. */
        public static Objective neuron(String layer, int flat) {
            return new Objective(layer, null, flat);
        }

        public Objective {
            if (layer == null && (channel != null || neuron != null)) {
                throw new InvalidInputException("activation_max: a channel or a neuron needs the layer it belongs to");
            }
            if (layer != null && (channel == null) == (neuron == null)) {
                throw new InvalidInputException("activation_max: at layer '" + layer + "' give a channel or a neuron "
                        + "(one of them)");
            }
        }

        public boolean isTarget() {
            return layer == null;
        }
    }

    /**
     * The optimisation's settings (defaults: 128 iterations, lr 0.05 constant, no penalty, no jitter,
     * no blur, σ 0.5 when blurring, noise of σ 0.01, seed 0); every value is checked here.
     */
    public record Settings(int iterations, double lr, Schedule schedule, double l2, double tv, int jitter, int blurEvery,
            double blurSigma, Init init, double noiseStd, long seed) {
        public Settings {
            if (iterations < 1) {
                throw bad("iterations", iterations, "at least 1");
            }
            Limits.iterations("activation_max", iterations);
            if (!(lr > 0) || Double.isInfinite(lr)) {
                throw bad("lr", lr, "a finite number above 0");
            }
            if (!(l2 >= 0) || Double.isInfinite(l2)) {
                throw bad("l2", l2, "finite and at least 0");
            }
            if (!(tv >= 0) || Double.isInfinite(tv)) {
                throw bad("tv", tv, "finite and at least 0");
            }
            if (jitter < 0) {
                throw bad("jitter", jitter, "at least 0 (pixels)");
            }
            if (blurEvery < 0) {
                throw bad("blur_every", blurEvery, "at least 0 (0: no blur)");
            }
            if (!(blurSigma > 0) || Double.isInfinite(blurSigma)) {
                throw bad("blur_sigma", blurSigma, "a finite number above 0 (pixels)");
            }
            if (!(noiseStd >= 0) || Double.isInfinite(noiseStd)) {
                throw bad("noise_std", noiseStd, "finite and at least 0");
            }
            if (schedule == null || init == null) {
                throw new InvalidInputException("activation_max: lr_schedule and init must be given");
            }
        }

        private static InvalidInputException bad(String name, Object v, String want) {
            return new InvalidInputException("activation_max: " + name + " must be " + want + ", got " + v);
        }

        public static Settings defaults() {
            return new Settings(128, 0.05, Schedule.CONSTANT, 0, 0, 0, 0, 0.5, Init.NOISE, 0.01, 0);
        }

        public Settings iterations(int v) {
            return new Settings(v, lr, schedule, l2, tv, jitter, blurEvery, blurSigma, init, noiseStd, seed);
        }

        public Settings lr(double v, Schedule s) {
            return new Settings(iterations, v, s, l2, tv, jitter, blurEvery, blurSigma, init, noiseStd, seed);
        }

        public Settings penalties(double l2v, double tvv) {
            return new Settings(iterations, lr, schedule, l2v, tvv, jitter, blurEvery, blurSigma, init, noiseStd, seed);
        }

        public Settings jitter(int v) {
            return new Settings(iterations, lr, schedule, l2, tv, v, blurEvery, blurSigma, init, noiseStd, seed);
        }

        public Settings blur(int every, double sigma) {
            return new Settings(iterations, lr, schedule, l2, tv, jitter, every, sigma, init, noiseStd, seed);
        }

        public Settings init(Init v, double std) {
            return new Settings(iterations, lr, schedule, l2, tv, jitter, blurEvery, blurSigma, v, std, seed);
        }

        public Settings seed(long v) {
            return new Settings(iterations, lr, schedule, l2, tv, jitter, blurEvery, blurSigma, init, noiseStd, v);
        }
    }

    /**
     * The optimised input and the trace of the ascent.
     *
     * @param optimized  the optimised input, the shape of the given one
     * @param objective  [iterations + 1][batch]: J at each iterate (index k before step k), the last at the result
     * @param activation [iterations + 1][batch]: the objective's activation a at the same points
     */
    public record Result(String input, Tensor optimized, double[][] objective, double[][] activation, String device,
            String fallbackReason) {
        /** As an {@link Attribution}: the optimised input in the input's place. */
        public Attribution attribution() {
            Map<String, Tensor> by = new LinkedHashMap<>();
            by.put(input, optimized);
            return Attribution.of(by, null, device, fallbackReason);
        }
    }

    private final Model model;
    private final Objective objective;
    private final Settings settings;

    public ActivationMaximization(Model model, Objective objective, Settings settings) {
        this.model = model;
        this.objective = objective;
        this.settings = settings;
    }

    /** The images that maximise the objective, one per row of {@code in} (targets: the class objective's). */
    public Result optimize(Inputs in, int... targets) {
        model.check(in);
        List<String> names = model.attributed(in);
        if (names.size() != 1) {
            throw new InvalidInputException("activation_max optimises one float input; the batch has " + names.size()
                    + " (" + names + "): give the others as additional inputs");
        }
        String name = names.get(0);
        Tensor x0 = in.get(name);
        int batch = in.batch();
        String value = objective.isTarget() ? model.graph().outputName() : objective.layer();
        if (!objective.isTarget()) {
            LayerIntegratedGradients.checkLayer(model, objective.layer(), "activation_max");
        }
        int[] vs = model.runner().plan().shape(value, batch);
        Tensor seed = seed(vs, objective.isTarget() ? model.targets(targets, batch) : null);
        int[] shape = x0.shape();
        int per = x0.rowSize();
        int w = shape[shape.length - 1];
        int h = shape.length >= 3 ? shape[shape.length - 2] : 1;
        int c = per / (h * w);
        DevicePolicy.Ran<Result> ran = model.run("activation maximisation",
                r -> ascend(r, in, name, value, seed, shape, c, h, w));
        Result res = ran.value();
        return new Result(name, res.optimized(), res.objective(), res.activation(), ran.device(), ran.fallbackReason());
    }

    /** Attributions for {@link Methods}: the optimised input. */
    public Attribution attribute(Inputs in, int... targets) {
        return optimize(in, targets).attribution();
    }

    /** Σ seed ⊙ value per row is the activation: one-hot at the target, 1/(spatial) on the channel, one-hot at the neuron. */
    private Tensor seed(int[] vs, int[] targets) {
        int rows = vs[0];
        int per = (int) (Shapes.size(vs) / rows);
        float[] s = new float[rows * per];
        if (objective.isTarget()) {
            for (int r = 0; r < rows; r++) {
                s[r * per + targets[r]] = 1f;
            }
        } else if (objective.neuron() != null) {
            int n = objective.neuron();
            if (n < 0 || n >= per) {
                throw new InvalidInputException("activation_max: neuron " + n + " is outside '" + objective.layer() + "' of "
                        + per + " elements per example (" + Shapes.str(vs) + ")");
            }
            for (int r = 0; r < rows; r++) {
                s[r * per + n] = 1f;
            }
        } else {
            int ch = objective.channel();
            int channels = vs.length >= 2 ? vs[1] : 0;
            if (vs.length < 2 || ch < 0 || ch >= channels) {
                throw new InvalidInputException("activation_max: channel " + ch + " is outside '" + objective.layer()
                        + "' of shape " + Shapes.str(vs) + (vs.length >= 2 ? " (channels 0.." + (channels - 1) + ")" : ""));
            }
            int spatial = per / channels;
            float v = (float) (1.0 / spatial);
            for (int r = 0; r < rows; r++) {
                java.util.Arrays.fill(s, r * per + ch * spatial, r * per + (ch + 1) * spatial, v);
            }
        }
        return new Tensor(vs, s);
    }

    /** One row's random stream: noise first, then the jitter offsets. */
    static SplittableRandom rowRandom(long seed, int row) {
        return new SplittableRandom(seed + 0x9E3779B97F4A7C15L * (row + 1));
    }

    private Result ascend(ModelRunner runner, Inputs in, String name, String value, Tensor seed, int[] shape, int c, int h,
            int w) {
        Settings st = settings;
        int batch = shape[0];
        int per = c * h * w;
        SplittableRandom[] rng = new SplittableRandom[batch];
        float[] x = new float[batch * per];
        for (int r = 0; r < batch; r++) {
            rng[r] = rowRandom(st.seed(), r);
            for (int i = 0; i < per; i++) {
                x[r * per + i] = st.init() == Init.INPUT ? in.get(name).data()[r * per + i]
                        : st.noiseStd() > 0 ? (float) (st.noiseStd() * rng[r].nextGaussian()) : 0f;
            }
        }
        int n = st.iterations();
        double[][] obj = new double[n + 1][batch];
        double[][] act = new double[n + 1][batch];
        int[] dy = new int[batch];
        int[] dx = new int[batch];
        double[] grad = new double[per];
        for (int k = 0; k < n; k++) {
            if (st.jitter() > 0) {
                for (int r = 0; r < batch; r++) {
                    dy[r] = h > 1 ? rng[r].nextInt(-st.jitter(), st.jitter() + 1) : 0;
                    dx[r] = w > 1 ? rng[r].nextInt(-st.jitter(), st.jitter() + 1) : 0;
                }
            }
            float[] xj = st.jitter() > 0 ? roll(x, batch, c, h, w, dy, dx, 1) : x;
            Map<String, Tensor> given = new HashMap<>(in.values());
            given.put(name, new Tensor(shape, xj));
            Map<String, Tensor> res = runner.seededGradients(given, value, seed, Set.of(name));
            float[] g = res.get(name).data();
            if (st.jitter() > 0) {
                g = roll(g, batch, c, h, w, dy, dx, -1);
            }
            activations(res.get(value), seed, act[k]);
            double rate = st.schedule().rate(st.lr(), k, n);
            for (int r = 0; r < batch; r++) {
                int o = r * per;
                obj[k][r] = act[k][r] - penalty(x, o, c, h, w);
                for (int i = 0; i < per; i++) {
                    grad[i] = g[o + i] - 2 * st.l2() * x[o + i];
                }
                if (st.tv() > 0) {
                    tvGradient(x, o, c, h, w, -st.tv(), grad);
                }
                double ss = 0;
                for (int i = 0; i < per; i++) {
                    ss += grad[i] * grad[i];
                }
                double rms = Math.sqrt(ss / per);
                if (rms > 0) {
                    double f = rate / rms;
                    for (int i = 0; i < per; i++) {
                        x[o + i] = (float) (x[o + i] + f * grad[i]);
                    }
                }
            }
            if (st.blurEvery() > 0 && (k + 1) % st.blurEvery() == 0) {
                x = blur(x, batch, c, h, w, st.blurSigma());
            }
        }
        Map<String, Tensor> given = new HashMap<>(in.values());
        given.put(name, new Tensor(shape, x));
        activations(runner.evaluate(given, Set.of(value)).get(value), seed, act[n]);
        for (int r = 0; r < batch; r++) {
            obj[n][r] = act[n][r] - penalty(x, r * per, c, h, w);
        }
        return new Result(name, new Tensor(shape, x), obj, act, runner.device(), null);
    }

    private static void activations(Tensor value, Tensor seed, double[] out) {
        int per = value.rowSize();
        for (int r = 0; r < out.length; r++) {
            double s = 0;
            for (int i = r * per; i < (r + 1) * per; i++) {
                if (seed.data()[i] != 0f) {
                    s += (double) seed.data()[i] * value.data()[i];
                }
            }
            out[r] = s;
        }
    }

    private double penalty(float[] x, int o, int c, int h, int w) {
        double p = 0;
        if (settings.l2() > 0) {
            double ss = 0;
            for (int i = 0; i < c * h * w; i++) {
                ss += (double) x[o + i] * x[o + i];
            }
            p += settings.l2() * ss;
        }
        if (settings.tv() > 0) {
            p += settings.tv() * totalVariation(x, o, c, h, w);
        }
        return p;
    }

    /** Σ |x[h+1, w] − x[h, w]| + |x[h, w+1] − x[h, w]| over one row's channels (in double). */
    public static double totalVariation(float[] x, int o, int c, int h, int w) {
        double tv = 0;
        for (int ch = 0; ch < c; ch++) {
            int b = o + ch * h * w;
            for (int i = 0; i < h; i++) {
                for (int j = 0; j < w; j++) {
                    int p = b + i * w + j;
                    if (i + 1 < h) {
                        tv += Math.abs((double) x[p + w] - x[p]);
                    }
                    if (j + 1 < w) {
                        tv += Math.abs((double) x[p + 1] - x[p]);
                    }
                }
            }
        }
        return tv;
    }

    /** Adds scale · ∂TV/∂x of one row to {@code grad} (indexed from 0). */
    private static void tvGradient(float[] x, int o, int c, int h, int w, double scale, double[] grad) {
        for (int ch = 0; ch < c; ch++) {
            int b = ch * h * w;
            for (int i = 0; i < h; i++) {
                for (int j = 0; j < w; j++) {
                    int p = b + i * w + j;
                    if (i + 1 < h) {
                        double s = Math.signum((double) x[o + p + w] - x[o + p]);
                        grad[p + w] += scale * s;
                        grad[p] -= scale * s;
                    }
                    if (j + 1 < w) {
                        double s = Math.signum((double) x[o + p + 1] - x[o + p]);
                        grad[p + 1] += scale * s;
                        grad[p] -= scale * s;
                    }
                }
            }
        }
    }

    /** Each row's image rolled circularly by sign·(dy[r], dx[r]) on its spatial axes. */
    static float[] roll(float[] x, int batch, int c, int h, int w, int[] dy, int[] dx, int sign) {
        float[] out = new float[x.length];
        for (int r = 0; r < batch; r++) {
            int sy = Math.floorMod(sign * dy[r], h);
            int sx = Math.floorMod(sign * dx[r], w);
            for (int ch = 0; ch < c; ch++) {
                int b = (r * c + ch) * h * w;
                for (int i = 0; i < h; i++) {
                    int ti = (i + sy) % h;
                    for (int j = 0; j < w; j++) {
                        out[b + ti * w + (j + sx) % w] = x[b + i * w + j];
                    }
                }
            }
        }
        return out;
    }

    /** A separable Gaussian blur of σ pixels per channel, radius ⌈3σ⌉, edges replicated, in double, rounded once. */
    static float[] blur(float[] x, int batch, int c, int h, int w, double sigma) {
        int rad = Math.max(1, (int) Math.ceil(3 * sigma));
        double[] k = new double[2 * rad + 1];
        double sum = 0;
        for (int i = -rad; i <= rad; i++) {
            k[i + rad] = Math.exp(-(double) i * i / (2 * sigma * sigma));
            sum += k[i + rad];
        }
        for (int i = 0; i < k.length; i++) {
            k[i] /= sum;
        }
        float[] out = new float[x.length];
        double[] tmp = new double[h * w];
        for (int plane = 0; plane < batch * c; plane++) {
            int b = plane * h * w;
            for (int i = 0; i < h; i++) {
                for (int j = 0; j < w; j++) {
                    double s = 0;
                    for (int t = -rad; t <= rad; t++) {
                        int jj = Math.min(w - 1, Math.max(0, j + t));
                        s += k[t + rad] * x[b + i * w + jj];
                    }
                    tmp[i * w + j] = s;
                }
            }
            for (int i = 0; i < h; i++) {
                for (int j = 0; j < w; j++) {
                    double s = 0;
                    for (int t = -rad; t <= rad; t++) {
                        int ii = Math.min(h - 1, Math.max(0, i + t));
                        s += k[t + rad] * tmp[ii * w + j];
                    }
                    out[b + i * w + j] = (float) s;
                }
            }
        }
        return out;
    }
}
