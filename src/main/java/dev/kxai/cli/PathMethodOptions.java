package dev.kxai.cli;

import dev.kxai.InvalidInputException;
import dev.kxai.io.NpyIO;
import dev.kxai.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * The options of the path methods beyond Captum (a picocli mixin inside {@link PerturbationOptions}):
 * Guided IG's fraction and max distance, Blur IG's σ range, and user-given integration points
 * for integrated_gradients and idgi.
 */
final class PathMethodOptions {
    @Option(names = "--fraction", description = "guided_ig: share of the features moved per round, those with the "
            + "smallest |gradient| (default 0.25).")
    Double fraction;

    @Option(names = "--max-dist", description = "guided_ig: how far (in α) a feature may run ahead of or behind the "
            + "straight line (default 0.02; 0 gives riemann_left IG).")
    Double maxDist;

    @Option(names = "--max-sigma", description = "blur_ig: the blur of the path's far end (default 50).")
    Double maxSigma;

    @Option(names = "--grad-step", description = "blur_ig: the σ step of the blur's finite difference (default 0.01).")
    Double gradStep;

    @Option(names = "--blur-sqrt", description = "blur_ig: σ's spaced as square roots (the reference's sqrt=True).")
    boolean blurSqrt;

    @Option(names = "--alphas", paramLabel = "A0,A1,...|FILE.npy", description = "integrated_gradients, idgi: the "
            + "path's points in [0, 1], increasing (idgi: from 0 to 1); replaces --steps and --rule.")
    String alphas;

    @Option(names = "--alpha-weights", paramLabel = "W0,W1,...|FILE.npy", description = "integrated_gradients with "
            + "--alphas: a weight per point (default: each point's share of [0, 1] up to the midpoints).")
    String alphaWeights;

    @Option(names = "--upsample-to-input", description = "layer_grad_cam: bring the map to the input's spatial size "
            + "(nearest, Captum's LayerAttribution.interpolate) for overlays.")
    boolean upsampleToInput;

    void addTo(Map<String, Object> params) {
        if (upsampleToInput) {
            params.put("upsample_to_input", true);
        }
        if (fraction != null) {
            params.put("fraction", fraction);
        }
        if (maxDist != null) {
            params.put("max_dist", maxDist);
        }
        if (maxSigma != null) {
            params.put("max_sigma", maxSigma);
        }
        if (gradStep != null) {
            params.put("grad_step", gradStep);
        }
        if (blurSqrt) {
            params.put("sqrt", true);
        }
        if (alphas != null) {
            params.put("alphas", reals("--alphas", alphas));
        }
        if (alphaWeights != null) {
            params.put("alpha_weights", reals("--alpha-weights", alphaWeights));
        }
    }

    /** A comma-separated list of numbers, or a .npy file of them (any shape, read flat). */
    static double[] reals(String option, String value) {
        if (value.endsWith(".npy") || Files.isRegularFile(Path.of(value))) {
            Tensor t = NpyIO.read(Path.of(value));
            double[] d = new double[t.size()];
            for (int i = 0; i < d.length; i++) {
                d[i] = t.data()[i];
            }
            return d;
        }
        String[] parts = value.split(",");
        double[] d = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                d[i] = Double.parseDouble(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new InvalidInputException(option + ": '" + parts[i].trim() + "' (item " + (i + 1)
                        + ") is not a number; give numbers separated by commas, or a .npy file");
            }
        }
        return d;
    }
}
