package dev.kxai.cli;

import dev.kxai.InvalidInputException;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * Activation maximisation's options (a picocli mixin), checked here so that an error names the
 * option and its value, and turned into the method's parameters ({@code iterations}, {@code lr},
 * {@code lr_schedule}, {@code l2}, {@code tv}, {@code jitter}, {@code blur_every},
 * {@code blur_sigma}, {@code init}, {@code noise_std}, {@code channel}). The seed is --seed, the
 * layer --layer and a neuron --neuron, shared with the other methods.
 */
final class ActivationMaxOptions {
    @Option(names = "--iterations", paramLabel = "N", description = "activation_max: gradient ascent steps (default 128).")
    Integer iterations;

    @Option(names = "--lr", paramLabel = "RATE", description = "activation_max: step size, the root-mean-square change "
            + "of one input element per step (default 0.05).")
    Double lr;

    @Option(names = "--lr-schedule", paramLabel = "constant|linear|cosine", description = "activation_max: the step "
            + "size over the iterations: constant (default), linear or cosine decay to 0.")
    String lrSchedule;

    @Option(names = "--l2", paramLabel = "W", description = "activation_max: weight of the penalty W·‖x‖² (default 0).")
    Double l2;

    @Option(names = "--tv", paramLabel = "W", description = "activation_max: weight of the total-variation penalty "
            + "W·Σ|x[h+1,w] − x[h,w]| + |x[h,w+1] − x[h,w]| (default 0).")
    Double tv;

    @Option(names = "--jitter", paramLabel = "PIXELS", description = "activation_max: roll the image by a random offset "
            + "in [−PIXELS, PIXELS] on both axes before each step, undone after it (default 0).")
    Integer jitter;

    @Option(names = "--blur-every", paramLabel = "K", description = "activation_max: blur the image every K iterations "
            + "(default 0: never).")
    Integer blurEvery;

    @Option(names = "--blur-sigma", paramLabel = "PIXELS", description = "activation_max: the blur's Gaussian σ "
            + "(default 0.5).")
    Double blurSigma;

    @Option(names = "--init", paramLabel = "noise|input", description = "activation_max: start from seeded Gaussian noise "
            + "(default; σ --noise-std) or from the --input batch (a seed image).")
    String init;

    @Option(names = "--noise-std", paramLabel = "SIGMA", description = "activation_max: σ of the starting noise "
            + "(default 0.01).")
    Double noiseStd;

    @Option(names = "--channel", paramLabel = "C", description = "activation_max: maximise the mean of this channel of "
            + "--layer (instead of the --target output; or a --neuron of the layer).")
    Integer channel;

    private static InvalidInputException bad(String option, Object value, String want) {
        return new InvalidInputException(option + " " + value + ": " + want);
    }

    private static boolean finite(Double v) {
        return !v.isNaN() && !v.isInfinite();
    }

    /** Adds the options given to a method's parameters; a bad value is an error naming the option. */
    void addTo(Map<String, Object> params) {
        if (iterations != null) {
            if (iterations < 1) {
                throw bad("--iterations", iterations, "must be at least 1");
            }
            params.put("iterations", iterations);
        }
        if (lr != null) {
            if (!finite(lr) || lr <= 0) {
                throw bad("--lr", lr, "must be a finite number above 0");
            }
            params.put("lr", lr);
        }
        if (lrSchedule != null) {
            String s = lrSchedule.toLowerCase(Locale.ROOT);
            if (!s.equals("constant") && !s.equals("linear") && !s.equals("cosine")) {
                throw bad("--lr-schedule", lrSchedule, "must be constant, linear or cosine");
            }
            params.put("lr_schedule", s);
        }
        if (l2 != null) {
            if (!finite(l2) || l2 < 0) {
                throw bad("--l2", l2, "must be finite and at least 0");
            }
            params.put("l2", l2);
        }
        if (tv != null) {
            if (!finite(tv) || tv < 0) {
                throw bad("--tv", tv, "must be finite and at least 0");
            }
            params.put("tv", tv);
        }
        if (jitter != null) {
            if (jitter < 0) {
                throw bad("--jitter", jitter, "must be at least 0 pixels");
            }
            params.put("jitter", jitter);
        }
        if (blurEvery != null) {
            if (blurEvery < 0) {
                throw bad("--blur-every", blurEvery, "must be at least 0 (0: no blur)");
            }
            params.put("blur_every", blurEvery);
        }
        if (blurSigma != null) {
            if (!finite(blurSigma) || blurSigma <= 0) {
                throw bad("--blur-sigma", blurSigma, "must be a finite number of pixels above 0");
            }
            params.put("blur_sigma", blurSigma);
        }
        if (init != null) {
            String s = init.toLowerCase(Locale.ROOT);
            if (!s.equals("noise") && !s.equals("input")) {
                throw bad("--init", init, "must be noise or input");
            }
            params.put("init", s);
        }
        if (noiseStd != null) {
            if (!finite(noiseStd) || noiseStd < 0) {
                throw bad("--noise-std", noiseStd, "must be finite and at least 0");
            }
            params.put("noise_std", noiseStd);
        }
        if (channel != null) {
            if (channel < 0) {
                throw bad("--channel", channel, "must be at least 0");
            }
            params.put("channel", channel);
        }
    }
}
