// test_driver.cpp: the fake libcuda.so.1 behaves like a driver where host code can go wrong.
//
// Initialisation and per-thread contexts, the tracked allocator (0xFF fill, bounds-checked
// copies), module loading and the PTX/CPU signature check, launch validation, sticky errors,
// streams and events, and fault injection (in child processes, since the switches are read
// once per process, as a JVM fork would).
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "device.h"
#include "emu_memory.h"
#include "harness.h"

namespace {

// A PTX module declaring one entry with the given parameter list (no body needed).
std::string ptx_with_entry(const char* name, const char* params, const char* version = "8.0",
                           const char* target = "sm_75")
{
    return std::string(".version ") + version + "\n.target " + target + "\n.address_size 64\n.visible .entry " + name +
           "(" + params + ")\n{\n\tret;\n}\n";
}

void test_device_queries()
{
    int count = 0, value = 0;
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetCount(&count));
    CHECK(count == 1);
    char name[128] = {};
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetName(name, sizeof name, 0));
    CHECK(std::strstr(name, "emulator") != nullptr);
    const struct {
        CUdevice_attribute attribute;
        int value;
    } expected[] = {{CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024},
                    {CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32},
                    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 49152},
                    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 7},
                    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 5},
                    {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 40}};
    for (const auto& e : expected) {
        CHECK_CU(CUDA_SUCCESS, cuDeviceGetAttribute(&value, e.attribute, 0));
        CHECK_MSG(value == e.value, "attribute %d = %d, want %d", (int)e.attribute, value, e.value);
    }
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetAttribute(&value, static_cast<CUdevice_attribute>(100000), 0));
    CHECK_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 1));
    size_t total = 0;
    CHECK_CU(CUDA_SUCCESS, cuDeviceTotalMem_v2(&total, 0));
    CHECK(total > 0);
    int version = 0;
    CHECK_CU(CUDA_SUCCESS, cuDriverGetVersion(&version));
    CHECK(version >= 12000);
}

void test_error_names()
{
    const char* s = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuGetErrorName(CUDA_ERROR_LAUNCH_FAILED, &s));
    CHECK(s != nullptr && std::strcmp(s, "CUDA_ERROR_LAUNCH_FAILED") == 0);
    CHECK_CU(CUDA_SUCCESS, cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
    CHECK(s != nullptr && std::strcmp(s, "out of memory") == 0);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGetErrorName(static_cast<CUresult>(12345), &s));
    CHECK(s == nullptr);
}

void test_contexts_are_per_thread()
{
    CUcontext primary = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&primary));
    CHECK(primary != nullptr);
    CUresult without = CUDA_SUCCESS, with = CUDA_ERROR_UNKNOWN;
    std::thread worker([&] {
        CUdeviceptr p = 0;
        without = cuMemAlloc_v2(&p, 16);
        cuCtxSetCurrent(primary);
        with = cuMemAlloc_v2(&p, 16);
        cuMemFree_v2(p);
    });
    worker.join();
    CHECK_MSG(without == CUDA_ERROR_INVALID_CONTEXT, "allocation on a thread without a context: %s",
              harness::cu_name(without).c_str());
    CHECK_CU(CUDA_SUCCESS, with);

    CUcontext pushed = nullptr, popped = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&pushed, 0, 0));
    CUcontext current = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&current));
    CHECK(current == pushed);
    CHECK_CU(CUDA_SUCCESS, cuCtxPopCurrent_v2(&popped));
    CHECK(popped == pushed);
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&current));
    CHECK(current == primary);
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(pushed));
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxSetCurrent(pushed));
}

void test_allocations()
{
    size_t free_before = 0, free_after = 0, total = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_before, &total));
    {
        device::Buffer b(1000);
        CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_after, &total));
        CHECK(free_before - free_after == 1000);
        CHECK(b.ptr() % 256 == 0);
        const std::vector<float> fresh = b.download<float>(250);
        for (float v : fresh)
            CHECK_MSG(std::isnan(v), "new device memory should read as NaN, got %g", v);
    }
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_after, &total));
    CHECK(free_after == free_before);
    CUdeviceptr p = 0;
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemAlloc_v2(&p, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(0));
}

void test_copies_are_bounds_checked()
{
    device::Buffer a(64), b(64);
    std::vector<unsigned char> host(128, 7), back(128, 0);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyHtoD_v2(a.ptr(), host.data(), 65));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyHtoD_v2(a.ptr() + 60, host.data(), 5));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(a.ptr() + 60, host.data(), 4));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(back.data(), a.ptr() + 1, 64));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoD_v2(b.ptr(), a.ptr(), 65));
    // A device pointer where a host pointer belongs is a bug even though the emulator could
    // read it.
    CHECK_CU(CUDA_ERROR_INVALID_VALUE,
             cuMemcpyHtoD_v2(a.ptr(), reinterpret_cast<const void*>(b.ptr()), 4));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(a.ptr(), 0xAB, 64));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoD_v2(b.ptr(), a.ptr(), 64));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(back.data(), b.ptr(), 64));
    CHECK(back[0] == 0xAB && back[63] == 0xAB);
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32_v2(a.ptr(), 0x01020304u, 16));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD32_v2(a.ptr(), 0, 17));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD32_v2(a.ptr() + 2, 0, 1));
    unsigned word = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(&word, a.ptr() + 60, 4));
    CHECK(word == 0x01020304u);

    CUdeviceptr freed = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&freed, 32));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(freed));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(back.data(), freed, 4));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree_v2(freed));
}

void test_module_loading()
{
    CUmodule m = nullptr;
    CUfunction f = nullptr;
    CHECK_CU(CUDA_ERROR_INVALID_IMAGE, cuModuleLoadData(&m, "this is not PTX"));
    CHECK_CU(CUDA_ERROR_NOT_SUPPORTED, cuModuleLoadData(&m, "\x7f" "ELF\x02\x01\x01"));
    CHECK_CU(CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
             cuModuleLoadData(&m, ptx_with_entry("row_sum", ".param .u64 a", "99.0").c_str()));
    CHECK_CU(CUDA_ERROR_INVALID_PTX,
             cuModuleLoadData(&m, ptx_with_entry("row_sum", ".param .u64 a", "8.0", "sm_90").c_str()));

    // The JIT log reaches the caller through cuModuleLoadDataEx's options.
    char log[256] = {};
    CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void* values[] = {log, reinterpret_cast<void*>(sizeof log)};
    CHECK_CU(CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
             cuModuleLoadDataEx(&m, ptx_with_entry("row_sum", ".param .u64 a", "99.0").c_str(), 2, options, values));
    CHECK_MSG(std::strstr(log, "99.0") != nullptr, "JIT log: \"%s\"", log);

    const struct {
        const char* what;
        const char* entry;
        const char* params;
        CUresult expected;
    } cases[] = {
        {"matching", "row_sum", ".param .u64 a, .param .u64 b, .param .u32 c, .param .u64 d", CUDA_SUCCESS},
        {"missing parameter", "row_sum", ".param .u64 a, .param .u64 b, .param .u32 c", CUDA_ERROR_INVALID_IMAGE},
        {"int where the CPU has long long", "row_sum", ".param .u64 a, .param .u64 b, .param .u32 c, .param .u32 d",
         CUDA_ERROR_INVALID_IMAGE},
        {"float where the CPU has int", "row_sum", ".param .u64 a, .param .u64 b, .param .f32 c, .param .u64 d",
         CUDA_ERROR_INVALID_IMAGE},
        {"no CPU kernel of that name", "not_a_kernel", ".param .u64 a", CUDA_ERROR_NOT_FOUND},
    };
    for (const auto& c : cases) {
        CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&m, ptx_with_entry(c.entry, c.params).c_str()));
        const CUresult r = cuModuleGetFunction(&f, m, c.entry);
        CHECK_MSG(r == c.expected, "%s: %s, want %s", c.what, harness::cu_name(r).c_str(),
                  harness::cu_name(c.expected).c_str());
        CHECK_CU(CUDA_ERROR_NOT_FOUND, cuModuleGetFunction(&f, m, "absent_entry"));
        CHECK_CU(CUDA_SUCCESS, cuModuleUnload(m));
    }

    // A function outlives nothing: launching it after its module is unloaded fails.
    const std::string path = harness::read_file(harness::ptx_path("path"));
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&m, path.c_str()));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&f, m, "row_sum"));
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(m));
    device::Buffer out(4), a(4);
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, device::launch(f, {1}, {32}, 0, out.ptr(), a.ptr(), 1, 1LL));
}

void test_function_attributes()
{
    const CUfunction f = device::function("path", "row_sum");
    int value = 0;
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&value, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
    CHECK(value == 1024);
    if (harness::ptx_is_from_nvcc("path")) {
        CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&value, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, f));
        CHECK_MSG(value == 1024 * 4, "row_sum static shared memory %d bytes", value);
    }
}

void test_launch_validation()
{
    const CUfunction f = device::function("path", "attribution_finish");
    device::Buffer out(64), acc(64), x(64), b(64);
    const auto go = [&](device::Dim grid, device::Dim block, unsigned shared) {
        return device::launch(f, grid, block, shared, out.ptr(), acc.ptr(), x.ptr(), b.ptr(), 1, 16LL, 1);
    };
    CHECK_CU(CUDA_SUCCESS, go({1}, {16}, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, go({1}, {0}, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, go({1}, {2048}, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, go({1}, {32, 1, 65}, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, go({1, 70000}, {32}, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, go({1}, {32}, 64 * 1024));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr));
    void* extra[] = {nullptr};
    void* params[7] = {};
    CHECK_CU(CUDA_ERROR_NOT_SUPPORTED, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, params, extra));
}

void test_bad_pointer_argument_is_sticky()
{
    device::ScopedContext scoped;
    const CUfunction f = device::function("path", "row_sum");
    device::Buffer out(4);
    std::vector<float> host(16, 1.0f);
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS,
             device::launch(f, {1}, {32}, 0, out.ptr(), reinterpret_cast<CUdeviceptr>(host.data()), 1, 16LL));
    CUdeviceptr p = 0;
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS, cuMemAlloc_v2(&p, 4));
}

void test_streams_and_events()
{
    CUstream stream = nullptr;
    CUevent start = nullptr, stop = nullptr, untimed = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&stream, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&start, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&stop, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&untimed, CU_EVENT_DISABLE_TIMING));
    float ms = -1;
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventElapsedTime(&ms, start, stop));  // not recorded yet
    device::Buffer buffer(4096);
    std::vector<unsigned char> host(4096, 3);
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(start, stream));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(buffer.ptr(), host.data(), host.size(), stream));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(buffer.ptr(), 0, 1024, stream));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoHAsync_v2(host.data(), buffer.ptr(), host.size(), stream));
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(stop, stream));
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(untimed, stream));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(stream));
    CHECK_CU(CUDA_SUCCESS, cuEventSynchronize(stop));
    CHECK(host[0] == 0 && host[4095] == 0);
    CHECK_CU(CUDA_SUCCESS, cuEventElapsedTime(&ms, start, stop));
    CHECK(ms >= 0.0f);
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventElapsedTime(&ms, start, untimed));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(stream));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuMemcpyHtoDAsync_v2(buffer.ptr(), host.data(), 4, stream));
    for (CUevent e : {start, stop, untimed})
        CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(e));
}

unsigned long long counter(const char* name)
{
    const unsigned long long v = kxai_emu_counter(name);
    CHECK_MSG(v != ~0ull, "no counter %s", name);
    return v;
}

// Pinned host memory: allocated, freed once, classified in async copies; a free of anything else
// (pageable memory, device memory, twice) is refused, as a real driver does.
void test_pinned_memory()
{
    CUstream stream = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuStreamCreate(&stream, 0x8));
    void* pinned = nullptr;
    void* portable = nullptr;
    const unsigned long long allocs0 = counter("pinned_allocations"), frees0 = counter("pinned_frees");
    CHECK_CU(CUDA_SUCCESS, cuMemAllocHost_v2(&pinned, 4096));
    CHECK_CU(CUDA_SUCCESS, cuMemHostAlloc(&portable, 256, CU_MEMHOSTALLOC_PORTABLE));
    CHECK_CU(CUDA_ERROR_NOT_SUPPORTED, cuMemHostAlloc(&portable, 256, CU_MEMHOSTALLOC_DEVICEMAP));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemHostAlloc(&portable, 256, 0x80));
    void* empty = nullptr;
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemAllocHost_v2(&empty, 0));
    CHECK(counter("pinned_allocations") == allocs0 + 2);
    CHECK(static_cast<unsigned char*>(pinned)[4095] == 0xFF);
    device::Buffer buffer(4096);
    std::vector<unsigned char> pageable(4096, 7);
    const unsigned long long pinned0 = counter("async_copies_pinned"), pageable0 = counter("async_copies_pageable"),
                             sync0 = counter("sync_host_copies"), created0 = counter("ops_created_stream"),
                             default0 = counter("ops_default_stream");
    std::memset(pinned, 5, 4096);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(buffer.ptr(), pinned, 4096, stream));
    std::memset(pinned, 0, 4096);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoHAsync_v2(static_cast<char*>(pinned) + 1024, buffer.ptr(), 3072, stream));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(stream));
    CHECK(static_cast<unsigned char*>(pinned)[1024] == 5 && static_cast<unsigned char*>(pinned)[4095] == 5);
    // an interior range of a pinned allocation is pinned (one running past its end would also read
    // past the host allocation: AddressSanitizer's business, not tested here)
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(buffer.ptr(), static_cast<char*>(portable) + 128, 128, stream));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(buffer.ptr(), pageable.data(), 4096, stream));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(buffer.ptr(), pinned, 4096));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(buffer.ptr(), 0, 1024, stream));
    CHECK_MSG(counter("async_copies_pinned") == pinned0 + 3 && counter("async_copies_pageable") == pageable0 + 1 &&
                  counter("sync_host_copies") == sync0 + 1,
              "pinned %llu pageable %llu sync %llu", counter("async_copies_pinned") - pinned0,
              counter("async_copies_pageable") - pageable0, counter("sync_host_copies") - sync0);
    CHECK(counter("ops_created_stream") == created0 + 5 && counter("ops_default_stream") == default0 + 1);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFreeHost(pageable.data()));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFreeHost(reinterpret_cast<void*>(buffer.ptr())));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFreeHost(static_cast<char*>(pinned) + 16));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree_v2(reinterpret_cast<CUdeviceptr>(pinned)));
    CHECK_CU(CUDA_SUCCESS, cuMemFreeHost(pinned));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFreeHost(pinned));
    CHECK_CU(CUDA_SUCCESS, cuMemFreeHost(portable));
    CHECK(counter("pinned_frees") == frees0 + 2);
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(stream));
}

// Launches are counted by stream kind; a launch on a destroyed stream is refused.
void test_stream_counters_and_destroyed_stream()
{
    const CUfunction f = device::function("path", "row_sum");
    device::Buffer out(4), in(64);
    CUstream stream = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(in.ptr(), 0, 16, stream));
    long long n = 16;
    int rows = 1;
    CUdeviceptr o = out.ptr(), i = in.ptr();
    void* params[] = {&o, &i, &rows, &n};
    const unsigned long long on_default = counter("launches_default_stream"),
                             on_created = counter("launches_created_stream");
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, stream, params, nullptr));
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, params, nullptr));
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, CU_STREAM_LEGACY, params, nullptr));
    CHECK(counter("launches_created_stream") == on_created + 1 && counter("launches_default_stream") == on_default + 2);
    int value = -1;
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetAttribute(&value, static_cast<CUdevice_attribute>(KXAI_EMU_COUNTER_ATTRIBUTE + 1), 0));
    CHECK(static_cast<unsigned long long>(value) == counter("launches_created_stream"));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(stream));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, stream, params, nullptr));
    CHECK(counter("launches_created_stream") == on_created + 1);
    int ran = 0;
    CHECK(kxai_emu_stream_submit(stream, "test", [](void* p) { ++*static_cast<int*>(p); }, &ran, [](void*) {}) ==
          CUDA_ERROR_INVALID_HANDLE);
    CHECK(ran == 0);
    CHECK(kxai_emu_counter("no such counter") == ~0ull);
}

// Stream capture records instead of running (kernel parameters by value, host copies by address);
// the instantiated graph replays the recorded operations in order, each time copying what the
// pinned host buffer holds then.
void test_capture_and_replay()
{
    const CUfunction f = device::function("path", "row_sum");
    const long long n = 64;
    device::Buffer out(4), in(n * 4), scratch(16);
    CUstream stream = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    float* host = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuMemAllocHost_v2(reinterpret_cast<void**>(&host), n * 4));
    for (long long i = 0; i < n; ++i)
        host[i] = 1.0f;
    CUdeviceptr o = out.ptr(), i = in.ptr();
    int rows = 1;
    long long cols = n;
    void* params[] = {&o, &i, &rows, &cols};
    const unsigned long long captures0 = counter("graph_captures"), launches0 = counter("graph_launches"),
                             nodes0 = counter("captured_nodes"), kernels0 = counter("launches_created_stream");
    CHECK_CU(CUDA_SUCCESS, cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    CHECK_CU(CUDA_SUCCESS, cuStreamIsCapturing(stream, &status));
    CHECK(status == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    CHECK_CU(CUDA_SUCCESS, cuStreamIsCapturing(nullptr, &status));
    CHECK(status == CU_STREAM_CAPTURE_STATUS_NONE);
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(scratch.ptr(), 7, 4, stream));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(in.ptr(), host, n * 4, stream));
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 0, stream, params, nullptr));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoDAsync_v2(scratch.ptr(), out.ptr(), 4, stream));
    cols = 1;  // recorded by value: the replay still sums 64 columns
    CHECK(counter("launches_created_stream") == kernels0 && counter("captured_nodes") == nodes0 + 4);
    CUgraph graph = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamEndCapture(stream, &graph));
    CHECK(std::isnan(out.download<float>(1)[0]));  // nothing ran: still the 0xFF fill
    CHECK(graph != nullptr && counter("graph_captures") == captures0 + 1);
    CHECK_CU(CUDA_SUCCESS, cuStreamIsCapturing(stream, &status));
    CHECK(status == CU_STREAM_CAPTURE_STATUS_NONE);
    CUgraphExec exec = nullptr;
    CHECK_CU(CUDA_ERROR_NOT_SUPPORTED, cuGraphInstantiateWithFlags(&exec, graph, 1));
    CHECK_CU(CUDA_SUCCESS, cuGraphInstantiateWithFlags(&exec, graph, 0));
    CHECK_CU(CUDA_SUCCESS, cuGraphDestroy(graph));  // the executable graph is a snapshot
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGraphDestroy(graph));
    CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, stream));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(stream));
    CHECK_MSG(out.download<float>(1)[0] == 64.0f, "first replay: %g", out.download<float>(1)[0]);
    CHECK(scratch.download<float>(1)[0] == 64.0f);
    for (long long k = 0; k < n; ++k)
        host[k] = 2.0f;  // the memcpy node reads the pinned buffer at each replay
    CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, stream));
    CHECK_MSG(out.download<float>(1)[0] == 128.0f, "second replay: %g", out.download<float>(1)[0]);
    CHECK(counter("graph_launches") == launches0 + 2 && counter("launches_created_stream") == kernels0 + 2);
    CHECK_CU(CUDA_SUCCESS, cuGraphExecDestroy(exec));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGraphLaunch(exec, stream));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGraphExecDestroy(exec));
    CHECK_CU(CUDA_SUCCESS, cuMemFreeHost(host));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(stream));
}

// What a real driver refuses during a capture: in global mode an allocation, a free, a synchronous
// copy, a synchronize of the capturing stream (each invalidates the capture, and cuStreamEndCapture
// then fails with no graph); capture of a default stream, a capture begun twice, an end without a
// begin. Relaxed mode allows the allocation. A replay whose memory was freed since fails.
void test_illegal_during_capture()
{
    CUstream stream = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CHECK_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cuStreamBeginCapture_v2(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CUgraph graph = nullptr;
    CHECK_CU(CUDA_ERROR_ILLEGAL_STATE, cuStreamEndCapture(stream, &graph));
    device::Buffer buffer(256);
    std::vector<float> pageable(64, 1.0f);
    const struct {
        const char* what;
        CUresult (*call)(CUstream, CUdeviceptr, float*);
    } illegal[] = {
        {"cuMemAlloc", [](CUstream, CUdeviceptr, float*) { CUdeviceptr p = 0; return cuMemAlloc_v2(&p, 16); }},
        {"cuMemFree", [](CUstream, CUdeviceptr b, float*) { return cuMemFree_v2(b); }},
        {"cuMemAllocHost", [](CUstream, CUdeviceptr, float*) { void* p = nullptr; return cuMemAllocHost_v2(&p, 16); }},
        {"cuMemcpyHtoD", [](CUstream, CUdeviceptr b, float* h) { return cuMemcpyHtoD_v2(b, h, 16); }},
        {"cuMemsetD32", [](CUstream, CUdeviceptr b, float*) { return cuMemsetD32_v2(b, 0, 4); }},
        {"cuCtxSynchronize", [](CUstream, CUdeviceptr, float*) { return cuCtxSynchronize(); }},
        {"cuStreamSynchronize", [](CUstream s, CUdeviceptr, float*) { return cuStreamSynchronize(s); }},
        {"cuMemcpyDtoHAsync", [](CUstream s, CUdeviceptr b, float* h) { return cuMemcpyDtoHAsync_v2(h, b, 16, s); }},
    };
    for (const auto& c : illegal) {
        CHECK_CU(CUDA_SUCCESS, cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
        CHECK_CU(CUDA_ERROR_ILLEGAL_STATE, cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
        CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(buffer.ptr(), 0, 4, stream));
        const CUresult r = c.call(stream, buffer.ptr(), pageable.data());
        CHECK_MSG(r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "%s during a global capture: %d", c.what, r);
        CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
        CHECK_CU(CUDA_SUCCESS, cuStreamIsCapturing(stream, &status));
        CHECK_MSG(status == CU_STREAM_CAPTURE_STATUS_INVALIDATED, "%s: capture status %d", c.what, (int)status);
        graph = reinterpret_cast<CUgraph>(0x1);
        CHECK_CU(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, cuStreamEndCapture(stream, &graph));
        CHECK(graph == nullptr);
    }
    // relaxed mode: an allocation is allowed, and the capture completes
    CHECK_CU(CUDA_SUCCESS, cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_RELAXED));
    CUdeviceptr extra = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&extra, 64));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(extra, 3, 16, stream));
    CHECK_CU(CUDA_SUCCESS, cuStreamEndCapture(stream, &graph));
    CUgraphExec exec = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuGraphInstantiateWithFlags(&exec, graph, 0));
    CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, stream));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(extra));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGraphLaunch(exec, stream));  // its memset's memory is gone
    CHECK_CU(CUDA_SUCCESS, cuGraphExecDestroy(exec));
    CHECK_CU(CUDA_SUCCESS, cuGraphDestroy(graph));
    // a capture is per stream: another stream still runs eagerly (relaxed, so nothing is prohibited)
    CUstream other = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&other, CU_STREAM_NON_BLOCKING));
    CHECK_CU(CUDA_SUCCESS, cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_RELAXED));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(buffer.ptr(), 9, 1, other));
    CHECK(buffer.download<unsigned>(1)[0] == 9u);
    CHECK_CU(CUDA_SUCCESS, cuStreamEndCapture(stream, &graph));
    CHECK_CU(CUDA_SUCCESS, cuGraphDestroy(graph));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(other));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(stream));
}

// ---- child processes: each reads its fault-injection switch once, like a fresh JVM ----------

CHILD_MODE(uninitialized)
{
    CUdeviceptr p = 0;
    int count = 0, version = 0;
    const bool ok = cuMemAlloc_v2(&p, 4) == CUDA_ERROR_NOT_INITIALIZED &&
                    cuDeviceGetCount(&count) == CUDA_ERROR_NOT_INITIALIZED &&
                    cuDriverGetVersion(&version) == CUDA_SUCCESS && version > 0;
    return ok ? 0 : 1;
}

CHILD_MODE(fail_alloc)
{
    device::use_primary_context();
    CUdeviceptr p[4] = {};
    const CUresult r[4] = {cuMemAlloc_v2(&p[0], 64), cuMemAlloc_v2(&p[1], 64), cuMemAlloc_v2(&p[2], 64),
                           cuMemAlloc_v2(&p[3], 64)};
    std::printf("allocations: %d %d %d %d\n", r[0], r[1], r[2], r[3]);
    return r[0] == CUDA_SUCCESS && r[1] == CUDA_SUCCESS && r[2] == CUDA_ERROR_OUT_OF_MEMORY && r[3] == CUDA_SUCCESS
               ? 0
               : 1;
}

CHILD_MODE(memory_limit)
{
    device::use_primary_context();
    size_t free_bytes = 0, total = 0;
    CUdeviceptr big = 0, extra = 0;
    cuMemGetInfo_v2(&free_bytes, &total);
    const bool ok = total == (1u << 20) && cuMemAlloc_v2(&big, 1u << 20) == CUDA_SUCCESS &&
                    cuMemAlloc_v2(&extra, 1) == CUDA_ERROR_OUT_OF_MEMORY && cuMemFree_v2(big) == CUDA_SUCCESS &&
                    cuMemAlloc_v2(&extra, 1) == CUDA_SUCCESS;
    return ok ? 0 : 1;
}

// Launch 2 fails (injected); the primary context is then poisoned until reset, after which a
// fresh module and launch give correct results: what an engine's recovery path must do.
CHILD_MODE(fail_launch)
{
    device::use_primary_context();
    const int n = 100;
    std::vector<float> ones(n, 1.0f);
    float sum = 0;
    const auto run = [&]() {
        CUdeviceptr out = 0, in = 0;
        if (cuMemAlloc_v2(&out, 4) != CUDA_SUCCESS || cuMemAlloc_v2(&in, n * 4) != CUDA_SUCCESS ||
            cuMemcpyHtoD_v2(in, ones.data(), n * 4) != CUDA_SUCCESS)
            return CUDA_ERROR_UNKNOWN;
        const std::string ptx = harness::read_file(harness::ptx_path("path"));
        CUmodule m = nullptr;
        CUfunction f = nullptr;
        if (cuModuleLoadData(&m, ptx.c_str()) != CUDA_SUCCESS || cuModuleGetFunction(&f, m, "row_sum") != CUDA_SUCCESS)
            return CUDA_ERROR_UNKNOWN;
        const CUresult r = device::launch(f, {1}, {64}, 0, out, in, 1, static_cast<long long>(n));
        if (r == CUDA_SUCCESS)
            cuMemcpyDtoH_v2(&sum, out, 4);
        return r;
    };
    CUdeviceptr probe = 0;
    CUcontext ctx = nullptr;
    const CUresult first = run(), second = run();
    const CUresult poisoned_alloc = cuMemAlloc_v2(&probe, 4), poisoned_sync = cuCtxSynchronize();
    const CUresult reset = cuDevicePrimaryCtxReset_v2(0), retained = cuDevicePrimaryCtxRetain(&ctx, 0);
    cuCtxSetCurrent(ctx);
    sum = 0;
    const CUresult third = run();
    std::printf("launches %d %d, poisoned %d %d, reset %d %d, after reset %d, sum %g\n", first, second,
                poisoned_alloc, poisoned_sync, reset, retained, third, sum);
    return first == CUDA_SUCCESS && second == CUDA_ERROR_LAUNCH_FAILED && poisoned_alloc == CUDA_ERROR_LAUNCH_FAILED &&
                   poisoned_sync == CUDA_ERROR_LAUNCH_FAILED && reset == CUDA_SUCCESS && retained == CUDA_SUCCESS &&
                   third == CUDA_SUCCESS && sum == static_cast<float>(n)
               ? 0
               : 1;
}

// A CUDA 12.0 driver (R525): reports 12000, JIT-compiles PTX up to ISA 8.0 and refuses 8.1 and
// newer with CUDA_ERROR_UNSUPPORTED_PTX_VERSION, the error naming both versions; the engine's
// kernels (built at ISA 8.0 by kernels/compile-ptx.sh) load.
CHILD_MODE(driver_12_0)
{
    int version = 0;
    cuDriverGetVersion(&version);
    device::use_primary_context();
    CUmodule m = nullptr;
    const CUresult at80 = cuModuleLoadData(&m, ptx_with_entry("row_sum", ".param .u64 a", "8.0").c_str());
    char log[256] = {};
    CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void* values[] = {log, reinterpret_cast<void*>(sizeof log)};
    const CUresult at81 =
        cuModuleLoadDataEx(&m, ptx_with_entry("row_sum", ".param .u64 a", "8.1").c_str(), 2, options, values);
    const CUresult at90 = cuModuleLoadData(&m, ptx_with_entry("row_sum", ".param .u64 a", "9.0").c_str());
    int engine_failures = 0;
    const char* modules[] = {"path", "dense", "conv", "head", "shape", "perturb", "rules"};
    for (const char* module : modules) {
        const std::string ptx = harness::read_file(harness::ptx_path(module));
        const CUresult r = cuModuleLoadData(&m, ptx.c_str());
        if (r != CUDA_SUCCESS && harness::ptx_is_from_nvcc(module)) {
            std::printf("kernels/%s.cu: %d\n", module, r);
            ++engine_failures;
        }
    }
    std::printf("version %d; PTX 8.0: %d, 8.1: %d, 9.0: %d; log \"%s\"; engine modules refused: %d\n", version, at80,
                at81, at90, log, engine_failures);
    return version == 12000 && at80 == CUDA_SUCCESS && at81 == CUDA_ERROR_UNSUPPORTED_PTX_VERSION &&
                   at90 == CUDA_ERROR_UNSUPPORTED_PTX_VERSION && std::strstr(log, "8.1") != nullptr &&
                   std::strstr(log, "12000") != nullptr && std::strstr(log, "up to 8.0") != nullptr &&
                   engine_failures == 0
               ? 0
               : 1;
}

// Between the table's rows the newest row at or below the version applies: 12.6 takes 8.5.
CHILD_MODE(driver_12_6)
{
    device::use_primary_context();
    CUmodule m = nullptr;
    const CUresult at85 = cuModuleLoadData(&m, ptx_with_entry("row_sum", ".param .u64 a", "8.5").c_str());
    const CUresult at86 = cuModuleLoadData(&m, ptx_with_entry("row_sum", ".param .u64 a", "8.6").c_str());
    std::printf("driver 12.6: PTX 8.5: %d, 8.6: %d\n", at85, at86);
    return at85 == CUDA_SUCCESS && at86 == CUDA_ERROR_UNSUPPORTED_PTX_VERSION ? 0 : 1;
}

}  // namespace

SUITE(driver)
{
    harness::expect_child("calls before cuInit fail with CUDA_ERROR_NOT_INITIALIZED", "uninitialized", {}, nullptr);
    device::use_primary_context();
    harness::run_case("device queries", test_device_queries);
    harness::run_case("error names and strings", test_error_names);
    harness::run_case("contexts are per thread; push, pop, destroy", test_contexts_are_per_thread);
    harness::run_case("allocations: 256-byte aligned, 0xFF filled, accounted", test_allocations);
    harness::run_case("copies and memsets are bounds-checked", test_copies_are_bounds_checked);
    harness::run_case("module loading and the PTX/CPU signature check", test_module_loading);
    harness::run_case("function attributes from the PTX", test_function_attributes);
    harness::run_case("launch validation", test_launch_validation);
    harness::run_case("non-device pointer argument: illegal address, sticky", test_bad_pointer_argument_is_sticky);
    harness::run_case("streams and events", test_streams_and_events);
    harness::run_case("pinned host memory: allocation, classification of async copies, bad frees", test_pinned_memory);
    harness::run_case("launches counted by stream kind; a destroyed stream is refused",
                      test_stream_counters_and_destroyed_stream);
    harness::run_case("stream capture records; the graph replays with the pinned buffer's new contents",
                      test_capture_and_replay);
    harness::run_case("what a capture prohibits invalidates it; relaxed mode; replay of freed memory fails",
                      test_illegal_during_capture);
    harness::expect_child("KXAI_EMU_FAIL_ALLOC=3 fails the third allocation only", "fail_alloc", {"KXAI_EMU_FAIL_ALLOC=3"},
                 "injected: allocation 3");
    harness::expect_child("KXAI_EMU_MEM_BYTES limits and reports device memory", "memory_limit",
                 {"KXAI_EMU_MEM_BYTES=1048576"}, nullptr);
    harness::expect_child("KXAI_EMU_FAIL_LAUNCH=2: sticky failure, recovery by primary context reset", "fail_launch",
                 {"KXAI_EMU_FAIL_LAUNCH=2"}, "injected: launch 2");
    harness::expect_child("KXAI_EMU_DRIVER_VERSION=12000: PTX ISA 8.0 and the engine's kernels load, 8.1 and 9.0 refused",
                 "driver_12_0", {"KXAI_EMU_DRIVER_VERSION=12000"}, "version 12000");
    harness::expect_child("KXAI_EMU_DRIVER_VERSION=12060: PTX ISA 8.5 loads, 8.6 refused", "driver_12_6",
                 {"KXAI_EMU_DRIVER_VERSION=12060"}, nullptr);
}
