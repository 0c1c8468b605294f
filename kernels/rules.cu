// kernels/rules.cu: replaced backward rules (DeepLift's rescale rule; LRP's stabilised division;
// guided backprop and deconvolution need none: they apply relu_forward to a gradient).
//
// Build: nvcc -ptx -arch=compute_75 -fmad=false rules.cu   (g++ through the CPU shim for tests)
// DeepLift runs the batch and its baselines as one pass of 2·B rows, [x; x_ref]; every tensor here
// is [2, half] (half = B·features): element h of the first half and h + half of the second belong
// together. Kernels:
//   deeplift_scale    num[e] = gy[e] * dout(h), h = e mod half, where dout(h) = y[h] − y[h + half]
//                     (a nonlinearity), or for a max-pool (maxpool = 1) m − y[h + half] in the first
//                     half and y[h] − m in the second, m = max(y[h], y[h + half]) (Captum's rule)
//   deeplift_rescale  din = x[h] − x[h + half]; n = sum_halves ? num[h] + num[h + half] : num[e];
//                     gx[e] = |din| < eps ? g_plain[e] : n / din   (g_plain: the ordinary gradient)
//   lrp_stabilize     out[e] = r[e] / (z[e] + s·eps), s = −1 where z[e] < 0, else +1 (Captum's
//                     sign(z) with sign(0) set to 1; a NaN z gives NaN either way): LRP's z-rule
//                     divides the relevance arriving at a layer's output by its pre-activation
//                     (plain [n] tensors, no halves; out may alias r)
// Layout invariants: float32, contiguous, 2·half elements each; gx may alias g_plain.
// Geometry: 1-D grid-stride loops over 2·half; any 1-D grid and block is correct.
// Numerics: the expressions in the order written, no fused multiply-add (-fmad=false): the CPU
//   twins (dev.kxai.backend.RuleOps) agree bit for bit.
#include "common.cuh"

extern "C" __global__ void deeplift_scale(float* __restrict__ num, const float* __restrict__ gy,
                                          const float* __restrict__ y, long long half, int maxpool)
{
    KX_GRID_STRIDE_LOOP(e, 2 * half)
    {
        const kx_index h = e % half;
        const float yx = y[h];
        const float yr = y[h + half];
        float d;
        if (maxpool) {
            const float m = yx >= yr ? yx : yr;
            d = e < half ? m - yr : yx - m;
        } else {
            d = yx - yr;
        }
        num[e] = gy[e] * d;
    }
}

extern "C" __global__ void deeplift_rescale(float* gx, const float* g_plain, const float* __restrict__ num,
                                            const float* __restrict__ x, long long half, int sum_halves,
                                            float eps)
{
    KX_GRID_STRIDE_LOOP(e, 2 * half)
    {
        const kx_index h = e % half;
        const float din = x[h] - x[h + half];
        const float n = sum_halves ? num[h] + num[h + half] : num[e];
        gx[e] = fabsf(din) < eps ? g_plain[e] : n / din;
    }
}

extern "C" __global__ void lrp_stabilize(float* out, const float* r, const float* __restrict__ z, long long n,
                                         float eps)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const float zz = z[e];
        out[e] = r[e] / (zz + (zz < 0.0f ? -eps : eps));
    }
}
