// kernel_test_util.h: what the kernel tests of dense.cu, conv.cu and head.cu share: seeded
// inputs, the launch geometry of the Java launchers, and comparisons that print the first
// mismatches.
//
// References are written in the tests as plain loops, in double where the kernel accumulates,
// and compared either bit for bit (tolerance 0: same float value and sign; NaN matches NaN)
// or within an absolute tolerance per element that the caller derives from the magnitude of
// the terms involved. Kernels with double outputs (the _f64 ones, whose accumulators are stored
// unrounded) are compared the same way, in double: tolerance 0 then demands the same double.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"

namespace ktest {

using Floats = std::vector<float>;
using Doubles = std::vector<double>;
using Ints = std::vector<int>;

inline Floats random_floats(size_t n, float lo, float hi, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    Floats v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

// Small integers in [lo, hi] as floats: windows full of ties, exact sums.
inline Floats random_levels(size_t n, int lo, int hi, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> dist(lo, hi);
    Floats v(n);
    for (float& x : v)
        x = static_cast<float>(dist(rng));
    return v;
}

inline Ints random_ints(size_t n, int lo, int hi, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> dist(lo, hi);
    Ints v(n);
    for (int& x : v)
        x = dist(rng);
    return v;
}

// Overwrites about one element in `every` with +0 or -0: the boundaries of ReLU-like rules.
inline void sprinkle_zeros(Floats& v, size_t every, unsigned seed)
{
    std::mt19937 rng(seed);
    for (size_t i = 0; i < v.size(); ++i)
        if (rng() % every == 0)
            v[i] = (rng() & 1) ? 0.0f : -0.0f;
}

inline bool same_float(float got, float want)
{
    if (std::isnan(want))
        return std::isnan(got);
    return got == want && std::signbit(got) == std::signbit(want);
}

inline bool same_double(double got, double want)
{
    if (std::isnan(want))
        return std::isnan(got);
    return got == want && std::signbit(got) == std::signbit(want);
}

inline bool same_value(float got, double want) { return same_float(got, static_cast<float>(want)); }
inline bool same_value(double got, double want) { return same_double(got, want); }

// got: a float or a double output. tolerance(i) == 0 demands the same value of got's type
// (value and sign; NaN for NaN); otherwise |got - want| <= tolerance(i).
template <typename T, typename Tolerance>
void expect_close(const std::string& what, const std::vector<T>& got, const Doubles& want, Tolerance tolerance)
{
    constexpr int digits = std::numeric_limits<T>::max_digits10;
    size_t mismatches = 0;
    double worst = 0.0;
    size_t worst_at = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double tol = tolerance(i);
        const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
        const bool ok = tol == 0.0 ? same_value(got[i], want[i]) : err <= tol;
        if (!ok) {
            if (++mismatches <= 5)
                CHECK_MSG(ok, "%s[%zu]: got %.*g, want %.*g (tolerance %.3g)", what.c_str(), i, digits,
                          static_cast<double>(got[i]), digits, want[i], tol);
            if (!(err <= worst)) {
                worst = err;
                worst_at = i;
            }
        }
    }
    CHECK_MSG(mismatches == 0, "%s: %zu of %zu elements differ; worst at [%zu]: error %.3g", what.c_str(),
              mismatches, want.size(), worst_at, worst);
}

template <typename T>
void expect_exact(const std::string& what, const std::vector<T>& got, const Doubles& want)
{
    expect_close(what, got, want, [](size_t) { return 0.0; });
}

inline void expect_ints(const std::string& what, const Ints& got, const Ints& want)
{
    size_t mismatches = 0;
    for (size_t i = 0; i < want.size(); ++i)
        if (got[i] != want[i] && ++mismatches <= 5)
            CHECK_MSG(false, "%s[%zu]: got %d, want %d", what.c_str(), i, got[i], want[i]);
    CHECK_MSG(mismatches == 0, "%s: %zu of %zu elements differ", what.c_str(), mismatches, want.size());
}

// 1-D launch geometry. Kernels.java launches every 1-D kernel with BLOCK = 256 threads and
// max(1, min(maxBlocks, ceil(n / 256))) blocks, maxBlocks = 16 on the emulator and 65535 on a
// GPU; the third geometry (a block that is not a power of two, two blocks) makes every
// grid-stride loop wrap many times.
struct Geometry {
    const char* name;
    unsigned block;
    unsigned max_grid;
};
const Geometry kLauncherEmulator = {"block=256 grid<=16 (launcher, emulator)", 256, 16};
const Geometry kLauncherGpu = {"block=256 grid<=65535 (launcher, GPU)", 256, 65535};
const Geometry kOddBlock = {"block=96 grid<=2", 96, 2};
const Geometry kGeometries[] = {kLauncherEmulator, kLauncherGpu, kOddBlock};

inline unsigned grid_for(const Geometry& g, long long n)
{
    const long long full = (n + g.block - 1) / g.block;
    return static_cast<unsigned>(std::max(1LL, std::min<long long>(g.max_grid, full)));
}

// Element counts for element-wise kernels: 1, below a warp, a warp + 1, a block + 1, and
// sizes that span several blocks without filling the last.
const long long kSizes[] = {1, 7, 33, 257, 1000, 4099};

// A zero-filled device buffer (the launchers zero the targets of atomic kernels the same way).
inline void zero(const device::Buffer& b)
{
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32_v2(b.ptr(), 0, b.bytes() / 4));
}

template <typename T>
Doubles to_doubles(const std::vector<T>& v)
{
    return Doubles(v.begin(), v.end());
}

}  // namespace ktest
