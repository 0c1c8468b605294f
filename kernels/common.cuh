// kernels/common.cuh: helpers shared by every kernel family.
//
// Compiled by nvcc, and by g++ through native-tests/shim/cuda_cpu_shim.h (the CPU emulation),
// so everything here must be plain CUDA C++ that both accept.
#pragma once

// Element index. Tensors of the path (steps * batch * features) pass 2^31 elements at
// realistic sizes, so every index and stride that can reach a tensor's size is 64-bit.
typedef long long kx_index;

#define KX_WARP_SIZE 32
#define KX_FULL_WARP_MASK 0xffffffffu

// for (i = global thread index; i < n; i += total threads in the grid). Correct for any grid
// size, so a launcher may cap the grid (to the device's resident blocks, or to keep the CPU
// emulation cheap) without changing results. The stride is computed in 64 bits because
// blockDim.x * gridDim.x alone can overflow 32 bits.
#define KX_GRID_STRIDE_LOOP(i, n)                                                   \
    for (kx_index i = (kx_index)blockIdx.x * blockDim.x + threadIdx.x; i < (kx_index)(n); \
         i += (kx_index)blockDim.x * gridDim.x)

// Sum over the 32 lanes of a full warp; lane 0 receives the total (other lanes hold partial
// sums). Every lane of the warp must call it: the mask names the whole warp.
__device__ __forceinline__ float kx_warp_sum(float v)
{
    for (int offset = KX_WARP_SIZE / 2; offset > 0; offset /= 2)
        v += __shfl_down_sync(KX_FULL_WARP_MASK, v, offset);
    return v;
}

// Full unrolling of a fixed-trip loop (register-blocked tiles: the arrays stay in registers
// only when every index is a constant); g++ through the shim ignores it.
#ifdef __CUDACC__
#define KX_UNROLL _Pragma("unroll")
#else
#define KX_UNROLL
#endif

// x rounded to TF32 (8-bit exponent, 10-bit mantissa): to nearest, ties away from zero, as
// cvt.rna.tf32.f32 does, in integer arithmetic (that instruction needs sm_80; these kernels target
// sm_75). Normal numbers only: zeros, subnormals, infinities and NaN are returned as they are, so
// |kx_tf32(x) − x| ≤ 2^-11·|x| for every x (the exact-decision bounds rest on that; a subnormal's
// rounding would be absolute, not relative). A value that rounds past the largest finite TF32
// becomes infinity, as with cvt.rna.
__device__ __forceinline__ float kx_tf32(float x)
{
    const unsigned u = __float_as_uint(x);
    const unsigned e = u & 0x7f800000u;
    if (e == 0u || e == 0x7f800000u)
        return x;
    return __uint_as_float((u + 0x1000u) & 0xffffe000u);
}
