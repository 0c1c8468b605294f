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
