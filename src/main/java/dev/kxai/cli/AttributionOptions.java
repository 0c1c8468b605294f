package dev.kxai.cli;

import picocli.CommandLine.Option;

/** The options of an attribution run that {@code explain} and {@code bench} share (a picocli mixin). */
final class AttributionOptions {
    @Option(names = "--method", defaultValue = "ig",
            description = "ig (integrated_gradients), saliency, input_x_gradient (ixg), layer_ig "
                    + "(layer_integrated_gradients, with --layer), deeplift, guided_backprop, deconvolution, layer_grad_cam and "
                    + "layer_conductance (with --layer), occlusion (with --sliding-window), feature_ablation, "
                    + "feature_permutation, shapley_values, shapley_value_sampling, kernel_shap, lime, lrp and layer_lrp "
                    + "(--lrp-rule; with --layer), layer_deeplift, layer_deeplift_shap, layer_gradient_shap, "
                    + "layer_feature_ablation (with --layer), neuron_gradient, neuron_integrated_gradients, "
                    + "neuron_conductance, neuron_deeplift, neuron_deeplift_shap, neuron_gradient_shap, "
                    + "neuron_guided_backprop, neuron_deconvolution, neuron_feature_ablation (with --layer and --neuron), "
                    + "activation_max (activation_maximization: the input that maximises the "
                    + "target, or a --layer's --channel or --neuron); beyond Captum: guided_ig, blur_ig, idgi; "
                    + "'kxai explain --help' lists every option (default: ${DEFAULT-VALUE}).")
    String method;

    @Option(names = "--steps", defaultValue = "50", description = "n_steps for Integrated Gradients (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--rule", defaultValue = "gausslegendre",
            description = "riemann_left|right|middle|trapezoid or gausslegendre (default: ${DEFAULT-VALUE}).")
    String rule;

    @Option(names = "--internal-batch-size", description = "Rows per forward/backward pass (default: from a memory budget).")
    Integer internalBatchSize;

    @Option(names = "--device", description = "auto, cpu or cuda (default: KXAI_DEVICE, else auto).")
    String device;

    @Option(names = "--exact", description = "Every convolution accumulated in double and rounded once "
            + "(the all-double path) instead of float (CPU: sgemm; CUDA: the FP32 implicit GEMM) with exact decisions: closer to a "
            + "float64 reference where near-ties deep in a network make float32 engines differ (bench/README.md's zoo run), "
            + "about 1.5x slower on resnet18.")
    boolean exact;

    @Option(names = "--tf32", description = "CUDA only: the FP32 convolutions and cuBLAS read their operands as TF32 "
            + "(10-bit mantissa, as tensor cores do; decisions stay exact through wider repair bounds, values within TF32's "
            + "tolerance: ARCHITECTURE.md). Ignored with --exact and on the CPU.")
    boolean tf32;

    /** Runs the command's work with the numerics {@code --exact} asks for, restored afterwards. */
    static <T> T withNumerics(boolean exact, java.util.concurrent.Callable<T> work) throws Exception {
        return withNumerics(exact, false, work);
    }

    /** Runs the command's work with the numerics {@code --exact} and {@code --tf32} ask for, restored afterwards. */
    static <T> T withNumerics(boolean exact, boolean tf32, java.util.concurrent.Callable<T> work) throws Exception {
        if (!exact && !tf32) {
            return work.call();
        }
        boolean was = exact ? dev.kxai.backend.cpu.CpuBackend.exactPath(true) : false;
        boolean wasCuda = exact ? dev.kxai.backend.cuda.CudaBackend.exactPath(true) : false;
        boolean wasTf32 = tf32 ? dev.kxai.backend.cuda.CudaBackend.tf32(true) : false;
        try {
            return work.call();
        } finally {
            if (exact) {
                dev.kxai.backend.cpu.CpuBackend.exactPath(was);
                dev.kxai.backend.cuda.CudaBackend.exactPath(wasCuda);
            }
            if (tf32) {
                dev.kxai.backend.cuda.CudaBackend.tf32(wasTf32);
            }
        }
    }
}
