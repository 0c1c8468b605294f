// kernels/path.cu: the path of Integrated Gradients and its relatives.
//
// Build: nvcc -ptx -arch=compute_75 -fmad=false path.cu     (PTX loaded by the CUDA backend)
//        g++ -x c++ -ffp-contract=off -include native-tests/shim/cuda_cpu_shim.h  (CPU emulation)
// Kernels:
//   path_interpolate    out[k*batch + i, f] = base[i,f] + alphas[k] * (x[i,f] - base[i,f])
//   path_interpolate_f64  the same from DOUBLE endpoints, evaluated in double and rounded once
//                       to float (the first-layer saving: x, base are the first layer's outputs
//                       z_x, z_b at the two ends of the path, kept unrounded)
//   path_accumulate     acc[i,f] = (...(acc[i,f] + w_k0 g_k0) + ...) + w_k1-1 g_k1-1, step by step
//   attribution_finish  attr[i,f] = acc[i,f] * (x[i,f] - base[i,f])   (or acc, see flag)
//   row_sum             out[r] = sum_c a[r, c]   (completeness delta: sum of attributions)
//
// Layout invariants (float32, row-major, contiguous, no padding):
//   x, base, acc, attr   [batch, features]
//   alphas, weights      [steps]   quadrature nodes and weights, passed as data (float)
//   x, base of path_interpolate_f64: double, [batch, features]
//   path rows, grads     [steps * batch, features], STEP-MAJOR: row r = k * batch + i, so the
//                        rows of one step are contiguous and step k starts at k * batch * features.
//   Buffers passed to one kernel do not overlap, except attr == acc in attribution_finish.
// Indexing: element indices are 64-bit (kx_index); steps * batch * features may pass 2^31.
// Geometry: the element-wise kernels use 1-D grid-stride loops over batch * features, so any
//   1-D grid and block is correct; row_sum needs a power-of-two block of 32..1024 threads and
//   any 1-D grid (blocks stride over rows).
// Numerics: expressions are evaluated in float in exactly the order written, with no fused
//   multiply-add (nvcc -fmad=false, g++ -ffp-contract=off), so a CPU twin reproduces
//   path_interpolate, path_accumulate and attribution_finish bit for bit, and
//   path_interpolate_f64 too (double arithmetic, alpha widened from float, one rounding).
//   path_accumulate adds each step to acc in float, in increasing k (chunking-invariant). row_sum accumulates in float too
//   (per-thread strided sums, then a tree), so its error grows like log2(cols) * eps * sum |a|.
#include "common.cuh"

#define KX_ROW_SUM_MAX_THREADS 1024

extern "C" __global__ void path_interpolate(float* __restrict__ out, const float* __restrict__ x,
                                            const float* __restrict__ base,
                                            const float* __restrict__ alphas, int steps, int batch,
                                            long long features)
{
    // Step k of example i lands at k * plane + (i * features + f): one thread owns one (i, f)
    // and writes it for every step, reading x and base once.
    const kx_index plane = (kx_index)batch * features;
    KX_GRID_STRIDE_LOOP(e, plane)
    {
        const float b = base[e];
        const float d = x[e] - b;
        for (int k = 0; k < steps; ++k)
            out[k * plane + e] = b + alphas[k] * d;
    }
}

extern "C" __global__ void path_interpolate_f64(float* __restrict__ out, const double* __restrict__ x,
                                                const double* __restrict__ base,
                                                const float* __restrict__ alphas, int steps, int batch,
                                                long long features)
{
    const kx_index plane = (kx_index)batch * features;
    KX_GRID_STRIDE_LOOP(e, plane)
    {
        const double b = base[e];
        const double d = x[e] - b;
        for (int k = 0; k < steps; ++k)
            out[k * plane + e] = (float)(b + (double)alphas[k] * d);
    }
}

extern "C" __global__ void path_accumulate(float* __restrict__ acc, const float* __restrict__ grads,
                                           const float* __restrict__ weights, int steps, int batch,
                                           long long features)
{
    const kx_index plane = (kx_index)batch * features;
    // Each step is added to the running sum itself, in increasing k: the result is the same
    // however the steps are split into chunks (and batches), which a chunk-local sum added at the
    // end is not (the split would regroup the float additions).
    KX_GRID_STRIDE_LOOP(e, plane)
    {
        float sum = acc[e];
        for (int k = 0; k < steps; ++k)
            sum += weights[k] * grads[k * plane + e];
        acc[e] = sum;
    }
}

// attr may be acc itself (finish in place), so neither carries __restrict__.
extern "C" __global__ void attribution_finish(float* attr, const float* acc,
                                              const float* __restrict__ x,
                                              const float* __restrict__ base, int batch,
                                              long long features, int multiply_by_inputs)
{
    const kx_index plane = (kx_index)batch * features;
    KX_GRID_STRIDE_LOOP(e, plane)
    {
        attr[e] = multiply_by_inputs ? acc[e] * (x[e] - base[e]) : acc[e];
    }
}

extern "C" __global__ void __launch_bounds__(KX_ROW_SUM_MAX_THREADS)
row_sum(float* __restrict__ out, const float* __restrict__ a, int rows, long long cols)
{
    __shared__ float partial[KX_ROW_SUM_MAX_THREADS];
    const unsigned t = threadIdx.x;
    // The row loop is uniform across the block (it depends on blockIdx only), so every thread
    // reaches every barrier inside it.
    for (int row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* in = a + (kx_index)row * cols;
        float sum = 0.0f;
        for (kx_index c = t; c < cols; c += blockDim.x)
            sum += in[c];
        partial[t] = sum;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half >= KX_WARP_SIZE; half /= 2) {
            if (t < half)
                partial[t] += partial[t + half];
            __syncthreads();
        }
        // After the last barrier each thread reads only its own slot, so the next row may
        // overwrite partial[] without another barrier.
        if (t < KX_WARP_SIZE) {
            const float total = kx_warp_sum(partial[t]);
            if (t == 0)
                out[row] = total;
        }
    }
}
