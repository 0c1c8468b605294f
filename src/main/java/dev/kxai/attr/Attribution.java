package dev.kxai.attr;

import dev.kxai.tensor.Tensor;

/**
 * What a method returns: attributions of the input's shape and, where asked for, the signed
 * convergence delta per row (Σ attributions − (F(x) − F(baseline))), else null.
 */
public record Attribution(Tensor attributions, Tensor convergenceDelta) {
}
