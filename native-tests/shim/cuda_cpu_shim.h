// cuda_cpu_shim.h: compile a CUDA .cu file, unchanged, as C++ for the CPU emulator.
//
// Force-included by g++ (-x c++ -include cuda_cpu_shim.h); never included by nvcc. Kernels
// become plain extern "C" functions; the grid runner (emu/grid_runner.cpp, inside the fake
// libcuda.so.1) runs each CUDA thread of a block as a fiber on one OS thread, so barriers and
// warp operations below are real rendezvous, not no-ops.
//
// Shared memory: __shared__ expands to thread_local (at block scope thread_local implies
// static). A worker OS thread runs one block at a time and all of that block's fibers, so a
// thread_local variable is exactly one block's shared memory. Consequences, as on a GPU:
// static shared memory is not initialised between blocks (it keeps the previous block's
// values; do not rely on either). Dynamic shared memory (extern __shared__ T name[]) is aliased
// by the generated registry onto one per-thread buffer, which the runner fills with 0xFF
// before every block (and, under AddressSanitizer, poisons beyond the launch's byte count).
//
// Deliberately absent: anything nvcc would reject (there is no atomicMax for float in CUDA,
// so there is none here: a kernel must compile under both). __CUDA_ARCH__ stays undefined.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "emu_abi.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
#define __shared__ thread_local
// __restrict__ is already a g++ keyword.

typedef kxai_emu_uint3 uint3;
typedef kxai_emu_uint3 dim3;

#define threadIdx kxai_emu_thread_idx
#define blockIdx kxai_emu_block_idx
#define blockDim kxai_emu_block_dim
#define gridDim kxai_emu_grid_dim
constexpr int warpSize = 32;

// ---- barriers and fences -------------------------------------------------------------------

static inline void __syncthreads() { kxai_emu_syncthreads(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu)
{
    kxai_emu_warp_collective(KXAI_EMU_SYNCWARP, mask, 0, 0, warpSize);
}
// Blocks run on several OS threads at once, so fences must be real fences.
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- warp shuffles and votes ---------------------------------------------------------------

namespace kxai_emu_shim {
template <typename T>
static inline T shuffle(kxai_emu_warp_op op, unsigned mask, T var, int param, int width)
{
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffles move at most 64 bits");
    unsigned long long bits = 0;
    memcpy(&bits, &var, sizeof(T));
    bits = kxai_emu_warp_collective(op, mask, bits, param, width);
    T out;
    memcpy(&out, &bits, sizeof(T));
    return out;
}
}  // namespace kxai_emu_shim

template <typename T>
static inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize)
{
    return kxai_emu_shim::shuffle(KXAI_EMU_SHFL_IDX, mask, var, src_lane, width);
}
template <typename T>
static inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize)
{
    return kxai_emu_shim::shuffle(KXAI_EMU_SHFL_UP, mask, var, (int)delta, width);
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize)
{
    return kxai_emu_shim::shuffle(KXAI_EMU_SHFL_DOWN, mask, var, (int)delta, width);
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize)
{
    return kxai_emu_shim::shuffle(KXAI_EMU_SHFL_XOR, mask, var, lane_mask, width);
}
static inline unsigned __ballot_sync(unsigned mask, int predicate)
{
    return (unsigned)kxai_emu_warp_collective(KXAI_EMU_VOTE_BALLOT, mask, predicate != 0, 0,
                                              warpSize);
}
static inline int __any_sync(unsigned mask, int predicate)
{
    return (int)kxai_emu_warp_collective(KXAI_EMU_VOTE_ANY, mask, predicate != 0, 0, warpSize);
}
static inline int __all_sync(unsigned mask, int predicate)
{
    return (int)kxai_emu_warp_collective(KXAI_EMU_VOTE_ALL, mask, predicate != 0, 0, warpSize);
}
static inline unsigned __activemask() { return kxai_emu_active_mask(); }

// ---- atomics (device-wide: blocks of one launch run concurrently on worker threads) --------

#define KXAI_EMU_INTEGER_ATOMICS(T)                                                               \
    static inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); } \
    static inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); } \
    static inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); } \
    static inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); } \
    static inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }   \
    static inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); } \
    static inline T atomicCAS(T* p, T expected, T desired)                                       \
    {                                                                                             \
        __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST,               \
                                    __ATOMIC_SEQ_CST);                                            \
        return expected;                                                                          \
    }                                                                                             \
    static inline T atomicMax(T* p, T v)                                                          \
    {                                                                                             \
        T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                             \
        while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST,       \
                                                       __ATOMIC_SEQ_CST)) {                       \
        }                                                                                         \
        return old;                                                                               \
    }                                                                                             \
    static inline T atomicMin(T* p, T v)                                                          \
    {                                                                                             \
        T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                             \
        while (old > v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST,       \
                                                       __ATOMIC_SEQ_CST)) {                       \
        }                                                                                         \
        return old;                                                                               \
    }
KXAI_EMU_INTEGER_ATOMICS(int)
KXAI_EMU_INTEGER_ATOMICS(unsigned int)
KXAI_EMU_INTEGER_ATOMICS(unsigned long long)
#undef KXAI_EMU_INTEGER_ATOMICS

// Floating-point read-modify-write as a compare-and-swap loop on the bit pattern, which is
// what the hardware's atomic add guarantees: one indivisible update, order unspecified.
#define KXAI_EMU_FLOAT_ATOMIC_ADD(F, BITS)                                                  \
    static inline F atomicAdd(F* p, F v)                                                    \
    {                                                                                       \
        BITS* word = reinterpret_cast<BITS*>(p);                                            \
        BITS old = __atomic_load_n(word, __ATOMIC_SEQ_CST), desired;                        \
        F value;                                                                            \
        do {                                                                                \
            memcpy(&value, &old, sizeof value);                                             \
            const F sum = value + v;                                                        \
            memcpy(&desired, &sum, sizeof desired);                                         \
        } while (!__atomic_compare_exchange_n(word, &old, desired, true, __ATOMIC_SEQ_CST, \
                                              __ATOMIC_SEQ_CST));                           \
        return value;                                                                       \
    }                                                                                       \
    static inline F atomicExch(F* p, F v)                                                   \
    {                                                                                       \
        BITS bits;                                                                          \
        memcpy(&bits, &v, sizeof bits);                                                     \
        bits = __atomic_exchange_n(reinterpret_cast<BITS*>(p), bits, __ATOMIC_SEQ_CST);     \
        F old;                                                                              \
        memcpy(&old, &bits, sizeof old);                                                    \
        return old;                                                                         \
    }
KXAI_EMU_FLOAT_ATOMIC_ADD(float, uint32_t)
KXAI_EMU_FLOAT_ATOMIC_ADD(double, uint64_t)
#undef KXAI_EMU_FLOAT_ATOMIC_ADD

// ---- math: the device library's names for what <math.h> already provides -------------------

template <typename T>
static inline T __ldg(const T* p) { return *p; }
// glibc's <math.h> declares __expf, __logf, ... (its internal names) but does not export them,
// so the device intrinsics of those names are defined here to match that declaration.
extern "C" {
inline float __expf(float x) noexcept { return expf(x); }
inline float __logf(float x) noexcept { return logf(x); }
inline float __log2f(float x) noexcept { return log2f(x); }
inline float __powf(float x, float y) noexcept { return powf(x, y); }
inline float __sinf(float x) noexcept { return sinf(x); }
inline float __cosf(float x) noexcept { return cosf(x); }
inline float __tanf(float x) noexcept { return tanf(x); }
}
static inline float __fdividef(float x, float y) { return x / y; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __saturatef(float x) { return fminf(fmaxf(x, 0.0f), 1.0f); }
// The _rn arithmetic intrinsics exist to forbid contraction; -ffp-contract=off already does.
static inline float __fadd_rn(float x, float y) { return x + y; }
static inline float __fmul_rn(float x, float y) { return x * y; }
static inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float_as_int(float x)
{
    int i;
    memcpy(&i, &x, sizeof i);
    return i;
}
static inline float __int_as_float(int i)
{
    float x;
    memcpy(&x, &i, sizeof x);
    return x;
}
static inline unsigned __float_as_uint(float x)
{
    unsigned u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static inline float __uint_as_float(unsigned u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
