// test_path_kernels.cpp: kernels/path.cu through the fake driver, against CPU twins.
//
// Every kernel runs at sizes that are and are not multiples of the block, with a full grid and
// with a capped grid (so the grid-stride loops wrap), from the PTX the CUDA backend would load.
// The twins evaluate the same float expressions in the same order (this file is compiled with
// -ffp-contract=off, like the kernels), so the element-wise kernels must match bit for bit;
// path_interpolate_f64's twin evaluates (float)(b + (double)alpha * (x - b)) in double, rounding
// once, as the kernel must. row_sum sums in a different order and is held to the error bound of
// its summation order.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"

namespace {

using Floats = std::vector<float>;

Floats random_floats(size_t n, float lo, float hi, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    Floats v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

// Doubles that are, almost all, not floats (the first layer's unrounded outputs).
std::vector<double> random_doubles(size_t n, double lo, double hi, unsigned seed)
{
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<double> v(n);
    for (double& x : v)
        x = dist(rng);
    return v;
}

// Prints the first mismatches; tolerance(i) == 0 demands identical bits.
template <typename Tolerance>
void expect_close(const char* what, const Floats& got, const std::vector<double>& want, Tolerance tolerance)
{
    size_t mismatches = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double tol = tolerance(i);
        const bool ok = tol == 0.0 ? static_cast<float>(want[i]) == got[i] &&
                                         std::signbit(static_cast<float>(want[i])) == std::signbit(got[i])
                                   : std::fabs(got[i] - want[i]) <= tol;
        if (!ok && ++mismatches <= 5)
            CHECK_MSG(ok, "%s[%zu]: got %.9g, want %.9g (tolerance %.3g)", what, i, got[i], want[i], tol);
    }
    CHECK_MSG(mismatches == 0, "%s: %zu of %zu elements differ", what, mismatches, want.size());
}

struct Geometry {
    const char* name;
    unsigned block;
    unsigned max_grid;  // 0: one thread per element
};
const Geometry kElementwiseGeometries[] = {{"full-grid/256", 256, 0}, {"2-blocks/96", 96, 2}};

unsigned grid_for(const Geometry& g, long long elements)
{
    const long long full = (elements + g.block - 1) / g.block;
    return static_cast<unsigned>(g.max_grid != 0 && full > g.max_grid ? g.max_grid : full);
}

const long long kFeatures[] = {1, 31, 1000, 4099};
const int kBatches[] = {1, 3};
const int kSteps[] = {1, 7, 50};

std::string case_name(const char* kernel, int steps, int batch, long long features, const char* geometry)
{
    return std::string(kernel) + " steps=" + std::to_string(steps) + " batch=" + std::to_string(batch) +
           " features=" + std::to_string(features) + " " + geometry;
}

void test_interpolate(int steps, int batch, long long features, const Geometry& g)
{
    const size_t plane = static_cast<size_t>(batch) * features, rows = plane * steps;
    const Floats x = random_floats(plane, -2, 2, 1), base = random_floats(plane, -1, 1, 2);
    const Floats alphas = random_floats(steps, 0, 1, 3);
    std::vector<double> want(rows);
    for (int k = 0; k < steps; ++k)
        for (size_t e = 0; e < plane; ++e) {
            const float d = x[e] - base[e];
            want[k * plane + e] = base[e] + alphas[k] * d;
        }
    device::Buffer out(rows * 4), dx(plane * 4), db(plane * 4), da(steps * 4);
    dx.upload(x);
    db.upload(base);
    da.upload(alphas);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("path", "path_interpolate"), {grid_for(g, plane)},
                                          {g.block}, 0, out.ptr(), dx.ptr(), db.ptr(), da.ptr(), steps, batch,
                                          features));
    expect_close("out", out.download<float>(rows), want, [](size_t) { return 0.0; });
}

// From double endpoints: the path is evaluated in double and rounded to float once. The nodes
// include both ends (alpha 0 and 1) and some examples start where they end (x == base).
void test_interpolate_f64(int steps, int batch, long long features, const Geometry& g)
{
    const size_t plane = static_cast<size_t>(batch) * features, rows = plane * steps;
    std::vector<double> x = random_doubles(plane, -2, 2, 11);
    const std::vector<double> base = random_doubles(plane, -1, 1, 12);
    for (size_t e = 5; e < plane; e += 17)
        x[e] = base[e];
    Floats alphas = random_floats(steps, 0, 1, 13);
    alphas[0] = 0.0f;
    if (steps > 1)
        alphas[steps - 1] = 1.0f;
    std::vector<double> want(rows);
    for (int k = 0; k < steps; ++k)
        for (size_t e = 0; e < plane; ++e) {
            const double d = x[e] - base[e];
            want[k * plane + e] = static_cast<float>(base[e] + static_cast<double>(alphas[k]) * d);
        }
    device::Buffer out(rows * 4), dx(plane * 8), db(plane * 8), da(steps * 4);
    dx.upload(x);
    db.upload(base);
    da.upload(alphas);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("path", "path_interpolate_f64"), {grid_for(g, plane)},
                                          {g.block}, 0, out.ptr(), dx.ptr(), db.ptr(), da.ptr(), steps, batch,
                                          features));
    expect_close("out", out.download<float>(rows), want, [](size_t) { return 0.0; });
}

void test_accumulate(int steps, int batch, long long features, const Geometry& g)
{
    const size_t plane = static_cast<size_t>(batch) * features, rows = plane * steps;
    const Floats grads = random_floats(rows, -1, 1, 4), weights = random_floats(steps, 0, 2.0f / steps, 5);
    const Floats acc0 = random_floats(plane, -1, 1, 6);
    std::vector<double> want(plane);
    for (size_t e = 0; e < plane; ++e) {
        float sum = acc0[e]; // each step added to the running sum, in increasing k
        for (int k = 0; k < steps; ++k)
            sum += weights[k] * grads[k * plane + e];
        want[e] = sum;
    }
    device::Buffer acc(plane * 4), dg(rows * 4), dw(steps * 4);
    acc.upload(acc0);
    dg.upload(grads);
    dw.upload(weights);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("path", "path_accumulate"), {grid_for(g, plane)},
                                          {g.block}, 0, acc.ptr(), dg.ptr(), dw.ptr(), steps, batch, features));
    expect_close("acc", acc.download<float>(plane), want, [](size_t) { return 0.0; });
    // the same steps in two chunks give the same bits: the sum does not depend on the chunking
    if (steps > 1) {
        const int split = steps / 2;
        acc.upload(acc0);
        CHECK_CU(CUDA_SUCCESS, device::launch(device::function("path", "path_accumulate"), {grid_for(g, plane)},
                                              {g.block}, 0, acc.ptr(), dg.ptr(), dw.ptr(), split, batch, features));
        CHECK_CU(CUDA_SUCCESS, device::launch(device::function("path", "path_accumulate"), {grid_for(g, plane)},
                                              {g.block}, 0, acc.ptr(), dg.ptr() + split * plane * 4,
                                              dw.ptr() + split * 4, steps - split, batch, features));
        expect_close("acc in two chunks", acc.download<float>(plane), want, [](size_t) { return 0.0; });
    }
}

void test_finish(int batch, long long features, int multiply, bool in_place, const Geometry& g)
{
    const size_t plane = static_cast<size_t>(batch) * features;
    const Floats acc0 = random_floats(plane, -3, 3, 7), x = random_floats(plane, -2, 2, 8),
                 base = random_floats(plane, -1, 1, 9);
    std::vector<double> want(plane);
    for (size_t e = 0; e < plane; ++e)
        want[e] = multiply ? acc0[e] * (x[e] - base[e]) : acc0[e];
    device::Buffer acc(plane * 4), attr(plane * 4), dx(plane * 4), db(plane * 4);
    acc.upload(acc0);
    dx.upload(x);
    db.upload(base);
    const CUdeviceptr target = in_place ? acc.ptr() : attr.ptr();
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("path", "attribution_finish"), {grid_for(g, plane)},
                                          {g.block}, 0, target, acc.ptr(), dx.ptr(), db.ptr(), batch, features,
                                          multiply));
    expect_close("attr", (in_place ? acc : attr).download<float>(plane), want, [](size_t) { return 0.0; });
}

void test_row_sum(int rows, long long cols, unsigned block, unsigned grid)
{
    const Floats a = random_floats(static_cast<size_t>(rows) * cols, -1, 1, 10);
    std::vector<double> want(rows), magnitude(rows);
    for (int r = 0; r < rows; ++r)
        for (long long c = 0; c < cols; ++c) {
            want[r] += a[r * cols + c];
            magnitude[r] += std::fabs(a[r * cols + c]);
        }
    device::Buffer out(rows * 4), da(a.size() * 4);
    da.upload(a);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("path", "row_sum"), {grid}, {block}, 0, out.ptr(),
                                          da.ptr(), rows, cols));
    // Each thread adds ceil(cols/block) terms in sequence, then log2(block) tree levels: the
    // classic bound for that order is (terms + levels) * eps * sum |a|.
    const double terms = std::ceil(static_cast<double>(cols) / block) + std::log2(block);
    expect_close("row sums", out.download<float>(rows), want,
                 [&](size_t r) { return terms * FLT_EPSILON * magnitude[r]; });
}

}  // namespace

SUITE(path_kernels)
{
    device::use_primary_context();
    std::printf("module image: %s\n", harness::ptx_is_from_nvcc("path") ? "nvcc PTX"
                                                                          : "signature-only PTX (no nvcc)");
    for (const Geometry& g : kElementwiseGeometries)
        for (long long features : kFeatures)
            for (int batch : kBatches) {
                for (int steps : kSteps) {
                    harness::run_case(case_name("path_interpolate", steps, batch, features, g.name),
                                      [&] { test_interpolate(steps, batch, features, g); });
                    harness::run_case(case_name("path_interpolate_f64", steps, batch, features, g.name),
                                      [&] { test_interpolate_f64(steps, batch, features, g); });
                    harness::run_case(case_name("path_accumulate", steps, batch, features, g.name),
                                      [&] { test_accumulate(steps, batch, features, g); });
                }
                for (int multiply : {0, 1})
                    for (bool in_place : {false, true})
                        harness::run_case(case_name("attribution_finish", 1, batch, features, g.name) +
                                              " multiply_by_inputs=" + std::to_string(multiply) +
                                              (in_place ? " in-place" : ""),
                                          [&] { test_finish(batch, features, multiply, in_place, g); });
            }
    for (int rows : {1, 3, 20})
        for (long long cols : kFeatures)
            for (unsigned block : {32u, 256u, 1024u})
                for (unsigned grid : {static_cast<unsigned>(rows), 2u}) {  // 2: wraps, or idles a block
                    harness::run_case("row_sum rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                                          " block=" + std::to_string(block) + " grid=" + std::to_string(grid),
                                      [&] { test_row_sum(rows, cols, block, grid); });
                }
}
