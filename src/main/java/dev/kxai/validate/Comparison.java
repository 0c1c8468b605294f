package dev.kxai.validate;

/** Differences between computed and reference numbers: relative L2 error and max abs error. */
public record Comparison(double relL2, double maxAbs, double maxRef) {
    public static Comparison of(float[] got, float[] ref) {
        if (got.length != ref.length) {
            throw new IllegalArgumentException(got.length + " values vs " + ref.length + " reference values");
        }
        double num = 0;
        double den = 0;
        double maxAbs = 0;
        double maxRef = 0;
        for (int i = 0; i < got.length; i++) {
            double e = (double) got[i] - ref[i];
            num += e * e;
            den += (double) ref[i] * ref[i];
            maxAbs = Math.max(maxAbs, Double.isNaN(e) ? Double.POSITIVE_INFINITY : Math.abs(e));
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
        }
        double rel = den == 0 ? (num == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(num / den);
        return new Comparison(Double.isNaN(rel) ? Double.POSITIVE_INFINITY : rel, maxAbs, maxRef);
    }

    /** Relative L2 within relTol and every element within absTol. */
    public boolean within(double relTol, double absTol) {
        return relL2 <= relTol && maxAbs <= absTol;
    }
}
