/**
 * Attribution methods with Captum's names, defaults and semantics: {@link dev.kxai.attr.Saliency},
 * {@link dev.kxai.attr.InputXGradient}, {@link dev.kxai.attr.IntegratedGradients}, and the
 * quadrature rules they use. Methods are backend-neutral: they call the model's runner.
 */
package dev.kxai.attr;
