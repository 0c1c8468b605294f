package dev.kxai.metrics;

/**
 * A metric's value per example, and where its forward passes ran.
 *
 * @param metric         the metric's name ("infidelity", "sensitivity_max", ...)
 * @param values         one value per example of the batch (NaN where the metric is undefined for it)
 * @param device         the backend that ran the forward passes ("cpu", "cuda")
 * @param fallbackReason why they ran on the CPU rather than the model's backend, or null
 */
public record Scores(String metric, double[] values, String device, String fallbackReason) {
    public Scores {
        values = values.clone();
    }

    @Override
    public double[] values() {
        return values.clone();
    }

    /** The mean over the examples where the metric is defined (finite), NaN where it is for none. */
    public double mean() {
        return Stats.finiteMean(values);
    }

    /** The device, with the fallback reason where there was one. */
    public String describeDevice() {
        return fallbackReason == null ? device : device + " (fell back: " + fallbackReason + ")";
    }
}
