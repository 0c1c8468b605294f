// test_dense_kernels.cpp: kernels/dense.cu through the fake driver, against references written
// here.
//
// Every kernel runs from the PTX the CUDA backend loads, with the geometry of its Java launcher
// (Kernels.java: 256 threads, at most 16 blocks on the emulator or 65535 on a GPU) and with a
// 96-thread, 2-block grid that makes the grid-stride loops wrap, at element counts that are not
// multiples of any block. This file is compiled with -ffp-contract=off like the kernels, so
// where the kernel does one float operation per element (ReLU, LeakyReLU, identity, the
// arithmetic kernels) the reference does the same and must match bit for bit; Sigmoid and Tanh
// are compared with the exact function in double (1e-6 relative), and the atomic reduction of
// binary_backward with a double sum, within the error bound of a float sum of that many terms.
// bias_act_forward_keep's pre-activation is one float addition: bit for bit. gemm_f64's output is
// double and unrounded: its products of floats are exact in double and the reference sums them
// in the kernel's order (increasing k), then scales and adds beta·c as the kernel does, so it
// must match to the last bit of the double.
#include <cfloat>
#include <cmath>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"
#include "kernel_test_util.h"

using namespace ktest;

namespace {

// Relative tolerance for Sigmoid and Tanh (glibc's expf/tanhf and a few float roundings: a
// few units in the last place, 1 ulp = 1.19e-7 relative at most).
constexpr double kTranscendental = 1e-6;

struct Act {
    int code;
    float alpha;
    const char* name;
};
// Codes as in dense.cu; 9 is not an activation and must act as identity (the default branch).
const Act kActs[] = {{0, 0.0f, "identity"}, {1, 0.0f, "relu"},    {2, 0.01f, "leaky_relu(0.01)"},
                     {2, -0.5f, "leaky_relu(-0.5)"}, {3, 0.0f, "sigmoid"}, {4, 0.0f, "tanh"},
                     {9, 0.0f, "unknown code 9"}};

bool exact_act(int code) { return code != 3 && code != 4; }

// The activation's definition, evaluated in double (its float cases round exactly as a float op).
double act_reference(int code, float v, float alpha)
{
    switch (code) {
    case 1: return v > 0.0f ? v : 0.0;
    case 2: return v > 0.0f ? v : static_cast<double>(alpha * v);
    case 3: return 1.0 / (1.0 + std::exp(-static_cast<double>(v)));
    case 4: return std::tanh(static_cast<double>(v));
    default: return v;
    }
}

double act_tolerance(int code, double want)
{
    return exact_act(code) ? 0.0 : kTranscendental * std::fabs(want) + FLT_MIN;
}

// Inputs around every decision point: zeros of both signs, and saturating magnitudes.
Floats activation_inputs(size_t n, unsigned seed)
{
    Floats x = random_floats(n, -6.0f, 6.0f, seed);
    sprinkle_zeros(x, 5, seed + 1);
    const float extremes[] = {30.0f, -30.0f, 100.0f, -100.0f, 1e-20f, -1e-20f};
    for (size_t i = 0; i < n; i += 13)
        x[i] = extremes[(i / 13) % 6];
    return x;
}

std::string name_of(const char* kernel, const std::string& shape, const char* act, const Geometry& g)
{
    return std::string(kernel) + " " + shape + " " + act + " " + g.name;
}

void test_act_forward(long long n, const Act& a, const Geometry& g)
{
    const Floats x = activation_inputs(n, 11);
    Doubles want(n);
    for (long long e = 0; e < n; ++e)
        want[e] = act_reference(a.code, x[e], a.alpha);
    device::Buffer dy(n * 4), dx(n * 4);
    dx.upload(x);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "act_forward"), {grid_for(g, n)}, {g.block}, 0,
                                          dy.ptr(), dx.ptr(), n, a.code, a.alpha));
    expect_close("y", dy.download<float>(n), want, [&](size_t i) { return act_tolerance(a.code, want[i]); });
    CHECK(dx.download<float>(n) == x);  // the input is read only
}

void test_bias_act_forward(long long rows, int cols, bool with_bias, const Act& a, const Geometry& g)
{
    const long long n = rows * cols;
    const Floats y0 = activation_inputs(n, 12), bias = random_floats(cols, -2.0f, 2.0f, 13);
    Doubles want(n);
    for (long long r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const long long e = r * cols + c;
            const float v = with_bias ? y0[e] + bias[c] : y0[e];
            want[e] = act_reference(a.code, v, a.alpha);
        }
    device::Buffer dy(n * 4), db(cols * 4);
    dy.upload(y0);
    db.upload(bias);
    const CUdeviceptr bias_ptr = with_bias ? db.ptr() : 0;
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "bias_act_forward"), {grid_for(g, n)}, {g.block},
                                          0, dy.ptr(), bias_ptr, rows, cols, a.code, a.alpha));
    expect_close("y", dy.download<float>(n), want, [&](size_t i) { return act_tolerance(a.code, want[i]); });
}

// v = pre + bias (bias may be null); pre = v; y = act(v): y must match bias_act_forward's rule,
// and pre must hold v bit for bit (the LeakyReLU backward with alpha < 0 reads it).
void test_bias_act_forward_keep(long long rows, int cols, bool with_bias, const Act& a, const Geometry& g)
{
    const long long n = rows * cols;
    const Floats pre0 = activation_inputs(n, 16), bias = random_floats(cols, -2.0f, 2.0f, 17);
    Doubles want_y(n), want_pre(n);
    for (long long r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const long long e = r * cols + c;
            const float v = with_bias ? pre0[e] + bias[c] : pre0[e];
            want_pre[e] = v;
            want_y[e] = act_reference(a.code, v, a.alpha);
        }
    device::Buffer dy(n * 4), dpre(n * 4), db(cols * 4);
    dpre.upload(pre0);
    db.upload(bias);
    const CUdeviceptr bias_ptr = with_bias ? db.ptr() : 0;
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "bias_act_forward_keep"), {grid_for(g, n)},
                                          {g.block}, 0, dy.ptr(), dpre.ptr(), bias_ptr, rows, cols, a.code, a.alpha));
    expect_close("y", dy.download<float>(n), want_y, [&](size_t i) { return act_tolerance(a.code, want_y[i]); });
    expect_exact("pre", dpre.download<float>(n), want_pre);
    CHECK(db.download<float>(cols) == bias);  // the bias is read only
}

// y[i,j] = alpha · Σ_t a[i,t] · op(b)[t,j] (+ beta · c[j]) in double: b is [k, n], or [n, k] when
// trans_b; c is null or [n]. The launcher passes c only when beta != 0.
void test_gemm_f64(int m, int n, int k, bool trans_b, bool with_c, float alpha, float beta, const Geometry& g)
{
    const long long outputs = static_cast<long long>(m) * n;
    const Floats a = random_floats(static_cast<size_t>(m) * k, -1.0f, 1.0f, 61);
    const Floats b = random_floats(static_cast<size_t>(k) * n, -1.0f, 1.0f, 62);
    const Floats c = random_floats(n, -2.0f, 2.0f, 63);
    Doubles want(outputs);
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            double acc = 0.0;
            for (int t = 0; t < k; ++t) {
                const float bv = trans_b ? b[static_cast<size_t>(j) * k + t] : b[static_cast<size_t>(t) * n + j];
                acc += static_cast<double>(a[static_cast<size_t>(i) * k + t]) * static_cast<double>(bv);
            }
            double v = static_cast<double>(alpha) * acc;
            if (with_c)
                v += static_cast<double>(beta) * static_cast<double>(c[j]);
            want[static_cast<size_t>(i) * n + j] = v;
        }
    device::Buffer dy(outputs * 8), da(a.size() * 4), dbuf(b.size() * 4), dc(c.size() * 4);
    da.upload(a);
    dbuf.upload(b);
    dc.upload(c);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("dense", "gemm_f64"), {grid_for(g, outputs)}, {g.block}, 0, dy.ptr(),
                            da.ptr(), dbuf.ptr(), with_c ? dc.ptr() : CUdeviceptr(0), m, n, k, trans_b ? 1 : 0,
                            alpha, beta));
    expect_exact("y", dy.download<double>(outputs), want);
}

// The saved tensor act_backward reads: the forward's output, except LeakyReLU's input (the
// launcher passes x, so the slope follows x's sign for any alpha).
Floats saved_for(const Act& a, long long n, unsigned seed)
{
    Floats x = activation_inputs(n, seed);
    switch (a.code) {
    case 1:
        for (float& v : x)
            v = v > 0.0f ? v : 0.0f;
        return x;
    case 3:
        for (float& v : x)
            v = static_cast<float>(act_reference(3, v, 0.0f));
        return x;
    case 4:
        for (float& v : x)
            v = static_cast<float>(act_reference(4, v, 0.0f));
        return x;
    default:
        return x;
    }
}

void test_act_backward(long long n, const Act& a, const Geometry& g)
{
    const Floats saved = saved_for(a, n, 14), gy = random_floats(n, -3.0f, 3.0f, 15);
    Doubles want(n), magnitude(n);
    for (long long e = 0; e < n; ++e) {
        const double y = saved[e];
        switch (a.code) {
        case 1:  // d relu / dx: 1 where the output is positive, else 0 (PyTorch's choice at 0)
            want[e] = gy[e] * (saved[e] > 0.0f ? 1.0f : 0.0f);
            break;
        case 2:  // slope 1 where x > 0, else alpha
            want[e] = gy[e] * (saved[e] > 0.0f ? 1.0f : a.alpha);
            break;
        case 3:  // sigmoid' = y (1 - y)
            want[e] = gy[e] * y * (1.0 - y);
            magnitude[e] = std::fabs(gy[e] * y) * (1.0 + std::fabs(y));
            break;
        case 4:  // tanh' = 1 - y²
            want[e] = gy[e] * (1.0 - y * y);
            magnitude[e] = std::fabs(gy[e]) * (1.0 + y * y);
            break;
        default:
            want[e] = gy[e];
        }
    }
    device::Buffer dgx(n * 4), dgy(n * 4), ds(n * 4);
    dgy.upload(gy);
    ds.upload(saved);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "act_backward"), {grid_for(g, n)}, {g.block}, 0,
                                          dgx.ptr(), dgy.ptr(), ds.ptr(), n, a.code, a.alpha));
    expect_close("gx", dgx.download<float>(n), want,
                 [&](size_t i) { return exact_act(a.code) ? 0.0 : kTranscendental * magnitude[i] + FLT_MIN; });
}

// ---- broadcasting -----------------------------------------------------------------------------

struct Shape4 {
    int d[4];
    long long size() const { return 1LL * d[0] * d[1] * d[2] * d[3]; }
    std::string str() const
    {
        return "[" + std::to_string(d[0]) + "," + std::to_string(d[1]) + "," + std::to_string(d[2]) + "," +
               std::to_string(d[3]) + "]";
    }
};

struct BroadcastCase {
    Shape4 a, b;
};
// Operand shapes, already padded to 4 dims with leading 1s; the output is their broadcast.
const BroadcastCase kBroadcastCases[] = {
    {{{1, 1, 1, 1}}, {{1, 1, 1, 1}}},           // one element
    {{{2, 3, 5, 7}}, {{2, 3, 5, 7}}},           // same shape
    {{{2, 3, 5, 7}}, {{1, 1, 1, 7}}},           // row bias
    {{{1, 1, 1, 1}}, {{1, 1, 1, 1001}}},        // scalar against a vector
    {{{2, 5, 1, 1}}, {{2, 5, 9, 11}}},          // per-channel operand on the left
    {{{1, 3, 1, 7}}, {{2, 1, 5, 1}}},           // both broadcast
    {{{4, 1, 33, 1}}, {{1, 7, 1, 9}}},          // both broadcast, 8316 outputs
    {{{1, 1, 257, 1}}, {{3, 1, 257, 1}}},       // leading broadcast only
};

Shape4 broadcast(const Shape4& a, const Shape4& b)
{
    Shape4 out{};
    for (int k = 0; k < 4; ++k)
        out.d[k] = a.d[k] == 1 ? b.d[k] : a.d[k];
    return out;
}

// Element strides as the Java launcher (backend/cuda/Broadcast) computes them: 0 on broadcast dims.
std::vector<long long> launcher_strides(const Shape4& s, const Shape4& out)
{
    std::vector<long long> st(4);
    long long acc = 1;
    for (int k = 3; k >= 0; --k) {
        st[k] = s.d[k] == 1 && out.d[k] != 1 ? 0 : acc;
        acc *= s.d[k];
    }
    return st;
}

// Flat index into an operand of shape s for the output multi-index i: broadcast dims read index 0.
long long operand_index(const Shape4& s, const int i[4])
{
    long long idx = 0;
    for (int k = 0; k < 4; ++k)
        idx = idx * s.d[k] + (s.d[k] == 1 ? 0 : i[k]);
    return idx;
}

template <typename Body>
void for_each_index(const Shape4& out, Body body)
{
    int i[4];
    long long e = 0;
    for (i[0] = 0; i[0] < out.d[0]; ++i[0])
        for (i[1] = 0; i[1] < out.d[1]; ++i[1])
            for (i[2] = 0; i[2] < out.d[2]; ++i[2])
                for (i[3] = 0; i[3] < out.d[3]; ++i[3])
                    body(e++, i);
}

const char* const kOpNames[] = {"add", "sub", "mul"};

void test_binary_forward(const BroadcastCase& bc, int op, const Geometry& g)
{
    const Shape4 out = broadcast(bc.a, bc.b);
    const long long n = out.size();
    const Floats a = random_floats(bc.a.size(), -2.0f, 2.0f, 21), b = random_floats(bc.b.size(), -2.0f, 2.0f, 22);
    Doubles want(n);
    for_each_index(out, [&](long long e, const int i[4]) {
        const float p = a[operand_index(bc.a, i)], q = b[operand_index(bc.b, i)];
        want[e] = op == 0 ? p + q : op == 1 ? p - q : op == 2 ? p * q
                : op == 5 ? (p == q) : op == 6 ? (p < q) : op == 7 ? (p > q) : (p != q);
    });
    const std::vector<long long> as = launcher_strides(bc.a, out), bs = launcher_strides(bc.b, out);
    device::Buffer dout(n * 4), da(a.size() * 4), db(b.size() * 4);
    da.upload(a);
    db.upload(b);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("dense", "binary_forward"), {grid_for(g, n)}, {g.block}, 0, dout.ptr(),
                            da.ptr(), db.ptr(), op, out.d[0], out.d[1], out.d[2], out.d[3], as[0], as[1], as[2],
                            as[3], bs[0], bs[1], bs[2], bs[3]));
    expect_exact("out", dout.download<float>(n), want);
}

// g (zero-filled) += scale * gy * other, summed over the dims g is broadcast on. The launcher
// passes other = the other operand with scale 1 for Mul, and other = null with scale ±1 for
// Add/Sub; `scale` with `other` is the kernel's documented contract, tested as well.
void test_binary_backward(const Shape4& own, const Shape4& other_shape, bool with_other, float scale,
                          const Geometry& g)
{
    const Shape4 out = broadcast(own, other_shape);
    const long long n = out.size();
    const Floats gy = random_floats(n, -2.0f, 2.0f, 23), other = random_floats(other_shape.size(), -2.0f, 2.0f, 24);
    Doubles want(own.size()), magnitude(own.size()), terms(own.size());
    for_each_index(out, [&](long long e, const int i[4]) {
        const long long k = operand_index(own, i);
        const double t = scale * static_cast<double>(gy[e]) * (with_other ? other[operand_index(other_shape, i)] : 1.0f);
        want[k] += t;
        magnitude[k] += std::fabs(t);
        terms[k] += 1;
    });
    const std::vector<long long> gs = launcher_strides(own, out);
    const std::vector<long long> os = with_other ? launcher_strides(other_shape, out) : launcher_strides(out, out);
    device::Buffer dg(own.size() * 4), dgy(n * 4), dother(other.size() * 4);
    zero(dg);
    dgy.upload(gy);
    dother.upload(other);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("dense", "binary_backward"), {grid_for(g, n)}, {g.block}, 0, dg.ptr(),
                            dgy.ptr(), with_other ? dother.ptr() : CUdeviceptr(0), scale, out.d[0], out.d[1],
                            out.d[2], out.d[3], gs[0], gs[1], gs[2], gs[3], os[0], os[1], os[2], os[3]));
    // A float sum of m terms in any order (the atomics' order is unspecified) is within
    // (m - 1) eps Σ|t| of the exact sum; each term's own rounding adds up to 2 eps |t|.
    expect_close("g", dg.download<float>(own.size()), want,
                 [&](size_t i) { return (terms[i] + 2) * FLT_EPSILON * magnitude[i]; });
}

// where_forward: out = c != 0 ? x : y (c of shape a, x of shape b, y of shape a: one broadcast pair
// reused both ways), bit for bit; where_backward: gy summed where the condition picks the operand,
// within the float-sum bound of binary_backward. Conditions are half zeros.
void test_where(const BroadcastCase& bc, const Geometry& g)
{
    const Shape4 out = broadcast(bc.a, bc.b);
    const long long n = out.size();
    Floats c = random_floats(bc.a.size(), -1.0f, 1.0f, 31);
    for (float& v : c)
        v = v > 0.0f ? 1.0f : 0.0f;
    const Floats x = random_floats(bc.b.size(), -2.0f, 2.0f, 32), y = random_floats(bc.a.size(), -2.0f, 2.0f, 33),
                 gy = random_floats(n, -2.0f, 2.0f, 34);
    Doubles want(n), want_gx(bc.b.size()), mag_gx(bc.b.size()), terms_gx(bc.b.size()), want_gy(bc.a.size()),
        mag_gy(bc.a.size()), terms_gy(bc.a.size());
    for_each_index(out, [&](long long e, const int i[4]) {
        const bool pick = c[operand_index(bc.a, i)] != 0.0f;
        want[e] = pick ? x[operand_index(bc.b, i)] : y[operand_index(bc.a, i)];
        const long long k = pick ? operand_index(bc.b, i) : operand_index(bc.a, i);
        (pick ? want_gx : want_gy)[k] += gy[e];
        (pick ? mag_gx : mag_gy)[k] += std::fabs(gy[e]);
        (pick ? terms_gx : terms_gy)[k] += 1;
    });
    const std::vector<long long> as = launcher_strides(bc.a, out), bs = launcher_strides(bc.b, out);
    device::Buffer dout(n * 4), dc(c.size() * 4), dx(x.size() * 4), dy(y.size() * 4), dgy(n * 4), dgx(x.size() * 4),
        dgyy(y.size() * 4);
    dc.upload(c);
    dx.upload(x);
    dy.upload(y);
    dgy.upload(gy);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("dense", "where_forward"), {grid_for(g, n)}, {g.block}, 0, dout.ptr(),
                            dc.ptr(), dx.ptr(), dy.ptr(), out.d[0], out.d[1], out.d[2], out.d[3], as[0], as[1], as[2],
                            as[3], bs[0], bs[1], bs[2], bs[3], as[0], as[1], as[2], as[3]));
    expect_exact("out", dout.download<float>(n), want);
    zero(dgx);
    zero(dgyy);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("dense", "where_backward"), {grid_for(g, n)}, {g.block}, 0, dgx.ptr(),
                            dgy.ptr(), dc.ptr(), 0, out.d[0], out.d[1], out.d[2], out.d[3], bs[0], bs[1], bs[2], bs[3],
                            as[0], as[1], as[2], as[3]));
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("dense", "where_backward"), {grid_for(g, n)}, {g.block}, 0, dgyy.ptr(),
                            dgy.ptr(), dc.ptr(), 1, out.d[0], out.d[1], out.d[2], out.d[3], as[0], as[1], as[2], as[3],
                            as[0], as[1], as[2], as[3]));
    expect_close("gx", dgx.download<float>(x.size()), want_gx,
                 [&](size_t i) { return (terms_gx[i] + 2) * FLT_EPSILON * mag_gx[i]; });
    expect_close("gy", dgyy.download<float>(y.size()), want_gy,
                 [&](size_t i) { return (terms_gy[i] + 2) * FLT_EPSILON * mag_gy[i]; });
}

// reduce_extreme_forward/backward (max: kind 0, min: kind 1) over flagged axes, on small integer
// levels so that windows hold ties: the extreme exactly; dy split evenly among the tied inputs, as
// one float division (the kernel's), bit for bit.
void test_reduce_extreme(const Shape4& in, const int r[4], int kind, const Geometry& g)
{
    Shape4 out{};
    for (int d = 0; d < 4; ++d)
        out.d[d] = r[d] ? 1 : in.d[d];
    const Floats x = random_levels(in.size(), -3, 3, 35), dy = random_floats(out.size(), -1.0f, 1.0f, 36);
    Doubles best(out.size(), kind == 0 ? -1e30 : 1e30), ties(out.size(), 0.0), want_dx(in.size());
    for_each_index(in, [&](long long e, const int i[4]) {
        const long long o = operand_index(out, i);
        best[o] = kind == 0 ? std::max(best[o], static_cast<double>(x[e])) : std::min(best[o], static_cast<double>(x[e]));
    });
    for_each_index(in, [&](long long e, const int i[4]) { ties[operand_index(out, i)] += x[e] == best[operand_index(out, i)]; });
    for_each_index(in, [&](long long e, const int i[4]) {
        const long long o = operand_index(out, i);
        want_dx[e] = x[e] == best[o] ? dy[o] / static_cast<float>(ties[o]) : 0.0f;
    });
    device::Buffer yb(out.size() * 4), xb(in.size() * 4), dyb(out.size() * 4), dxb(in.size() * 4);
    xb.upload(x);
    dyb.upload(dy);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "reduce_extreme_forward"), {grid_for(g, out.size())},
                                          {g.block}, 0, yb.ptr(), xb.ptr(), in.d[0], in.d[1], in.d[2], in.d[3], r[0],
                                          r[1], r[2], r[3], kind));
    expect_exact("y", yb.download<float>(out.size()), best);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "reduce_extreme_backward"), {grid_for(g, in.size())},
                                          {g.block}, 0, dxb.ptr(), dyb.ptr(), xb.ptr(), yb.ptr(), in.d[0], in.d[1],
                                          in.d[2], in.d[3], r[0], r[1], r[2], r[3]));
    expect_exact("dx", dxb.download<float>(in.size()), want_dx);
}

void test_scale_copy(long long n, float scale, const Geometry& g)
{
    const Floats src = random_floats(n, -5.0f, 5.0f, 31);
    Doubles want(n);
    for (long long e = 0; e < n; ++e)
        want[e] = scale * src[e];
    device::Buffer ddst(n * 4), dsrc(n * 4);
    dsrc.upload(src);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "scale_copy"), {grid_for(g, n)}, {g.block}, 0,
                                          ddst.ptr(), dsrc.ptr(), n, scale));
    expect_exact("dst", ddst.download<float>(n), want);
}

void test_add_inplace(long long n, const Geometry& g)
{
    const Floats dst0 = random_floats(n, -5.0f, 5.0f, 32), src = random_floats(n, -5.0f, 5.0f, 33);
    Doubles want(n);
    for (long long e = 0; e < n; ++e)
        want[e] = dst0[e] + src[e];
    device::Buffer ddst(n * 4), dsrc(n * 4);
    ddst.upload(dst0);
    dsrc.upload(src);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "add_inplace"), {grid_for(g, n)}, {g.block}, 0,
                                          ddst.ptr(), dsrc.ptr(), n));
    expect_exact("dst", ddst.download<float>(n), want);
}

// Div (3) and Pow (4): each operand's gradient, the contributions formed in double and summed onto
// the operand's broadcast dims (the kernel sums with atomics, in any order: a few float roundings).
void test_binary_grad(const BroadcastCase& bc, int op, int operand, const Geometry& g)
{
    const Shape4 out = broadcast(bc.a, bc.b);
    const long long n = out.size();
    const Floats a = random_floats(bc.a.size(), 0.5f, 2.0f, 23), b = random_floats(bc.b.size(), 0.5f, 2.0f, 24);
    const Floats gy = random_floats(n, -1.0f, 1.0f, 25);
    const Shape4& own = operand == 0 ? bc.a : bc.b;
    Doubles want(own.size(), 0.0), magnitude(own.size(), 0.0);
    for_each_index(out, [&](long long e, const int i[4]) {
        const double x = a[operand_index(bc.a, i)], y = b[operand_index(bc.b, i)], gv = gy[e];
        double v;
        if (op == 3)
            v = operand == 0 ? gv / y : -gv * x / (y * y);
        else
            v = operand == 0 ? gv * y * std::pow(x, y - 1.0) : gv * std::pow(x, y) * std::log(x);
        want[operand_index(own, i)] += v;
        magnitude[operand_index(own, i)] += std::fabs(v);
    });
    device::Buffer dg(own.size() * 4), dgy(n * 4), da(bc.a.size() * 4), db(bc.b.size() * 4);
    dg.upload(Floats(own.size(), 0.0f));
    dgy.upload(gy);
    da.upload(a);
    db.upload(b);
    const std::vector<long long> gs = launcher_strides(own, out), as = launcher_strides(bc.a, out),
                                 bs = launcher_strides(bc.b, out);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "binary_grad"), {grid_for(g, n)}, {g.block}, 0,
                                          dg.ptr(), dgy.ptr(), da.ptr(), db.ptr(), op, operand, out.d[0], out.d[1],
                                          out.d[2], out.d[3], gs[0], gs[1], gs[2], gs[3], as[0], as[1], as[2], as[3],
                                          bs[0], bs[1], bs[2], bs[3]));
    expect_close("g", dg.download<float>(own.size()), want,
                 [&](size_t i) { return 4.0 * FLT_EPSILON * magnitude[i] + 1e-30; });
}

// reduce_forward / reduce_backward over flagged axes, mean or sum: double sums in ascending input
// order (the kernel's order), one rounding.
void test_reduce(const Shape4& in, const int r[4], int mean, const Geometry& g)
{
    Shape4 out{};
    double count = 1;
    for (int d = 0; d < 4; ++d) {
        out.d[d] = r[d] ? 1 : in.d[d];
        count *= r[d] ? in.d[d] : 1;
    }
    const Floats x = random_floats(in.size(), -1.0f, 1.0f, 27), dy = random_floats(out.size(), -1.0f, 1.0f, 28);
    Doubles sums(out.size(), 0.0), want_y(out.size()), want_dx(in.size());
    for_each_index(in, [&](long long e, const int i[4]) {
        const long long o = operand_index(out, i);
        sums[o] += x[e];
        want_dx[e] = mean ? static_cast<float>(dy[o] / count) : dy[o];
    });
    for (long long o = 0; o < out.size(); ++o)
        want_y[o] = static_cast<float>(mean ? sums[o] / count : sums[o]);
    device::Buffer dyb(out.size() * 4), dxb(in.size() * 4), yb(out.size() * 4), xb(in.size() * 4);
    xb.upload(x);
    dyb.upload(dy);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "reduce_forward"), {grid_for(g, out.size())},
                                          {g.block}, 0, yb.ptr(), xb.ptr(), in.d[0], in.d[1], in.d[2], in.d[3], r[0],
                                          r[1], r[2], r[3], mean));
    expect_exact("y", yb.download<float>(out.size()), want_y);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "reduce_backward"), {grid_for(g, in.size())},
                                          {g.block}, 0, dxb.ptr(), dyb.ptr(), in.d[0], in.d[1], in.d[2], in.d[3], r[0],
                                          r[1], r[2], r[3], mean));
    expect_exact("dx", dxb.download<float>(in.size()), want_dx);
}

// The unary family against a reference written from the formulas (double, rounded once); kinks
// and domains as in Op.Unary. Tolerance: one float rounding of the double result.
double unary_reference(int kind, double a, double b, double x, double* grad)
{
    const double pi = 3.141592653589793;
    double y = 0.0, d = 0.0;
    switch (kind) {
    case 0: y = std::min(std::max(x, a), b); d = (x > a && x < b) ? 1.0 : 0.0; break;
    case 1: y = std::max(0.0, std::min(1.0, a * x + b)); d = (a * x + b > 0.0 && a * x + b < 1.0) ? a : 0.0; break;
    case 2: y = x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5)); d = x < -3.0 ? 0.0 : (x <= 3.0 ? x / 3.0 + 0.5 : 1.0); break;
    case 3: y = std::sqrt(x); d = 0.5 / std::sqrt(x); break;
    case 4: y = std::exp(x); d = std::exp(x); break;
    case 5: y = std::log(x); d = 1.0 / x; break;
    case 6: y = std::erf(x); d = 2.0 / std::sqrt(pi) * std::exp(-x * x); break;
    case 7: y = std::log1p(std::exp(-std::fabs(x))) + std::max(x, 0.0); d = 1.0 / (1.0 + std::exp(-x)); break;
    case 8: y = x > 0 ? x : a * std::expm1(x); d = x > 0 ? 1.0 : a * std::exp(x); break;
    case 12: y = -x; d = -1.0; break;
    case 14: y = std::trunc(x); d = 0.0; break;
    case 15: y = std::floor(x); d = 0.0; break;
    case 16: y = std::ceil(x); d = 0.0; break;
    case 17: y = std::nearbyint(x); d = 0.0; break;
    case 18: y = x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); d = 0.0; break;
    case 19: y = 1.0 / x; d = -1.0 / (x * x); break;
    case 20: y = std::sin(x); d = std::cos(x); break;
    case 21: y = std::cos(x); d = -std::sin(x); break;
    default: y = std::fabs(x); d = x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); break;
    }
    *grad = d;
    return y;
}

void test_unary(int kind, float a, float b, float lo, float hi, long long n, const Geometry& g)
{
    const Floats x = random_floats(n, lo, hi, 51 + kind), gy = random_floats(n, -2.0f, 2.0f, 52);
    Doubles want_y(n), want_gx(n);
    for (long long e = 0; e < n; ++e) {
        double d = 0.0;
        want_y[e] = static_cast<float>(unary_reference(kind, a, b, x[e], &d));
        want_gx[e] = static_cast<float>(gy[e] * d);
    }
    device::Buffer dx(n * 4), dgy(n * 4), dy(n * 4), dgx(n * 4);
    dx.upload(x);
    dgy.upload(gy);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "unary_forward"), {grid_for(g, n)}, {g.block}, 0,
                                          dy.ptr(), dx.ptr(), n, kind, a, b));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "unary_backward"), {grid_for(g, n)}, {g.block}, 0,
                                          dgx.ptr(), dgy.ptr(), dx.ptr(), n, kind, a, b));
    const auto one_rounding = [&](const Doubles& w) {
        return [&w](size_t i) { return 2.0 * FLT_EPSILON * std::fabs(w[i]) + 1e-30; };
    };
    expect_close("y", dy.download<float>(n), want_y, one_rounding(want_y));
    expect_close("gx", dgx.download<float>(n), want_gx, one_rounding(want_gx));
}

// ONNX Pad over 4 dims; mode 0 constant, 1 reflect, 2 edge, 3 wrap. The reference maps each
// output coordinate on its own (written independently of the kernel's helper).
struct PadCase {
    int in[4];
    int begin[4];
    int end[4];
    int mode;
};

int pad_reference_source(int o, int begin, int n, int mode)
{
    int s = o - begin;
    if (s >= 0 && s < n)
        return s;
    if (mode == 0)
        return -1;
    if (mode == 2)
        return s < 0 ? 0 : n - 1;
    if (mode == 3) {
        while (s < 0)
            s += n;
        return s % n;
    }
    return s < 0 ? -s : 2 * (n - 1) - s;  // reflect
}

void test_pad(const PadCase& pc, const Geometry& g)
{
    int out[4];
    long long in_n = 1, out_n = 1;
    for (int d = 0; d < 4; ++d) {
        out[d] = pc.in[d] + pc.begin[d] + pc.end[d];
        in_n *= pc.in[d];
        out_n *= out[d];
    }
    const float value = 0.75f;
    const Floats x = random_floats(in_n, -3.0f, 3.0f, 41), dy = random_floats(out_n, -3.0f, 3.0f, 42);
    Doubles want_y(out_n), want_dx(in_n, 0.0);
    std::vector<float> sum_dx(in_n, 0.0f);  // summed in ascending output order, as the kernel gathers
    long long e = 0;
    for (int a = 0; a < out[0]; ++a)
        for (int b = 0; b < out[1]; ++b)
            for (int c = 0; c < out[2]; ++c)
                for (int d = 0; d < out[3]; ++d, ++e) {
                    const int s0 = pad_reference_source(a, pc.begin[0], pc.in[0], pc.mode);
                    const int s1 = pad_reference_source(b, pc.begin[1], pc.in[1], pc.mode);
                    const int s2 = pad_reference_source(c, pc.begin[2], pc.in[2], pc.mode);
                    const int s3 = pad_reference_source(d, pc.begin[3], pc.in[3], pc.mode);
                    if (s0 < 0 || s1 < 0 || s2 < 0 || s3 < 0) {
                        want_y[e] = value;
                        continue;
                    }
                    const long long src = ((static_cast<long long>(s0) * pc.in[1] + s1) * pc.in[2] + s2) * pc.in[3] + s3;
                    want_y[e] = x[src];
                    sum_dx[src] += dy[e];
                }
    for (long long i = 0; i < in_n; ++i)
        want_dx[i] = sum_dx[i];
    device::Buffer dyb(out_n * 4), dxb(in_n * 4), yb(out_n * 4), xb(in_n * 4);
    xb.upload(x);
    dyb.upload(dy);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "pad_forward"), {grid_for(g, out_n)}, {g.block}, 0,
                                          yb.ptr(), xb.ptr(), pc.mode, value, pc.in[0], pc.in[1], pc.in[2], pc.in[3],
                                          out[0], out[1], out[2], out[3], pc.begin[0], pc.begin[1], pc.begin[2],
                                          pc.begin[3]));
    expect_exact("y", yb.download<float>(out_n), want_y);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("dense", "pad_backward"), {grid_for(g, in_n)}, {g.block}, 0,
                                          dxb.ptr(), dyb.ptr(), pc.mode, pc.in[0], pc.in[1], pc.in[2], pc.in[3],
                                          out[0], out[1], out[2], out[3], pc.begin[0], pc.begin[1], pc.begin[2],
                                          pc.begin[3]));
    expect_exact("dx", dxb.download<float>(in_n), want_dx);
}

}  // namespace

SUITE(dense_kernels)
{
    device::use_primary_context();
    std::printf("module image: %s\n", harness::ptx_is_from_nvcc("dense") ? "nvcc PTX"
                                                                           : "signature-only PTX (no nvcc)");
    const struct {
        long long rows;
        int cols;
    } kMatrices[] = {{1, 1}, {3, 7}, {1, 33}, {7, 37}, {4, 257}, {33, 31}, {2, 1003}};
    // gemm_f64 runs at the path's two ends (2 rows per example): few rows, any n and k.
    const struct {
        int m, n, k;
    } kGemms[] = {{1, 1, 1}, {2, 7, 33}, {1, 33, 5}, {3, 100, 17}, {4, 257, 3}, {6, 683, 11}, {2, 64, 784}};
    const struct {
        float alpha, beta;
    } kGemmScales[] = {{1.0f, 1.0f}, {0.75f, -1.25f}, {-2.5f, 0.3f}};

    for (const Geometry& g : kGeometries) {
        for (const Act& a : kActs) {
            for (long long n : kSizes) {
                const std::string shape = "n=" + std::to_string(n);
                harness::run_case(name_of("act_forward", shape, a.name, g), [&] { test_act_forward(n, a, g); });
                harness::run_case(name_of("act_backward", shape, a.name, g), [&] { test_act_backward(n, a, g); });
            }
            for (const auto& m : kMatrices)
                for (bool with_bias : {true, false}) {
                    const std::string shape = "rows=" + std::to_string(m.rows) + " cols=" + std::to_string(m.cols) +
                                              (with_bias ? " bias" : " no-bias");
                    harness::run_case(name_of("bias_act_forward", shape, a.name, g),
                                      [&] { test_bias_act_forward(m.rows, m.cols, with_bias, a, g); });
                    harness::run_case(name_of("bias_act_forward_keep", shape, a.name, g),
                                      [&] { test_bias_act_forward_keep(m.rows, m.cols, with_bias, a, g); });
                }
        }
        for (const auto& p : kGemms)
            for (bool trans_b : {false, true})
                for (bool with_c : {true, false})
                    for (const auto& sc : kGemmScales) {
                        const std::string shape = "m=" + std::to_string(p.m) + " n=" + std::to_string(p.n) +
                                                  " k=" + std::to_string(p.k) + (trans_b ? " transB" : "") +
                                                  (with_c ? " c" : " no-c");
                        char scales[64];
                        std::snprintf(scales, sizeof scales, "alpha=%g beta=%g", sc.alpha, sc.beta);
                        harness::run_case(name_of("gemm_f64", shape, scales, g),
                                          [&] { test_gemm_f64(p.m, p.n, p.k, trans_b, with_c, sc.alpha, sc.beta, g); });
                    }
        for (const BroadcastCase& bc : kBroadcastCases) {
            const std::string shapes = bc.a.str() + " " + bc.b.str();
            for (int op = 0; op < 3; ++op)
                harness::run_case(name_of("binary_forward", shapes, kOpNames[op], g),
                                  [&] { test_binary_forward(bc, op, g); });
            const char* kCompareNames[] = {"equal", "less", "greater", "not equal"};
            for (int op = 5; op <= 8; ++op)
                harness::run_case(name_of("binary_forward", shapes, kCompareNames[op - 5], g),
                                  [&] { test_binary_forward(bc, op, g); });
            // Each operand's gradient, reduced onto its own (possibly broadcast) shape.
            for (int j = 0; j < 2; ++j) {
                const Shape4& own = j == 0 ? bc.a : bc.b;
                const Shape4& other = j == 0 ? bc.b : bc.a;
                const std::string which = std::string(j == 0 ? "ga " : "gb ") + own.str() + " other " + other.str();
                harness::run_case(name_of("binary_backward", which, "mul (other, scale 1)", g),
                                  [&] { test_binary_backward(own, other, true, 1.0f, g); });
                harness::run_case(name_of("binary_backward", which, "add (scale 1)", g),
                                  [&] { test_binary_backward(own, other, false, 1.0f, g); });
                harness::run_case(name_of("binary_backward", which, "sub (scale -1)", g),
                                  [&] { test_binary_backward(own, other, false, -1.0f, g); });
                harness::run_case(name_of("binary_backward", which, "other and scale 0.5", g),
                                  [&] { test_binary_backward(own, other, true, 0.5f, g); });
            }
        }
        for (long long n : kSizes) {
            for (float scale : {2.5f, -1.0f, 0.0f})
                harness::run_case(name_of("scale_copy", "n=" + std::to_string(n), ("scale=" + std::to_string(scale)).c_str(), g),
                                  [&] { test_scale_copy(n, scale, g); });
            harness::run_case(name_of("add_inplace", "n=" + std::to_string(n), "", g), [&] { test_add_inplace(n, g); });
        }
        for (const BroadcastCase& bc : kBroadcastCases)
            harness::run_case(name_of("where_forward/backward", bc.a.str() + " " + bc.b.str(), "condition of a's shape", g),
                              [&] { test_where(bc, g); });
        for (const BroadcastCase& bc : kBroadcastCases) {
            const std::string shapes = bc.a.str() + " " + bc.b.str();
            for (int op : {3, 4})
                for (int operand : {0, 1})
                    harness::run_case(name_of("binary_grad", shapes, op == 3 ? (operand ? "div d/db" : "div d/da")
                                                                              : (operand ? "pow d/db" : "pow d/da"), g),
                                      [&] { test_binary_grad(bc, op, operand, g); });
        }
        const int kReduced[][4] = {{0, 0, 0, 1}, {0, 1, 0, 0}, {0, 0, 1, 1}, {0, 1, 0, 1}, {0, 1, 1, 1}};
        for (const int* r : kReduced)
            for (int kind : {0, 1})
                harness::run_case(name_of("reduce_extreme_forward/backward", Shape4{{2, 3, 4, 5}}.str(),
                                          (std::string(kind == 0 ? "max" : "min") + " over " + std::to_string(r[0]) +
                                           std::to_string(r[1]) + std::to_string(r[2]) + std::to_string(r[3])).c_str(), g),
                                  [&] { test_reduce_extreme(Shape4{{2, 3, 4, 5}}, r, kind, g); });
        for (const int* r : kReduced)
            for (int mean : {0, 1})
                harness::run_case(name_of("reduce_forward/backward", Shape4{{2, 3, 4, 5}}.str(),
                                          (std::string(mean ? "mean" : "sum") + " over " + std::to_string(r[0]) +
                                           std::to_string(r[1]) + std::to_string(r[2]) + std::to_string(r[3])).c_str(), g),
                                  [&] { test_reduce(Shape4{{2, 3, 4, 5}}, r, mean, g); });
        const struct {
            int kind;
            float a, b, lo, hi;
            const char* name;
        } kUnary[] = {{0, -1.0f, 2.0f, -3.0f, 4.0f, "Clip(-1,2)"}, {1, 0.2f, 0.5f, -4.0f, 4.0f, "HardSigmoid"},
                      {2, 0.0f, 0.0f, -5.0f, 5.0f, "HardSwish"},   {3, 0.0f, 0.0f, 0.1f, 9.0f, "Sqrt"},
                      {4, 0.0f, 0.0f, -5.0f, 5.0f, "Exp"},         {5, 0.0f, 0.0f, 0.1f, 9.0f, "Log"},
                      {6, 0.0f, 0.0f, -4.0f, 4.0f, "Erf"},         {7, 0.0f, 0.0f, -8.0f, 8.0f, "Softplus"},
                      {8, 1.3f, 0.0f, -3.0f, 3.0f, "Elu(1.3)"},    {12, 0.0f, 0.0f, -3.0f, 3.0f, "Neg"},
                      {13, 0.0f, 0.0f, -3.0f, 3.0f, "Abs"},        {14, 0.0f, 0.0f, -5.0f, 5.0f, "Trunc (Cast)"},
                      {15, 0.0f, 0.0f, -5.0f, 5.0f, "Floor"},      {16, 0.0f, 0.0f, -5.0f, 5.0f, "Ceil"},
                      {17, 0.0f, 0.0f, -5.0f, 5.0f, "Round"},      {18, 0.0f, 0.0f, -3.0f, 3.0f, "Sign"},
                      {19, 0.0f, 0.0f, 0.5f, 4.0f, "Reciprocal"},  {20, 0.0f, 0.0f, -7.0f, 7.0f, "Sin"},
                      {21, 0.0f, 0.0f, -7.0f, 7.0f, "Cos"}};
        for (const auto& u : kUnary)
            for (long long n : {1LL, 1000LL})
                harness::run_case(name_of("unary_forward/backward", "n=" + std::to_string(n), u.name, g),
                                  [&] { test_unary(u.kind, u.a, u.b, u.lo, u.hi, n, g); });
        const PadCase kPads[] = {
            {{1, 1, 1, 7}, {0, 0, 0, 2}, {0, 0, 0, 3}, 0},  {{2, 3, 5, 7}, {0, 0, 1, 2}, {0, 0, 2, 1}, 0},
            {{2, 3, 5, 7}, {0, 0, 2, 1}, {0, 0, 1, 3}, 1},  {{2, 2, 4, 5}, {0, 0, 3, 0}, {0, 0, 0, 4}, 2},
            {{2, 2, 4, 5}, {0, 0, 2, 6}, {0, 0, 5, 1}, 3},  {{1, 3, 5, 7}, {0, 0, -1, 1}, {0, 0, 2, -2}, 0},
            {{1, 3, 5, 7}, {0, 1, -1, 2}, {0, 0, 1, -3}, 2}, {{3, 1, 9, 9}, {0, 0, 4, 8}, {0, 0, 8, 4}, 1},
        };
        const char* kPadModes[] = {"constant", "reflect", "edge", "wrap"};
        for (const PadCase& pc : kPads) {
            std::string shape = "in=" + std::to_string(pc.in[0]) + "x" + std::to_string(pc.in[1]) + "x" +
                                std::to_string(pc.in[2]) + "x" + std::to_string(pc.in[3]);
            harness::run_case(name_of("pad_forward/backward", shape, kPadModes[pc.mode], g), [&] { test_pad(pc, g); });
        }
    }
}
