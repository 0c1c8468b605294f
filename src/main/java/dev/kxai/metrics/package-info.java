/**
 * Faithfulness metrics of attributions: Captum's {@code captum.metrics} ({@link dev.kxai.metrics.Infidelity},
 * {@link dev.kxai.metrics.Sensitivity}: {@code sensitivity_max}), deletion and insertion curves
 * ({@link dev.kxai.metrics.DeletionInsertion}), Bhatt et al.'s faithfulness correlation
 * ({@link dev.kxai.metrics.FaithfulnessCorrelation}) and LIME's local fidelity
 * ({@link dev.kxai.metrics.LimeFidelity}). Every metric runs its forward passes batched through the
 * model's runner under the device policy, chunked by {@link dev.kxai.attr.ChunkPolicy}: rows that
 * only select values (the input's or the baseline's, by feature) are described compactly
 * ({@link dev.kxai.backend.Perturbation}) and built by the backend where it computes; random noise
 * is built on the host, chunk by chunk. Each result says where it ran.
 */
package dev.kxai.metrics;
