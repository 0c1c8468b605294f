// kernels/head.cu: the model's output side: softmax, the backward seed, logit gathering.
//
// Build: nvcc -ptx -arch=compute_75 -fmad=false head.cu   (g++ through the CPU shim for tests)
// Kernels:
//   softmax_forward   y = softmax over axis of length n, for [outer, n, inner] (max-subtracted,
//                     sum in double like the CPU twin); one thread per (outer, inner) line
//   softmax_backward  gx = y ⊙ (gy − Σ_n gy ⊙ y)
//   seed_one_hot      g[r, c] = (c == targets[r]) over [rows, cols]; writes every element
//   gather_target     out[r] = y[r, targets[r]]
// Layout invariants: float32 row-major contiguous; targets int32 [rows], each in [0, cols)
//   (checked on the host). 64-bit element indices; grid-stride loops, any 1-D geometry.
#include "common.cuh"

extern "C" __global__ void softmax_forward(float* __restrict__ y, const float* __restrict__ x,
                                           long long outer, int n, long long inner)
{
    KX_GRID_STRIDE_LOOP(line, outer * inner)
    {
        const kx_index o = line / inner;
        const kx_index base = o * n * inner + line % inner;
        float mx = -INFINITY;
        for (int c = 0; c < n; ++c)
            mx = fmaxf(mx, x[base + c * inner]);
        double sum = 0.0;
        for (int c = 0; c < n; ++c) {
            const float e = expf(x[base + c * inner] - mx);
            y[base + c * inner] = e;
            sum += e;
        }
        const float inv = (float)(1.0 / sum);
        for (int c = 0; c < n; ++c)
            y[base + c * inner] *= inv;
    }
}

extern "C" __global__ void softmax_backward(float* __restrict__ gx, const float* __restrict__ gy,
                                            const float* __restrict__ y, long long outer, int n,
                                            long long inner)
{
    KX_GRID_STRIDE_LOOP(line, outer * inner)
    {
        const kx_index o = line / inner;
        const kx_index base = o * n * inner + line % inner;
        double dot = 0.0;
        for (int c = 0; c < n; ++c)
            dot += (double)gy[base + c * inner] * y[base + c * inner];
        for (int c = 0; c < n; ++c) {
            const kx_index k = base + c * inner;
            gx[k] = (float)(y[k] * (gy[k] - dot));
        }
    }
}

extern "C" __global__ void seed_one_hot(float* __restrict__ g, const int* __restrict__ targets, int rows,
                                        int cols)
{
    KX_GRID_STRIDE_LOOP(e, (kx_index)rows * cols)
    {
        g[e] = (int)(e % cols) == targets[e / cols] ? 1.0f : 0.0f;
    }
}

extern "C" __global__ void gather_target(float* __restrict__ out, const float* __restrict__ y,
                                         const int* __restrict__ targets, int rows, int cols)
{
    KX_GRID_STRIDE_LOOP(r, rows)
    {
        out[r] = y[r * (kx_index)cols + targets[r]];
    }
}
