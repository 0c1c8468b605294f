package dev.kxai.attr;

import dev.kxai.tensor.Tensor;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a method returns: attributions of the input's shape and, where asked for, the signed
 * convergence delta per row (Σ attributions − (F(x) − F(baseline)), summed over every attributed
 * input), else null; and where it was computed. A model with several inputs gets one attribution
 * per attributed input ({@link #byInput}, in the model's input order; {@link #attributions} is the
 * first); a layer method's is keyed by the layer's value name.
 *
 * @param device         the backend that computed it ("cpu", "cuda")
 * @param fallbackReason why it ran on the CPU rather than the model's backend, or null
 * @param byInput        the attributions by input (or layer) name; empty when a caller built a single one
 */
public record Attribution(Tensor attributions, Tensor convergenceDelta, String device, String fallbackReason,
        Map<String, Tensor> byInput) {
    public Attribution {
        byInput = byInput == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(byInput));
    }

    public Attribution(Tensor attributions, Tensor convergenceDelta, String device, String fallbackReason) {
        this(attributions, convergenceDelta, device, fallbackReason, Map.of());
    }

    /** Attributions by name (in order), the first also as {@link #attributions}. */
    public static Attribution of(Map<String, Tensor> byInput, Tensor delta, String device, String fallbackReason) {
        return new Attribution(byInput.values().iterator().next(), delta, device, fallbackReason, byInput);
    }

    /** The same attributions, computed on {@code device} (for {@code fallbackReason}, where not null). */
    public Attribution ranOn(String device, String fallbackReason) {
        return new Attribution(attributions, convergenceDelta, device, fallbackReason, byInput);
    }

    /** The attributions by input name; one a caller built without a name is {@code name}'s. */
    public Map<String, Tensor> byInputOr(String name) {
        return byInput.isEmpty() ? Map.of(name, attributions) : byInput;
    }

    /** The device, with the fallback reason where there was one. */
    public String describeDevice() {
        return fallbackReason == null ? device : device + " (fell back: " + fallbackReason + ")";
    }
}
