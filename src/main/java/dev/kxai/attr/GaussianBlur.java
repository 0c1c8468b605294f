package dev.kxai.attr;

/**
 * A Gaussian blur over the last two axes (H, W) of [N, ..., H, W] images, as
 * {@code scipy.ndimage.gaussian_filter(x, sigma=[σ, σ, 0], mode="constant")} computes it (what Blur
 * IG's reference implementation uses): separable, a 1-D kernel exp(−t²/2σ²) normalised to sum 1 over
 * t ∈ [−r, r] with r = ⌊4σ + 0.5⌋, zeros outside the image (the kernel is not renormalised at the
 * border, so a blur of growing σ fades the image to 0: Blur IG's baseline). σ = 0 is the identity.
 * Accumulates in double.
 */
final class GaussianBlur {
    private GaussianBlur() {
    }

    /** SciPy's kernel for σ > 0 (truncate = 4). */
    static double[] kernel(double sigma) {
        int radius = (int) (4.0 * sigma + 0.5);
        double[] k = new double[2 * radius + 1];
        double sum = 0;
        for (int t = -radius; t <= radius; t++) {
            k[t + radius] = Math.exp(-0.5 * t * t / (sigma * sigma));
            sum += k[t + radius];
        }
        for (int i = 0; i < k.length; i++) {
            k[i] /= sum;
        }
        return k;
    }

    /**
     * @param x flat planes of h × w (any number of them: batch × channels)
     * @return the blurred planes, in double
     */
    static double[] blur(float[] x, int h, int w, double sigma) {
        double[] out = new double[x.length];
        if (sigma == 0) {
            for (int i = 0; i < x.length; i++) {
                out[i] = x[i];
            }
            return out;
        }
        double[] k = kernel(sigma);
        int r = k.length / 2;
        int planes = x.length / (h * w);
        double[] rows = new double[h * w];
        for (int p = 0; p < planes; p++) {
            int off = p * h * w;
            // along W
            for (int y = 0; y < h; y++) {
                for (int c = 0; c < w; c++) {
                    double s = 0;
                    for (int t = Math.max(-r, -c); t <= Math.min(r, w - 1 - c); t++) {
                        s += k[t + r] * x[off + y * w + c + t];
                    }
                    rows[y * w + c] = s;
                }
            }
            // along H
            for (int y = 0; y < h; y++) {
                for (int c = 0; c < w; c++) {
                    double s = 0;
                    for (int t = Math.max(-r, -y); t <= Math.min(r, h - 1 - y); t++) {
                        s += k[t + r] * rows[(y + t) * w + c];
                    }
                    out[off + y * w + c] = s;
                }
            }
        }
        return out;
    }
}
