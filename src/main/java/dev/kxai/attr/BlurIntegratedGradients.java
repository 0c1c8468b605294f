package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;

/**
 * Blur Integrated Gradients (Xu, Venugopalan and Sundararajan, "Attribution in Scale and Space",
 * CVPR 2020): integrated gradients along the path of ever stronger Gaussian blurs of the input
 * x(σ) = G_σ ∗ x, from σ = max_sigma (the baseline: the image blurred away) down to σ = 0 (the
 * input), so no baseline has to be chosen and no feature is introduced that the image does not
 * hold. As the reference implementation (PAIR's {@code saliency.core.blur_ig}) computes it:
 * σ_i = i·max_sigma/n (or √ of it with {@code sqrt}), i = 0 … n; at each of the n points
 * x(σ_i) the gradient ∇F and the blur's derivative ∂x/∂σ ≈ (x(σ_i + grad_step) − x(σ_i))/grad_step;
 * attr = −Σ_i (σ_{i+1} − σ_i) · ∂x/∂σ ⊙ ∇F(x(σ_i)). Σ attr ≈ F(x) − F(x(max_sigma)), the
 * convergence delta's reference.
 *
 * <p>Blurs the last two axes ([N, C, H, W] or [N, H, W]): {@link GaussianBlur}. All batch × n
 * points run in chunks of the memory budget.
 */
public final class BlurIntegratedGradients {
    private final Model model;
    private final int steps;
    private final double maxSigma;
    private final double gradStep;
    private final boolean sqrt;
    private final ChunkPolicy chunks;

    public BlurIntegratedGradients(Model model, int steps, double maxSigma, double gradStep, boolean sqrt,
            Integer internalBatchSize) {
        if (steps < 1) {
            throw new InvalidInputException("blur_ig: n_steps must be at least 1, got " + steps);
        }
        Quadrature.checkSteps("blur_ig", steps);
        if (!(maxSigma > 0) || Double.isInfinite(maxSigma)) {
            throw new InvalidInputException("blur_ig: max_sigma must be a positive number, got " + maxSigma);
        }
        if (!(gradStep > 0) || Double.isInfinite(gradStep)) {
            throw new InvalidInputException("blur_ig: grad_step must be a positive number, got " + gradStep);
        }
        this.model = model;
        this.steps = steps;
        this.maxSigma = maxSigma;
        this.gradStep = gradStep;
        this.sqrt = sqrt;
        this.chunks = new ChunkPolicy(internalBatchSize);
    }

    /** σ_0 … σ_n. */
    double[] sigmas() {
        double[] s = new double[steps + 1];
        for (int i = 0; i <= steps; i++) {
            double v = i * maxSigma / steps;
            s[i] = sqrt ? Math.sqrt(v) : v;
        }
        return s;
    }

    public Attribution attribute(Inputs in, int... targets) {
        Tensor x = PathPoints.singleInput(model, in, "blur_ig");
        String name = model.attributed(in).get(0);
        if (x.rank() < 3) {
            throw new InvalidInputException("blur_ig: blurs the last two axes of an image input [N, C, H, W] or [N, H, W]; '"
                    + name + "' has shape " + Shapes.str(x.shape()));
        }
        int batch = x.dim(0);
        int per = x.rowSize();
        int h = x.dim(x.rank() - 2);
        int w = x.dim(x.rank() - 1);
        int[] t = model.targets(targets, batch);
        double[] sigma = sigmas();
        // the fully blurred image, for the delta's F(x(max_sigma)); x itself is the point at σ_0 = 0
        float[] end = new float[x.size()];
        double[] blurred = GaussianBlur.blur(x.data(), h, w, sigma[steps]);
        for (int k = 0; k < end.length; k++) {
            end[k] = (float) blurred[k];
        }
        var ran = model.run("blur integrated gradients", runner -> {
            // the σ's in blocks that fit the memory budget; rows σ-major ((j − j0)·batch + i)
            double[] acc = new double[x.size()];
            double[] atInput = new double[batch];
            int block = chunks.stepsPerChunk(runner, batch, steps);
            for (int j0 = 0; j0 < steps; j0 += block) {
                int j1 = Math.min(steps, j0 + block);
                float[] p = new float[(j1 - j0) * batch * per];
                float[] dxds = new float[p.length];
                int[] rowTargets = new int[(j1 - j0) * batch];
                for (int j = j0; j < j1; j++) {
                    double[] at = GaussianBlur.blur(x.data(), h, w, sigma[j]);
                    double[] next = GaussianBlur.blur(x.data(), h, w, sigma[j] + gradStep);
                    int o = (j - j0) * batch * per;
                    for (int k = 0; k < batch * per; k++) {
                        p[o + k] = (float) at[k];
                        dxds[o + k] = (float) ((next[k] - at[k]) / gradStep);
                    }
                    System.arraycopy(t, 0, rowTargets, (j - j0) * batch, batch);
                }
                int[] shape = x.shape();
                shape[0] = (j1 - j0) * batch;
                PathPoints.Values v = PathPoints.at(runner, new Tensor(shape, p), rowTargets, chunks);
                for (int j = j0; j < j1; j++) {
                    double ds = sigma[j + 1] - sigma[j];
                    int o = (j - j0) * batch * per;
                    for (int k = 0; k < batch * per; k++) {
                        acc[k] -= ds * dxds[o + k] * v.gradients()[o + k];
                    }
                    if (j == 0) {
                        System.arraycopy(v.outputs(), 0, atInput, 0, batch);
                    }
                }
            }
            double[] atBlurred = PathPoints.at(runner, new Tensor(x.shape(), end), t, chunks).outputs();
            return PathPoints.finish(name, x.shape(), acc, atInput, atBlurred, runner.device());
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
