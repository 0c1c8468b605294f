// kernels/perturb.cu: perturbed copies of a batch for the perturbation methods (feature
// ablation, occlusion, Shapley values, KernelSHAP, LIME, deletion curves), made on the device
// from the batch and a few integers per sample, so no perturbed row crosses the bus.
//
// Build: nvcc -ptx -arch=compute_75 -fmad=false perturb.cu  (PTX loaded by the CUDA backend)
//        g++ -x c++ -ffp-contract=off -include native-tests/shim/cuda_cpu_shim.h  (CPU emulation)
// Kernels (sample s copies row home[s]; m(s) = 0 when mask_rows == 1 else home[s], b(s) likewise
// for base_rows):
//   perturb_single     out[s,f] = mask[m(s),f] == group[s] ? base[b(s),f] : x[home[s],f]
//   perturb_coalition  t = mask[m(s),f] < 0 ? home[s] : take[s*groups + mask[m(s),f]];
//                      out[s,f] = t >= 0 ? x[t,f] : base[b(s),f]
//   perturb_box        out[s,f] = f inside box s ? base[b(s),f] : x[home[s],f], box s being
//                      [boxes[s*2R + 2d], boxes[s*2R + 2d + 1]) on example axis d of dims[0..R)
//
// Layout invariants (float32 data, int32 descriptors, row-major, contiguous):
//   x [batch, features]; base [base_rows, features]; mask [mask_rows, features]; out [samples, features]
//   home, group [samples]; take [samples, groups]; boxes [samples, 2R]; dims [R], R <= 6,
//   prod(dims) == features. Every descriptor is in range (checked on the host: dev.kxai.backend.Perturbation).
// Geometry: 1-D grid-stride loops over samples * features; any 1-D grid and block is correct.
// Numerics: every output is a copy of an x or base value, so the CPU twins
//   (dev.kxai.backend.PerturbOps) agree bit for bit.
#include "common.cuh"

extern "C" __global__ void perturb_single(float* __restrict__ out, const float* __restrict__ x,
                                          const float* __restrict__ base, int base_rows,
                                          const int* __restrict__ mask, int mask_rows,
                                          const int* __restrict__ home, const int* __restrict__ group,
                                          int samples, long long features)
{
    const kx_index n = (kx_index)samples * features;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const kx_index f = e % features;
        const int s = (int)(e / features);
        const int r = home[s];
        const kx_index m = (mask_rows == 1 ? 0 : (kx_index)r) * features;
        const kx_index b = (base_rows == 1 ? 0 : (kx_index)r) * features;
        out[e] = mask[m + f] == group[s] ? base[b + f] : x[(kx_index)r * features + f];
    }
}

extern "C" __global__ void perturb_coalition(float* __restrict__ out, const float* __restrict__ x,
                                             const float* __restrict__ base, int base_rows,
                                             const int* __restrict__ mask, int mask_rows,
                                             const int* __restrict__ home, const int* __restrict__ take,
                                             int groups, int samples, long long features)
{
    const kx_index n = (kx_index)samples * features;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const kx_index f = e % features;
        const int s = (int)(e / features);
        const int r = home[s];
        const kx_index m = (mask_rows == 1 ? 0 : (kx_index)r) * features;
        const kx_index b = (base_rows == 1 ? 0 : (kx_index)r) * features;
        const int g = mask[m + f];
        const int t = g < 0 ? r : take[(kx_index)s * groups + g];
        out[e] = t >= 0 ? x[(kx_index)t * features + f] : base[b + f];
    }
}

extern "C" __global__ void perturb_box(float* __restrict__ out, const float* __restrict__ x,
                                       const float* __restrict__ base, int base_rows,
                                       const int* __restrict__ home, const int* __restrict__ boxes,
                                       const int* __restrict__ dims, int rank, int samples,
                                       long long features)
{
    const kx_index n = (kx_index)samples * features;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const kx_index f = e % features;
        const int s = (int)(e / features);
        const int r = home[s];
        const int* box = boxes + (kx_index)s * 2 * rank;
        bool inside = true;
        kx_index rest = f;
        for (int d = rank - 1; d >= 0; --d)
        {
            const int c = (int)(rest % dims[d]);
            rest /= dims[d];
            inside = inside && c >= box[2 * d] && c < box[2 * d + 1];
        }
        const kx_index b = (base_rows == 1 ? 0 : (kx_index)r) * features;
        out[e] = inside ? base[b + f] : x[(kx_index)r * features + f];
    }
}
