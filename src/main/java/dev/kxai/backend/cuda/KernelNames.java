package dev.kxai.backend.cuda;

import java.util.List;

/** The kernels of each module (kernels/&lt;module&gt;.cu), looked up once when the module loads. */
final class KernelNames {
    private KernelNames() {
    }

    static List<String> of(String module) {
        return switch (module) {
            case "path" -> List.of("path_interpolate", "path_interpolate_f64", "path_accumulate", "attribution_finish", "row_sum");
            case "dense" -> List.of("bias_act_forward", "bias_act_forward_keep", "gemm_f64", "act_forward", "act_backward", "binary_forward",
                    "binary_backward", "scale_copy", "add_inplace");
            case "conv" -> List.of("conv2d_forward", "conv2d_forward_f64", "im2col_input_grad", "maxpool_forward", "maxpool_backward",
                    "avgpool_forward", "avgpool_backward", "global_avgpool_forward", "global_avgpool_backward",
                    "channel_affine");
            case "head" -> List.of("softmax_forward", "softmax_backward", "seed_one_hot", "gather_target");
            default -> throw new IllegalArgumentException("unknown kernel module " + module);
        };
    }
}
