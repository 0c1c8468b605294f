// kernels/conv.cu: 2-D convolution and pooling over NCHW tensors, forward and input gradient.
//
// Build: nvcc -ptx -arch=compute_75 -fmad=false conv.cu   (g++ through the CPU shim for tests)
// Kernels:
//   conv2d_forward      direct convolution, one thread per output, accumulated in DOUBLE and
//                       rounded once (+ bias): the correctly rounded value, like the CPU twin, so
//                       max-pool and ReLU decisions do not depend on summation order
//   conv2d_forward_f64  the same, storing the double accumulator unrounded (first-layer saving)
//   im2col_input_grad   dcols -> dx (col2im as a gather: each dx element sums its taps; no atomics)
//   maxpool_forward     y and argmax (flat input index per output; -1 if the window is all padding);
//                       ties go to the FIRST maximum in row-major window order (PyTorch's rule)
//   maxpool_backward    dx[argmax[o]] += dy[o]  (atomics: overlapping windows may share a winner)
//   avgpool_forward / avgpool_backward   divisor: window clipped to the padded input when
//                       count_include_pad, else the number of in-bounds taps
//   global_avgpool_forward / global_avgpool_backward   mean over H·W per (n, c) plane
//   channel_affine      y = x * scale[c] + shift[c] (batch norm in inference; its backward with shift = null)
//   conv2d_forward_f32  FP32 implicit GEMM (shared-memory tiles, float blocks of 256 products added in
//                       double; optional fused ReLU with the kink repair in its epilogue); _narrow: the
//                       same for layers of at most 16 output channels per group; plane_max_abs,
//                       conv_plane_bound, conv_repair_kinks, maxpool_repair_mark, conv_repair_marked,
//                       sum_mark_kinks, add_marked: the exact-decision repair (see the end of this file)
// Layout invariants: float32 NCHW contiguous; weights [M, C/group, kh, kw]; dcols [N, C·kh·kw, OH·OW]
//   (the Wᵀ·dY product of each image, laid out as the CPU twin's im2col columns).
// Geometry parameters are the resolved window (pads top/left; bottom/right only bound the output
//   size and the averaging divisor). 64-bit element indices; grid-stride loops, any 1-D geometry.
#include "common.cuh"

// One output of the direct convolution, accumulated in double (+ bias), unrounded.
__device__ __forceinline__ double kx_conv_point(kx_index e, const float* __restrict__ x,
                                                const float* __restrict__ w,
                                                const float* __restrict__ bias, int c, int h, int wd,
                                                int m, int groups, int kh, int kw, int sh, int sw,
                                                int ph, int pw, int dh, int dw, int oh, int ow)
{
    const int cg = c / groups;
    const int mg = m / groups;
    const int ox = (int)(e % ow);
    const int oy = (int)((e / ow) % oh);
    const int oc = (int)((e / ((kx_index)ow * oh)) % m);
    const int img = (int)(e / ((kx_index)ow * oh * m));
    const int g = oc / mg;
    double acc = bias ? (double)bias[oc] : 0.0;
    for (int ic = 0; ic < cg; ++ic) {
        const float* plane = x + ((kx_index)img * c + g * cg + ic) * h * wd;
        const float* wk = w + ((kx_index)oc * cg + ic) * kh * kw;
        for (int i = 0; i < kh; ++i) {
            const int iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h)
                continue;
            for (int j = 0; j < kw; ++j) {
                const int ix = ox * sw - pw + j * dw;
                if (ix >= 0 && ix < wd)
                    acc += (double)wk[i * kw + j] * (double)plane[(kx_index)iy * wd + ix];
            }
        }
    }
    return acc;
}

extern "C" __global__ void conv2d_forward(float* __restrict__ y, const float* __restrict__ x,
                                          const float* __restrict__ w, const float* __restrict__ bias,
                                          int n, int c, int h, int wd, int m, int groups, int kh, int kw,
                                          int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow)
{
    const kx_index total = (kx_index)n * m * oh * ow;
    KX_GRID_STRIDE_LOOP(e, total)
    {
        y[e] = (float)kx_conv_point(e, x, w, bias, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh, dw,
                                    oh, ow);
    }
}

// The same convolution with the double accumulators stored unrounded: the first-layer saving
// computes the first layer at the path's two ends with it (2 rows per example, not n_steps).
extern "C" __global__ void conv2d_forward_f64(double* __restrict__ y, const float* __restrict__ x,
                                              const float* __restrict__ w, const float* __restrict__ bias,
                                              int n, int c, int h, int wd, int m, int groups, int kh,
                                              int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                              int oh, int ow)
{
    const kx_index total = (kx_index)n * m * oh * ow;
    KX_GRID_STRIDE_LOOP(e, total)
    {
        y[e] = kx_conv_point(e, x, w, bias, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
    }
}

// dx[img, ch, iy, ix] = sum over taps (i, j) and outputs (oy, ox) that read it of dcols[img, (ch·kh+i)·kw+j, oy·ow+ox].
extern "C" __global__ void im2col_input_grad(float* __restrict__ dx, const float* __restrict__ dcols,
                                             int n, int c, int h, int wd, int kh, int kw, int sh, int sw,
                                             int ph, int pw, int dh, int dw, int oh, int ow)
{
    const kx_index total = (kx_index)n * c * h * wd;
    const kx_index hw = (kx_index)oh * ow;
    KX_GRID_STRIDE_LOOP(e, total)
    {
        const int ix = (int)(e % wd);
        const int iy = (int)((e / wd) % h);
        const int ch = (int)((e / ((kx_index)wd * h)) % c);
        const int img = (int)(e / ((kx_index)wd * h * c));
        const float* cols = dcols + (kx_index)img * c * kh * kw * hw;
        float sum = 0.0f;
        for (int i = 0; i < kh; ++i) {
            const int ty = iy + ph - i * dh;
            if (ty < 0 || ty % sh != 0)
                continue;
            const int oy = ty / sh;
            if (oy >= oh)
                continue;
            for (int j = 0; j < kw; ++j) {
                const int tx = ix + pw - j * dw;
                if (tx < 0 || tx % sw != 0)
                    continue;
                const int ox = tx / sw;
                if (ox >= ow)
                    continue;
                sum += cols[((kx_index)(ch * kh + i) * kw + j) * hw + (kx_index)oy * ow + ox];
            }
        }
        dx[e] = sum;
    }
}

extern "C" __global__ void maxpool_forward(float* __restrict__ y, int* __restrict__ argmax,
                                           const float* __restrict__ x, long long planes, int h, int wd,
                                           int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                           int oh, int ow)
{
    KX_GRID_STRIDE_LOOP(e, planes * oh * ow)
    {
        const int ox = (int)(e % ow);
        const int oy = (int)((e / ow) % oh);
        const kx_index p = e / ((kx_index)ow * oh);
        const kx_index base = p * h * wd;
        float best = 0.0f;
        kx_index bestIdx = -1;
        for (int i = 0; i < kh; ++i) {
            const int iy = oy * sh - ph + i * dh;
            if (iy < 0 || iy >= h)
                continue;
            for (int j = 0; j < kw; ++j) {
                const int ix = ox * sw - pw + j * dw;
                if (ix < 0 || ix >= wd)
                    continue;
                const float v = x[base + (kx_index)iy * wd + ix];
                // strictly greater: ties keep the first; a NaN wins and stays (PyTorch)
                if (bestIdx < 0 || v > best || (v != v && best == best)) {
                    best = v;
                    bestIdx = base + (kx_index)iy * wd + ix;
                }
            }
        }
        y[e] = bestIdx < 0 ? -INFINITY : best;
        // planes·h·w < 2^31 is checked by the launcher, so the winner fits an int
        argmax[e] = (int)bestIdx;
    }
}

extern "C" __global__ void maxpool_backward(float* dx, const float* __restrict__ dy,
                                            const int* __restrict__ argmax, long long outputs)
{
    KX_GRID_STRIDE_LOOP(o, outputs)
    {
        if (argmax[o] >= 0)
            atomicAdd(&dx[argmax[o]], dy[o]);
    }
}

__device__ __forceinline__ float kx_avg_divisor(int y0, int x0, int n, int h, int wd, int kh, int kw,
                                                int pb, int pr, int count_pad)
{
    if (!count_pad)
        return n > 0 ? (float)n : 1.0f;
    const int ye = min(y0 + kh, h + pb);
    const int xe = min(x0 + kw, wd + pr);
    const float d = (float)(ye - y0) * (float)(xe - x0);
    return d > 1.0f ? d : 1.0f;
}

extern "C" __global__ void avgpool_forward(float* __restrict__ y, const float* __restrict__ x,
                                           long long planes, int h, int wd, int kh, int kw, int sh, int sw,
                                           int ph, int pw, int pb, int pr, int count_pad, int oh, int ow)
{
    KX_GRID_STRIDE_LOOP(e, planes * oh * ow)
    {
        const int ox = (int)(e % ow);
        const int oy = (int)((e / ow) % oh);
        const kx_index base = (e / ((kx_index)ow * oh)) * h * wd;
        const int y0 = oy * sh - ph;
        const int x0 = ox * sw - pw;
        float s = 0.0f;
        int count = 0;
        for (int i = 0; i < kh; ++i) {
            for (int j = 0; j < kw; ++j) {
                const int iy = y0 + i;
                const int ix = x0 + j;
                if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
                    s += x[base + (kx_index)iy * wd + ix];
                    ++count;
                }
            }
        }
        y[e] = s / kx_avg_divisor(y0, x0, count, h, wd, kh, kw, pb, pr, count_pad);
    }
}

extern "C" __global__ void avgpool_backward(float* dx, const float* __restrict__ dy, long long planes,
                                            int h, int wd, int kh, int kw, int sh, int sw, int ph, int pw,
                                            int pb, int pr, int count_pad, int oh, int ow)
{
    KX_GRID_STRIDE_LOOP(e, planes * oh * ow)
    {
        const int ox = (int)(e % ow);
        const int oy = (int)((e / ow) % oh);
        const kx_index base = (e / ((kx_index)ow * oh)) * h * wd;
        const int y0 = oy * sh - ph;
        const int x0 = ox * sw - pw;
        int count = 0;
        for (int i = 0; i < kh; ++i)
            for (int j = 0; j < kw; ++j)
                if (y0 + i >= 0 && y0 + i < h && x0 + j >= 0 && x0 + j < wd)
                    ++count;
        const float share = dy[e] / kx_avg_divisor(y0, x0, count, h, wd, kh, kw, pb, pr, count_pad);
        for (int i = 0; i < kh; ++i) {
            for (int j = 0; j < kw; ++j) {
                const int iy = y0 + i;
                const int ix = x0 + j;
                if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                    atomicAdd(&dx[base + (kx_index)iy * wd + ix], share);
            }
        }
    }
}

// One block per plane (grid-strided), block-wide tree sum in double: the CPU twin sums in double.
#define KX_GAP_THREADS 256
extern "C" __global__ void __launch_bounds__(KX_GAP_THREADS)
global_avgpool_forward(float* __restrict__ y, const float* __restrict__ x, long long planes, long long area)
{
    __shared__ double partial[KX_GAP_THREADS];
    for (kx_index p = blockIdx.x; p < planes; p += gridDim.x) {
        double s = 0.0;
        for (kx_index i = threadIdx.x; i < area; i += blockDim.x)
            s += x[p * area + i];
        partial[threadIdx.x] = s;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half)
                partial[threadIdx.x] += partial[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0)
            y[p] = (float)(partial[0] / (double)area);
        __syncthreads(); // partial[0] is read before the next plane overwrites it
    }
}

extern "C" __global__ void global_avgpool_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                                   long long planes, long long area)
{
    KX_GRID_STRIDE_LOOP(e, planes * area)
    {
        dx[e] = dy[e / area] / (float)area;
    }
}

extern "C" __global__ void channel_affine(float* __restrict__ y, const float* __restrict__ x,
                                          const float* __restrict__ scale, const float* __restrict__ shift,
                                          long long n, int channels, long long inner)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const int ch = (int)((e / inner) % channels);
        y[e] = shift ? x[e] * scale[ch] + shift[ch] : x[e] * scale[ch];
    }
}

// ---- FP32 convolution with exact decisions (issue 16 item 3) ----------------------------------
//
// conv2d_forward_f32 is an implicit GEMM per group, Y_g[mg, n·oh·ow] = W_g[mg, K] · X̂_g[K, n·oh·ow]
// with K = (C/group)·kh·kw, the columns X̂ gathered from x into shared memory as they are needed
// (no im2col buffer in DRAM). Tiles of 64 output channels × 64 output positions (all images of
// the batch side by side, so late small-spatial layers still fill tiles; conv2d_forward_f32_narrow:
// 16 × 256 for layers of at most 16 channels per group), K in slices of 32; 256 threads, each
// owning a 4×4 register block. Products are accumulated with fmaf (one FFMA, one rounding) in float, and every
// KX_CT_KBLOCK = 256 products the float partial sums are added into a double accumulator: each
// float partial sum of at most 256 products is within γ₂₅₆·Σ|terms| of its exact value whatever
// the hardware does, so the output carries the bound γ₂₅₇·(|b| + Σ|w|·max|x|) per image and
// output channel that the CPU's float convolution carries (backend/cpu/ConvOps: K_BLOCK = 256).
// The sum of the bias and the blocks is rounded once to float.
//
// tf32 = 1 (-Dkxai.cuda.tf32=true): both operands are rounded to TF32 as the tiles are loaded
// (kx_tf32: 10-bit mantissa, to nearest, ties away), as tensor cores would read them; the products
// and sums stay as above. Each product of rounded operands is within (2·2^-11 + 2^-22)·|w·x| of the
// exact one, so the launcher passes conv_plane_bound the γ of the FP32 sums plus that
// (ConvOps.gamma(kk, true)), and the repair still decides every kink as the double kernel does.
//
// The repair: plane_max_abs (max |x| per image and channel; NaN if any is NaN) and
// conv_plane_bound (the per-(image, output channel) bound from Σ_taps |w| per channel pair,
// computed on the host once per weight) give every output its bound; conv_repair_kinks then
// replaces, in place, each output within its bound of a kink (ReLU's 0, Clip's two) by the
// double kernel's value (kx_conv_point rounded once: conv2d_forward's), so the decision taken on
// it is the all-double path's. With relu = 1 and a bound, conv2d_forward_f32 does the same for
// ReLU's kink in its epilogue and stores the ReLU'd value (bias + activation fused). Pool
// windows: maxpool_repair_mark flags, in windows whose runner-up lies within the two bounds of
// the best, the best and its rivals; conv_repair_marked recomputes the flagged outputs.
#define KX_CT_K 32
#define KX_CT_THREADS 256
#define KX_CT_KBLOCK 256
#define KX_UNIT_ROUNDOFF 5.9604644775390625e-8f  // 2^-24

// The bound of a stored value v of a plane with bound pb: pb + 2u|v|; 0 for a ReLU'd 0 (relu:
// the tensor holds ReLU of the convolution, and a 0 there is exact: its input was below −bound
// or was recomputed before the clamp); 0 when pb is 0 (exact sums) or NaN (decides nothing).
__device__ __forceinline__ float kx_value_bound(float v, float pb, int relu)
{
    return (pb > 0.0f && !(relu && v == 0.0f)) ? pb + 2.0f * KX_UNIT_ROUNDOFF * fabsf(v) : 0.0f;
}

// |v − nearest kink| ≤ bound + 2u|v| (the bound of the stored value); NaN never is.
__device__ __forceinline__ bool kx_near_kink(float v, float pb, float k0, float k1, int nk)
{
    if (!(pb > 0.0f) || nk <= 0)
        return false;
    float d = fabsf(v - k0);
    if (nk > 1) {
        const float d1 = fabsf(v - k1);
        d = d1 < d ? d1 : d;
    }
    return d <= pb + 2.0f * KX_UNIT_ROUNDOFF * fabsf(v);
}

// One tile shape: TM output channels × TN output positions, 256 threads as (TM/4) × (TN/4), each
// owning a 4×4 register block (rows ty + (TM/4)·i, columns tx + (TN/4)·j: consecutive threads
// read consecutive shared-memory words). The loaders: thread t loads B column t mod TN (fixed over
// the K loop: its image and window origin decoded once) and A/B rows in steps of 256 / TN.
template <int TM, int TN>
__device__ __forceinline__ void kx_conv_f32_tiles(float* __restrict__ y, const float* __restrict__ x,
                                                  const float* __restrict__ w, const float* __restrict__ bias,
                                                  const float* __restrict__ bound, int* __restrict__ count, int relu,
                                                  int tf32, int n, int c, int h, int wd, int m, int groups, int kh, int kw,
                                                  int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow)
{
    __shared__ float As[KX_CT_K][TM];
    __shared__ float Bs[KX_CT_K][TN];
    constexpr int TX = TN / 4;  // threads along the positions
    constexpr int TY = TM / 4;  // threads along the channels
    static_assert(TX * TY == KX_CT_THREADS, "one 4x4 block per thread");
    static_assert(KX_CT_KBLOCK % KX_CT_K == 0, "float blocks end on slice boundaries");
    const int cg = c / groups;
    const int mg = m / groups;
    const int khw = kh * kw;
    const int kk = cg * khw;
    const kx_index hw = (kx_index)oh * ow;
    const kx_index cols = (kx_index)n * hw;
    const int mTiles = (mg + TM - 1) / TM;
    const kx_index nTiles = (cols + TN - 1) / TN;
    const kx_index tiles = (kx_index)groups * mTiles * nTiles;
    const int tx = threadIdx.x % TX;
    const int ty = threadIdx.x / TX;
    const int bcol = threadIdx.x % TN;
    const int bk = threadIdx.x / TN;
    constexpr int BSTEP = KX_CT_THREADS / TN;
    for (kx_index t = blockIdx.x; t < tiles; t += gridDim.x) {
        const kx_index nt = t % nTiles;
        const int mt = (int)((t / nTiles) % mTiles);
        const int g = (int)(t / (nTiles * mTiles));
        const int m0 = mt * TM;
        const kx_index n0 = nt * TN;
        // this thread's B column is fixed over the K loop: decode it once
        const kx_index p = n0 + bcol;
        const bool pin = p < cols;
        const int bimg = pin ? (int)(p / hw) : 0;
        const int bpos = pin ? (int)(p % hw) : 0;
        const int by0 = (bpos / ow) * sh - ph;
        const int bx0 = (bpos % ow) * sw - pw;
        const float* xg = x + ((kx_index)bimg * c + (kx_index)g * cg) * h * wd;
        const float* wg = w + (kx_index)g * mg * kk;
        float fa[4][4];
        double da[4][4];
        KX_UNROLL
        for (int i = 0; i < 4; ++i)
            KX_UNROLL
            for (int j = 0; j < 4; ++j) {
                fa[i][j] = 0.0f;
                da[i][j] = 0.0;
            }
        for (int k0 = 0; k0 < kk; k0 += KX_CT_K) {
            for (int idx = threadIdx.x; idx < TM * KX_CT_K; idx += KX_CT_THREADS) {
                const int ak = idx % KX_CT_K;
                const int row = m0 + idx / KX_CT_K;
                const int k = k0 + ak;
                const float a = (row < mg && k < kk) ? wg[(kx_index)row * kk + k] : 0.0f;
                As[ak][idx / KX_CT_K] = tf32 ? kx_tf32(a) : a;
            }
            for (int kr = bk; kr < KX_CT_K; kr += BSTEP) {
                const int k = k0 + kr;
                float v = 0.0f;
                if (pin && k < kk) {
                    const int ch = k / khw;
                    const int tap = k - ch * khw;
                    const int i = tap / kw;
                    const int iy = by0 + i * dh;
                    const int ix = bx0 + (tap - i * kw) * dw;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                        v = xg[(kx_index)ch * h * wd + (kx_index)iy * wd + ix];
                }
                Bs[kr][bcol] = tf32 ? kx_tf32(v) : v;
            }
            __syncthreads();
            KX_UNROLL
            for (int q = 0; q < KX_CT_K; ++q) {
                float a[4];
                float b[4];
                KX_UNROLL
                for (int i = 0; i < 4; ++i)
                    a[i] = As[q][ty + TY * i];
                KX_UNROLL
                for (int j = 0; j < 4; ++j)
                    b[j] = Bs[q][tx + TX * j];
                KX_UNROLL
                for (int i = 0; i < 4; ++i)
                    KX_UNROLL
                    for (int j = 0; j < 4; ++j)
                        fa[i][j] = fmaf(a[i], b[j], fa[i][j]);
            }
            __syncthreads();
            if ((k0 + KX_CT_K) % KX_CT_KBLOCK == 0 || k0 + KX_CT_K >= kk) {
                KX_UNROLL
                for (int i = 0; i < 4; ++i)
                    KX_UNROLL
                    for (int j = 0; j < 4; ++j) {
                        da[i][j] += (double)fa[i][j];
                        fa[i][j] = 0.0f;
                    }
            }
        }
        KX_UNROLL
        for (int i = 0; i < 4; ++i) {
            const int row = m0 + ty + TY * i;
            KX_UNROLL
            for (int j = 0; j < 4; ++j) {
                const kx_index q = n0 + tx + TX * j;
                if (row >= mg || q >= cols)
                    continue;
                const int oc = g * mg + row;
                const int img = (int)(q / hw);
                const kx_index e = ((kx_index)img * m + oc) * hw + q % hw;
                float v = (float)((bias ? (double)bias[oc] : 0.0) + da[i][j]);
                if (relu) {
                    if (bound && kx_near_kink(v, bound[(kx_index)img * m + oc], 0.0f, 0.0f, 1)) {
                        v = (float)kx_conv_point(e, x, w, bias, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh, dw,
                                                 oh, ow);
                        if (count)
                            atomicAdd(count, 1);
                    }
                    v = v > 0.0f ? v : 0.0f;
                }
                y[e] = v;
            }
        }
    }
}

// 64 output channels × 64 positions per tile: layers with more than 16 channels per group.
extern "C" __global__ void __launch_bounds__(KX_CT_THREADS)
conv2d_forward_f32(float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ w,
                   const float* __restrict__ bias, const float* __restrict__ bound, int* __restrict__ count,
                   int relu, int tf32, int n, int c, int h, int wd, int m, int groups, int kh, int kw, int sh, int sw,
                   int ph, int pw, int dh, int dw, int oh, int ow)
{
    kx_conv_f32_tiles<64, 64>(y, x, w, bias, bound, count, relu, tf32, n, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh,
                              dw, oh, ow);
}

// 16 output channels × 256 positions per tile: few-channel layers (a 64-channel tile would leave
// three quarters or more of its rows, and of the FFMAs, empty). The same sums in the same order.
extern "C" __global__ void __launch_bounds__(KX_CT_THREADS)
conv2d_forward_f32_narrow(float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ w,
                          const float* __restrict__ bias, const float* __restrict__ bound, int* __restrict__ count,
                          int relu, int tf32, int n, int c, int h, int wd, int m, int groups, int kh, int kw, int sh,
                          int sw, int ph, int pw, int dh, int dw, int oh, int ow)
{
    kx_conv_f32_tiles<16, 256>(y, x, w, bias, bound, count, relu, tf32, n, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh,
                               dw, oh, ow);
}

// max |x| over each plane of `area` elements (one block per plane, grid-strided); NaN if any is NaN.
#define KX_MAXABS_THREADS 256
__device__ __forceinline__ float kx_max_abs(float a, float b)
{
    return (b > a || b != b) ? b : a;
}

extern "C" __global__ void __launch_bounds__(KX_MAXABS_THREADS)
plane_max_abs(float* __restrict__ out, const float* __restrict__ x, long long planes, long long area)
{
    __shared__ float partial[KX_MAXABS_THREADS];
    for (kx_index p = blockIdx.x; p < planes; p += gridDim.x) {
        float mx = 0.0f;
        for (kx_index i = threadIdx.x; i < area; i += blockDim.x)
            mx = kx_max_abs(mx, fabsf(x[p * area + i]));
        partial[threadIdx.x] = mx;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half)
                partial[threadIdx.x] = kx_max_abs(partial[threadIdx.x], partial[threadIdx.x + half]);
            __syncthreads();
        }
        if (threadIdx.x == 0)
            out[p] = partial[0];
        __syncthreads();
    }
}

// bound[img·m + oc] = γ·(|b[oc]| + Σ_ch absTaps[oc·cg + ch]·maxAbs[img·c + g·cg + ch])·(1 + 1e-6)
// + (kk + 1)·2^-149 (what underflow can lose), 0 when no term is nonzero (the sums are exact),
// NaN when an input is (the bound then decides nothing). The CPU twin: ConvOps.forwardFloat.
extern "C" __global__ void conv_plane_bound(float* __restrict__ bound, const float* __restrict__ max_abs,
                                            const float* __restrict__ abs_taps, const float* __restrict__ bias,
                                            int n, int c, int m, int groups, int kk, float gamma)
{
    const int cg = c / groups;
    const int mg = m / groups;
    KX_GRID_STRIDE_LOOP(e, (kx_index)n * m)
    {
        const int oc = (int)(e % m);
        const int img = (int)(e / m);
        const int g = oc / mg;
        double sum = bias ? fabs((double)bias[oc]) : 0.0;
        for (int ch = 0; ch < cg; ++ch)
            sum += (double)abs_taps[(kx_index)oc * cg + ch] * (double)max_abs[(kx_index)img * c + g * cg + ch];
        bound[e] = sum > 0.0 ? (float)((double)gamma * sum * (1 + 1e-6) + (kk + 1) * 1.401298464324817e-45)
                             : (sum == 0.0 ? 0.0f : (float)sum);
    }
}

// Outputs within their bound of a kink (nk = 1: k0; 2: k0 and k1) replaced by the double
// kernel's value (ReLU'd when relu: y holds ReLU of the convolution); count (if not null) gets
// the number replaced.
extern "C" __global__ void conv_repair_kinks(float* __restrict__ y, int* __restrict__ count,
                                             const float* __restrict__ x, const float* __restrict__ w,
                                             const float* __restrict__ bias, const float* __restrict__ bound,
                                             float k0, float k1, int nk, int relu, int n, int c, int h, int wd, int m,
                                             int groups, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                                             int dw, int oh, int ow)
{
    const kx_index hw = (kx_index)oh * ow;
    KX_GRID_STRIDE_LOOP(e, (kx_index)n * m * hw)
    {
        const float v = y[e];
        if (!(relu && v == 0.0f) && kx_near_kink(v, bound[e / hw], k0, k1, nk)) {
            const float r = (float)kx_conv_point(e, x, w, bias, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh, dw,
                                                 oh, ow);
            y[e] = relu && !(r > 0.0f) ? 0.0f : r;
            if (count)
                atomicAdd(count, 1);
        }
    }
}

// Before a max-pool over a float convolution's output x (planes = images·channels, each with its
// bound): in every window whose best has a runner-up within the two bounds, flags the best and
// every element within both bounds of it (mark[i] = 1; nothing else is written, so overlapping
// windows do not race on values). As ExactDecisions.repairPoolTies on the CPU.
extern "C" __global__ void maxpool_repair_mark(int* __restrict__ mark, const float* __restrict__ x,
                                               const float* __restrict__ bound, int relu, long long planes, int h, int wd,
                                               int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                               int oh, int ow)
{
    KX_GRID_STRIDE_LOOP(e, planes * oh * ow)
    {
        const int ox = (int)(e % ow);
        const int oy = (int)((e / ow) % oh);
        const kx_index p = e / ((kx_index)ow * oh);
        const float pb = bound[p];
        if (!(pb > 0.0f))
            continue;
        const kx_index base = p * h * wd;
        const int y0 = oy * sh - ph;
        const int x0 = ox * sw - pw;
        kx_index best = -1;
        float top = 0.0f;
        float second = -INFINITY;
        for (int i = 0; i < kh; ++i) {
            const int iy = y0 + i * dh;
            if (iy < 0 || iy >= h)
                continue;
            for (int j = 0; j < kw; ++j) {
                const int ix = x0 + j * dw;
                if (ix < 0 || ix >= wd)
                    continue;
                const kx_index k = base + (kx_index)iy * wd + ix;
                const float v = x[k];
                if (best < 0) {
                    best = k;
                    top = v;
                } else if (v > top) {
                    second = top;
                    best = k;
                    top = v;
                } else if (v > second) {
                    second = v;
                }
            }
        }
        const float topBound = kx_value_bound(top, pb, relu);
        // no rival: the runner-up is below the best by more than both bounds
        if (best < 0 || !isfinite(top) || second < top - topBound - kx_value_bound(second, pb, relu))
            continue;
        bool any = false;
        for (int i = 0; i < kh; ++i) {
            const int iy = y0 + i * dh;
            if (iy < 0 || iy >= h)
                continue;
            for (int j = 0; j < kw; ++j) {
                const int ix = x0 + j * dw;
                if (ix < 0 || ix >= wd)
                    continue;
                const kx_index k = base + (kx_index)iy * wd + ix;
                const float v = x[k];
                const float b = kx_value_bound(v, pb, relu);
                // two exact values compare exactly (a tie keeps the first, as on the exact path)
                if (k != best && (b > 0.0f || topBound > 0.0f) && v >= top - topBound - b) {
                    mark[k] = 1;
                    any = true;
                }
            }
        }
        if (any)
            mark[best] = 1;
    }
}

// The flagged outputs of a float convolution replaced by the double kernel's values (ReLU'd when relu).
extern "C" __global__ void conv_repair_marked(float* __restrict__ y, int* __restrict__ count,
                                              const int* __restrict__ mark, const float* __restrict__ x,
                                              const float* __restrict__ w, const float* __restrict__ bias, int relu,
                                              int n,
                                              int c, int h, int wd, int m, int groups, int kh, int kw, int sh, int sw,
                                              int ph, int pw, int dh, int dw, int oh, int ow)
{
    KX_GRID_STRIDE_LOOP(e, (kx_index)n * m * oh * ow)
    {
        if (mark[e]) {
            const float r = (float)kx_conv_point(e, x, w, bias, c, h, wd, m, groups, kh, kw, sh, sw, ph, pw, dh, dw,
                                                 oh, ow);
            y[e] = relu && !(r > 0.0f) ? 0.0f : r;
            if (count)
                atomicAdd(count, 1);
        }
    }
}

// A residual sum y = a + b (same shape) before a decision, where a and/or b is a float
// convolution's output (bound_a / bound_b per plane of hw_a / hw_b elements; null: the operand is
// taken as it is, bound 0): flags the elements within the sum's bound of a kink. The sum's bound
// is the CPU's (ExactDecisions.sum): (b_a + b_b + 4u(|y| + b_a + b_b))·(1 + 4u); two exact
// operands make the same float addition as the exact path (nothing to flag). The flagged
// operands' values are then recomputed (conv_repair_marked on copies) and added (add_marked).
extern "C" __global__ void sum_mark_kinks(int* __restrict__ mark, const float* __restrict__ y,
                                          const float* __restrict__ a, const float* __restrict__ bound_a,
                                          long long hw_a, int relu_a, const float* __restrict__ b,
                                          const float* __restrict__ bound_b, long long hw_b, int relu_b, long long n,
                                          float k0, float k1, int nk)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const float ba = bound_a ? kx_value_bound(a[e], bound_a[e / hw_a], relu_a) : 0.0f;
        const float bb = bound_b ? kx_value_bound(b[e], bound_b[e / hw_b], relu_b) : 0.0f;
        if (!(ba > 0.0f || bb > 0.0f))
            continue;
        const float v = y[e];
        const float s = (ba + bb + 4.0f * KX_UNIT_ROUNDOFF * (fabsf(v) + ba + bb)) * (1.0f + 4.0f * KX_UNIT_ROUNDOFF);
        if (kx_near_kink(v, s, k0, k1, nk))
            mark[e] = 1;
    }
}

// y[e] = a[e] + b[e] where flagged (the exact path's float addition of the operands' exact values).
extern "C" __global__ void add_marked(float* __restrict__ y, const int* __restrict__ mark, const float* __restrict__ a,
                                      const float* __restrict__ b, long long n)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        if (mark[e])
            y[e] = a[e] + b[e];
    }
}
