/**
 * The perturbation methods (Captum's {@code Occlusion}, {@code FeatureAblation},
 * {@code FeaturePermutation}, {@code ShapleyValues}, {@code ShapleyValueSampling},
 * {@code KernelShap}, {@code Lime}): attributions from the model's outputs on perturbed copies of
 * the input, with no gradient. Each method describes its perturbed rows compactly
 * ({@link dev.kxai.backend.Perturbation}); the backend builds them where it computes and runs them
 * in large batched forward passes ({@link dev.kxai.attr.perturbation.PerturbationLoop}, sized by
 * the same {@link dev.kxai.attr.ChunkPolicy} as the path methods). Captum loops over small
 * forward calls instead.
 */
package dev.kxai.attr.perturbation;
