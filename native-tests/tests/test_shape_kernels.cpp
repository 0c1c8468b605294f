// test_shape_kernels.cpp: kernels/shape.cu through the fake driver, against references written
// here. strided_copy6 as a transpose (permutations of 2 to 6 axes) and as a broadcast (stride 0
// along the broadcast axes); gather_forward/backward with a Select's constant indices along the
// first, a middle and the last axis (repeated, reversed as a Slice with a negative step, a single
// index as a Gather that drops the axis) and with per-request ids (negative from the end, out of
// range → NaN); resize_forward/backward over random monotone tap tables. Nothing is rounded in the
// copies; gather_backward's float sum over repeated indices and Resize's double sums are done in
// the kernels' order: every comparison is bit for bit. Launch geometries as in the other kernel
// tests.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"
#include "kernel_test_util.h"

using namespace ktest;

namespace {

struct Copy6 {
    std::vector<int> in;    // input shape (rank <= 6)
    std::vector<int> perm;  // a transpose's permutation; empty for a broadcast
    std::vector<int> out;   // a broadcast's output shape; empty for a transpose
};

std::string str(const std::vector<int>& v)
{
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i)
        s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

long long product(const std::vector<int>& v)
{
    long long n = 1;
    for (int d : v)
        n *= d;
    return n;
}

void test_strided_copy6(const Copy6& c, const Geometry& g)
{
    const int rank = static_cast<int>(c.perm.empty() ? c.out.size() : c.in.size());
    std::vector<long long> in_strides(c.in.size());
    long long acc = 1;
    for (int d = static_cast<int>(c.in.size()) - 1; d >= 0; --d) {
        in_strides[d] = acc;
        acc *= c.in[d];
    }
    std::vector<int> out(rank);
    std::vector<long long> walk(rank);
    for (int d = 0; d < rank; ++d) {
        if (!c.perm.empty()) {
            out[d] = c.in[c.perm[d]];
            walk[d] = in_strides[c.perm[d]];
        } else {
            out[d] = c.out[d];
            const int sd = d - (rank - static_cast<int>(c.in.size()));
            walk[d] = sd < 0 || c.in[sd] == 1 ? 0 : in_strides[sd];
        }
    }
    const long long n = product(out);
    const Floats x = random_floats(product(c.in), -1.0f, 1.0f, 41);
    // reference: walk the output's multi-index, reading the input where it maps
    Doubles want(n);
    std::vector<int> idx(rank, 0);
    for (long long e = 0; e < n; ++e) {
        long long src = 0;
        for (int d = 0; d < rank; ++d)
            src += idx[d] * walk[d];
        want[e] = x[src];
        for (int d = rank - 1; d >= 0 && ++idx[d] == out[d]; --d)
            idx[d] = 0;
    }
    int o6[6];
    long long s6[6];
    for (int d = 0; d < 6; ++d) {
        const int sd = d - (6 - rank);
        o6[d] = sd < 0 ? 1 : out[sd];
        s6[d] = sd < 0 ? 0 : walk[sd];
    }
    device::Buffer dy(n * 4), dx(x.size() * 4);
    dx.upload(x);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("shape", "strided_copy6"), {grid_for(g, n)}, {g.block}, 0,
                                          dy.ptr(), dx.ptr(), o6[0], o6[1], o6[2], o6[3], o6[4], o6[5], s6[0], s6[1],
                                          s6[2], s6[3], s6[4], s6[5]));
    expect_exact("y", dy.download<float>(n), want);
}

struct Select {
    long long outer;
    int dim;
    long long inner;
    std::vector<int> idx;
    const char* what;
};

// gather_forward/backward: select with per-request float ids; negative ids count from the end, an
// id out of range reads NaN in the forward pass and adds nothing in the backward.
void test_gather(const Select& c, const std::vector<float>& ids, const Geometry& g)
{
    const int count = static_cast<int>(ids.size());
    const long long nx = c.outer * c.dim * c.inner, ny = c.outer * count * c.inner;
    const Floats x = random_floats(nx, -1.0f, 1.0f, 44), dy = random_floats(ny, -1.0f, 1.0f, 45);
    std::vector<int> idx(count);
    for (int j = 0; j < count; ++j) {
        int id = static_cast<int>(ids[j]);
        id = id < 0 ? id + c.dim : id;
        idx[j] = id >= 0 && id < c.dim ? id : -1;
    }
    Doubles want_y(ny), want_dx(nx);
    for (long long o = 0; o < c.outer; ++o)
        for (int j = 0; j < count; ++j)
            for (long long i = 0; i < c.inner; ++i)
                want_y[(o * count + j) * c.inner + i] = idx[j] >= 0 ? x[(o * c.dim + idx[j]) * c.inner + i] : NAN;
    for (long long o = 0; o < c.outer; ++o)
        for (int k = 0; k < c.dim; ++k)
            for (long long i = 0; i < c.inner; ++i) {
                float sum = 0.0f;
                for (int j = 0; j < count; ++j)
                    if (idx[j] == k)
                        sum += dy[(o * count + j) * c.inner + i];
                want_dx[(o * c.dim + k) * c.inner + i] = sum;
            }
    device::Buffer dyb(ny * 4), xb(nx * 4), ib(count * 4), out_y(ny * 4), out_dx(nx * 4);
    xb.upload(x);
    dyb.upload(dy);
    ib.upload(ids);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("shape", "gather_forward"), {grid_for(g, ny)}, {g.block}, 0,
                                          out_y.ptr(), xb.ptr(), ib.ptr(), c.outer, count, c.dim, c.inner));
    expect_exact("y", out_y.download<float>(ny), want_y);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("shape", "gather_backward"), {grid_for(g, nx)}, {g.block}, 0,
                                          out_dx.ptr(), dyb.ptr(), ib.ptr(), c.outer, count, c.dim, c.inner));
    expect_exact("dx", out_dx.download<float>(nx), want_dx);
}

// resize_forward/backward with tap tables as the launcher gives them (two taps per output row and
// column, monotone in the output, clamped into the input): random monotone tables, random weights
// (float), the sums in double in the kernels' order, so bit for bit.
void test_resize(long long planes, int h, int w, int oh, int ow, const Geometry& g)
{
    std::mt19937 rng(46);
    auto table = [&](int in, int out, std::vector<int>& idx, Floats& wt) {
        idx.resize(2 * out);
        wt.resize(2 * out);
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        for (int o = 0; o < out; ++o) {
            const int i0 = static_cast<int>(static_cast<long long>(o) * in / out);
            idx[2 * o] = i0;
            idx[2 * o + 1] = std::min(i0 + 1, in - 1);
            wt[2 * o] = u(rng);
            wt[2 * o + 1] = 1.0f - wt[2 * o];
        }
    };
    std::vector<int> ih, iw;
    Floats wh, ww;
    table(h, oh, ih, wh);
    table(w, ow, iw, ww);
    auto ranges = [](const std::vector<int>& idx, int in, std::vector<int>& lo, std::vector<int>& hi) {
        lo.assign(in, 1 << 30);
        hi.assign(in, 0);
        for (size_t k = 0; k < idx.size(); ++k) {
            const int o = static_cast<int>(k / 2);
            lo[idx[k]] = std::min(lo[idx[k]], o);
            hi[idx[k]] = std::max(hi[idx[k]], o + 1);
        }
        for (int i = 0; i < in; ++i)
            lo[i] = std::min(lo[i], hi[i]);
    };
    std::vector<int> loh, hih, low, hiw;
    ranges(ih, h, loh, hih);
    ranges(iw, w, low, hiw);
    const long long nx = planes * h * w, ny = planes * oh * ow;
    const Floats x = random_floats(nx, -1.0f, 1.0f, 47), dy = random_floats(ny, -1.0f, 1.0f, 48);
    Doubles want_y(ny), want_dx(nx);
    std::vector<double> acc(nx, 0.0);
    for (long long p = 0; p < planes; ++p)
        for (int i = 0; i < oh; ++i)
            for (int j = 0; j < ow; ++j) {
                double v = 0.0;
                for (int a = 0; a < 2; ++a)
                    for (int b = 0; b < 2; ++b)
                        v += static_cast<double>(wh[2 * i + a]) * ww[2 * j + b] * x[(p * h + ih[2 * i + a]) * w + iw[2 * j + b]];
                want_y[(p * oh + i) * ow + j] = static_cast<float>(v);
                for (int a = 0; a < 2; ++a)
                    for (int b = 0; b < 2; ++b)
                        acc[(p * h + ih[2 * i + a]) * w + iw[2 * j + b]] +=
                            static_cast<double>(wh[2 * i + a]) * ww[2 * j + b] * dy[(p * oh + i) * ow + j];
            }
    for (long long e = 0; e < nx; ++e)
        want_dx[e] = static_cast<float>(acc[e]);
    device::Buffer xb(nx * 4), yb(ny * 4), dyb(ny * 4), dxb(nx * 4), ihb(ih.size() * 4), iwb(iw.size() * 4),
        whb(wh.size() * 4), wwb(ww.size() * 4), lohb(h * 4), hihb(h * 4), lowb(w * 4), hiwb(w * 4);
    xb.upload(x);
    dyb.upload(dy);
    ihb.upload(ih);
    iwb.upload(iw);
    whb.upload(wh);
    wwb.upload(ww);
    lohb.upload(loh);
    hihb.upload(hih);
    lowb.upload(low);
    hiwb.upload(hiw);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("shape", "resize_forward"), {grid_for(g, ny)}, {g.block}, 0,
                                          yb.ptr(), xb.ptr(), ihb.ptr(), whb.ptr(), iwb.ptr(), wwb.ptr(), planes, h, w,
                                          oh, ow));
    expect_exact("y", yb.download<float>(ny), want_y);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("shape", "resize_backward"), {grid_for(g, nx)}, {g.block}, 0,
                                          dxb.ptr(), dyb.ptr(), ihb.ptr(), whb.ptr(), iwb.ptr(), wwb.ptr(), lohb.ptr(),
                                          hihb.ptr(), lowb.ptr(), hiwb.ptr(), planes, h, w, oh, ow));
    expect_exact("dx", dxb.download<float>(nx), want_dx);
}

}  // namespace

SUITE(shape_kernels)
{
    device::use_primary_context();
    std::printf("module image: %s\n", harness::ptx_is_from_nvcc("shape") ? "nvcc PTX"
                                                                           : "signature-only PTX (no nvcc)");
    const Copy6 kCopies[] = {
        {{7, 33}, {1, 0}, {}},
        {{2, 3, 4, 5}, {0, 3, 1, 2}, {}},
        {{2, 3, 4, 5}, {3, 2, 1, 0}, {}},
        {{2, 5, 3, 2, 4}, {2, 0, 3, 1, 4}, {}},  // a ViT's qkv split: [B, T, 3, heads, d] → [3, B, heads, T, d]
        {{2, 3, 1, 4, 2, 3}, {5, 0, 4, 1, 3, 2}, {}},
        {{1, 1, 16}, {}, {3, 1, 16}},            // a class token expanded to the batch
        {{2, 1, 1, 12}, {}, {2, 2, 12, 12}},     // an attention mask expanded to the heads
        {{5}, {}, {2, 3, 4, 5}},
        {{3, 1, 2, 1, 4, 1}, {}, {3, 2, 2, 3, 4, 5}},
    };
    const Select kSelects[] = {
        {1, 3, 80, {2}, "first axis, one index"},
        {4, 7, 5, {0, 2, 4, 6}, "middle axis, step 2"},
        {6, 9, 1, {8, 7, 6, 5, 4, 3, 2, 1, 0}, "last axis, reversed"},
        {3, 4, 33, {1, 1, 3, 1, 0}, "repeated indices"},
        {2, 300, 1, {299, 0}, "long axis"},
    };
    for (const Geometry& g : kGeometries) {
        for (const Copy6& c : kCopies)
            harness::run_case("strided_copy6 " + str(c.in) + (c.perm.empty() ? " → " + str(c.out) : " perm " + str(c.perm))
                                  + " " + g.name,
                              [&] { test_strided_copy6(c, g); });
        for (const Select& c : kSelects)
            harness::run_case(std::string("gather_forward/backward, Select's indices: ") + c.what + " " + g.name,
                              [&] { test_gather(c, std::vector<float>(c.idx.begin(), c.idx.end()), g); });
        // an embedding table [50, 16] read by 2 x 12 token ids (outer 1, inner 16)
        const Select table{1, 50, 16, {}, "embedding"};
        const std::vector<float> tokens = {3, 0, 0, 49, 7, 7, 1, 2, 0, 0, 0, 0, 12, 13, -1, -50, 5, 5, 5, 8, 9, 10, 11, 0};
        harness::run_case(std::string("gather_forward/backward embedding ids (negative, repeated) ") + g.name,
                          [&] { test_gather(table, tokens, g); });
        harness::run_case(std::string("resize_forward/backward 6 planes 5x4 -> 10x8 ") + g.name,
                          [&] { test_resize(6, 5, 4, 10, 8, g); });
        harness::run_case(std::string("resize_forward/backward 2 planes 9x7 -> 4x11 ") + g.name,
                          [&] { test_resize(2, 9, 7, 4, 11, g); });
        harness::run_case(std::string("gather_forward/backward middle axis, ids out of range read NaN ") + g.name,
                          [&] { test_gather(Select{3, 6, 5, {}, "middle"}, {5, -6, 6, -7, 2, 100}, g); });
    }
}
