// test_head_kernels.cpp: kernels/head.cu through the fake driver, against references written
// here.
//
// Each kernel runs from the PTX the CUDA backend loads, with its Java launcher's geometry
// (Kernels.java: 256 threads, at most 16 blocks on the emulator or 65535 on a GPU) and with a
// 96-thread, 2-block grid that makes the grid-stride loops wrap. Softmax runs over the last
// axis (inner = 1) and over a middle axis (inner > 1, as for the channels of NCHW), with lines
// of length 1, and with inputs far from 0 that overflow exp unless the maximum is subtracted.
//
// References: softmax as exp(x − max) / Σ exp(x − max) in double (x − max rounded to float as
// the kernel does; softmax is shift-invariant), within 4 ulps for expf and the final scaling;
// its backward as the Jacobian product
// Σ_j (δ_cj y_c − y_c y_j) gy_j in double (the kernel works in double and rounds once);
// seed_one_hot and gather_target bit for bit.
#include <cfloat>
#include <cmath>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"
#include "kernel_test_util.h"

using namespace ktest;

namespace {

struct Lines {
    long long outer;
    int n;
    long long inner;
};
const Lines kLines[] = {{1, 1, 1},   {1, 7, 1},    {3, 10, 1},   {33, 1, 1},  {2, 5, 7},
                        {5, 257, 1}, {1, 3, 1000}, {4, 1001, 1}, {7, 33, 9}, {300, 3, 1}};

std::string str(const Lines& l)
{
    return "outer=" + std::to_string(l.outer) + " n=" + std::to_string(l.n) + " inner=" + std::to_string(l.inner);
}

template <typename Body>
void for_each_line(const Lines& l, Body body)  // body(first element, stride)
{
    for (long long o = 0; o < l.outer; ++o)
        for (long long i = 0; i < l.inner; ++i)
            body(o * l.n * l.inner + i, l.inner);
}

// offset 0: x in [-8, 8]; offset 88: x in [80, 96], where expf(x) overflows float.
Floats softmax_inputs(const Lines& l, float offset, unsigned seed)
{
    return random_floats(l.outer * l.n * l.inner, offset - 8.0f, offset + 8.0f, seed);
}

void test_softmax_forward(const Lines& l, float offset, const Geometry& g)
{
    const Floats x = softmax_inputs(l, offset, 71);
    const size_t size = x.size();
    Doubles want(size);
    for_each_line(l, [&](long long base, long long stride) {
        float mx = -INFINITY;
        for (int c = 0; c < l.n; ++c)
            mx = std::max(mx, x[base + c * stride]);
        // softmax(x) = softmax(x − max). The shift is the kernel's float subtraction, so the
        // reference is exact for the float differences the kernel exponentiates (each within
        // half an ulp of the real x − max); everything after that is double.
        double sum = 0.0;
        for (int c = 0; c < l.n; ++c)
            sum += std::exp(static_cast<double>(x[base + c * stride] - mx));
        for (int c = 0; c < l.n; ++c) {
            const long long k = base + c * stride;
            want[k] = std::exp(static_cast<double>(x[k] - mx)) / sum;
        }
    });
    device::Buffer dy(size * 4), dx(size * 4);
    dx.upload(x);
    const long long lines = l.outer * l.inner;
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("head", "softmax_forward"), {grid_for(g, lines)},
                                          {g.block}, 0, dy.ptr(), dx.ptr(), l.outer, l.n, l.inner));
    // expf (within 1 ulp), the float reciprocal and the product (half an ulp each), and the sum's
    // terms (each within 1 ulp, so the sum too): 4 ulps.
    expect_close("y", dy.download<float>(size), want,
                 [&](size_t i) { return 4 * FLT_EPSILON * want[i] + FLT_MIN; });
}

void test_softmax_backward(const Lines& l, const Geometry& g)
{
    // y: the float softmax of random logits, as the forward would have saved it.
    const Floats x = softmax_inputs(l, 0.0f, 72), gy = random_floats(x.size(), -2.0f, 2.0f, 73);
    Floats y(x.size());
    for_each_line(l, [&](long long base, long long stride) {
        double sum = 0.0;
        for (int c = 0; c < l.n; ++c)
            sum += std::exp(static_cast<double>(x[base + c * stride]));
        for (int c = 0; c < l.n; ++c)
            y[base + c * stride] = static_cast<float>(std::exp(static_cast<double>(x[base + c * stride])) / sum);
    });
    Doubles want(x.size()), magnitude(x.size());
    for_each_line(l, [&](long long base, long long stride) {
        for (int c = 0; c < l.n; ++c) {
            const long long kc = base + c * stride;
            double s = 0.0, mag = 0.0;
            for (int j = 0; j < l.n; ++j) {
                const long long kj = base + j * stride;
                const double jacobian = (j == c ? static_cast<double>(y[kc]) : 0.0) - static_cast<double>(y[kc]) * y[kj];
                s += jacobian * gy[kj];
                mag += std::fabs(jacobian * gy[kj]);
            }
            want[kc] = s;
            magnitude[kc] = mag;
        }
    });
    device::Buffer dgx(x.size() * 4), dgy(x.size() * 4), dy(x.size() * 4);
    dgy.upload(gy);
    dy.upload(y);
    const long long lines = l.outer * l.inner;
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("head", "softmax_backward"), {grid_for(g, lines)},
                                          {g.block}, 0, dgx.ptr(), dgy.ptr(), dy.ptr(), l.outer, l.n, l.inner));
    expect_close("gx", dgx.download<float>(x.size()), want,
                 [&](size_t i) { return FLT_EPSILON * std::fabs(want[i]) + 1e-12 * magnitude[i]; });
}

struct Matrix {
    int rows, cols;
};
const Matrix kMatrices[] = {{1, 1}, {1, 7}, {3, 10}, {33, 33}, {7, 257}, {2, 1000}, {1, 4099}, {257, 3}, {1001, 1}};

std::string str(const Matrix& m) { return "rows=" + std::to_string(m.rows) + " cols=" + std::to_string(m.cols); }

void test_seed_one_hot(const Matrix& m, const Geometry& g)
{
    const Ints targets = random_ints(m.rows, 0, m.cols - 1, 74);
    const long long n = 1LL * m.rows * m.cols;
    Doubles want(n, 0.0);
    for (int r = 0; r < m.rows; ++r)
        want[1LL * r * m.cols + targets[r]] = 1.0;
    device::Buffer dg(n * 4), dt(m.rows * 4);  // dg starts as 0xFF bytes (NaN): every element must be written
    dt.upload(targets);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("head", "seed_one_hot"), {grid_for(g, n)}, {g.block}, 0,
                                          dg.ptr(), dt.ptr(), m.rows, m.cols));
    expect_exact("g", dg.download<float>(n), want);
}

void test_gather_target(const Matrix& m, const Geometry& g)
{
    const Ints targets = random_ints(m.rows, 0, m.cols - 1, 75);
    const Floats y = random_floats(1LL * m.rows * m.cols, -5.0f, 5.0f, 76);
    Doubles want(m.rows);
    for (int r = 0; r < m.rows; ++r)
        want[r] = y[1LL * r * m.cols + targets[r]];
    device::Buffer dout(m.rows * 4), dy(y.size() * 4), dt(m.rows * 4);
    dy.upload(y);
    dt.upload(targets);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("head", "gather_target"), {grid_for(g, m.rows)}, {g.block},
                                          0, dout.ptr(), dy.ptr(), dt.ptr(), m.rows, m.cols));
    expect_exact("out", dout.download<float>(m.rows), want);
}

}  // namespace

SUITE(head_kernels)
{
    device::use_primary_context();
    std::printf("module image: %s\n", harness::ptx_is_from_nvcc("head") ? "nvcc PTX"
                                                                          : "signature-only PTX (no nvcc)");
    for (const Geometry& g : kGeometries) {
        for (const Lines& l : kLines) {
            harness::run_case("softmax_forward " + str(l) + " x in [-8,8] " + g.name,
                              [&] { test_softmax_forward(l, 0.0f, g); });
            harness::run_case("softmax_forward " + str(l) + " x in [80,96] " + g.name,
                              [&] { test_softmax_forward(l, 88.0f, g); });
            harness::run_case("softmax_backward " + str(l) + " " + g.name, [&] { test_softmax_backward(l, g); });
        }
        for (const Matrix& m : kMatrices) {
            harness::run_case("seed_one_hot " + str(m) + " " + g.name, [&] { test_seed_one_hot(m, g); });
            harness::run_case("gather_target " + str(m) + " " + g.name, [&] { test_gather_target(m, g); });
        }
    }
}
