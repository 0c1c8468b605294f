package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.tensor.Tensor;

/**
 * Integrated Decision Gradients / IDGI (Yang, Wang and Bilen, "IDGI: A Framework to Eliminate
 * Explanation Noise from Integrated Gradients", CVPR 2023). On the points p_0 = b … p_n = x of an
 * integrated-gradients path, step j's output change d_j = F(p_{j+1}) − F(p_j) is given to the
 * features in proportion to the squared gradient at p_j (the part of the step that moves along the
 * gradient, the "important direction"):
 * <pre>  attr_i = Σ_j g_{j,i}² / ‖g_j‖² · d_j</pre>
 * so Σ attr = F(x) − F(b) exactly, however few the steps (a step whose gradient is 0 everywhere
 * gives its d_j to nobody; the convergence delta reports it). The noise IG picks up where the path
 * crosses flat regions (small d_j, large orthogonal gradient) is dropped. The authors' reference
 * code takes the gradient at the left point of each step, as here.
 *
 * <p>The points are α_j = j/n on the straight line from the baseline, or user-given α's that
 * start at 0 and end at 1. All batch × (n + 1) points run in chunks of the memory budget.
 */
public final class Idgi {
    private final Model model;
    private final double[] alphas;
    private final Baseline baseline;
    private final ChunkPolicy chunks;

    /**
     * @param alphas the path's points in [0, 1], increasing, first 0 and last 1; null for j/nSteps
     */
    public Idgi(Model model, int nSteps, double[] alphas, Baseline baseline, Integer internalBatchSize) {
        this.model = model;
        this.alphas = alphas != null ? checked(alphas) : uniform(nSteps);
        this.baseline = baseline == null ? Baseline.zeros() : baseline;
        this.chunks = new ChunkPolicy(internalBatchSize);
    }

    private static double[] uniform(int n) {
        if (n < 1) {
            throw new InvalidInputException("idgi: n_steps must be at least 1, got " + n);
        }
        Quadrature.checkSteps("idgi", n);
        double[] a = new double[n + 1];
        for (int j = 0; j <= n; j++) {
            a[j] = (double) j / n;
        }
        return a;
    }

    private static double[] checked(double[] a) {
        if (a.length < 2 || a[0] != 0 || a[a.length - 1] != 1) {
            throw new InvalidInputException("idgi: the alphas must start at 0 and end at 1 (the baseline and the input), got "
                    + a.length + " value(s) from " + (a.length > 0 ? a[0] : "none") + " to "
                    + (a.length > 0 ? a[a.length - 1] : "none"));
        }
        for (int j = 1; j < a.length; j++) {
            if (!(a[j] > a[j - 1])) {
                throw new InvalidInputException("idgi: the alphas must increase; alpha[" + j + "] = " + a[j]
                        + " follows " + a[j - 1]);
            }
        }
        return a.clone();
    }

    /** acc[off + f] += g_f² / ‖g‖² · d over one example's gradient g (nothing where g = 0). */
    private static void settle(float[] g, int off, int per, double d, double[] acc) {
        double norm = 0;
        for (int f = 0; f < per; f++) {
            norm += (double) g[off + f] * g[off + f];
        }
        if (norm == 0) {
            return;
        }
        for (int f = 0; f < per; f++) {
            acc[off + f] += (double) g[off + f] * g[off + f] / norm * d;
        }
    }

    public Attribution attribute(Inputs in, int... targets) {
        Tensor x = PathPoints.singleInput(model, in, "idgi");
        String name = model.attributed(in).get(0);
        int batch = x.dim(0);
        int[] t = model.targets(targets, batch);
        Tensor b = baseline.expand(x);
        int per = x.rowSize();
        int points = alphas.length;
        var ran = model.run("idgi", runner -> {
            // points in blocks that fit the memory budget, rows point-major (point j of example i at
            // (j − j0)·batch + i); step j − 1 is settled once F(p_j) is known, from p_{j−1}'s gradient
            double[] acc = new double[x.size()];
            float[] prevGrad = new float[x.size()];
            double[] prevOut = new double[batch];
            double[] first = new double[batch];
            int block = chunks.stepsPerChunk(runner, batch, points);
            for (int j0 = 0; j0 < points; j0 += block) {
                int j1 = Math.min(points, j0 + block);
                float[] p = new float[(j1 - j0) * batch * per];
                int[] rowTargets = new int[(j1 - j0) * batch];
                for (int j = j0; j < j1; j++) {
                    float a = (float) alphas[j];
                    for (int i = 0; i < batch; i++) {
                        int row = (j - j0) * batch + i;
                        rowTargets[row] = t[i];
                        for (int f = 0; f < per; f++) {
                            float bv = b.data()[i * per + f];
                            p[row * per + f] = bv + a * (x.data()[i * per + f] - bv);
                        }
                    }
                }
                int[] shape = x.shape();
                shape[0] = (j1 - j0) * batch;
                PathPoints.Values v = PathPoints.at(runner, new Tensor(shape, p), rowTargets, chunks);
                for (int j = j0; j < j1; j++) {
                    for (int i = 0; i < batch; i++) {
                        int row = (j - j0) * batch + i;
                        double out = v.outputs()[row];
                        if (j == 0) {
                            first[i] = out;
                        } else {
                            settle(prevGrad, i * per, per, out - prevOut[i], acc);
                        }
                        prevOut[i] = out;
                        System.arraycopy(v.gradients(), row * per, prevGrad, i * per, per);
                    }
                }
            }
            return PathPoints.finish(name, x.shape(), acc, prevOut, first, runner.device());
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }
}
