// test_conv_kernels.cpp: kernels/conv.cu through the fake driver, against references written
// here.
//
// Each kernel runs from the PTX the CUDA backend loads, with its Java launcher's geometry
// (Kernels.java: 256 threads, at most 16 blocks on the emulator or 65535 on a GPU; 256 threads
// and one block per plane for global_avgpool_forward) and with a small grid that makes the
// grid-stride loops wrap. Shapes have odd channel counts and odd spatial sizes, stride 2,
// padding (asymmetric, and wide enough that whole windows fall into it), dilation, groups
// (depthwise included) and ceil-mode output sizes.
//
// The references are the textbook definitions: convolution over an explicitly zero-padded
// input, col2im as the scatter that is the adjoint of im2col (the kernel gathers), max pooling
// by "first NaN, else first maximal element in row-major window order", pooling gradients as
// scatters. They accumulate in double. Comparisons: bit for bit where the kernel does the same
// float operations (max pooling, argmax, the global-average gradient, channel_affine);
// conv2d_forward and global_avgpool_forward accumulate in double as well and must be correctly
// rounded up to the double sums' own error; conv2d_forward_f64 stores its double sum unrounded
// and must equal the reference's double bit for bit (the products of floats are exact in double,
// and both add them after the bias in the same order: channel, row, column; the reference's
// padding taps add exact zeros, which change no nonzero sum and leave +0 at +0); kernels that sum in float (col2im, average pooling,
// the atomic scatters) are held to the error bound of a float sum of that many terms.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"
#include "kernel_test_util.h"

using namespace ktest;

namespace {

// ---- window geometry, resolved as dev.kxai.graph.Window does -------------------------------

struct Window {
    int kh, kw, sh, sw, ph, pw, pb, pr, dh, dw;
    bool ceil;
    int oh = 0, ow = 0;
};

int out_size(int in, int p0, int p1, int k, int d, int s, bool ceil)
{
    const int span = in + p0 + p1 - ((k - 1) * d + 1);
    if (span < 0)
        return 0;
    int out = (ceil ? (span + s - 1) / s : span / s) + 1;
    if (ceil && (out - 1) * s >= in + p0)  // the last window must start inside the input or the leading pad
        --out;
    return out;
}

Window resolve(Window w, int h, int wd)
{
    w.oh = out_size(h, w.ph, w.pb, w.kh, w.dh, w.sh, w.ceil);
    w.ow = out_size(wd, w.pw, w.pr, w.kw, w.dw, w.sw, w.ceil);
    return w;
}

std::string str(const Window& w)
{
    char s[200];
    std::snprintf(s, sizeof s, "k=%dx%d s=%dx%d pads=%d,%d,%d,%d d=%dx%d%s out=%dx%d", w.kh, w.kw, w.sh, w.sw, w.ph,
                  w.pw, w.pb, w.pr, w.dh, w.dw, w.ceil ? " ceil" : "", w.oh, w.ow);
    return s;
}

// ---- conv2d_forward and im2col_input_grad ----------------------------------------------------

struct ConvCase {
    int n, c, h, w, m, groups;
    Window win;  // unresolved; oh/ow filled by resolve()
};
const ConvCase kConvCases[] = {
    {1, 1, 1, 1, 1, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}},     // 1x1 everything
    {2, 3, 7, 9, 5, 1, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false}},     // "same" 3x3
    {1, 5, 11, 8, 7, 1, {3, 2, 2, 2, 1, 0, 1, 0, 1, 1, false}},    // stride 2, odd sizes
    {2, 2, 9, 10, 3, 1, {3, 3, 1, 1, 2, 2, 2, 2, 2, 3, false}},    // dilation 2x3
    {2, 6, 5, 7, 9, 3, {3, 3, 2, 2, 1, 1, 0, 0, 1, 1, false}},     // 3 groups, stride 2
    {1, 5, 8, 8, 10, 5, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false}},    // depthwise, multiplier 2
    {1, 3, 6, 5, 4, 1, {4, 3, 3, 2, 2, 1, 0, 2, 1, 1, false}},     // asymmetric pads, stride 3x2
    {3, 4, 17, 19, 6, 1, {5, 5, 1, 1, 2, 2, 2, 2, 1, 1, false}},   // 5x5, 5814 outputs
    {1, 2, 2, 3, 2, 1, {3, 3, 1, 1, 2, 2, 2, 2, 2, 2, false}},     // window wider than the input
    {2, 4, 13, 11, 6, 2, {3, 3, 2, 2, 2, 2, 1, 1, 2, 2, false}},   // stride 2, dilation 2, 2 groups
    {1, 3, 1, 37, 3, 3, {1, 5, 1, 2, 0, 2, 0, 2, 1, 1, false}},    // a single row, depthwise 1x5
};

// Shapes for the float kernel's tiles: K over 256 (float blocks added in double), output
// channels over one 64-row tile, positions over several 64-column tiles, a 1x1 over 600 channels.
const ConvCase kConvF32Cases[] = {
    {2, 40, 6, 5, 70, 1, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false}},   // K = 360, M = 70
    {3, 8, 9, 11, 5, 1, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false}},    // 297 positions: 5 column tiles
    {1, 600, 3, 3, 3, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}},   // 1x1, K = 600: three float blocks
    {2, 130, 4, 4, 66, 2, {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false}},  // 2 groups, K = 585, M/group 33
};

std::string str(const ConvCase& cc, const Window& w)
{
    return "n=" + std::to_string(cc.n) + " c=" + std::to_string(cc.c) + " h=" + std::to_string(cc.h) +
           " w=" + std::to_string(cc.w) + " m=" + std::to_string(cc.m) + " groups=" + std::to_string(cc.groups) +
           " " + str(w);
}

// The convolution over the explicitly zero-padded input, accumulated in double (bias first);
// magnitude: the sum of the terms' absolute values.
void conv_reference(const ConvCase& cc, const Window& w, const Floats& x, const Floats& wt, const Floats& bias,
                    bool with_bias, Doubles& want, Doubles& magnitude)
{
    const int cg = cc.c / cc.groups, mg = cc.m / cc.groups;
    // The input with its padding made explicit.
    const int hp = w.ph + cc.h + w.pb, wp = w.pw + cc.w + w.pr;
    Doubles xp(static_cast<size_t>(cc.n) * cc.c * hp * wp, 0.0);
    for (int img = 0; img < cc.n; ++img)
        for (int ch = 0; ch < cc.c; ++ch)
            for (int y = 0; y < cc.h; ++y)
                for (int xx = 0; xx < cc.w; ++xx)
                    xp[((static_cast<size_t>(img) * cc.c + ch) * hp + y + w.ph) * wp + xx + w.pw] =
                        x[((static_cast<size_t>(img) * cc.c + ch) * cc.h + y) * cc.w + xx];
    const size_t outputs = static_cast<size_t>(cc.n) * cc.m * w.oh * w.ow;
    want.assign(outputs, 0.0);
    magnitude.assign(outputs, 0.0);
    for (int img = 0; img < cc.n; ++img)
        for (int oc = 0; oc < cc.m; ++oc) {
            const int group = oc / mg;
            for (int oy = 0; oy < w.oh; ++oy)
                for (int ox = 0; ox < w.ow; ++ox) {
                    double acc = with_bias ? bias[oc] : 0.0, mag = std::fabs(acc);
                    for (int k = 0; k < cg; ++k)
                        for (int i = 0; i < w.kh; ++i)
                            for (int j = 0; j < w.kw; ++j) {
                                const double t =
                                    wt[((static_cast<size_t>(oc) * cg + k) * w.kh + i) * w.kw + j] *
                                    xp[((static_cast<size_t>(img) * cc.c + group * cg + k) * hp + oy * w.sh +
                                        i * w.dh) * wp + ox * w.sw + j * w.dw];
                                acc += t;
                                mag += std::fabs(t);
                            }
                    const size_t e = ((static_cast<size_t>(img) * cc.m + oc) * w.oh + oy) * w.ow + ox;
                    want[e] = acc;
                    magnitude[e] = mag;
                }
        }
}

void test_conv2d_forward(const ConvCase& cc, bool with_bias, const Geometry& g)
{
    const Window w = resolve(cc.win, cc.h, cc.w);
    const int cg = cc.c / cc.groups;
    const Floats x = random_floats(static_cast<size_t>(cc.n) * cc.c * cc.h * cc.w, -1.0f, 1.0f, 41);
    const Floats wt = random_floats(static_cast<size_t>(cc.m) * cg * w.kh * w.kw, -1.0f, 1.0f, 42);
    const Floats bias = random_floats(cc.m, -1.0f, 1.0f, 43);
    Doubles want, magnitude;
    conv_reference(cc, w, x, wt, bias, with_bias, want, magnitude);
    const size_t outputs = want.size();
    device::Buffer dy(outputs * 4), dx(x.size() * 4), dw(wt.size() * 4), db(bias.size() * 4);
    dx.upload(x);
    dw.upload(wt);
    db.upload(bias);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("conv", "conv2d_forward"), {grid_for(g, outputs)}, {g.block}, 0,
                            dy.ptr(), dx.ptr(), dw.ptr(), with_bias ? db.ptr() : CUdeviceptr(0), cc.n, cc.c, cc.h,
                            cc.w, cc.m, cc.groups, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.oh, w.ow));
    // Both sides sum exact double products; the kernel rounds its double sum to float once.
    expect_close("y", dy.download<float>(outputs), want,
                 [&](size_t i) { return FLT_EPSILON * std::fabs(want[i]) + 1e-12 * magnitude[i]; });
}

// The same convolution with the double sum stored unrounded: the reference's double, bit for bit.
void test_conv2d_forward_f64(const ConvCase& cc, bool with_bias, const Geometry& g)
{
    const Window w = resolve(cc.win, cc.h, cc.w);
    const int cg = cc.c / cc.groups;
    const Floats x = random_floats(static_cast<size_t>(cc.n) * cc.c * cc.h * cc.w, -1.0f, 1.0f, 45);
    const Floats wt = random_floats(static_cast<size_t>(cc.m) * cg * w.kh * w.kw, -1.0f, 1.0f, 46);
    const Floats bias = random_floats(cc.m, -1.0f, 1.0f, 47);
    Doubles want, magnitude;
    conv_reference(cc, w, x, wt, bias, with_bias, want, magnitude);
    const size_t outputs = want.size();
    device::Buffer dy(outputs * 8), dx(x.size() * 4), dw(wt.size() * 4), db(bias.size() * 4);
    dx.upload(x);
    dw.upload(wt);
    db.upload(bias);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("conv", "conv2d_forward_f64"), {grid_for(g, outputs)}, {g.block}, 0,
                            dy.ptr(), dx.ptr(), dw.ptr(), with_bias ? db.ptr() : CUdeviceptr(0), cc.n, cc.c, cc.h,
                            cc.w, cc.m, cc.groups, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.oh, w.ow));
    expect_exact("y", dy.download<double>(outputs), want);
}

void test_im2col_input_grad(const ConvCase& cc, const Geometry& g)
{
    const Window w = resolve(cc.win, cc.h, cc.w);
    const size_t hw = static_cast<size_t>(w.oh) * w.ow, rows = static_cast<size_t>(cc.c) * w.kh * w.kw;
    const Floats dcols = random_floats(cc.n * rows * hw, -1.0f, 1.0f, 44);
    const size_t inputs = static_cast<size_t>(cc.n) * cc.c * cc.h * cc.w;
    Doubles want(inputs), magnitude(inputs), terms(inputs);
    // im2col reads x[img, ch, oy·sh − ph + i·dh, ox·sw − pw + j·dw] into row (ch·kh + i)·kw + j,
    // column oy·ow + ox; its adjoint adds every column entry back where it was read from.
    for (int img = 0; img < cc.n; ++img)
        for (int ch = 0; ch < cc.c; ++ch)
            for (int i = 0; i < w.kh; ++i)
                for (int j = 0; j < w.kw; ++j)
                    for (int oy = 0; oy < w.oh; ++oy)
                        for (int ox = 0; ox < w.ow; ++ox) {
                            const int iy = oy * w.sh - w.ph + i * w.dh, ix = ox * w.sw - w.pw + j * w.dw;
                            if (iy < 0 || iy >= cc.h || ix < 0 || ix >= cc.w)
                                continue;
                            const float t = dcols[(img * rows + (static_cast<size_t>(ch) * w.kh + i) * w.kw + j) * hw +
                                                  static_cast<size_t>(oy) * w.ow + ox];
                            const size_t e = ((static_cast<size_t>(img) * cc.c + ch) * cc.h + iy) * cc.w + ix;
                            want[e] += t;
                            magnitude[e] += std::fabs(t);
                            terms[e] += 1;
                        }
    device::Buffer ddx(inputs * 4), ddcols(dcols.size() * 4);
    ddcols.upload(dcols);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("conv", "im2col_input_grad"), {grid_for(g, inputs)}, {g.block}, 0,
                            ddx.ptr(), ddcols.ptr(), cc.n, cc.c, cc.h, cc.w, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh,
                            w.dw, w.oh, w.ow));
    // A float sum of m terms is within (m − 1)·eps·Σ|t|; elements no output reads must be +0.
    expect_close("dx", ddx.download<float>(inputs), want,
                 [&](size_t i) { return terms[i] * FLT_EPSILON * magnitude[i]; });
}

// ---- pooling -------------------------------------------------------------------------------

struct PoolCase {
    long long planes;
    int h, w;
    Window win;
};
const PoolCase kMaxPoolCases[] = {
    {1, 1, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}},
    {6, 7, 9, {2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false}},     // last row and column dropped
    {5, 8, 10, {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true}},     // ceil mode adds a row and a column
    {3, 11, 10, {3, 2, 1, 1, 1, 0, 1, 0, 2, 3, false}},   // overlapping, dilation 2x3
    {4, 8, 8, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false}},     // overlapping 3x3/1
    {2, 2, 3, {2, 2, 1, 1, 2, 2, 2, 2, 1, 1, false}},     // windows entirely in the padding
    {7, 33, 17, {5, 3, 3, 2, 2, 1, 0, 1, 1, 1, true}},    // asymmetric pads, ceil
    {10, 31, 29, {2, 2, 2, 2, 0, 0, 0, 0, 1, 1, true}},   // 2400 outputs
};

enum class Fill { random, ties, zeros, nans };
const char* const kFillNames[] = {"random", "ties", "zeros", "nan+inf"};

Floats pool_input(size_t n, Fill fill, unsigned seed)
{
    switch (fill) {
    case Fill::ties: return random_levels(n, 0, 2, seed);
    case Fill::zeros: {
        Floats v(n, 0.0f);
        sprinkle_zeros(v, 2, seed);  // +0 and -0 compare equal: still ties
        return v;
    }
    case Fill::nans: {
        Floats v = random_floats(n, -1.0f, 1.0f, seed);
        for (size_t i = 3; i < n; i += 11)
            v[i] = std::numeric_limits<float>::quiet_NaN();
        for (size_t i = 0; i < n; i += 7)
            v[i] = -INFINITY;
        for (size_t i = 5; i < n; i += 17)
            v[i] = INFINITY;
        return v;
    }
    default: return random_floats(n, -1.0f, 1.0f, seed);
    }
}

// Max pooling as defined: the first NaN of the window if it has one, else the first element
// (row-major window order) equal to the window's maximum; -inf and -1 if no tap is inside.
void maxpool_reference(const PoolCase& pc, const Window& w, const Floats& x, Doubles& y, Ints& argmax)
{
    const size_t outputs = pc.planes * w.oh * w.ow;
    y.assign(outputs, 0.0);
    argmax.assign(outputs, -1);
    size_t e = 0;
    for (long long p = 0; p < pc.planes; ++p)
        for (int oy = 0; oy < w.oh; ++oy)
            for (int ox = 0; ox < w.ow; ++ox, ++e) {
                std::vector<long long> taps;
                for (int i = 0; i < w.kh; ++i)
                    for (int j = 0; j < w.kw; ++j) {
                        const int iy = oy * w.sh - w.ph + i * w.dh, ix = ox * w.sw - w.pw + j * w.dw;
                        if (iy >= 0 && iy < pc.h && ix >= 0 && ix < pc.w)
                            taps.push_back((p * pc.h + iy) * pc.w + ix);
                    }
                long long win = -1;
                for (long long t : taps)
                    if (std::isnan(x[t])) {
                        win = t;
                        break;
                    }
                if (win < 0 && !taps.empty()) {
                    float mx = -INFINITY;
                    for (long long t : taps)
                        mx = std::max(mx, x[t]);
                    for (long long t : taps)
                        if (x[t] == mx) {
                            win = t;
                            break;
                        }
                }
                y[e] = win < 0 ? -INFINITY : x[win];
                argmax[e] = static_cast<int>(win);
            }
}

void test_maxpool_forward(const PoolCase& pc, Fill fill, const Geometry& g)
{
    const Window w = resolve(pc.win, pc.h, pc.w);
    const Floats x = pool_input(pc.planes * pc.h * pc.w, fill, 51);
    Doubles want;
    Ints want_arg;
    maxpool_reference(pc, w, x, want, want_arg);
    const long long outputs = static_cast<long long>(want.size());
    device::Buffer dy(outputs * 4), darg(outputs * 4), dx(x.size() * 4);
    dx.upload(x);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("conv", "maxpool_forward"), {grid_for(g, outputs)}, {g.block}, 0,
                            dy.ptr(), darg.ptr(), dx.ptr(), pc.planes, pc.h, pc.w, w.kh, w.kw, w.sh, w.sw, w.ph,
                            w.pw, w.dh, w.dw, w.oh, w.ow));
    expect_exact("y", dy.download<float>(outputs), want);
    expect_ints("argmax", darg.download<int>(outputs), want_arg);
}

// dx (zero-filled) += dy[o] at argmax[o] for every o with argmax[o] >= 0.
void test_maxpool_backward(long long inputs, const Ints& argmax, const Geometry& g)
{
    const long long outputs = static_cast<long long>(argmax.size());
    const Floats dy = random_floats(outputs, -1.0f, 1.0f, 52);
    Doubles want(inputs), magnitude(inputs), terms(inputs);
    for (long long o = 0; o < outputs; ++o)
        if (argmax[o] >= 0) {
            want[argmax[o]] += dy[o];
            magnitude[argmax[o]] += std::fabs(dy[o]);
            terms[argmax[o]] += 1;
        }
    device::Buffer ddx(inputs * 4), ddy(outputs * 4), darg(outputs * 4);
    zero(ddx);
    ddy.upload(dy);
    darg.upload(argmax);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "maxpool_backward"), {grid_for(g, outputs)},
                                          {g.block}, 0, ddx.ptr(), ddy.ptr(), darg.ptr(), outputs));
    expect_close("dx", ddx.download<float>(inputs), want,
                 [&](size_t i) { return terms[i] * FLT_EPSILON * magnitude[i]; });
}

void test_maxpool_backward_from_forward(const PoolCase& pc, Fill fill, const Geometry& g)
{
    const Window w = resolve(pc.win, pc.h, pc.w);
    const Floats x = pool_input(pc.planes * pc.h * pc.w, fill, 53);
    Doubles y;
    Ints argmax;
    maxpool_reference(pc, w, x, y, argmax);
    test_maxpool_backward(static_cast<long long>(x.size()), argmax, g);
}

const PoolCase kAvgPoolCases[] = {
    {1, 1, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}},
    {6, 7, 9, {2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false}},
    {5, 8, 10, {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true}},     // ceil: last windows overhang the padding
    {3, 10, 11, {3, 2, 1, 1, 1, 0, 1, 0, 1, 1, false}},   // overlapping, asymmetric
    {2, 5, 6, {4, 4, 3, 3, 2, 2, 2, 2, 1, 1, true}},
    {2, 3, 4, {2, 2, 1, 1, 3, 3, 3, 3, 1, 1, false}},     // windows entirely in the padding
    {10, 31, 29, {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true}},   // 2400 outputs
    {4, 8, 8, {8, 8, 1, 1, 0, 0, 0, 0, 1, 1, false}},     // one window per plane
    {3, 9, 7, {3, 2, 2, 3, 0, 1, 2, 0, 1, 1, false}},     // bottom-only / left-only pads
};

struct AvgWindow {
    std::vector<long long> taps;  // in-plane offsets of the taps inside the input
    double divisor;
};

// The window's taps, and its divisor: the number of taps inside the input, or with
// count_include_pad the number inside the padded input [−ph, h+pb) × [−pw, w+pr); at least 1.
AvgWindow avg_window(const PoolCase& pc, const Window& w, int oy, int ox, bool count_pad)
{
    AvgWindow a{{}, 0.0};
    int padded = 0;
    for (int i = 0; i < w.kh; ++i)
        for (int j = 0; j < w.kw; ++j) {
            const int iy = oy * w.sh - w.ph + i, ix = ox * w.sw - w.pw + j;
            if (iy < pc.h + w.pb && ix < pc.w + w.pr)  // iy >= −ph and ix >= −pw always
                ++padded;
            if (iy >= 0 && iy < pc.h && ix >= 0 && ix < pc.w)
                a.taps.push_back(static_cast<long long>(iy) * pc.w + ix);
        }
    a.divisor = std::max(1.0, count_pad ? padded : static_cast<double>(a.taps.size()));
    return a;
}

void test_avgpool_forward(const PoolCase& pc, bool count_pad, const Geometry& g)
{
    const Window w = resolve(pc.win, pc.h, pc.w);
    const Floats x = random_floats(pc.planes * pc.h * pc.w, -1.0f, 1.0f, 54);
    const long long outputs = pc.planes * w.oh * w.ow;
    Doubles want(outputs), tolerance(outputs);
    size_t e = 0;
    for (long long p = 0; p < pc.planes; ++p)
        for (int oy = 0; oy < w.oh; ++oy)
            for (int ox = 0; ox < w.ow; ++ox, ++e) {
                const AvgWindow a = avg_window(pc, w, oy, ox, count_pad);
                double s = 0.0, mag = 0.0;
                for (long long t : a.taps) {
                    s += x[p * pc.h * pc.w + t];
                    mag += std::fabs(x[p * pc.h * pc.w + t]);
                }
                want[e] = s / a.divisor;
                // float sum of the taps, then one rounding by the division
                tolerance[e] = (a.taps.size() * mag / a.divisor + std::fabs(want[e])) * FLT_EPSILON;
            }
    device::Buffer dy(outputs * 4), dx(x.size() * 4);
    dx.upload(x);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("conv", "avgpool_forward"), {grid_for(g, outputs)}, {g.block}, 0,
                            dy.ptr(), dx.ptr(), pc.planes, pc.h, pc.w, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.pb, w.pr,
                            count_pad ? 1 : 0, w.oh, w.ow));
    expect_close("y", dy.download<float>(outputs), want, [&](size_t i) { return tolerance[i]; });
}

void test_avgpool_backward(const PoolCase& pc, bool count_pad, const Geometry& g)
{
    const Window w = resolve(pc.win, pc.h, pc.w);
    const long long outputs = pc.planes * w.oh * w.ow, inputs = pc.planes * pc.h * pc.w;
    const Floats dy = random_floats(outputs, -1.0f, 1.0f, 55);
    Doubles want(inputs), magnitude(inputs), terms(inputs);
    size_t e = 0;
    for (long long p = 0; p < pc.planes; ++p)
        for (int oy = 0; oy < w.oh; ++oy)
            for (int ox = 0; ox < w.ow; ++ox, ++e) {
                const AvgWindow a = avg_window(pc, w, oy, ox, count_pad);
                const double share = dy[e] / a.divisor;
                for (long long t : a.taps) {
                    want[p * pc.h * pc.w + t] += share;
                    magnitude[p * pc.h * pc.w + t] += std::fabs(share);
                    terms[p * pc.h * pc.w + t] += 1;
                }
            }
    device::Buffer ddx(inputs * 4), ddy(outputs * 4);
    zero(ddx);
    ddy.upload(dy);
    CHECK_CU(CUDA_SUCCESS,
             device::launch(device::function("conv", "avgpool_backward"), {grid_for(g, outputs)}, {g.block}, 0,
                            ddx.ptr(), ddy.ptr(), pc.planes, pc.h, pc.w, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.pb,
                            w.pr, count_pad ? 1 : 0, w.oh, w.ow));
    // each share is rounded once (the division), then m shares are summed in float
    expect_close("dx", ddx.download<float>(inputs), want,
                 [&](size_t i) { return (terms[i] + 1) * FLT_EPSILON * magnitude[i]; });
}

// ---- global average pooling and the per-channel affine map ----------------------------------

struct Planes {
    long long planes, area;
};
const Planes kPlanes[] = {{1, 1}, {3, 7}, {7, 33}, {2, 257}, {5, 1000}, {17, 49}, {40, 3}, {1, 4099}};

// global_avgpool_forward's own geometry: one block per plane, grid-strided. The launcher uses
// GAP_BLOCK = 256 (the kernel's shared array and __launch_bounds__) and at most 16 / 65535
// blocks; a smaller power-of-two block with 3 blocks exercises the tree and the plane loop.
const Geometry kGapGeometries[] = {kLauncherEmulator, kLauncherGpu, {"block=64 grid<=3", 64, 3}};

void test_global_avgpool_forward(const Planes& pl, const Geometry& g)
{
    const Floats x = random_floats(pl.planes * pl.area, -1.0f, 3.0f, 61);
    Doubles want(pl.planes), magnitude(pl.planes);
    for (long long p = 0; p < pl.planes; ++p) {
        for (long long i = 0; i < pl.area; ++i) {
            want[p] += x[p * pl.area + i];
            magnitude[p] += std::fabs(x[p * pl.area + i]);
        }
        want[p] /= pl.area;
        magnitude[p] /= pl.area;
    }
    const unsigned grid = static_cast<unsigned>(std::min<long long>(pl.planes, g.max_grid));
    device::Buffer dy(pl.planes * 4), dx(x.size() * 4);
    dx.upload(x);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "global_avgpool_forward"), {grid}, {g.block}, 0,
                                          dy.ptr(), dx.ptr(), pl.planes, pl.area));
    // double sums in two orders, each rounded to float once
    expect_close("y", dy.download<float>(pl.planes), want,
                 [&](size_t i) { return FLT_EPSILON * std::fabs(want[i]) + 1e-12 * magnitude[i]; });
}

void test_global_avgpool_backward(const Planes& pl, const Geometry& g)
{
    const long long n = pl.planes * pl.area;
    const Floats dy = random_floats(pl.planes, -2.0f, 2.0f, 62);
    Doubles want(n);
    for (long long p = 0; p < pl.planes; ++p)
        for (long long i = 0; i < pl.area; ++i)
            want[p * pl.area + i] = dy[p] / static_cast<float>(pl.area);  // one float division
    device::Buffer ddx(n * 4), ddy(pl.planes * 4);
    ddy.upload(dy);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "global_avgpool_backward"), {grid_for(g, n)},
                                          {g.block}, 0, ddx.ptr(), ddy.ptr(), pl.planes, pl.area));
    expect_exact("dx", ddx.download<float>(n), want);
}

struct Affine {
    int images, channels;
    long long inner;
};
const Affine kAffine[] = {{1, 1, 1}, {2, 3, 7}, {1, 5, 33}, {3, 7, 1}, {2, 17, 61}, {4, 1, 257}, {1, 3, 1367}};

// y = x·scale[c] + shift[c] over NCHW (c = (e / inner) mod channels); without shift, x·scale[c]
// (batch norm's input gradient).
void test_channel_affine(const Affine& af, bool with_shift, const Geometry& g)
{
    const long long n = af.images * af.channels * af.inner;
    const Floats x = random_floats(n, -3.0f, 3.0f, 63), scale = random_floats(af.channels, -2.0f, 2.0f, 64),
                 shift = random_floats(af.channels, -1.0f, 1.0f, 65);
    Doubles want(n);
    for (int img = 0; img < af.images; ++img)
        for (int c = 0; c < af.channels; ++c)
            for (long long i = 0; i < af.inner; ++i) {
                const long long e = (static_cast<long long>(img) * af.channels + c) * af.inner + i;
                const float scaled = x[e] * scale[c];
                want[e] = with_shift ? scaled + shift[c] : scaled;
            }
    device::Buffer dy(n * 4), dx(n * 4), dscale(af.channels * 4), dshift(af.channels * 4);
    dx.upload(x);
    dscale.upload(scale);
    dshift.upload(shift);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "channel_affine"), {grid_for(g, n)}, {g.block}, 0,
                                          dy.ptr(), dx.ptr(), dscale.ptr(), with_shift ? dshift.ptr() : CUdeviceptr(0),
                                          n, af.channels, af.inner));
    expect_exact("y", dy.download<float>(n), want);
}

// ---- conv2d_forward_f32 and the exact-decision repair -----------------------------------------

// The float kernel's twin: per output, products fused into a float sum in the kernel's K order
// (channel, row, column; padding taps add fmaf(w, 0, s) as the kernel does), the float sum added
// into a double every 256 products, plus the bias, rounded once. Bit for bit the kernel's value.
const int kKBlock = 256;
void conv_f32_twin(const ConvCase& cc, const Window& w, const Floats& x, const Floats& wt, const Floats* bias,
                   Floats& y)
{
    const int cg = cc.c / cc.groups, mg = cc.m / cc.groups, kk = cg * w.kh * w.kw;
    y.assign(static_cast<size_t>(cc.n) * cc.m * w.oh * w.ow, 0.0f);
    for (int img = 0; img < cc.n; ++img)
        for (int oc = 0; oc < cc.m; ++oc)
            for (int oy = 0; oy < w.oh; ++oy)
                for (int ox = 0; ox < w.ow; ++ox) {
                    float fa = 0.0f;
                    double da = 0.0;
                    for (int k = 0; k < kk; ++k) {
                        const int ch = k / (w.kh * w.kw), tap = k % (w.kh * w.kw), i = tap / w.kw, j = tap % w.kw;
                        const int iy = oy * w.sh - w.ph + i * w.dh, ix = ox * w.sw - w.pw + j * w.dw;
                        float v = 0.0f;
                        if (iy >= 0 && iy < cc.h && ix >= 0 && ix < cc.w)
                            v = x[((static_cast<size_t>(img) * cc.c + (oc / mg) * cg + ch) * cc.h + iy) * cc.w + ix];
                        fa = std::fmaf(wt[static_cast<size_t>(oc) * kk + k], v, fa);
                        if ((k + 1) % kKBlock == 0 || k + 1 == kk) {
                            da += static_cast<double>(fa);
                            fa = 0.0f;
                        }
                    }
                    y[((static_cast<size_t>(img) * cc.m + oc) * w.oh + oy) * w.ow + ox] =
                        static_cast<float>((bias ? static_cast<double>((*bias)[oc]) : 0.0) + da);
                }
}

// The launcher's choice (Kernels.conv2dForwardF32): 16x256 tiles up to 16 channels per group, else 64x64;
// kForceF32Kernel overrides it so that every shape runs through both.
const char* kForceF32Kernel = nullptr;
// 1: the kernels read both operands rounded to TF32 (-Dkxai.cuda.tf32=true), and the bounds use its γ.
int kTf32 = 0;
CUresult launch_f32(unsigned grid, const device::Buffer& dy, const device::Buffer& dx, const device::Buffer& dw,
                    CUdeviceptr bias, CUdeviceptr bound, int relu, const ConvCase& cc, const Window& w,
                    CUdeviceptr count = 0)
{
    const char* kernel = kForceF32Kernel ? kForceF32Kernel
                         : cc.m / cc.groups <= 16 ? "conv2d_forward_f32_narrow" : "conv2d_forward_f32";
    return device::launch(device::function("conv", kernel), {grid}, {256}, 0, dy.ptr(), dx.ptr(),
                          dw.ptr(), bias, bound, count, relu, kTf32, cc.n, cc.c, cc.h, cc.w, cc.m, cc.groups, w.kh, w.kw, w.sh,
                          w.sw, w.ph, w.pw, w.dh, w.dw, w.oh, w.ow);
}

// γ of ConvOps (CPU): γ_{min(k, 256) + 1}, doubled, as a float rounded up; with kTf32 (ConvOps.gamma(kk, true)):
// plus the TF32 operands' product error 2·(2·2^-11 + 2^-22), the float part scaled by (1 + 2^-11)^2.
float gamma_for(int kk)
{
    const double nu = (std::min(kk, kKBlock) + 1) * std::ldexp(1.0, -24);
    double g = 2 * nu / (1 - nu);
    if (kTf32) {
        const double ut = std::ldexp(1.0, -11);
        g = 2 * (2 * ut + ut * ut) * (1 + 1e-6) + g * (1 + ut) * (1 + ut);
    }
    return std::nextafter(static_cast<float>(g), INFINITY);
}

// kernels/common.cuh's kx_tf32 on the host.
float tf32_of(float x)
{
    unsigned u;
    std::memcpy(&u, &x, 4);
    const unsigned e = u & 0x7f800000u;
    if (e == 0u || e == 0x7f800000u)
        return x;
    u = (u + 0x1000u) & 0xffffe000u;
    std::memcpy(&x, &u, 4);
    return x;
}

Floats tf32_if_on(const Floats& v)
{
    Floats out = v;
    if (kTf32)
        for (float& f : out)
            f = tf32_of(f);
    return out;
}

// Per (image, channel) max |x|, Σ_taps |w| per (oc, ch), and the plane bounds, on the device.
struct Bounds {
    Floats max_abs, abs_taps, bound;
};
Bounds device_bounds(const ConvCase& cc, const Window& w, const device::Buffer& dx, const Floats& wt,
                     const Floats* bias, const device::Buffer& dbias, device::Buffer& dbound, unsigned grid)
{
    const int cg = cc.c / cc.groups, taps = w.kh * w.kw;
    Bounds b;
    b.abs_taps.assign(static_cast<size_t>(cc.m) * cg, 0.0f);
    for (int oc = 0; oc < cc.m; ++oc)
        for (int ch = 0; ch < cg; ++ch) {
            double sum = 0;
            for (int t = 0; t < taps; ++t)
                sum += std::fabs(wt[(static_cast<size_t>(oc) * cg + ch) * taps + t]);
            b.abs_taps[static_cast<size_t>(oc) * cg + ch] = static_cast<float>(sum * (1 + 1e-6));
        }
    device::Buffer dmax(static_cast<size_t>(cc.n) * cc.c * 4), dtaps(b.abs_taps.size() * 4);
    dtaps.upload(b.abs_taps);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "plane_max_abs"), {grid}, {256}, 0, dmax.ptr(),
                                          dx.ptr(), static_cast<long long>(cc.n) * cc.c,
                                          static_cast<long long>(cc.h) * cc.w));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv_plane_bound"), {grid}, {96}, 0,
                                          dbound.ptr(), dmax.ptr(), dtaps.ptr(), bias ? dbias.ptr() : CUdeviceptr(0),
                                          cc.n, cc.c, cc.m, cc.groups, cg * taps, gamma_for(cg * taps)));
    b.max_abs = dmax.download<float>(static_cast<size_t>(cc.n) * cc.c);
    b.bound = dbound.download<float>(static_cast<size_t>(cc.n) * cc.m);
    return b;
}

// The float kernel bit for bit against its twin (with and without the fused ReLU, no repair),
// and every output within its bound (+ 2u|y|) of the double kernel's value: the theorem the
// repair rests on, checked on the device's own bounds.
void test_conv2d_forward_f32(const ConvCase& cc, bool with_bias, unsigned grid)
{
    const Window w = resolve(cc.win, cc.h, cc.w);
    const int cg = cc.c / cc.groups;
    const Floats x = random_floats(static_cast<size_t>(cc.n) * cc.c * cc.h * cc.w, -1.0f, 1.0f, 61);
    const Floats wt = random_floats(static_cast<size_t>(cc.m) * cg * w.kh * w.kw, -1.0f, 1.0f, 62);
    const Floats bias = random_floats(cc.m, -1.0f, 1.0f, 63);
    Floats want;
    // with TF32 the twin sums the rounded operands; the bound below is against the unrounded exact value
    conv_f32_twin(cc, w, tf32_if_on(x), tf32_if_on(wt), with_bias ? &bias : nullptr, want);
    const size_t outputs = want.size();
    device::Buffer dy(outputs * 4), dx(x.size() * 4), dw(wt.size() * 4), db(bias.size() * 4);
    dx.upload(x);
    dw.upload(wt);
    db.upload(bias);
    const CUdeviceptr bp = with_bias ? db.ptr() : CUdeviceptr(0);
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, dy, dx, dw, bp, 0, 0, cc, w));
    const Floats got = dy.download<float>(outputs);
    expect_exact("y", got, to_doubles(want));
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, dy, dx, dw, bp, 0, 1, cc, w));
    Floats relu = want;
    for (float& v : relu)
        v = v > 0.0f ? v : 0.0f;
    expect_exact("relu(y)", dy.download<float>(outputs), to_doubles(relu));
    // the bound
    device::Buffer dbound(static_cast<size_t>(cc.n) * cc.m * 4);
    const Bounds b = device_bounds(cc, w, dx, wt, with_bias ? &bias : nullptr, db, dbound, grid);
    Doubles exact, magnitude;
    conv_reference(cc, w, x, wt, bias, with_bias, exact, magnitude);
    const size_t hw = static_cast<size_t>(w.oh) * w.ow;
    for (size_t e = 0; e < outputs; ++e) {
        const double err = std::fabs(static_cast<double>(got[e]) - static_cast<float>(exact[e]));
        const double allowed = b.bound[e / hw] + 2 * std::ldexp(1.0, -24) * std::fabs(got[e]);
        if (!(err <= allowed)) {
            harness::check_failed(__FILE__, __LINE__, "output " + std::to_string(e) + ": |float - exact| " + std::to_string(err) +
                          " > bound " + std::to_string(allowed));
            return;
        }
    }
}

// Near-ties planted in a 1x1 convolution over 3 channels with weights 1: at the "cancel"
// positions x = (2^25, v, -2^25): the float sum loses v (0 instead of v), and v decides the ReLU;
// elsewhere ordinary values far from 0. conv_repair_kinks must replace exactly the outputs
// within their bound of the kink by the double kernel's values (the count too), and the fused
// epilogue (relu = 1 with a bound) must store ReLU of those repaired values.
void test_conv_repair_kinks(unsigned grid)
{
    const ConvCase cc = {2, 3, 4, 5, 2, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}};
    const Window w = resolve(cc.win, cc.h, cc.w);
    const size_t area = static_cast<size_t>(cc.h) * cc.w;
    Floats x(static_cast<size_t>(cc.n) * cc.c * area);
    const Floats noise = random_floats(x.size(), 0.25f, 1.0f, 64);
    for (int img = 0; img < cc.n; ++img)
        for (size_t p = 0; p < area; ++p) {
            const bool cancel = p % 3 == 0;
            const float v = (p % 2 ? 1.0f : -1.0f) * noise[img * area + p];  // what float loses, either sign
            for (int ch = 0; ch < 3; ++ch)
                x[(img * cc.c + ch) * area + p] =
                    cancel ? (ch == 0 ? 33554432.0f : ch == 1 ? v : -33554432.0f) : noise[(img * cc.c + ch) * area + p];
        }
    const Floats wt = {1, 1, 1, 1, 1, 1};  // both output channels sum the three channels
    const Floats bias = {0, 0};
    const size_t outputs = static_cast<size_t>(cc.n) * cc.m * area;
    device::Buffer dy(outputs * 4), dref(outputs * 4), dx(x.size() * 4), dw(wt.size() * 4), db(8),
        dbound(static_cast<size_t>(cc.n) * cc.m * 4), dcount(4);
    dx.upload(x);
    dw.upload(wt);
    db.upload(bias);
    const Bounds b = device_bounds(cc, w, dx, wt, nullptr, db, dbound, grid);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv2d_forward"), {grid}, {256}, 0, dref.ptr(),
                                          dx.ptr(), dw.ptr(), CUdeviceptr(0), cc.n, cc.c, cc.h, cc.w, cc.m, cc.groups,
                                          w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.oh, w.ow));
    const Floats ref = dref.download<float>(outputs);
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, dy, dx, dw, 0, 0, 0, cc, w));
    const Floats before = dy.download<float>(outputs);
    Floats want = before;
    int near = 0, flipped = 0;
    for (size_t e = 0; e < outputs; ++e) {
        const float pb = b.bound[e / area];
        if (pb > 0 && std::fabs(before[e]) <= pb + 2 * std::ldexp(1.0f, -24) * std::fabs(before[e])) {
            want[e] = ref[e];
            ++near;
            flipped += (before[e] > 0) != (ref[e] > 0);
        }
    }
    if (near == 0 || flipped == 0) {
        harness::check_failed(__FILE__, __LINE__, "the planted near-ties did not occur (near " + std::to_string(near) + ", flipped " +
                      std::to_string(flipped) + ")");
        return;
    }
    zero(dcount);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv_repair_kinks"), {grid}, {256}, 0, dy.ptr(),
                                          dcount.ptr(), dx.ptr(), dw.ptr(), CUdeviceptr(0), dbound.ptr(), 0.0f, 0.0f, 1, 0,
                                          cc.n, cc.c, cc.h, cc.w, cc.m, cc.groups, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw,
                                          w.dh, w.dw, w.oh, w.ow));
    const Floats repaired = dy.download<float>(outputs);
    expect_exact("repaired", repaired, to_doubles(want));
    expect_ints("count", dcount.download<int>(1), Ints{near});
    // every ReLU decision is now the double kernel's
    for (size_t e = 0; e < outputs; ++e)
        if ((repaired[e] > 0) != (ref[e] > 0)) {
            harness::check_failed(__FILE__, __LINE__, "ReLU decision of output " + std::to_string(e) + " differs from the double kernel's");
            return;
        }
    zero(dcount);
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, dy, dx, dw, 0, dbound.ptr(), 1, cc, w, dcount.ptr()));
    Floats relu = want;
    for (float& v : relu)
        v = v > 0.0f ? v : 0.0f;
    expect_exact("fused relu", dy.download<float>(outputs), to_doubles(relu));
    expect_ints("fused count", dcount.download<int>(1), Ints{near});
    // two kinks (Clip): 0 and a far one; the same outputs
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, dy, dx, dw, 0, 0, 0, cc, w));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv_repair_kinks"), {grid}, {96}, 0, dy.ptr(),
                                          CUdeviceptr(0), dx.ptr(), dw.ptr(), CUdeviceptr(0), dbound.ptr(), 1e30f, 0.0f,
                                          2, 0, cc.n, cc.c, cc.h, cc.w, cc.m, cc.groups, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw,
                                          w.dh, w.dw, w.oh, w.ow));
    expect_exact("repaired (two kinks)", dy.download<float>(outputs), to_doubles(want));
}

// Max-pool near-ties: 2x2 windows over a float 1x1 convolution whose "cancel" outputs lose the
// value that makes them the window's maximum. After maxpool_repair_mark + conv_repair_marked the
// pool's winners are those of the double kernel's outputs, in every window.
void test_maxpool_repair(unsigned grid)
{
    const ConvCase cc = {1, 3, 6, 6, 1, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}};
    const Window w = resolve(cc.win, cc.h, cc.w);
    const size_t area = 36;
    Floats x(3 * area);
    const Floats noise = random_floats(3 * area, 0.0f, 0.3f, 65);
    for (size_t p = 0; p < area; ++p) {
        const bool cancel = p % 4 == 1;
        for (int ch = 0; ch < 3; ++ch)
            x[ch * area + p] = cancel ? (ch == 0 ? 33554432.0f : ch == 1 ? 1.0f : -33554432.0f) : noise[ch * area + p];
    }
    const Floats wt = {1, 1, 1};
    const Floats bias = {0};
    device::Buffer dy(area * 4), dref(area * 4), dx(x.size() * 4), dw(12), db(4), dbound(4), dmark(area * 4),
        dcount(4), dpy(9 * 4), darg(9 * 4);
    dx.upload(x);
    dw.upload(wt);
    db.upload(bias);
    device_bounds(cc, w, dx, wt, nullptr, db, dbound, grid);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv2d_forward"), {grid}, {256}, 0, dref.ptr(),
                                          dx.ptr(), dw.ptr(), CUdeviceptr(0), cc.n, cc.c, cc.h, cc.w, cc.m, cc.groups,
                                          w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.oh, w.ow));
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, dy, dx, dw, 0, 0, 0, cc, w));
    auto pool = [&](const device::Buffer& in) {
        CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "maxpool_forward"), {grid}, {256}, 0,
                                              dpy.ptr(), darg.ptr(), in.ptr(), 1LL, 6, 6, 2, 2, 2, 2, 0, 0, 1, 1, 3,
                                              3));
        return darg.download<int>(9);
    };
    const Ints want = pool(dref);
    if (pool(dy) == want) {
        harness::check_failed(__FILE__, __LINE__, "the planted near-ties did not change a float winner");
        return;
    }
    zero(dmark);
    zero(dcount);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "maxpool_repair_mark"), {grid}, {256}, 0,
                                          dmark.ptr(), dy.ptr(), dbound.ptr(), 0, 1LL, 6, 6, 2, 2, 2, 2, 0, 0, 1, 1, 3,
                                          3));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv_repair_marked"), {grid}, {256}, 0, dy.ptr(),
                                          dcount.ptr(), dmark.ptr(), dx.ptr(), dw.ptr(), CUdeviceptr(0), 0, cc.n, cc.c,
                                          cc.h, cc.w, cc.m, cc.groups, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw,
                                          w.oh, w.ow));
    expect_ints("winners after the repair", pool(dy), want);
    const Ints marks = dmark.download<int>(area);
    int marked = 0;
    for (int v : marks)
        marked += v;
    expect_ints("count", dcount.download<int>(1), Ints{marked});
}

// A residual sum y = conv + b before a ReLU: the conv's planted near-ties (from test_conv_repair_kinks'
// input) plus b, small values. sum_mark_kinks must flag exactly the elements whose sum bound
// (the CPU's ExactDecisions.sum) reaches 0, and after the operand's flagged values are recomputed on
// a copy (conv_repair_marked) add_marked must store (float)(exact conv) + b there: the twin.
void test_sum_repair(unsigned grid)
{
    const ConvCase cc = {2, 3, 4, 5, 2, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}};
    const Window w = resolve(cc.win, cc.h, cc.w);
    const size_t area = static_cast<size_t>(cc.h) * cc.w;
    Floats x(static_cast<size_t>(cc.n) * cc.c * area);
    const Floats noise = random_floats(x.size(), 0.25f, 1.0f, 66);
    for (int img = 0; img < cc.n; ++img)
        for (size_t p = 0; p < area; ++p)
            for (int ch = 0; ch < 3; ++ch)
                x[(img * cc.c + ch) * area + p] = p % 3 == 0 ? (ch == 0 ? 33554432.0f : ch == 1 ? noise[img * area + p]
                                                                                              : -33554432.0f)
                                                             : noise[(img * cc.c + ch) * area + p] - 0.6f;
    const Floats wt = {1, 1, 1, 1, 1, 1};
    const size_t outputs = static_cast<size_t>(cc.n) * cc.m * area;
    const Floats other = random_floats(outputs, -0.2f, 0.2f, 67);
    device::Buffer da(outputs * 4), dref(outputs * 4), dcopy(outputs * 4), dbo(outputs * 4), dy(outputs * 4),
        dx(x.size() * 4), dw(wt.size() * 4), db(8), dbound(static_cast<size_t>(cc.n) * cc.m * 4),
        dmark(outputs * 4);
    dx.upload(x);
    dw.upload(wt);
    dbo.upload(other);
    const Bounds b = device_bounds(cc, w, dx, wt, nullptr, db, dbound, grid);
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, da, dx, dw, 0, 0, 0, cc, w));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv2d_forward"), {grid}, {256}, 0, dref.ptr(),
                                          dx.ptr(), dw.ptr(), CUdeviceptr(0), cc.n, cc.c, cc.h, cc.w, cc.m, cc.groups,
                                          w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.oh, w.ow));
    const Floats a = da.download<float>(outputs), ref = dref.download<float>(outputs);
    Floats y(outputs), want(outputs);
    Ints flags(outputs, 0);
    const float u = std::ldexp(1.0f, -24);
    int flagged = 0, flipped = 0;
    for (size_t e = 0; e < outputs; ++e) {
        y[e] = a[e] + other[e];
        const float pb = b.bound[e / area];
        const float ba = pb > 0 ? pb + 2 * u * std::fabs(a[e]) : 0.0f;
        const float s = (ba + 4 * u * (std::fabs(y[e]) + ba)) * (1 + 4 * u);
        want[e] = y[e];
        if (ba > 0 && std::fabs(y[e]) <= s) {
            flags[e] = 1;
            want[e] = ref[e] + other[e];
            ++flagged;
            flipped += (y[e] > 0) != (want[e] > 0);
        }
    }
    if (flagged == 0 || flipped == 0) {
        harness::check_failed(__FILE__, __LINE__, "the planted near-ties did not occur (flagged " +
                                                      std::to_string(flagged) + ", flipped " + std::to_string(flipped) + ")");
        return;
    }
    dy.upload(y);
    zero(dmark);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "sum_mark_kinks"), {grid}, {256}, 0, dmark.ptr(),
                                          dy.ptr(), da.ptr(), dbound.ptr(), static_cast<long long>(area), 0, dbo.ptr(),
                                          CUdeviceptr(0), 1LL, 0, static_cast<long long>(outputs), 0.0f, 0.0f, 1));
    expect_ints("flags", dmark.download<int>(outputs), flags);
    dcopy.upload(a);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "conv_repair_marked"), {grid}, {256}, 0,
                                          dcopy.ptr(), CUdeviceptr(0), dmark.ptr(), dx.ptr(), dw.ptr(), CUdeviceptr(0),
                                          0, cc.n, cc.c, cc.h, cc.w, cc.m, cc.groups, w.kh, w.kw, w.sh, w.sw, w.ph,
                                          w.pw, w.dh, w.dw, w.oh, w.ow));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "add_marked"), {grid}, {256}, 0, dy.ptr(),
                                          dmark.ptr(), dcopy.ptr(), dbo.ptr(), static_cast<long long>(outputs)));
    expect_exact("repaired sum", dy.download<float>(outputs), to_doubles(want));
}

// maxpool_repair_mark on a ReLU'd float conv (relu = 1): a ReLU'd 0 is exact (bound 0), so a window
// of ReLU'd zeros only is left alone, while one whose top carries a bound is flagged.
void test_maxpool_repair_relu(unsigned grid)
{
    const ConvCase cc = {1, 3, 4, 4, 1, 1, {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false}};
    const Window w = resolve(cc.win, cc.h, cc.w);
    // window (0,0): zeros and one planted 1 (float 0): its rivals all ReLU'd zeros → flagged (the top is 0 too);
    // window (0,1): all clearly negative → ReLU'd zeros, exact: nothing flagged
    Floats x(3 * 16, 0.0f);
    for (int p = 0; p < 16; ++p) {
        const int oy = p / 4, ox = p % 4;
        const bool left = ox < 2;
        for (int ch = 0; ch < 3; ++ch)
            x[ch * 16 + p] = left ? (p == 0 ? (ch == 0 ? 33554432.0f : ch == 1 ? 1.0f : -33554432.0f) : -1.0f)
                                  : -1.0f - 0.1f * (oy + ch);
    }
    const Floats wt = {1, 1, 1};
    device::Buffer dy(16 * 4), dx(x.size() * 4), dw(12), db(4), dbound(4), dmark(16 * 4);
    dx.upload(x);
    dw.upload(wt);
    device_bounds(cc, w, dx, wt, nullptr, db, dbound, grid);
    device::Buffer dcount(4);
    CHECK_CU(CUDA_SUCCESS, launch_f32(grid, dy, dx, dw, 0, dbound.ptr(), 1, cc, w));  // fused ReLU
    zero(dmark);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("conv", "maxpool_repair_mark"), {grid}, {256}, 0,
                                          dmark.ptr(), dy.ptr(), dbound.ptr(), 1, 1LL, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 2,
                                          2));
    Ints want(16, 0);
    // window (0,0): the top (position 0, repaired to 1 by the fused epilogue) still has the plane's
    // bound, ~γ·2^26, so its ReLU'd-zero rivals are within it: the window is flagged (recomputing is
    // idempotent). Window (0,1): every element a ReLU'd 0, exact: nothing flagged.
    for (int p : {0, 1, 4, 5})
        want[p] = 1;
    expect_ints("marks", dmark.download<int>(16), want);
    const Floats y = dy.download<float>(16);
    CHECK_MSG(y[0] == 1.0f, "the fused epilogue repaired the planted output: %g", static_cast<double>(y[0]));
}

}  // namespace

SUITE(conv_kernels)
{
    device::use_primary_context();
    const bool nvcc = harness::ptx_is_from_nvcc("conv");
    std::printf("module image: %s\n", nvcc ? "nvcc PTX" : "signature-only PTX (no nvcc)");
    for (unsigned grid : {1u, 3u, 16u}) {
        for (const char* kernel : {"conv2d_forward_f32", "conv2d_forward_f32_narrow"}) {
            for (const ConvCase& cc : kConvCases)
                for (bool with_bias : {true, false})
                    harness::run_case(std::string(kernel) + " " + str(cc, resolve(cc.win, cc.h, cc.w)) +
                                          (with_bias ? " bias" : " no-bias") + " grid=" + std::to_string(grid),
                                      [&] {
                                          kForceF32Kernel = kernel;
                                          test_conv2d_forward_f32(cc, with_bias, grid);
                                          kForceF32Kernel = nullptr;
                                      });
            for (const ConvCase& cc : kConvF32Cases)
                harness::run_case(std::string(kernel) + " " + str(cc, resolve(cc.win, cc.h, cc.w)) + " grid=" +
                                      std::to_string(grid),
                                  [&] {
                                      kForceF32Kernel = kernel;
                                      test_conv2d_forward_f32(cc, true, grid);
                                      kForceF32Kernel = nullptr;
                                  });
        }
        harness::run_case("conv_repair_kinks planted near-ties grid=" + std::to_string(grid),
                          [&] { test_conv_repair_kinks(grid); });
        harness::run_case("conv_repair_kinks planted near-ties, TF32 operands grid=" + std::to_string(grid), [&] {
            kTf32 = 1;
            test_conv_repair_kinks(grid);
            kTf32 = 0;
        });
        for (const ConvCase& cc : kConvF32Cases)
            harness::run_case("conv2d_forward_f32 TF32 operands " + str(cc, resolve(cc.win, cc.h, cc.w)) + " grid=" +
                                  std::to_string(grid),
                              [&] {
                                  kTf32 = 1;
                                  test_conv2d_forward_f32(cc, true, grid);
                                  kTf32 = 0;
                              });
        harness::run_case("maxpool_repair_mark + conv_repair_marked planted near-ties grid=" + std::to_string(grid),
                          [&] { test_maxpool_repair(grid); });
        harness::run_case("sum_mark_kinks + conv_repair_marked + add_marked planted near-ties grid=" +
                              std::to_string(grid),
                          [&] { test_sum_repair(grid); });
        harness::run_case("maxpool_repair_mark relu=1 grid=" + std::to_string(grid),
                          [&] { test_maxpool_repair_relu(grid); });
    }
    for (const Geometry& g : kGeometries) {
        for (const ConvCase& cc : kConvCases) {
            const std::string shape = str(cc, resolve(cc.win, cc.h, cc.w));
            for (bool with_bias : {true, false}) {
                harness::run_case("conv2d_forward " + shape + (with_bias ? " bias " : " no-bias ") + g.name,
                                  [&] { test_conv2d_forward(cc, with_bias, g); });
                harness::run_case("conv2d_forward_f64 " + shape + (with_bias ? " bias " : " no-bias ") + g.name,
                                  [&] { test_conv2d_forward_f64(cc, with_bias, g); });
            }
            harness::run_case("im2col_input_grad " + shape + " " + g.name, [&] { test_im2col_input_grad(cc, g); });
        }
        for (const PoolCase& pc : kMaxPoolCases) {
            const std::string shape = "planes=" + std::to_string(pc.planes) + " h=" + std::to_string(pc.h) +
                                      " w=" + std::to_string(pc.w) + " " + str(resolve(pc.win, pc.h, pc.w));
            for (Fill fill : {Fill::random, Fill::ties, Fill::zeros, Fill::nans}) {
                const std::string input = std::string(" input=") + kFillNames[static_cast<int>(fill)] + " ";
                harness::run_case("maxpool_forward " + shape + input + g.name,
                                  [&] { test_maxpool_forward(pc, fill, g); });
                harness::run_case("maxpool_backward (forward's argmax) " + shape + input + g.name,
                                  [&] { test_maxpool_backward_from_forward(pc, fill, g); });
            }
        }
        // Arbitrary winners: heavy sharing of one input, and -1 (windows in the padding).
        for (long long inputs : {1LL, 7LL, 33LL, 1000LL})
            for (long long outputs : {1LL, 257LL, 4099LL})
                harness::run_case("maxpool_backward random argmax inputs=" + std::to_string(inputs) +
                                      " outputs=" + std::to_string(outputs) + " " + g.name,
                                  [&] {
                                      test_maxpool_backward(inputs, random_ints(outputs, -1, inputs - 1, 56), g);
                                  });
        for (const PoolCase& pc : kAvgPoolCases) {
            const std::string shape = "planes=" + std::to_string(pc.planes) + " h=" + std::to_string(pc.h) +
                                      " w=" + std::to_string(pc.w) + " " + str(resolve(pc.win, pc.h, pc.w));
            for (bool count_pad : {false, true}) {
                const std::string mode = count_pad ? " count_include_pad " : " exclude_pad ";
                harness::run_case("avgpool_forward " + shape + mode + g.name,
                                  [&] { test_avgpool_forward(pc, count_pad, g); });
                harness::run_case("avgpool_backward " + shape + mode + g.name,
                                  [&] { test_avgpool_backward(pc, count_pad, g); });
            }
        }
        for (const Planes& pl : kPlanes)
            harness::run_case("global_avgpool_backward planes=" + std::to_string(pl.planes) +
                                  " area=" + std::to_string(pl.area) + " " + g.name,
                              [&] { test_global_avgpool_backward(pl, g); });
        for (const Affine& af : kAffine)
            for (bool with_shift : {true, false})
                harness::run_case("channel_affine images=" + std::to_string(af.images) +
                                      " channels=" + std::to_string(af.channels) + " inner=" + std::to_string(af.inner) +
                                      (with_shift ? " shift " : " no-shift ") + g.name,
                                  [&] { test_channel_affine(af, with_shift, g); });
    }
    for (const Geometry& g : kGapGeometries)
        for (const Planes& pl : kPlanes)
            harness::run_case("global_avgpool_forward planes=" + std::to_string(pl.planes) +
                                  " area=" + std::to_string(pl.area) + " " + g.name,
                              [&] { test_global_avgpool_forward(pl, g); });
    // Its shared array holds GAP_BLOCK partial sums: __launch_bounds__ makes a bigger block a
    // launch error instead of an overflow. Only nvcc's PTX carries .maxntid.
    const char* bounds_case = "global_avgpool_forward rejects 512 threads (__launch_bounds__(256))";
    if (!nvcc) {
        harness::skip(bounds_case, "needs nvcc's PTX (.maxntid)");
    } else {
        harness::run_case(bounds_case, [] {
            device::ScopedContext ctx;
            device::Buffer dy(4), dx(1024 * 4);
            CHECK_CU(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES,
                     device::launch(device::function("conv", "global_avgpool_forward"), {1}, {512}, 0, dy.ptr(),
                                    dx.ptr(), 1LL, 1024LL));
        });
    }
}
