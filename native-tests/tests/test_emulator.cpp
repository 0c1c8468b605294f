// test_emulator.cpp: the CPU shim and grid runner (tests/emulator_kernels.cu).
//
// Warp operations against CUDA's documented semantics, restated here; shared memory (static
// and dynamic) per block while blocks run concurrently; device-wide atomics; and the failures
// the emulator must report instead of hanging or passing: barriers and shuffles that some
// threads never reach, and (AddressSanitizer build) writes past device buffers.
#include <cstring>
#include <string>
#include <vector>

#include "device.h"
#include "harness.h"

namespace {

constexpr unsigned kFull = 0xffffffffu;

// CUDA C++ Programming Guide, "Warp Shuffle Functions": the source lane of each variant, or the
// caller's own lane where the variant says the value is not shifted in.
unsigned shfl_idx_source(unsigned lane, unsigned src, unsigned width)
{
    return (lane / width) * width + src % width;
}
unsigned shfl_up_source(unsigned lane, unsigned delta, unsigned width)
{
    return lane % width >= delta ? lane - delta : lane;
}
unsigned shfl_down_source(unsigned lane, unsigned delta, unsigned width)
{
    return lane % width + delta < width ? lane + delta : lane;
}
unsigned shfl_xor_source(unsigned lane, unsigned mask, unsigned width)
{
    const unsigned src = lane ^ mask;
    return src / width > lane / width ? lane : src;  // later groups are not readable
}

void test_warp_ops(unsigned width)
{
    const unsigned threads = 64;
    device::Buffer out(threads * 8 * sizeof(int)), out64(threads * sizeof(long long));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("emulator_kernels", "warp_ops"), {1}, {threads}, 0,
                                          out.ptr(), out64.ptr(), static_cast<int>(width)));
    const std::vector<int> got = out.download<int>(threads * 8);
    const std::vector<long long> got64 = out64.download<long long>(threads);
    unsigned ballot = 0;
    for (unsigned lane = 0; lane < 32; ++lane)
        ballot |= (lane % 3 == 0 ? 1u : 0u) << lane;
    for (unsigned t = 0; t < threads; ++t) {
        const unsigned lane = t % 32;
        const int* o = &got[t * 8];
        CHECK_MSG(o[0] == static_cast<int>(shfl_idx_source(lane, 5, width) * 10), "shfl t=%u got %d", t, o[0]);
        CHECK_MSG(o[1] == static_cast<int>(shfl_up_source(lane, 3, width) * 10), "shfl_up t=%u got %d", t, o[1]);
        CHECK_MSG(o[2] == static_cast<int>(shfl_down_source(lane, 3, width) * 10), "shfl_down t=%u got %d", t,
                  o[2]);
        CHECK_MSG(o[3] == static_cast<int>(shfl_xor_source(lane, 5, width) * 10), "shfl_xor t=%u got %d", t,
                  o[3]);
        CHECK_MSG(static_cast<unsigned>(o[4]) == ballot, "ballot t=%u got 0x%x", t, o[4]);
        CHECK_MSG(o[5] == 1, "any t=%u got %d", t, o[5]);
        CHECK_MSG(o[6] == 0, "all t=%u got %d", t, o[6]);
        CHECK_MSG(static_cast<unsigned>(o[7]) == kFull, "activemask t=%u got 0x%x", t, o[7]);
        const long long want64 = (1LL << 40) + shfl_down_source(lane, 1, width);
        CHECK_MSG(got64[t] == want64, "64-bit shfl_down t=%u got %lld want %lld", t, got64[t], want64);
    }
}

void test_dynamic_shared()
{
    const unsigned block = 128, blocks = 8, n = block * blocks;
    std::vector<float> in(n);
    for (unsigned i = 0; i < n; ++i)
        in[i] = static_cast<float>(i);
    device::Buffer din(n * 4), dout(n * 4);
    din.upload(in);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("emulator_kernels", "block_reverse"), {blocks}, {block},
                                          block * 4, dout.ptr(), din.ptr(), static_cast<long long>(n)));
    const std::vector<float> out = dout.download<float>(n);
    for (unsigned i = 0; i < n; ++i) {
        const unsigned first = i / block * block;
        CHECK_MSG(out[first + block - 1 - (i - first)] == in[i], "element %u", i);
    }
}

void test_static_shared_per_block()
{
    const unsigned block = 64, blocks = 64;
    device::Buffer out(block * blocks * 4);
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("emulator_kernels", "block_identity"), {blocks},
                                          {block}, 0, out.ptr()));
    const std::vector<int> got = out.download<int>(block * blocks);
    for (unsigned i = 0; i < got.size(); ++i)
        CHECK_MSG(got[i] == static_cast<int>(i / block), "thread %u of block %u saw owner %d", i % block,
                  i / block, got[i]);
}

void test_atomics()
{
    const unsigned block = 256, blocks = 40, threads = block * blocks;
    device::Buffer sum(4), count(4), wide(8), maximum(4);
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32_v2(sum.ptr(), 0, 1));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32_v2(count.ptr(), 0, 1));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32_v2(wide.ptr(), 0, 2));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32_v2(maximum.ptr(), 0x80000000u, 1));
    CHECK_CU(CUDA_SUCCESS, device::launch(device::function("emulator_kernels", "atomics"), {blocks}, {block}, 0,
                                          sum.ptr(), count.ptr(), wide.ptr(), maximum.ptr()));
    CHECK(sum.download<float>(1)[0] == static_cast<float>(threads));  // exact below 2^24
    CHECK(count.download<int>(1)[0] == static_cast<int>(threads));
    CHECK(wide.download<unsigned long long>(1)[0] == static_cast<unsigned long long>(threads) << 33);
    CHECK(maximum.download<int>(1)[0] == static_cast<int>(threads - 1));
}

void test_launch_bounds()
{
    if (!harness::ptx_is_from_nvcc("emulator_kernels"))
        return harness::skip("__launch_bounds__ enforced", "signature-only PTX has no .maxntid");
    harness::run_case("__launch_bounds__(64) enforced from the PTX's .maxntid", [] {
        device::Buffer out(128 * 4);
        const CUfunction f = device::function("emulator_kernels", "bounded");
        CHECK_CU(CUDA_SUCCESS, device::launch(f, {1}, {64}, 0, out.ptr()));
        CHECK_CU(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, device::launch(f, {1}, {128}, 0, out.ptr()));
    });
}

// Runs a broken kernel in a fresh context and expects a sticky launch failure.
int expect_launch_failure(const char* kernel, unsigned block, int n)
{
    device::use_primary_context();
    CUcontext ctx = nullptr;
    if (cuCtxCreate_v2(&ctx, 0, 0) != CUDA_SUCCESS)
        return 10;
    const std::string ptx = harness::read_file(harness::ptx_path("emulator_kernels"));
    CUmodule m = nullptr;
    CUfunction f = nullptr;
    CUdeviceptr out = 0, probe = 0;
    if (cuModuleLoadData(&m, ptx.c_str()) != CUDA_SUCCESS || cuModuleGetFunction(&f, m, kernel) != CUDA_SUCCESS ||
        cuMemAlloc_v2(&out, 4096) != CUDA_SUCCESS)
        return 11;
    if (device::launch(f, {1}, {block}, 0, out, n) != CUDA_ERROR_LAUNCH_FAILED)
        return 12;
    // Sticky, as on a GPU: the context is unusable until destroyed.
    if (cuMemAlloc_v2(&probe, 16) != CUDA_ERROR_LAUNCH_FAILED || cuCtxSynchronize() != CUDA_ERROR_LAUNCH_FAILED)
        return 13;
    if (cuCtxDestroy_v2(ctx) != CUDA_SUCCESS)
        return 14;
    // A new context works.
    if (cuCtxCreate_v2(&ctx, 0, 0) != CUDA_SUCCESS || cuMemAlloc_v2(&probe, 16) != CUDA_SUCCESS)
        return 15;
    return 0;
}

CHILD_MODE(barrier_divergence) { return expect_launch_failure("barrier_after_early_exit", 64, 40); }

CHILD_MODE(shuffle_exited_lane)
{
    device::use_primary_context();
    CUcontext ctx = nullptr;
    if (cuCtxCreate_v2(&ctx, 0, 0) != CUDA_SUCCESS)
        return 10;
    const std::string ptx = harness::read_file(harness::ptx_path("emulator_kernels"));
    CUmodule m = nullptr;
    CUfunction f = nullptr;
    CUdeviceptr out = 0;
    if (cuModuleLoadData(&m, ptx.c_str()) != CUDA_SUCCESS ||
        cuModuleGetFunction(&f, m, "shuffle_with_exited_lane") != CUDA_SUCCESS || cuMemAlloc_v2(&out, 4096) != CUDA_SUCCESS)
        return 11;
    return device::launch(f, {1}, {32}, 0, out) == CUDA_ERROR_LAUNCH_FAILED ? 0 : 12;
}

CHILD_MODE(write_past_end)
{
    device::use_primary_context();
    const int n = 1000;
    device::Buffer out(n * sizeof(float));
    device::launch(device::function("emulator_kernels", "write_past_end"), {4}, {256}, 0, out.ptr(), n);
    return 0;  // reached only if the overflow went unnoticed
}

CHILD_MODE(read_past_dynamic_shared)
{
    device::use_primary_context();
    const int n = 64;
    device::Buffer out(4);
    device::launch(device::function("emulator_kernels", "read_past_dynamic_shared"), {1}, {static_cast<unsigned>(n)},
                   n * sizeof(float), out.ptr(), n);
    return 0;
}

void expect_asan_report(const char* name, const char* mode)
{
    if (!harness::built_with_asan())
        return harness::skip(name, "needs the AddressSanitizer build (build/asan)");
    harness::run_case(name, [=] {
        const harness::ChildResult r = harness::run_child(mode, {});
        CHECK_MSG(r.exit_code != 0, "child %s exited 0: the overflow was not caught", mode);
        CHECK_MSG(r.output.find("AddressSanitizer") != std::string::npos, "no AddressSanitizer report:\n%s",
                  r.output.c_str());
    });
}

}  // namespace

SUITE(emulator)
{
    device::use_primary_context();
    for (unsigned width : {32u, 16u, 8u, 4u})
        harness::run_case("warp shuffles, votes and masks, width " + std::to_string(width),
                          [=] { test_warp_ops(width); });
    harness::run_case("dynamic shared memory (extern __shared__) per block", test_dynamic_shared);
    harness::run_case("static shared memory per block under concurrent blocks", test_static_shared_per_block);
    harness::run_case("atomics across blocks", test_atomics);
    test_launch_bounds();
    harness::expect_child("barrier reached by part of a block: launch failure, sticky, recoverable",
                          "barrier_divergence", {}, "__syncthreads() reached by 40 of 64 threads");
    harness::expect_child("full-warp shuffle with an exited lane: launch failure", "shuffle_exited_lane", {},
                          "which has exited");
    expect_asan_report("AddressSanitizer catches a write past a device buffer", "write_past_end");
    expect_asan_report("AddressSanitizer catches a read past the launch's dynamic shared memory",
                       "read_past_dynamic_shared");
}
