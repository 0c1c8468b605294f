package dev.kxai.backend;

/**
 * DeepLift's rescale rule and LRP's stabilised division on host arrays: the CPU twins of
 * {@code kernels/rules.cu}, written in the same float expression order. DeepLift's tensors are
 * [x rows; reference rows], {@code half} elements each; element h of the first half pairs with
 * h + half of the second.
 */
public final class RuleOps {
    /** Captum's threshold below which |x − x_ref| counts as no change (the ordinary gradient is used). */
    public static final float EPS = 1e-10f;

    private RuleOps() {
    }

    /**
     * num = gy ⊙ Δout, Δout = y_x − y_ref in both halves (a nonlinearity), or for a max-pool
     * max(y_x, y_ref) − y_ref in the first half and y_x − max(y_x, y_ref) in the second.
     */
    public static float[] scale(float[] gy, float[] y, boolean maxPool) {
        int half = y.length / 2;
        float[] num = new float[y.length];
        for (int e = 0; e < num.length; e++) {
            int h = e % half;
            float yx = y[h];
            float yr = y[h + half];
            float d;
            if (maxPool) {
                float m = yx >= yr ? yx : yr;
                d = e < half ? m - yr : yx - m;
            } else {
                d = yx - yr;
            }
            num[e] = gy[e] * d;
        }
        return num;
    }

    /** gx = |Δin| < eps ? plain : n / Δin, n = num (or the two halves of num summed), Δin = x_x − x_ref. */
    public static float[] rescale(float[] plain, float[] num, float[] x, boolean sumHalves, float eps) {
        int half = x.length / 2;
        float[] gx = new float[x.length];
        for (int e = 0; e < gx.length; e++) {
            int h = e % half;
            float din = x[h] - x[h + half];
            float n = sumHalves ? num[h] + num[h + half] : num[e];
            gx[e] = Math.abs(din) < eps ? plain[e] : n / din;
        }
        return gx;
    }

    /**
     * LRP's z-rule denominator (Captum's {@code _backward_hook_output}): out = r / (z + sign(z)·eps)
     * with sign(0) = 1, i.e. −eps where z &lt; 0 and +eps elsewhere.
     */
    public static float[] lrpStabilize(float[] r, float[] z, float eps) {
        float[] out = new float[r.length];
        for (int e = 0; e < out.length; e++) {
            float zz = z[e];
            out[e] = r[e] / (zz + (zz < 0f ? -eps : eps));
        }
        return out;
    }
}
