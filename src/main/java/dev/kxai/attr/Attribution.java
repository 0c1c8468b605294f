package dev.kxai.attr;

import dev.kxai.tensor.Tensor;

/**
 * What a method returns: attributions of the input's shape and, where asked for, the signed
 * convergence delta per row (Σ attributions − (F(x) − F(baseline))), else null; and where it was
 * computed.
 *
 * @param device         the backend that computed it ("cpu", "cuda")
 * @param fallbackReason why it ran on the CPU rather than the model's backend, or null
 */
public record Attribution(Tensor attributions, Tensor convergenceDelta, String device, String fallbackReason) {
    /** The device, with the fallback reason where there was one. */
    public String describeDevice() {
        return fallbackReason == null ? device : device + " (fell back: " + fallbackReason + ")";
    }
}
