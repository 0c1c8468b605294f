package dev.kxai.backend.cpu;

/**
 * erf(x) in double, within one unit in the last place: the rational approximations of fdlibm's
 * {@code s_erf.c} (the algorithm most C libraries' erf descends from, glibc's and musl's among them),
 * written out for the JVM. It replaces Commons Math's {@code Erf.erf}, which evaluates erf through
 * the regularized incomplete gamma function (a series or a continued fraction with a log and an exp
 * per element) and took two thirds of vit_b_16's CPU time in its GELUs (bench/RESULTS.md, "vit_b_16 on
 * the CPU"). The unary operators round this double to float once, so the float results are those of
 * the exact erf except where it lies within a unit of double of a float rounding boundary
 * ({@code ErrorFunctionTest} checks it against a 50-digit reference and against Commons Math).
 * <p>
 * The coefficients are fdlibm's, which carries this notice: Copyright (C) 1993 by Sun Microsystems,
 * Inc. All rights reserved. Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use,
 * copy, modify, and distribute this software is freely granted, provided that this notice is preserved.
 */
final class ErrorFunction {
    private ErrorFunction() {
    }

    /** erf(1) rounded to float: the interval [0.84375, 1.25] approximates erf(x) − ERX. */
    private static final double ERX = 8.45062911510467529297e-01;
    private static final double EFX = 1.28379167095512586316e-01; // 2/√π − 1
    private static final double EFX8 = 1.02703333676410069053e+00;

    // erf on [0, 0.84375]: x + x·P(x²)/Q(x²)
    private static final double PP0 = 1.28379167095512558561e-01;
    private static final double PP1 = -3.25042107247001499370e-01;
    private static final double PP2 = -2.84817495755985104766e-02;
    private static final double PP3 = -5.77027029648944159157e-03;
    private static final double PP4 = -2.37630166566501626084e-05;
    private static final double QQ1 = 3.97917223959155352819e-01;
    private static final double QQ2 = 6.50222499887672944485e-02;
    private static final double QQ3 = 5.08130628187576562776e-03;
    private static final double QQ4 = 1.32494738004321644526e-04;
    private static final double QQ5 = -3.96022827877536812320e-06;

    // erf on [0.84375, 1.25]: ERX + P(s)/Q(s), s = x − 1
    private static final double PA0 = -2.36211856075265944077e-03;
    private static final double PA1 = 4.14856118683748331666e-01;
    private static final double PA2 = -3.72207876035701323847e-01;
    private static final double PA3 = 3.18346619901161753674e-01;
    private static final double PA4 = -1.10894694282396677476e-01;
    private static final double PA5 = 3.54783043256182359371e-02;
    private static final double PA6 = -2.16637559486879084300e-03;
    private static final double QA1 = 1.06420880400844228286e-01;
    private static final double QA2 = 5.40397917702171048937e-01;
    private static final double QA3 = 7.18286544141962662868e-02;
    private static final double QA4 = 1.26171219808761642112e-01;
    private static final double QA5 = 1.36370839120290507362e-02;
    private static final double QA6 = 1.19844998467991074170e-02;

    // erfc on [1.25, 1/0.35]: exp(−x² − 0.5625 + R(1/x²)/S(1/x²)) / x
    private static final double RA0 = -9.86494403484714822705e-03;
    private static final double RA1 = -6.93858572707181764372e-01;
    private static final double RA2 = -1.05586262253232909814e+01;
    private static final double RA3 = -6.23753324503260060396e+01;
    private static final double RA4 = -1.62396669462573470355e+02;
    private static final double RA5 = -1.84605092906711035994e+02;
    private static final double RA6 = -8.12874355063065934246e+01;
    private static final double RA7 = -9.81432934416914548592e+00;
    private static final double SA1 = 1.96512716674392571292e+01;
    private static final double SA2 = 1.37657754143519042600e+02;
    private static final double SA3 = 4.34565877475229228821e+02;
    private static final double SA4 = 6.45387271733267880336e+02;
    private static final double SA5 = 4.29008140027567833386e+02;
    private static final double SA6 = 1.08635005541779435134e+02;
    private static final double SA7 = 6.57024977031928170135e+00;
    private static final double SA8 = -6.04244152148580987438e-02;

    // erfc on [1/0.35, 6]
    private static final double RB0 = -9.86494292470009928597e-03;
    private static final double RB1 = -7.99283237680523006574e-01;
    private static final double RB2 = -1.77579549177547519889e+01;
    private static final double RB3 = -1.60636384855821916062e+02;
    private static final double RB4 = -6.37566443368389627722e+02;
    private static final double RB5 = -1.02509513161107724954e+03;
    private static final double RB6 = -4.83519191608651397019e+02;
    private static final double SB1 = 3.03380607434824582924e+01;
    private static final double SB2 = 3.25792512996573918826e+02;
    private static final double SB3 = 1.53672958608443695994e+03;
    private static final double SB4 = 3.19985821950859553908e+03;
    private static final double SB5 = 2.55305040643316442583e+03;
    private static final double SB6 = 4.74528541206955367215e+02;
    private static final double SB7 = -2.24409524465858183362e+01;

    /** erf(x); ±1 beyond |x| = 6 (1 − erf(6) &lt; 2.2e-17), NaN for NaN. */
    static double erf(double x) {
        if (x != x) {
            return x;
        }
        double ax = Math.abs(x);
        double r;
        if (ax < 0.84375) {
            if (ax < 0x1p-28) { // erf(x) = x·2/√π to double precision; EFX8 form avoids underflow
                r = ax < 0x1p-1015 ? 0.125 * (8.0 * ax + EFX8 * ax) : ax + EFX * ax;
            } else {
                double z = ax * ax;
                double p = PP0 + z * (PP1 + z * (PP2 + z * (PP3 + z * PP4)));
                double q = 1.0 + z * (QQ1 + z * (QQ2 + z * (QQ3 + z * (QQ4 + z * QQ5))));
                r = ax + ax * (p / q);
            }
        } else if (ax < 1.25) {
            double s = ax - 1.0;
            double p = PA0 + s * (PA1 + s * (PA2 + s * (PA3 + s * (PA4 + s * (PA5 + s * PA6)))));
            double q = 1.0 + s * (QA1 + s * (QA2 + s * (QA3 + s * (QA4 + s * (QA5 + s * QA6)))));
            r = ERX + p / q;
        } else if (ax >= 6.0) {
            r = 1.0;
        } else {
            double s = 1.0 / (ax * ax);
            double p;
            double q;
            if (ax < 1 / 0.35) {
                p = RA0 + s * (RA1 + s * (RA2 + s * (RA3 + s * (RA4 + s * (RA5 + s * (RA6 + s * RA7))))));
                q = 1.0 + s * (SA1 + s * (SA2 + s * (SA3 + s * (SA4 + s * (SA5 + s * (SA6 + s * (SA7 + s * SA8)))))));
            } else {
                p = RB0 + s * (RB1 + s * (RB2 + s * (RB3 + s * (RB4 + s * (RB5 + s * RB6)))));
                q = 1.0 + s * (SB1 + s * (SB2 + s * (SB3 + s * (SB4 + s * (SB5 + s * (SB6 + s * SB7))))));
            }
            // z = x with the low 32 bits of its representation cleared, so that z² is exact and
            // exp(−x²) = exp(−z²)·exp((z − x)(z + x)) loses nothing to the rounding of x²
            double z = Double.longBitsToDouble(Double.doubleToRawLongBits(ax) & 0xffffffff00000000L);
            double e = Math.exp(-z * z - 0.5625) * Math.exp((z - ax) * (z + ax) + p / q);
            r = 1.0 - e / ax;
        }
        return x < 0 ? -r : r;
    }
}
