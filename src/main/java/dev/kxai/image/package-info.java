/**
 * Images as model inputs: {@link dev.kxai.image.Images} reads PNG and JPEG (the JDK's ImageIO) and
 * resizes and crops; {@link dev.kxai.image.Preprocess} is torchvision's Resize / CenterCrop /
 * ToTensor / Normalize as one immutable spec (a preset, JSON, or the file beside a model) that turns
 * images into an NCHW float batch. Thread-safe; used by {@code kxai explain --image} and by services.
 */
package dev.kxai.image;
