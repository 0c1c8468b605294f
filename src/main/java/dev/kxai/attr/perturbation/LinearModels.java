package dev.kxai.attr.perturbation;

import dev.kxai.KxaiException;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.ArrayRealVector;
import org.apache.commons.math3.linear.RealVector;
import org.apache.commons.math3.linear.SingularValueDecomposition;
import org.ojalgo.matrix.store.MatrixStore;
import org.ojalgo.matrix.store.RawStore;
import org.ojalgo.optimisation.Optimisation;
import org.ojalgo.optimisation.convex.ConvexSolver;

/**
 * The interpretable models of LIME and KernelSHAP, fitted with an intercept on weighted samples as
 * scikit-learn's (which Captum calls) are, but solved by maintained libraries rather than by hand:
 * <ul>
 *   <li>weighted least squares ({@code LinearRegression}): Apache Commons Math's SVD solver on the
 *       weight-centred, √w-scaled system, the minimum-norm solution where it is rank deficient, as
 *       scikit-learn's {@code lstsq};</li>
 *   <li>Lasso ({@code Lasso(alpha)}: minimise Σ w_i r_i² / (2 Σ w) + α‖β‖₁, scikit-learn's objective
 *       with its sample weights rescaled to sum to n): ojAlgo's convex QP solver on β = u − v with
 *       u, v ≥ 0, solved to optimality rather than to coordinate descent's tolerance.</li>
 * </ul>
 */
public final class LinearModels {
    static {
        // ojAlgo prints a banner about hardware profiles to stdout unless told not to
        if (System.getProperty("shut.up.ojAlgo") == null) {
            System.setProperty("shut.up.ojAlgo", "true");
        }
    }

    private LinearModels() {
    }

    /** Coefficients and intercept. */
    public record Fit(double[] coef, double intercept) {
    }

    /** Weighted least squares with an intercept. */
    public static Fit leastSquares(double[][] x, double[] y, double[] w) {
        return leastSquares(x, y, w, 0);
    }

    /**
     * Weighted least squares as {@link #leastSquares(double[][], double[], double[])}, with singular
     * values below {@code rcond}·σ_max treated as 0 (NumPy's {@code lstsq} rcond): for features
     * computed in float, whose exact linear dependencies survive only to float rounding (a layer's
     * unit that is the sum of two others), rcond ≈ 1e-5 keeps the rounding noise from becoming a
     * direction. 0: Commons Math's own threshold (double precision).
     */
    public static Fit leastSquares(double[][] x, double[] y, double[] w, double rcond) {
        Centred c = new Centred(x, y, w);
        if (c.p == 0) {
            return new Fit(new double[0], c.yMean);
        }
        Array2DRowRealMatrix a = new Array2DRowRealMatrix(c.n, c.p);
        double[] b = new double[c.n];
        for (int i = 0; i < c.n; i++) {
            double s = Math.sqrt(w[i]);
            for (int j = 0; j < c.p; j++) {
                a.setEntry(i, j, s * c.xc[i][j]);
            }
            b[i] = s * c.yc[i];
        }
        SingularValueDecomposition svd = new SingularValueDecomposition(a);
        if (rcond <= 0) {
            return c.fit(svd.getSolver().solve(new ArrayRealVector(b, false)).toArray());
        }
        // β = V · diag(1/σ_k for σ_k > rcond·σ_max) · Uᵀ b
        double[] sv = svd.getSingularValues();
        double cut = rcond * (sv.length > 0 ? sv[0] : 0);
        RealVector utb = svd.getUT().operate(new ArrayRealVector(b, false));
        for (int k = 0; k < sv.length; k++) {
            utb.setEntry(k, sv[k] > cut ? utb.getEntry(k) / sv[k] : 0);
        }
        RealVector beta = svd.getV().operate(utb);
        return c.fit(beta.toArray());
    }

    /** Lasso with an intercept (scikit-learn's objective and weighting). */
    public static Fit lasso(double[][] x, double[] y, double[] w, double alpha) {
        Centred c = new Centred(x, y, w);
        int p = c.p;
        if (p == 0) {
            return new Fit(new double[0], c.yMean);
        }
        double sw = 0;
        for (double v : w) {
            sw += v;
        }
        // G = Xcᵀ W Xc / Σw, g = Xcᵀ W yc / Σw: the objective is ½ βᵀGβ − gᵀβ + α‖β‖₁ (+ const)
        double[][] gram = new double[p][p];
        double[] g = new double[p];
        for (int i = 0; i < c.n; i++) {
            double wi = w[i] / sw;
            for (int j = 0; j < p; j++) {
                double xij = c.xc[i][j] * wi;
                g[j] += xij * c.yc[i];
                for (int k = 0; k < p; k++) {
                    gram[j][k] += xij * c.xc[i][k];
                }
            }
        }
        // over z = [u; v] ≥ 0: ½ zᵀ [[G, −G], [−G, G]] z − [g − α; −g − α]ᵀ z
        RawStore q = RawStore.FACTORY.make(2 * p, 2 * p);
        RawStore lin = RawStore.FACTORY.make(2 * p, 1);
        for (int j = 0; j < p; j++) {
            for (int k = 0; k < p; k++) {
                q.set(j, k, gram[j][k]);
                q.set(j + p, k + p, gram[j][k]);
                q.set(j, k + p, -gram[j][k]);
                q.set(j + p, k, -gram[j][k]);
            }
            lin.set(j, 0, g[j] - alpha);
            lin.set(j + p, 0, -g[j] - alpha);
        }
        RawStore ai = RawStore.FACTORY.make(2 * p, 2 * p);
        RawStore bi = RawStore.FACTORY.make(2 * p, 1);
        for (int j = 0; j < 2 * p; j++) {
            ai.set(j, j, -1.0);
        }
        Optimisation.Result r = ConvexSolver.newBuilder().objective((MatrixStore<Double>) q, (MatrixStore<Double>) lin)
                .inequalities(ai, bi).build().solve();
        if (!r.getState().isOptimal() && !r.getState().isFeasible()) {
            throw new KxaiException("the Lasso fit did not converge (" + r.getState() + ")");
        }
        double[] beta = new double[p];
        for (int j = 0; j < p; j++) {
            beta[j] = r.doubleValue(j) - r.doubleValue(j + p);
        }
        return c.fit(beta);
    }

    /** The samples centred on their weighted means (the intercept is fitted unpenalised). */
    private static final class Centred {
        final int n;
        final int p;
        final double[][] xc;
        final double[] yc;
        final double[] xMean;
        final double yMean;

        Centred(double[][] x, double[] y, double[] w) {
            n = y.length;
            p = n == 0 ? 0 : x[0].length;
            if (x.length != n || w.length != n) {
                throw new IllegalArgumentException(x.length + " samples, " + n + " outputs, " + w.length + " weights");
            }
            double sw = 0;
            for (int i = 0; i < n; i++) {
                if (!(w[i] >= 0) || !Double.isFinite(w[i])) {
                    throw new dev.kxai.InvalidInputException("sample weight " + w[i] + " at sample " + i
                            + " (weights are finite and at least 0)");
                }
                sw += w[i];
            }
            if (!(sw > 0)) {
                throw new dev.kxai.InvalidInputException("every sample weight is 0: nothing to fit");
            }
            xMean = new double[p];
            double ym = 0;
            for (int i = 0; i < n; i++) {
                ym += w[i] * y[i];
                for (int j = 0; j < p; j++) {
                    xMean[j] += w[i] * x[i][j];
                }
            }
            yMean = ym / sw;
            for (int j = 0; j < p; j++) {
                xMean[j] /= sw;
            }
            xc = new double[n][p];
            yc = new double[n];
            for (int i = 0; i < n; i++) {
                yc[i] = y[i] - yMean;
                for (int j = 0; j < p; j++) {
                    xc[i][j] = x[i][j] - xMean[j];
                }
            }
        }

        Fit fit(double[] beta) {
            double b = yMean;
            for (int j = 0; j < p; j++) {
                b -= xMean[j] * beta[j];
            }
            return new Fit(beta, b);
        }
    }
}
