/**
 * kxai: gradient and path attributions (Captum's methods) for ONNX models on the JVM.
 *
 * <p>Entry points: {@link dev.kxai.Model} loads a model; the methods in {@code dev.kxai.attr}
 * explain a batch. Errors users can cause are {@link dev.kxai.KxaiException}s.
 */
package dev.kxai;
