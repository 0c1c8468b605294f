package dev.kxai.attr.perturbation;

import dev.kxai.InvalidInputException;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * Ready-made feature masks (Captum's {@code feature_mask}) for inputs that have too many scalars
 * to perturb one by one: square superpixels of an image, shared across its channels.
 */
public final class FeatureMasks {
    private FeatureMasks() {
    }

    /**
     * Square cells of {@code cell}×{@code cell} pixels over the last two axes of an example
     * ([C, H, W] or [H, W]; [F] gets runs of {@code cell} features), numbered row by row, the same
     * for every channel; edge cells are cropped.
     */
    public static Tensor grid(int[] example, int cell) {
        if (cell < 1) {
            throw new InvalidInputException("superpixel size must be at least 1, got " + cell);
        }
        if (example.length == 0 || example.length > 3) {
            throw new InvalidInputException("superpixels need examples of shape [F], [H, W] or [C, H, W], not "
                    + Shapes.str(example));
        }
        int w = example[example.length - 1];
        int h = example.length >= 2 ? example[example.length - 2] : 1;
        int c = example.length == 3 ? example[0] : 1;
        int across = (w + cell - 1) / cell;
        float[] ids = new float[c * h * w];
        for (int ch = 0; ch < c; ch++) {
            for (int i = 0; i < h; i++) {
                for (int j = 0; j < w; j++) {
                    ids[(ch * h + i) * w + j] = (example.length == 1 ? 0 : (i / cell) * across) + j / cell;
                }
            }
        }
        return new Tensor(example.clone(), ids);
    }
}
