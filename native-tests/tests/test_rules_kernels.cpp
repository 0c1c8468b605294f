// test_rules_kernels.cpp: kernels/rules.cu through the fake driver, against references written
// here that mirror the CPU twins (dev.kxai.backend.RuleOps.scale / rescale) line for line, in
// the same float expression order (kernels and tests are compiled without FMA contraction, so
// the comparisons are on the bits: value, sign of zero, NaN payload).
//
// Every tensor is [2, half]: element h of the first half pairs with h + half of the second.
// deeplift_scale with maxpool = 0 and 1 over pairs where y_x > y_ref, y_x < y_ref, ties
// (equal values, and −0 against +0 both ways: the only ties where >= and > differ), negative
// values, random values whose differences round, a NaN with a payload in y, and NaNs with
// payloads in gy (in both halves, at pairs whose y is finite, so that only one operand of any
// operation is a NaN and its payload is defined on the CPU). deeplift_rescale with
// sum_halves = 0 and 1 and eps = 1e-10f over Δin exactly +0 and −0, Δin below eps (5e-11,
// built from nonzero floats too, and the float just below eps), exactly ±eps (the boundary
// that tells < from <=), just above (±2e-10), ordinary, large, and a NaN in x; g_plain holds
// values that no quotient produces and that differ element by element, so a wrong branch, a
// wrong half or a wrong index cannot pass. The in-place case (gx == g_plain) must give the same
// bits as the separate one. Half sizes 1, 7, 33, 257, 4099 at the Java launcher's geometry and
// at grids that make the grid-stride loops wrap (2·half elements per launch).
//
// Checked against meaning, independently of the references: DeepLift's summation to delta
// (maxpool = 0, then rescale without summing halves: Σ gx·Δin = Σ num = Σ gy·Δout up to float
// rounding, no Δin near 0); a max-pool with y_x ≥ y_ref everywhere gives exact zeros in the
// second half and the nonlinearity's num in the first, and with y_x < y_ref the mirror image;
// where |Δin| < eps the output is g_plain's bits.
//
// lrp_stabilize (LRP's z-rule division, RuleOps.lrpStabilize): out = r / (z + (z < 0 ? −eps : eps))
// over z = +0 and −0 (both take +eps, Captum's sign(0) = 1), ±eps exactly (the sign, not the
// magnitude, picks the side), tiny and ordinary values of both signs, large values, a NaN in z and
// in r, with eps 1e-9f and 1e-3f; bit for bit against the reference, in place (out == r) too; and
// by meaning: where |z| ≥ 1, out·(z + s·eps) = r within one rounding.
//
// Results come from the CPU emulator: they prove the kernels' logic and indexing, not speed.
// NaN payloads survive on the CPU; a GPU returns its canonical NaN instead, which these
// bitwise comparisons would not accept (the Java side compares NaN as NaN).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"
#include "kernel_test_util.h"

using namespace ktest;

namespace {

// The launcher's geometries, the wrapping one (kernel_test_util.h), and a block that is not a
// multiple of the warp on three blocks (as in test_perturb_kernels.cpp).
const Geometry kBlock33 = {"block=33 grid<=3", 33, 3};
const Geometry kRulesGeometries[] = {kLauncherEmulator, kLauncherGpu, kOddBlock, kBlock33};

const long long kHalves[] = {1, 7, 33, 257, 4099};

const float kEps = 1e-10f;  // RuleOps.EPS

uint32_t bits(float v)
{
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
}

float from_bits(uint32_t u)
{
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
}

// Bit-for-bit comparison of [2, half] outputs; prints the first mismatches by (half, h).
void expect_bits(const std::string& what, const Floats& got, const Floats& want, long long half)
{
    size_t mismatches = 0;
    for (size_t i = 0; i < want.size(); ++i)
        if (bits(got[i]) != bits(want[i]) && ++mismatches <= 5)
            CHECK_MSG(false, "%s[%s, h=%lld]: got %.9g (0x%08x), want %.9g (0x%08x)", what.c_str(),
                      static_cast<long long>(i) < half ? "x" : "ref", static_cast<long long>(i) % half,
                      static_cast<double>(got[i]), bits(got[i]), static_cast<double>(want[i]), bits(want[i]));
    CHECK_MSG(mismatches == 0, "%s: %zu of %zu elements differ", what.c_str(), mismatches, want.size());
}

// ---- references: RuleOps.scale / rescale, line for line ----------------------------------

Floats reference_scale(const Floats& gy, const Floats& y, bool maxPool)
{
    int half = static_cast<int>(y.size() / 2);
    Floats num(y.size());
    for (int e = 0; e < static_cast<int>(num.size()); e++) {
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

// plain_used / divided: how many elements took each branch (the data must reach both).
Floats reference_rescale(const Floats& plain, const Floats& num, const Floats& x, bool sumHalves, float eps,
                         size_t& plain_used, size_t& divided)
{
    int half = static_cast<int>(x.size() / 2);
    Floats gx(x.size());
    for (int e = 0; e < static_cast<int>(gx.size()); e++) {
        int h = e % half;
        float din = x[h] - x[h + half];
        float n = sumHalves ? num[h] + num[h + half] : num[e];
        gx[e] = std::fabs(din) < eps ? plain[e] : n / din;
        ++(std::fabs(din) < eps ? plain_used : divided);
    }
    return gx;
}

// ---- inputs ----------------------------------------------------------------------------------

const uint32_t kNanY = 0x7fc01234u, kNanGy0 = 0x7fc0abcdu, kNanGy1 = 0x7fc05678u, kNanX = 0x7fc04321u;

// The pairs (y_x, y_ref) of deeplift_scale, by category; the categories rotate over h so that
// every half size from 7 up sees most of them and 33 up sees all.
const int kScaleCategories = 10;

Floats make_y(long long half, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    Floats y(2 * half);
    for (long long h = 0; h < half; ++h) {
        const float k = static_cast<float>(h % 64) * 0.125f;  // exact offsets
        float yx, yr;
        switch (h % kScaleCategories) {
        case 0: yx = 2.5f + k, yr = 1.0f - k; break;              // y_x > y_ref
        case 1: yx = -1.0f + k, yr = 3.25f + k; break;            // y_x < y_ref
        case 2: yx = yr = 1.75f + k; break;                       // tie
        case 3: yx = -0.0f, yr = 0.0f; break;                     // tie −0 / +0: >= picks y_x
        case 4: yx = 0.0f, yr = -0.0f; break;                     // tie +0 / −0
        case 5: yx = -3.75f - k, yr = -1.25f; break;              // negative, y_x < y_ref
        case 6: yx = -0.5f, yr = -7.0f - k; break;                // negative, y_x > y_ref
        case 7: yx = dist(rng), yr = dist(rng); break;            // differences that round
        case 8: yx = 1.0e8f + 3.0f * k, yr = dist(rng); break;    // large, rounding
        default: yx = from_bits(kNanY), yr = 0.5f + k; break;     // NaN in y_x
        }
        y[h] = yx;
        y[h + half] = yr;
    }
    return y;
}

// gy: random values with ±0 sprinkled and a NaN with a payload in each half, at pairs whose
// y is finite (category 0; pair 0 is category 0 for every size).
Floats make_gy(long long half, unsigned seed)
{
    Floats gy = random_floats(2 * half, -3.0f, 3.0f, seed);
    sprinkle_zeros(gy, 11, seed + 1);
    gy[0] = from_bits(kNanGy0);
    const long long h1 = half > 10 ? 10 : 0;  // category 0 again
    gy[half + h1] = from_bits(kNanGy1);
    return gy;
}

// x of deeplift_rescale: the pairs (x_x, x_ref) by category of Δin.
const int kRescaleCategories = 14;

Floats make_x(long long half, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    const float below_eps = std::nextafterf(kEps, 0.0f);
    Floats x(2 * half);
    for (long long h = 0; h < half; ++h) {
        const float k = static_cast<float>(h % 64) * 0.125f;
        float xx, xr;
        switch (h % kRescaleCategories) {
        case 0: xx = dist(rng), xr = xx - (0.5f + k); break;    // ordinary (first: pair 0 divides)
        case 1: xx = xr = 1.5f + k; break;                      // Δin = +0
        case 2: xx = -0.0f, xr = 0.0f; break;                   // Δin = −0
        case 3: xx = 5e-11f, xr = 0.0f; break;                  // 0 < Δin < eps
        case 4: xx = 7e-10f, xr = 6.5e-10f; break;              // ≈ 5e-11 from nonzero floats
        case 5: xx = -3e-10f, xr = -2.5e-10f; break;            // ≈ −5e-11
        case 6: xx = below_eps, xr = 0.0f; break;               // the float just below eps
        case 7: xx = kEps, xr = 0.0f; break;                    // Δin = eps exactly: divides
        case 8: xx = 0.0f, xr = kEps; break;                    // Δin = −eps exactly: divides
        case 9: xx = 4e-10f, xr = 2e-10f; break;                // ≈ 2e-10
        case 10: xx = -1e-10f, xr = 1e-10f; break;              // −2e-10
        case 11: xx = 3.0e4f + k, xr = -1.7e4f; break;          // large
        case 12: xx = dist(rng), xr = dist(rng); break;         // ordinary, rounding
        default: xx = 0.25f, xr = from_bits(kNanX); break;      // NaN in x_ref
        }
        x[h] = xx;
        x[h + half] = xr;
    }
    return x;
}

// num: random, ±0, and one huge value (its quotient by a tiny Δin overflows to ±inf).
Floats make_num(long long half, unsigned seed)
{
    Floats num = random_floats(2 * half, -5.0f, 5.0f, seed);
    sprinkle_zeros(num, 13, seed + 1);
    if (half > 9)
        num[9] = 3.0e38f;  // pair 9: Δin ≈ 2e-10
    return num;
}

// g_plain: 1000 + e + 0.25 with alternating sign: distinct per element, far from any quotient
// of the data above (|n| <= 10, |Δin| >= 0.5 or <= 2e-10 or in [3e4, 5e4] or from random pairs).
Floats make_plain(long long half)
{
    Floats p(2 * half);
    for (long long e = 0; e < 2 * half; ++e)
        p[e] = (e % 2 ? -1.0f : 1.0f) * (1000.0f + static_cast<float>(e) + 0.25f);
    return p;
}

// ---- launches --------------------------------------------------------------------------------

void launch_scale(const Geometry& g, const device::Buffer& num, const device::Buffer& gy, const device::Buffer& y,
                  long long half, int maxpool)
{
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("rules", "deeplift_scale"), {grid_for(g, 2 * half)},
                                          {g.block}, 0, num.ptr(), gy.ptr(), y.ptr(), half, maxpool));
}

void launch_rescale(const Geometry& g, const device::Buffer& gx, const device::Buffer& plain,
                    const device::Buffer& num, const device::Buffer& x, long long half, int sum_halves, float eps)
{
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("rules", "deeplift_rescale"), {grid_for(g, 2 * half)},
                                          {g.block}, 0, gx.ptr(), plain.ptr(), num.ptr(), x.ptr(), half, sum_halves,
                                          eps));
}

// ---- deeplift_scale vs the reference ---------------------------------------------------------

void test_scale(long long half, int maxpool, const Geometry& g)
{
    const Floats y = make_y(half, 61), gy = make_gy(half, 62);
    const Floats want = reference_scale(gy, y, maxpool != 0);
    const long long n = 2 * half;
    device::Buffer dnum(n * 4), dgy(n * 4), dy(n * 4);
    dgy.upload(gy);
    dy.upload(y);
    launch_scale(g, dnum, dgy, dy, half, maxpool);
    const Floats got = dnum.download<float>(n);
    expect_bits("num", got, want, half);
    // the NaN payloads of gy reach num (y is finite at their pairs, the difference nonzero there)
    CHECK_MSG(bits(got[0]) == kNanGy0, "num[0] = 0x%08x, want gy's NaN 0x%08x", bits(got[0]), kNanGy0);
}

// ---- deeplift_rescale vs the reference, separate and in place ---------------------------------

void test_rescale(long long half, int sum_halves, bool in_place, const Geometry& g)
{
    const Floats x = make_x(half, 71), num = make_num(half, 72), plain = make_plain(half);
    size_t plain_used = 0, divided = 0;
    const Floats want = reference_rescale(plain, num, x, sum_halves != 0, kEps, plain_used, divided);
    if (half >= 33)
        CHECK_MSG(plain_used > 0 && divided > 0, "test data reaches one branch only (plain %zu, divided %zu)",
                  plain_used, divided);
    const long long n = 2 * half;
    device::Buffer dgx(n * 4), dplain(n * 4), dnum(n * 4), dx(n * 4);
    dplain.upload(plain);
    dnum.upload(num);
    dx.upload(x);
    if (in_place) {
        // gx aliases g_plain: the buffer starts as g_plain and ends as gx
        launch_rescale(g, dplain, dplain, dnum, dx, half, sum_halves, kEps);
        expect_bits("gx (in place)", dplain.download<float>(n), want, half);
        // and matches a separate launch bit for bit
        dplain.upload(plain);
        launch_rescale(g, dgx, dplain, dnum, dx, half, sum_halves, kEps);
        expect_bits("gx (separate)", dgx.download<float>(n), want, half);
        // and leaves g_plain untouched when it does not alias gx
        expect_bits("g_plain after a separate launch", dplain.download<float>(n), plain, half);
        return;
    }
    launch_rescale(g, dgx, dplain, dnum, dx, half, sum_halves, kEps);
    const Floats got = dgx.download<float>(n);
    expect_bits("gx", got, want, half);
    // where |Δin| < eps the output is g_plain's bits, wherever |Δin| >= eps it is not
    size_t wrong = 0;
    for (long long e = 0; e < n; ++e) {
        const long long h = e % half;
        const float din = x[h] - x[h + half];
        const bool plain_expected = std::fabs(din) < kEps;
        if (plain_expected != (bits(got[e]) == bits(plain[e])))
            ++wrong;
    }
    CHECK_MSG(wrong == 0, "%zu elements disagree with |din| < eps about taking g_plain", wrong);
}

// ---- meaning, without the references ---------------------------------------------------------

// DeepLift's summation to delta through both kernels: y = tanh(x) on the host, num = gy·Δy
// (maxpool = 0), gx = num / Δx (sum_halves = 0, |Δx| >= 0.25 everywhere). Σ gx·Δx = Σ num
// within one rounding of each quotient, and Σ num = Σ gy·(y_x − y_ref) within the rounding of
// each difference and product.
void test_summation_to_delta(long long half, const Geometry& g)
{
    const long long n = 2 * half;
    std::mt19937 rng(81);
    std::uniform_real_distribution<float> pos(-2.0f, 2.0f), gap(0.25f, 1.5f);
    Floats x(n), y(n);
    for (long long h = 0; h < half; ++h) {
        x[h] = pos(rng);
        x[h + half] = x[h] + ((h % 2) ? gap(rng) : -gap(rng));
    }
    for (long long i = 0; i < n; ++i)
        y[i] = std::tanh(x[i]);
    const Floats gy = random_floats(n, -2.0f, 2.0f, 82), plain = make_plain(half);
    device::Buffer dnum(n * 4), dgy(n * 4), dy(n * 4), dgx(n * 4), dplain(n * 4), dx(n * 4);
    dgy.upload(gy);
    dy.upload(y);
    dplain.upload(plain);
    dx.upload(x);
    launch_scale(g, dnum, dgy, dy, half, 0);
    launch_rescale(g, dgx, dplain, dnum, dx, half, 0, kEps);
    const Floats num = dnum.download<float>(n), gx = dgx.download<float>(n);
    double sum_gx_dx = 0, sum_num = 0, abs_num = 0, sum_gy_dy = 0, abs_gy_dy = 0;
    for (long long e = 0; e < n; ++e) {
        const long long h = e % half;
        const double dx_exact = static_cast<double>(x[h]) - x[h + half];
        const double dx = static_cast<float>(dx_exact);  // the kernel's Δin
        CHECK_MSG(std::fabs(dx) >= 0.25, "Δin[%lld] = %g: test data near 0", h, dx);
        sum_gx_dx += static_cast<double>(gx[e]) * dx;  // exact in double
        sum_num += num[e];
        abs_num += std::fabs(num[e]);
        const double t = static_cast<double>(gy[e]) * (static_cast<double>(y[h]) - y[h + half]);
        sum_gy_dy += t;
        abs_gy_dy += std::fabs(t);
    }
    const double u = std::ldexp(1.0, -24);  // float's unit roundoff
    const double tol1 = abs_num * u * 1.01 + 1e-30;
    CHECK_MSG(std::fabs(sum_gx_dx - sum_num) <= tol1, "Σ gx·Δin = %.12g, Σ num = %.12g (tolerance %.3g)", sum_gx_dx,
              sum_num, tol1);
    const double tol2 = abs_gy_dy * 2 * u * 1.01 + 1e-30;
    CHECK_MSG(std::fabs(sum_num - sum_gy_dy) <= tol2, "Σ num = %.12g, Σ gy·Δy = %.12g (tolerance %.3g)", sum_num,
              sum_gy_dy, tol2);
}

// Max-pool with one side winning everywhere: the losing half's num is exactly zero (gy·0, sign
// aside) and the winning half's num is the nonlinearity's, bit for bit. x_wins: y_x >= y_ref
// everywhere (ties included, −0 and +0 both ways); else y_x < y_ref everywhere.
void test_maxpool_meaning(long long half, bool x_wins, const Geometry& g)
{
    const long long n = 2 * half;
    Floats y = random_floats(n, -3.0f, 3.0f, 91);
    for (long long h = 0; h < half; ++h) {
        float a = y[h], b = y[h + half];
        switch (h % 5) {
        case 1: b = a; break;                  // tie
        case 2: a = -0.0f, b = 0.0f; break;    // signed-zero ties
        case 3: a = 0.0f, b = -0.0f; break;
        default: break;
        }
        if (x_wins ? a < b : !(a < b)) {
            std::swap(a, b);
            if (!x_wins && !(a < b))  // a tie cannot lose strictly: separate it
                b = a + 1.0f;
        }
        y[h] = a;
        y[h + half] = b;
    }
    const Floats gy = random_floats(n, -2.0f, 2.0f, 92);  // finite: gy·0 is a zero
    device::Buffer dnum(n * 4), dplain_num(n * 4), dgy(n * 4), dy(n * 4);
    dgy.upload(gy);
    dy.upload(y);
    launch_scale(g, dnum, dgy, dy, half, 1);
    launch_scale(g, dplain_num, dgy, dy, half, 0);
    const Floats num = dnum.download<float>(n), plain_num = dplain_num.download<float>(n);
    const long long win = x_wins ? 0 : half, lose = x_wins ? half : 0;
    size_t nonzero = 0, differ = 0;
    for (long long h = 0; h < half; ++h) {
        if (num[lose + h] != 0.0f)
            ++nonzero;
        if (bits(num[win + h]) != bits(plain_num[win + h]))
            ++differ;
    }
    CHECK_MSG(nonzero == 0, "%zu of %lld elements of the losing half are not zero", nonzero, half);
    CHECK_MSG(differ == 0, "%zu of %lld elements of the winning half differ from the nonlinearity's num", differ,
              half);
}

// ---- lrp_stabilize ---------------------------------------------------------------------------

Floats reference_lrp_stabilize(const Floats& r, const Floats& z, float eps)
{
    Floats out(r.size());
    for (size_t e = 0; e < out.size(); e++) {
        float zz = z[e];
        out[e] = r[e] / (zz + (zz < 0.0f ? -eps : eps));
    }
    return out;
}

Floats make_lrp_z(long long n, float eps, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    Floats z(n);
    for (long long e = 0; e < n; ++e) {
        switch (e % 11) {
        case 0: z[e] = dist(rng); break;
        case 1: z[e] = 0.0f; break;                      // sign(0) = 1: +eps
        case 2: z[e] = -0.0f; break;                     // −0 too
        case 3: z[e] = eps; break;
        case 4: z[e] = -eps; break;                      // −eps − eps: finite
        case 5: z[e] = 3e-10f; break;                    // below 1e-9
        case 6: z[e] = -3e-10f; break;
        case 7: z[e] = 2.5e4f + static_cast<float>(e); break;
        case 8: z[e] = -1.25f - static_cast<float>(e % 7); break;
        case 9: z[e] = from_bits(kNanX); break;          // NaN in z
        default: z[e] = dist(rng); break;
        }
    }
    return z;
}

void test_lrp_stabilize(long long n, float eps, bool in_place, const Geometry& g)
{
    const Floats z = make_lrp_z(n, eps, 101);
    Floats r = random_floats(n, -3.0f, 3.0f, 102);
    sprinkle_zeros(r, 13, 103);
    if (n > 21)
        r[21] = from_bits(kNanGy1);  // NaN in r where z is ordinary (e % 11 = 10)
    const Floats want = reference_lrp_stabilize(r, z, eps);
    device::Buffer dout(n * 4), dr(n * 4), dz(n * 4);
    dr.upload(r);
    dz.upload(z);
    const device::Buffer& target = in_place ? dr : dout;
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("rules", "lrp_stabilize"), {grid_for(g, n)}, {g.block}, 0,
                                          target.ptr(), dr.ptr(), dz.ptr(), n, eps));
    const Floats got = target.download<float>(n);
    expect_bits(in_place ? "out (in place)" : "out", got, want, n);
    // meaning: where |z| >= 1 the quotient times the denominator gives r back within one rounding
    size_t off = 0;
    for (long long e = 0; e < n; ++e) {
        if (!(std::fabs(z[e]) >= 1.0f) || std::isnan(r[e]))
            continue;
        const double den = static_cast<double>(z[e]) + (z[e] < 0 ? -eps : eps);
        const double back = static_cast<double>(got[e]) * den;
        if (std::fabs(back - r[e]) > std::fabs(r[e]) * 1.2e-7 + 1e-30)
            ++off;
    }
    CHECK_MSG(off == 0, "%zu elements: out·(z + s·eps) differs from r by more than one rounding", off);
    // ±0 in z divides by +eps: r / eps, never −r / eps
    for (long long e = 1; e < n && e < 3; ++e)
        if (!std::isnan(r[e]) && r[e] != 0.0f)
            CHECK_MSG((got[e] > 0) == (r[e] > 0), "z = %s0: sign of out flipped", e == 1 ? "+" : "-");
}

}  // namespace

SUITE(rules_kernels)
{
    device::use_primary_context();
    std::printf("module image: %s\n", harness::ptx_is_from_nvcc("rules") ? "nvcc PTX" : "signature-only PTX (no nvcc)");
    for (const Geometry& g : kRulesGeometries)
        for (long long half : kHalves) {
            const std::string at = " half=" + std::to_string(half) + " " + g.name;
            for (int maxpool : {0, 1})
                harness::run_case("deeplift_scale maxpool=" + std::to_string(maxpool) + at,
                                  [&] { test_scale(half, maxpool, g); });
            for (int sum_halves : {0, 1})
                for (bool in_place : {false, true})
                    harness::run_case("deeplift_rescale sum_halves=" + std::to_string(sum_halves) +
                                          (in_place ? " gx=g_plain" : "") + at,
                                      [&] { test_rescale(half, sum_halves, in_place, g); });
            harness::run_case("deeplift summation to delta" + at, [&] { test_summation_to_delta(half, g); });
            for (bool x_wins : {true, false})
                harness::run_case(std::string("deeplift_scale maxpool=1 ") + (x_wins ? "y_x>=y_ref" : "y_x<y_ref") +
                                      " meaning" + at,
                                  [&] { test_maxpool_meaning(half, x_wins, g); });
        }
    for (const Geometry& g : kRulesGeometries)
        for (long long n : kHalves)
            for (float eps : {1e-9f, 1e-3f})
                for (bool in_place : {false, true})
                    harness::run_case("lrp_stabilize n=" + std::to_string(n) + (eps < 1e-6f ? " eps=1e-9" : " eps=1e-3") +
                                          (in_place ? " out=r " : " ") + g.name,
                                      [&] { test_lrp_stabilize(n, eps, in_place, g); });
}
