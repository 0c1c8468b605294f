// emulator_kernels.cu: kernels that test the emulator itself, not the engine.
//
// Compiled like kernels/*.cu (nvcc to PTX when present; g++ with the CPU shim into
// libkxai_test_kernels.so). Some are deliberately broken: the tests expect the emulator to
// report them (a barrier behind an early return, a shuffle naming an exited lane) or
// AddressSanitizer to catch them (a write past a buffer or past dynamic shared memory).
#include "common.cuh"

// Every warp operation for every lane; out has 8 ints per thread. CUDA's semantics are restated
// independently in tests/test_emulator.cpp.
extern "C" __global__ void warp_ops(int* out, long long* out64, int width)
{
    const unsigned t = threadIdx.x;
    const int lane = (int)(t % warpSize);
    int* o = out + 8 * t;
    o[0] = __shfl_sync(KX_FULL_WARP_MASK, lane * 10, 5, width);
    o[1] = __shfl_up_sync(KX_FULL_WARP_MASK, lane * 10, 3, width);
    o[2] = __shfl_down_sync(KX_FULL_WARP_MASK, lane * 10, 3, width);
    o[3] = __shfl_xor_sync(KX_FULL_WARP_MASK, lane * 10, 5, width);
    o[4] = (int)__ballot_sync(KX_FULL_WARP_MASK, lane % 3 == 0);
    o[5] = __any_sync(KX_FULL_WARP_MASK, lane == 7);
    o[6] = __all_sync(KX_FULL_WARP_MASK, lane < 31);
    o[7] = (int)__activemask();
    // 64-bit values must cross lanes whole.
    out64[t] = __shfl_down_sync(KX_FULL_WARP_MASK, (1LL << 40) + lane, 1, width);
    // Two disjoint half-warp groups with their own masks.
    const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
    __syncwarp(half);
}

// Reverses each block's slice of in through dynamic shared memory (blockDim.x floats).
extern "C" __global__ void block_reverse(float* out, const float* in, long long n)
{
    extern __shared__ float stage[];
    const kx_index i = (kx_index)blockIdx.x * blockDim.x + threadIdx.x;
    stage[threadIdx.x] = i < n ? in[i] : 0.0f;
    __syncthreads();
    const kx_index first = (kx_index)blockIdx.x * blockDim.x;
    const unsigned mirrored = blockDim.x - 1 - threadIdx.x;
    if (i < n && first + mirrored < n)
        out[first + mirrored] = stage[threadIdx.x];
}

// Each block publishes its index through static shared memory; every thread reads it back.
// Catches shared memory that leaks between blocks running at the same time.
extern "C" __global__ void block_identity(int* out)
{
    __shared__ int owner;
    if (threadIdx.x == 0)
        owner = (int)blockIdx.x;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = owner;
}

// Device-wide atomics from every thread of every block.
extern "C" __global__ void atomics(float* sum, int* count, unsigned long long* wide, int* maximum)
{
    const int id = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    atomicAdd(sum, 1.0f);
    atomicAdd(count, 1);
    atomicAdd(wide, 1ULL << 33);
    atomicMax(maximum, id);
}

// __launch_bounds__(64): launching more threads per block must fail.
extern "C" __global__ void __launch_bounds__(64) bounded(float* out)
{
    out[threadIdx.x] = 1.0f;
}

// BROKEN: threads past n return before a barrier the others wait at.
extern "C" __global__ void barrier_after_early_exit(float* out, int n)
{
    if ((int)threadIdx.x >= n)
        return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// BROKEN: lane 5 has exited when the full-warp shuffle runs.
extern "C" __global__ void shuffle_with_exited_lane(float* out)
{
    if (threadIdx.x % warpSize == 5)
        return;
    out[threadIdx.x] = __shfl_down_sync(KX_FULL_WARP_MASK, 1.0f, 1);
}

// BROKEN: writes one element past the end of out (n elements).
extern "C" __global__ void write_past_end(float* out, int n)
{
    KX_GRID_STRIDE_LOOP(i, n + 1)
    {
        out[i] = 1.0f;
    }
}

// BROKEN: reads one float past the dynamic shared memory the launch asked for (n floats).
extern "C" __global__ void read_past_dynamic_shared(float* out, int n)
{
    extern __shared__ float stage[];
    stage[threadIdx.x] = 1.0f;
    __syncthreads();
    if (threadIdx.x == 0)
        out[0] = stage[n];
}
