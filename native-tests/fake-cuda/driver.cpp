// driver.cpp: a fake libcuda.so.1 that runs kernels on the CPU.
//
// It implements the driver calls a JCuda backend makes, with a real driver's checks where a
// bug on the host side would otherwise pass unnoticed:
//   - every call needs cuInit first; context calls need a current context on the calling
//     thread (contexts are per thread, as in CUDA);
//   - device pointers are host addresses from a tracked allocator: exactly the requested size
//     (so AddressSanitizer sees overflows), filled with 0xFF (unwritten floats read as NaN);
//     copies, memsets and pointer kernel arguments are checked against the allocations;
//   - modules are PTX text; an entry binds to the CPU kernel of the same name only if the PTX
//     parameter list (count, byte sizes, float vs integer) matches the CPU build's signature;
//   - a failed launch (injected, or a barrier that can never complete) is sticky, as on a GPU:
//     every later call in that context returns it until the context is destroyed or reset.
// Launches run synchronously and report their errors at the launch itself; streams and events
// are synchronous, and events record host time. Stream capture records operations (kernel
// parameters by value) into a graph instead of running them, refusing and invalidating what a
// real driver prohibits during a capture; cuGraphLaunch replays the nodes in order. Pinned host memory (cuMemAllocHost,
// cuMemHostAlloc) is tracked, so that what a real driver accepts but silently degrades is
// counted: an async copy from pageable memory (it becomes synchronous on a GPU). Counters of
// stream use (work on the default stream vs created streams) are readable by tests through
// kxai_emu_counter() and, from the JVM, through emulator-only device attributes
// (KXAI_EMU_COUNTER_ATTRIBUTE + index, see emu_memory.h).
//
// Every other symbol JCuda's JNI library imports is a generated stub that returns
// CUDA_ERROR_NOT_SUPPORTED (see tools/gen-stubs.sh); kxai_emu_unsupported() reports it.
#include <dlfcn.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cuda_subset.h"
#include "emu_abi.h"
#include "emu_memory.h"
#include "grid_runner.h"
#include "ptx_module.h"

namespace {

// ---- the emulated device ---------------------------------------------------------------------

constexpr int kComputeMajor = 7, kComputeMinor = 5;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kSharedPerBlock = 48 * 1024;
constexpr int kMultiprocessors = 40;
constexpr size_t kAllocationAlignment = 256;  // what cuMemAlloc guarantees
constexpr int kDefaultDriverVersion = 13000;
constexpr unsigned long long kDefaultMemoryBytes = 4ull << 30;

struct DeviceAttribute {
    CUdevice_attribute attribute;
    int value;
};
const DeviceAttribute kDeviceAttributes[] = {
    {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, kMaxThreadsPerBlock},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 2147483647},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, kSharedPerBlock},
    {CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 65536},
    {CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32},
    {CU_DEVICE_ATTRIBUTE_MAX_PITCH, 2147483647},
    {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 65536},
    {CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 1590000},
    {CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 512},
    {CU_DEVICE_ATTRIBUTE_GPU_OVERLAP, 1},
    {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, kMultiprocessors},
    {CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, 0},
    {CU_DEVICE_ATTRIBUTE_INTEGRATED, 0},
    {CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, 0},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, 0},
    {CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 1},
    {CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 0},
    {CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 0},
    {CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 0},
    {CU_DEVICE_ATTRIBUTE_TCC_DRIVER, 0},
    {CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 5001000},
    {CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 256},
    {CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 4 << 20},
    {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 1024},
    {CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, 1},
    {CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 1},
    {CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 0},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, kComputeMajor},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, kComputeMinor},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 65536},
    {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 65536},
    {CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, 0},
    {CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD, 0},
    {CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, 0},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, kSharedPerBlock},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 16},
};

// Newest PTX ISA each driver release can JIT: the PTX ISA's release history (PTX ISA manual,
// "Release Notes"; the same table as cuda-python's get_minimal_required_cuda_ver_from_ptx_ver).
// A version between rows takes the row at or below it (12.6 -> 8.5); below 11.0 nothing loads.
struct PtxSupport {
    int driver_version;
    int ptx_major, ptx_minor;
};
const PtxSupport kPtxSupport[] = {
    {11000, 7, 0}, {11010, 7, 1}, {11020, 7, 2}, {11030, 7, 3}, {11040, 7, 4}, {11050, 7, 5},
    {11060, 7, 6}, {11070, 7, 7}, {11080, 7, 8}, {12000, 8, 0}, {12010, 8, 1}, {12020, 8, 2},
    {12030, 8, 3}, {12040, 8, 4}, {12050, 8, 5}, {12070, 8, 6}, {12080, 8, 7}, {12090, 8, 8},
    {13000, 9, 0}, {13010, 9, 1}};

struct ErrorName {
    CUresult code;
    const char* name;
};
const ErrorName kErrorNames[] = {
#define KXAI_CU_ERROR_NAME(name, value) {name, #name},
    KXAI_CU_RESULTS(KXAI_CU_ERROR_NAME)
#undef KXAI_CU_ERROR_NAME
};

const char* describe(CUresult code)
{
    switch (code) {
    case CUDA_SUCCESS: return "no error";
    case CUDA_ERROR_INVALID_VALUE: return "invalid argument";
    case CUDA_ERROR_OUT_OF_MEMORY: return "out of memory";
    case CUDA_ERROR_NOT_INITIALIZED: return "initialization error (cuInit not called)";
    case CUDA_ERROR_DEINITIALIZED: return "driver shutting down";
    case CUDA_ERROR_NO_DEVICE: return "no CUDA-capable device is detected";
    case CUDA_ERROR_INVALID_DEVICE: return "invalid device ordinal";
    case CUDA_ERROR_INVALID_IMAGE: return "device kernel image is invalid";
    case CUDA_ERROR_INVALID_CONTEXT: return "invalid device context";
    case CUDA_ERROR_NO_BINARY_FOR_GPU: return "no kernel image is available for execution on the device";
    case CUDA_ERROR_INVALID_PTX: return "a PTX JIT compilation failed";
    case CUDA_ERROR_UNSUPPORTED_PTX_VERSION: return "the provided PTX was compiled with an unsupported toolchain";
    case CUDA_ERROR_INVALID_SOURCE: return "device kernel image is invalid";
    case CUDA_ERROR_FILE_NOT_FOUND: return "file not found";
    case CUDA_ERROR_SHARED_OBJECT_INIT_FAILED: return "shared object initialization failed";
    case CUDA_ERROR_INVALID_HANDLE: return "invalid resource handle";
    case CUDA_ERROR_NOT_FOUND: return "named symbol not found";
    case CUDA_ERROR_NOT_READY: return "device not ready";
    case CUDA_ERROR_ILLEGAL_ADDRESS: return "an illegal memory access was encountered";
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "too many resources requested for launch";
    case CUDA_ERROR_CONTEXT_IS_DESTROYED: return "context is destroyed";
    case CUDA_ERROR_LAUNCH_FAILED: return "unspecified launch failure";
    case CUDA_ERROR_NOT_PERMITTED: return "operation not permitted";
    case CUDA_ERROR_NOT_SUPPORTED: return "operation not supported";
    case CUDA_ERROR_ILLEGAL_STATE: return "the operation is not valid in the current state";
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: return "operation not permitted when stream is capturing";
    case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: return "operation failed due to a previous error during capture";
    case CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD: return "attempt to terminate a thread-local capture sequence from another thread";
    case CUDA_ERROR_UNKNOWN: return "unknown error";
    }
    return nullptr;
}

const char* error_name(CUresult code)
{
    for (const ErrorName& e : kErrorNames)
        if (e.code == code)
            return e.name;
    return "CUDA_ERROR_?";
}

// Diagnostics go to stderr with the call's name: the Java side sees only the number.
CUresult report(CUresult code, const char* call, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
CUresult report(CUresult code, const char* call, const char* fmt, ...)
{
    char message[1024];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    std::fprintf(stderr, "kxai-emu: %s: %s: %s\n", call, error_name(code), message);
    return code;
}

unsigned long long env_number(const char* name, unsigned long long fallback)
{
    const char* text = getenv(name);
    if (text == nullptr || *text == '\0')
        return fallback;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (*end != '\0') {
        std::fprintf(stderr, "kxai-emu: fatal: %s=%s is not a number\n", name, text);
        std::abort();
    }
    return value;
}

// ---- driver objects --------------------------------------------------------------------------

struct BoundKernel {
    const kxai_emu_kernel* kernel;
    void* (*dynamic_shared)(void);
    std::string library;
};

struct Allocation {
    size_t bytes;
    CUcontext owner;
};

// What tests read to prove where work went (see emu_memory.h for the names and indices).
enum Counter {
    kLaunchesDefaultStream,   // cuLaunchKernel on the legacy / per-thread default stream
    kLaunchesCreatedStream,   // cuLaunchKernel on a stream from cuStreamCreate
    kOpsDefaultStream,        // copies and memsets on a default stream (every synchronous copy included)
    kOpsCreatedStream,        // async copies and memsets on a created stream
    kAsyncCopiesPageable,     // cuMemcpy{HtoD,DtoH}Async with a host range that is not pinned memory
    kAsyncCopiesPinned,       // the same with a host range inside one pinned allocation
    kSyncHostCopies,          // cuMemcpyHtoD / cuMemcpyDtoH (synchronous)
    kPinnedAllocations,       // cuMemAllocHost / cuMemHostAlloc that succeeded
    kPinnedFrees,             // cuMemFreeHost that succeeded
    kCublasDefaultStream,     // cuBLAS calls on a handle bound to a default stream
    kCublasCreatedStream,     // cuBLAS calls on a handle bound to a created stream
    kGraphCaptures,           // cuStreamEndCapture that produced a graph
    kGraphLaunches,           // cuGraphLaunch that succeeded
    kCapturedNodes,           // operations recorded into a capture instead of run
    kCounterCount
};
const char* const kCounterNames[kCounterCount] = {
    "launches_default_stream", "launches_created_stream", "ops_default_stream", "ops_created_stream",
    "async_copies_pageable", "async_copies_pinned", "sync_host_copies", "pinned_allocations", "pinned_frees",
    "cublas_default_stream", "cublas_created_stream", "graph_captures", "graph_launches", "captured_nodes"};

bool is_default_stream(CUstream s)
{
    return s == nullptr || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD;
}

}  // namespace

struct CUctx_st {
    bool primary = false;
    bool active = true;        // false: destroyed, or a primary context nobody retains
    unsigned primary_retains = 0;
    CUresult sticky = CUDA_SUCCESS;  // a launch failure poisons the context, as on a GPU
};

struct CUmod_st {
    CUcontext context;
    kxai_emu::PtxModule ptx;
    std::map<std::string, std::unique_ptr<CUfunc_st>> functions;
};

struct CUfunc_st {
    CUmodule module;
    const kxai_emu::PtxEntry* entry;
    BoundKernel bound;
};

// One recorded operation of a stream capture, replayed by cuGraphLaunch. Kernel parameters and
// cuBLAS scalars are copied by value when recorded, as a real driver does; host pointers of
// copies are kept as addresses, so a replay copies what the host buffer holds then (which is why
// host data must go through buffers at fixed addresses: pinned staging).
struct GraphNode {
    enum Kind { kKernel, kCopyHtoD, kCopyDtoD, kMemset8, kMemset32, kHost } kind;
    explicit GraphNode(Kind k) : kind(k) {}
    CUfunction function = nullptr;
    unsigned grid[3] = {}, block[3] = {}, shared = 0;
    std::vector<std::vector<unsigned char>> params;
    CUdeviceptr dst = 0, src = 0;
    const void* host_src = nullptr;
    size_t bytes = 0;  // copies: bytes; memsets: elements
    unsigned value = 0;
    std::shared_ptr<void> host_arg;  // kHost: the closure's argument, released with the last graph holding it
    void (*host_fn)(void*) = nullptr;
    std::string call;
};

struct CUgraph_st {
    CUcontext context;
    std::vector<GraphNode> nodes;
};

struct CUgraphExec_st {
    CUcontext context;
    std::vector<GraphNode> nodes;
};

struct CUstream_st {
    explicit CUstream_st(CUcontext c) : context(c) {}
    CUcontext context;
    // Stream capture (cuStreamBeginCapture_v2 .. cuStreamEndCapture): operations are recorded
    // into `graph` instead of run. A prohibited call invalidates the capture: EndCapture then
    // fails with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED.
    bool capturing = false;
    bool invalidated = false;
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
    std::thread::id capture_thread;
    std::unique_ptr<CUgraph_st> graph;
};

struct CUevent_st {
    CUcontext context;
    unsigned flags;
    bool recorded = false;
    std::chrono::steady_clock::time_point when;
};

namespace {

struct Settings {
    int driver_version;
    unsigned long long memory_bytes;
    unsigned long long fail_alloc;   // 1-based index of the cuMemAlloc to fail; 0: none
    unsigned long long fail_launch;  // 1-based index of the cuLaunchKernel to fail; 0: none
    unsigned long long fail_copy;    // 1-based index of the host<->device copy (HtoD or DtoH) to fail; 0: none
};

struct Driver {
    std::mutex mutex;
    bool initialized = false;
    CUresult init_result = CUDA_SUCCESS;
    Settings settings{};
    std::map<std::string, BoundKernel> kernels;
    // Contexts are never freed: a thread may still hold a destroyed one as current, and the
    // handle must then read as destroyed rather than as whatever reuses the address.
    std::vector<std::unique_ptr<CUctx_st>> contexts;
    CUctx_st* primary = nullptr;
    std::map<uintptr_t, Allocation> allocations;
    unsigned long long allocated_bytes = 0;
    // Page-locked host memory (cuMemAllocHost / cuMemHostAlloc): host addresses, not device memory.
    std::map<uintptr_t, Allocation> pinned;
    unsigned long long counters[kCounterCount] = {};
    std::set<CUmodule> modules;
    std::set<CUfunction> functions;
    std::set<CUstream> streams;
    std::set<CUevent> events;
    std::set<CUgraph> graphs;
    std::set<CUgraphExec> graph_execs;
    unsigned long long alloc_calls = 0;
    unsigned long long launch_calls = 0;
    unsigned long long copy_calls = 0;
    std::set<int> unemulated_attributes_reported;
};

Driver& driver()
{
    static Driver* d = new Driver;  // never destroyed: JVM threads may call in during exit
    return *d;
}

thread_local std::vector<CUcontext> context_stack;

const Settings& settings_from_environment()
{
    static const Settings s = {
        static_cast<int>(env_number("KXAI_EMU_DRIVER_VERSION", kDefaultDriverVersion)),
        env_number("KXAI_EMU_MEM_BYTES", kDefaultMemoryBytes),
        env_number("KXAI_EMU_FAIL_ALLOC", 0),
        env_number("KXAI_EMU_FAIL_LAUNCH", 0),
        env_number("KXAI_EMU_FAIL_COPY", 0),
    };
    return s;
}

bool is_live(const Driver& d, CUcontext ctx)
{
    for (const auto& c : d.contexts)
        if (c.get() == ctx)
            return ctx->active;
    return false;
}

// The checks every context-bound call starts with, in the order a real driver applies them.
CUresult require_context(Driver& d, const char* call, CUcontext* out)
{
    if (!d.initialized)
        return d.init_result != CUDA_SUCCESS ? d.init_result : CUDA_ERROR_NOT_INITIALIZED;
    if (context_stack.empty() || context_stack.back() == nullptr)
        return report(CUDA_ERROR_INVALID_CONTEXT, call, "no current context on this thread "
                      "(cuCtxSetCurrent is per thread)");
    CUcontext ctx = context_stack.back();
    bool known = false;
    for (const auto& c : d.contexts)
        known = known || c.get() == ctx;
    if (!known)
        return report(CUDA_ERROR_INVALID_CONTEXT, call, "current context %p is not a context", (void*)ctx);
    if (!ctx->active)
        return report(CUDA_ERROR_CONTEXT_IS_DESTROYED, call, "the current context was destroyed or released");
    if (ctx->sticky != CUDA_SUCCESS)
        return ctx->sticky;
    *out = ctx;
    return CUDA_SUCCESS;
}

// Declares `ctx`, the current context, or returns the call's error.
#define REQUIRE_CONTEXT(d, ctx, call)                                                   \
    [[maybe_unused]] CUcontext ctx = nullptr;                                           \
    if (CUresult status_ = require_context(d, call, &ctx); status_ != CUDA_SUCCESS) \
        return status_;

#define REQUIRE_INIT(d)            \
    if (!(d).initialized)          \
        return (d).init_result != CUDA_SUCCESS ? (d).init_result : CUDA_ERROR_NOT_INITIALIZED;

// Whether [ptr, ptr + bytes) lies inside one live allocation (bytes == 0 admits the address
// one past the end: an empty range).
bool in_allocation(const Driver& d, uintptr_t ptr, size_t bytes)
{
    auto it = d.allocations.upper_bound(ptr);
    if (it == d.allocations.begin())
        return false;
    --it;
    const uintptr_t offset = ptr - it->first;
    return offset <= it->second.bytes && bytes <= it->second.bytes - offset;
}

// Whether [ptr, ptr + bytes) lies inside one live pinned host allocation.
bool in_pinned(const Driver& d, uintptr_t ptr, size_t bytes)
{
    auto it = d.pinned.upper_bound(ptr);
    if (it == d.pinned.begin())
        return false;
    --it;
    const uintptr_t offset = ptr - it->first;
    return offset < it->second.bytes && bytes <= it->second.bytes - offset;
}

// Counts a copy or memset by stream and, for an async host copy, by the host memory's kind.
void count_transfer(Driver& d, CUstream stream, bool async, const void* host, size_t n)
{
    ++d.counters[is_default_stream(stream) ? kOpsDefaultStream : kOpsCreatedStream];
    if (host == nullptr)
        return;
    if (!async)
        ++d.counters[kSyncHostCopies];
    else
        ++d.counters[in_pinned(d, reinterpret_cast<uintptr_t>(host), n) ? kAsyncCopiesPinned : kAsyncCopiesPageable];
}

CUresult check_device_range(const Driver& d, const char* call, const char* role, CUdeviceptr ptr, size_t bytes)
{
    if (in_allocation(d, ptr, bytes))
        return CUDA_SUCCESS;
    auto it = d.allocations.upper_bound(ptr);
    if (it != d.allocations.begin()) {
        --it;
        if (ptr - it->first <= it->second.bytes)
            return report(CUDA_ERROR_INVALID_VALUE, call,
                          "%s: %zu bytes at 0x%llx run %llu bytes past the end of the %zu-byte allocation at 0x%llx",
                          role, bytes, ptr, (unsigned long long)(bytes - (it->second.bytes - (ptr - it->first))),
                          it->second.bytes, (unsigned long long)it->first);
    }
    return report(CUDA_ERROR_INVALID_VALUE, call, "%s: 0x%llx is not device memory (freed, or never allocated)",
                  role, ptr);
}

CUresult check_host_pointer(const Driver& d, const char* call, const void* host)
{
    if (host == nullptr)
        return report(CUDA_ERROR_INVALID_VALUE, call, "host pointer is null");
    if (in_allocation(d, reinterpret_cast<uintptr_t>(host), 1))
        return report(CUDA_ERROR_INVALID_VALUE, call,
                      "host pointer %p is device memory (a device pointer passed as host?)", host);
    return CUDA_SUCCESS;
}

CUresult check_stream(const Driver& d, const char* call, CUcontext ctx, CUstream stream)
{
    if (stream == nullptr || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD)
        return CUDA_SUCCESS;
    if (d.streams.count(stream) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, call, "stream %p is not a live stream", (void*)stream);
    if (stream->context != ctx)
        return report(CUDA_ERROR_INVALID_HANDLE, call, "stream %p belongs to another context", (void*)stream);
    return CUDA_SUCCESS;
}

// The capture `stream` is in, or null (default streams never capture).
CUstream capturing(CUstream stream)
{
    return !is_default_stream(stream) && stream->capturing ? stream : nullptr;
}

// A call a capture in progress prohibits (an allocation, a free, a synchronous copy or memset, a
// context synchronize): in global mode any capture of the context prohibits it, in thread-local
// mode one begun by this thread, in relaxed mode none. As on a real driver the call fails with
// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and the capture is invalidated.
CUresult refuse_during_capture(Driver& d, CUcontext ctx, const char* call)
{
    CUresult r = CUDA_SUCCESS;
    for (CUstream s : d.streams) {
        if (!s->capturing || s->context != ctx || s->mode == CU_STREAM_CAPTURE_MODE_RELAXED)
            continue;
        if (s->mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL && s->capture_thread != std::this_thread::get_id())
            continue;
        s->invalidated = true;
        r = report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, call,
                   "not permitted while stream %p captures (mode %d); the capture is invalidated", (void*)s,
                   (int)s->mode);
    }
    return r;
}

void record(Driver& d, CUstream stream, GraphNode node)
{
    ++d.counters[kCapturedNodes];
    stream->graph->nodes.push_back(std::move(node));
}

void release_context_resources(Driver& d, CUcontext ctx)
{
    for (auto it = d.allocations.begin(); it != d.allocations.end();) {
        if (it->second.owner == ctx) {
            d.allocated_bytes -= it->second.bytes;
            free(reinterpret_cast<void*>(it->first));
            it = d.allocations.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = d.pinned.begin(); it != d.pinned.end();) {
        if (it->second.owner == ctx) {
            free(reinterpret_cast<void*>(it->first));
            it = d.pinned.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = d.modules.begin(); it != d.modules.end();) {
        if ((*it)->context == ctx) {
            for (auto& f : (*it)->functions)
                d.functions.erase(f.second.get());
            delete *it;
            it = d.modules.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = d.streams.begin(); it != d.streams.end();) {
        if ((*it)->context == ctx) {
            delete *it;
            it = d.streams.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = d.graphs.begin(); it != d.graphs.end();) {
        if ((*it)->context == ctx) {
            delete *it;
            it = d.graphs.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = d.graph_execs.begin(); it != d.graph_execs.end();) {
        if ((*it)->context == ctx) {
            delete *it;
            it = d.graph_execs.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = d.events.begin(); it != d.events.end();) {
        if ((*it)->context == ctx) {
            delete *it;
            it = d.events.erase(it);
        } else {
            ++it;
        }
    }
    ctx->sticky = CUDA_SUCCESS;
}

// ---- kernel libraries ------------------------------------------------------------------------

// KXAI_EMU_KERNELS (colon-separated paths) or libkxai_kernels.so beside this library.
std::vector<std::string> kernel_library_paths()
{
    std::vector<std::string> paths;
    const char* list = getenv("KXAI_EMU_KERNELS");
    if (list != nullptr && *list != '\0') {
        std::string all(list);
        size_t start = 0;
        while (start <= all.size()) {
            const size_t end = std::min(all.find(':', start), all.size());
            if (end > start)
                paths.push_back(all.substr(start, end - start));
            start = end + 1;
        }
        return paths;
    }
    Dl_info self{};
    dladdr(reinterpret_cast<void*>(&kernel_library_paths), &self);
    std::string dir = self.dli_fname != nullptr ? self.dli_fname : "";
    dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.rfind('/'));
    paths.push_back(dir + "/libkxai_kernels.so");
    return paths;
}

CUresult load_kernel_libraries(Driver& d)
{
    for (const std::string& path : kernel_library_paths()) {
        void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr)
            return report(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "cuInit",
                          "cannot load CPU kernel library: %s (set KXAI_EMU_KERNELS)", dlerror());
        auto library_fn = reinterpret_cast<kxai_emu_library_fn>(dlsym(handle, KXAI_EMU_LIBRARY_SYMBOL));
        if (library_fn == nullptr)
            return report(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "cuInit",
                          "%s has no %s (not a kernel library)", path.c_str(), KXAI_EMU_LIBRARY_SYMBOL);
        const kxai_emu_library* library = library_fn();
        if (library->abi_version != KXAI_EMU_ABI_VERSION)
            return report(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "cuInit",
                          "%s was built for emulator ABI %u, this libcuda.so.1 speaks %u: rebuild it",
                          path.c_str(), library->abi_version, KXAI_EMU_ABI_VERSION);
        for (unsigned i = 0; i < library->kernel_count; ++i) {
            const kxai_emu_kernel* k = &library->kernels[i];
            auto [it, added] = d.kernels.emplace(k->name, BoundKernel{k, library->dynamic_shared, path});
            if (!added)
                return report(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "cuInit",
                              "kernel %s is defined in both %s and %s", k->name,
                              it->second.library.c_str(), path.c_str());
        }
    }
    return CUDA_SUCCESS;
}

// ---- module loading --------------------------------------------------------------------------

// The newest PTX ISA (major * 10 + minor) a driver of this version JIT-compiles; 0 for none.
int newest_ptx_isa(int driver_version)
{
    int newest = 0;
    for (const PtxSupport& s : kPtxSupport)
        if (s.driver_version <= driver_version)
            newest = s.ptx_major * 10 + s.ptx_minor;
    return newest;
}

bool ptx_supported(int driver_version, int major, int minor)
{
    return major * 10 + minor <= newest_ptx_isa(driver_version);
}

std::string describe_params(const kxai_emu::PtxEntry& e)
{
    std::string s;
    for (const kxai_emu::PtxParam& p : e.params)
        s += (s.empty() ? "" : ", ") + p.type + "[" + std::to_string(p.bytes) + " bytes]";
    return s;
}

// "" when the PTX entry and the CPU kernel agree on every parameter, else the disagreement.
std::string compare_signatures(const kxai_emu::PtxEntry& e, const kxai_emu_kernel& k)
{
    if (e.params.size() != k.param_count)
        return "PTX has " + std::to_string(e.params.size()) + " parameters, the CPU kernel " +
               std::to_string(k.param_count);
    for (unsigned i = 0; i < k.param_count; ++i) {
        const kxai_emu::PtxParam& p = e.params[i];
        const bool ptx_float = p.type[1] == 'f';
        const char kind = k.param_kinds[i];
        if (p.bytes != k.param_sizes[i])
            return "parameter " + std::to_string(i) + " is " + std::to_string(p.bytes) +
                   " bytes in PTX, " + std::to_string(k.param_sizes[i]) + " on the CPU";
        if (ptx_float != (kind == 'f') && kind != 'o')
            return "parameter " + std::to_string(i) + " is " + p.type + " in PTX but " +
                   (kind == 'f' ? "floating point" : "not floating point") + " on the CPU";
    }
    return "";
}

CUresult load_module(CUmodule* module, const void* image, const char* call, std::string* log)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, call);
    if (module == nullptr || image == nullptr)
        return report(CUDA_ERROR_INVALID_VALUE, call, "null module or image");
    const unsigned char* bytes = static_cast<const unsigned char*>(image);
    if (std::memcmp(bytes, "\x7f" "ELF", 4) == 0 || std::memcmp(bytes, "\x50\xed\x55\xba", 4) == 0) {
        *log = "the emulator loads PTX text only, not cubin or fatbin";
        return report(CUDA_ERROR_NOT_SUPPORTED, call, "%s", log->c_str());
    }
    auto m = std::make_unique<CUmod_st>();
    m->context = ctx;
    *log = kxai_emu::parse_ptx(static_cast<const char*>(image), &m->ptx);
    if (!log->empty())
        return report(CUDA_ERROR_INVALID_IMAGE, call, "%s", log->c_str());
    if (!ptx_supported(d.settings.driver_version, m->ptx.version_major, m->ptx.version_minor)) {
        const int newest = newest_ptx_isa(d.settings.driver_version);
        *log = "PTX ISA " + std::to_string(m->ptx.version_major) + "." + std::to_string(m->ptx.version_minor) +
               " is newer than driver " + std::to_string(d.settings.driver_version) + " can compile: it JITs PTX ISA " +
               (newest == 0 ? std::string("none") : "up to " + std::to_string(newest / 10) + "." + std::to_string(newest % 10)) +
               " (KXAI_EMU_DRIVER_VERSION)";
        return report(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, call, "%s", log->c_str());
    }
    if (m->ptx.target_sm > kComputeMajor * 10 + kComputeMinor) {
        *log = "PTX targets sm_" + std::to_string(m->ptx.target_sm) + ", the device is sm_" +
               std::to_string(kComputeMajor * 10 + kComputeMinor);
        return report(CUDA_ERROR_INVALID_PTX, call, "%s", log->c_str());
    }
    *module = m.get();
    d.modules.insert(m.release());
    return CUDA_SUCCESS;
}

}  // namespace

namespace {

CUresult copy_htod(const char* call, CUdeviceptr dst, const void* src, size_t n, CUstream stream, bool async)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, call);
    if (CUresult r = check_stream(d, call, ctx, stream); r != CUDA_SUCCESS)
        return r;
    if (CUresult r = async ? CUDA_SUCCESS : refuse_during_capture(d, ctx, call); r != CUDA_SUCCESS)
        return r;
    if (++d.copy_calls == d.settings.fail_copy)
        return report(CUDA_ERROR_UNKNOWN, call, "injected: copy %llu (KXAI_EMU_FAIL_COPY)", d.copy_calls);
    if (n == 0)
        return CUDA_SUCCESS;
    if (CUresult r = check_device_range(d, call, "destination", dst, n); r != CUDA_SUCCESS)
        return r;
    if (CUresult r = check_host_pointer(d, call, src); r != CUDA_SUCCESS)
        return r;
    if (CUstream s = capturing(stream)) {
        GraphNode node(GraphNode::kCopyHtoD);
        node.dst = dst;
        node.host_src = src;
        node.bytes = n;
        node.call = call;
        record(d, s, std::move(node));
        return CUDA_SUCCESS;
    }
    count_transfer(d, stream, async, src, n);
    std::memcpy(reinterpret_cast<void*>(dst), src, n);
    return CUDA_SUCCESS;
}

CUresult copy_dtoh(const char* call, void* dst, CUdeviceptr src, size_t n, CUstream stream, bool async)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, call);
    if (CUresult r = check_stream(d, call, ctx, stream); r != CUDA_SUCCESS)
        return r;
    if (CUresult r = async ? CUDA_SUCCESS : refuse_during_capture(d, ctx, call); r != CUDA_SUCCESS)
        return r;
    if (++d.copy_calls == d.settings.fail_copy)
        return report(CUDA_ERROR_UNKNOWN, call, "injected: copy %llu (KXAI_EMU_FAIL_COPY)", d.copy_calls);
    if (n == 0)
        return CUDA_SUCCESS;
    if (CUresult r = check_device_range(d, call, "source", src, n); r != CUDA_SUCCESS)
        return r;
    if (CUresult r = check_host_pointer(d, call, dst); r != CUDA_SUCCESS)
        return r;
    if (CUstream s = capturing(stream)) {
        // legal on a GPU (a memcpy node), but nothing kxai captures reads back: a device-to-host
        // copy inside a capture is a host bookkeeping bug here (the host would read before the
        // graph runs), so it is refused and invalidates the capture
        s->invalidated = true;
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, call,
                      "device-to-host copy while stream %p captures (the host cannot read it before the graph runs)",
                      (void*)s);
    }
    count_transfer(d, stream, async, dst, n);
    std::memcpy(dst, reinterpret_cast<const void*>(src), n);
    return CUDA_SUCCESS;
}

CUresult copy_dtod(const char* call, CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream, bool async)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, call);
    if (CUresult r = check_stream(d, call, ctx, stream); r != CUDA_SUCCESS)
        return r;
    if (CUresult r = async ? CUDA_SUCCESS : refuse_during_capture(d, ctx, call); r != CUDA_SUCCESS)
        return r;
    if (n == 0)
        return CUDA_SUCCESS;
    if (CUresult r = check_device_range(d, call, "source", src, n); r != CUDA_SUCCESS)
        return r;
    if (CUresult r = check_device_range(d, call, "destination", dst, n); r != CUDA_SUCCESS)
        return r;
    if (CUstream s = capturing(stream)) {
        GraphNode node(GraphNode::kCopyDtoD);
        node.dst = dst;
        node.src = src;
        node.bytes = n;
        node.call = call;
        record(d, s, std::move(node));
        return CUDA_SUCCESS;
    }
    count_transfer(d, stream, true, nullptr, n);
    std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
    return CUDA_SUCCESS;
}

template <typename T>
CUresult fill(const char* call, CUdeviceptr dst, T value, size_t count, CUstream stream, bool async)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, call);
    if (CUresult r = check_stream(d, call, ctx, stream); r != CUDA_SUCCESS)
        return r;
    if (CUresult r = async ? CUDA_SUCCESS : refuse_during_capture(d, ctx, call); r != CUDA_SUCCESS)
        return r;
    if (count == 0)
        return CUDA_SUCCESS;
    if (dst % sizeof(T) != 0)
        return report(CUDA_ERROR_INVALID_VALUE, call, "0x%llx is not aligned to %zu bytes", dst, sizeof(T));
    if (count > SIZE_MAX / sizeof(T))
        return report(CUDA_ERROR_INVALID_VALUE, call, "%zu elements overflow size_t", count);
    if (CUresult r = check_device_range(d, call, "destination", dst, count * sizeof(T)); r != CUDA_SUCCESS)
        return r;
    if (CUstream s = capturing(stream)) {
        GraphNode node(sizeof(T) == 1 ? GraphNode::kMemset8 : GraphNode::kMemset32);
        node.dst = dst;
        node.bytes = count;
        node.value = value;
        node.call = call;
        record(d, s, std::move(node));
        return CUDA_SUCCESS;
    }
    count_transfer(d, stream, true, nullptr, count);
    T* p = reinterpret_cast<T*>(dst);
    std::fill(p, p + count, value);
    return CUDA_SUCCESS;
}

}  // namespace

// ---- the driver API --------------------------------------------------------------------------

extern "C" {

int kxai_emu_is_device_range(unsigned long long ptr, size_t bytes)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    return in_allocation(d, ptr, bytes);
}

// Called by the generated stubs (build/gen/cuda_stubs.c).
int kxai_emu_unsupported(const char* call)
{
    return report(CUDA_ERROR_NOT_SUPPORTED, call, "not emulated (kxai native-tests fake libcuda.so.1)");
}

unsigned long long kxai_emu_counter(const char* name)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    for (int i = 0; i < kCounterCount; ++i)
        if (name != nullptr && std::strcmp(name, kCounterNames[i]) == 0)
            return d.counters[i];
    return ~0ull;
}

int kxai_emu_stream_submit(void* stream, const char* call, void (*run)(void*), void* arg, void (*release)(void*))
{
    Driver& d = driver();
    CUstream s = static_cast<CUstream>(stream);
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        if (!is_default_stream(s) && d.streams.count(s) == 0) {
            release(arg);
            return report(CUDA_ERROR_INVALID_HANDLE, call, "stream %p is not a live stream (destroyed?)", stream);
        }
        if (CUstream c = capturing(s)) {
            GraphNode node(GraphNode::kHost);
            node.host_fn = run;
            node.host_arg = std::shared_ptr<void>(arg, release);
            node.call = call;
            record(d, c, std::move(node));
            return CUDA_SUCCESS;
        }
        ++d.counters[is_default_stream(s) ? kCublasDefaultStream : kCublasCreatedStream];
    }
    run(arg);
    release(arg);
    return CUDA_SUCCESS;
}

CUresult cuInit(unsigned int flags)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    if (flags != 0)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "flags must be 0");
    if (d.initialized || d.init_result != CUDA_SUCCESS)
        return d.init_result;
    d.settings = settings_from_environment();
    d.init_result = load_kernel_libraries(d);
    if (d.init_result != CUDA_SUCCESS) {
        d.kernels.clear();
        return d.init_result;
    }
    auto primary = std::make_unique<CUctx_st>();
    primary->primary = true;
    primary->active = false;
    d.primary = primary.get();
    d.contexts.push_back(std::move(primary));
    d.initialized = true;
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* driverVersion)
{
    if (driverVersion == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = settings_from_environment().driver_version;
    return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** pStr)
{
    if (pStr == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    for (const ErrorName& e : kErrorNames)
        if (e.code == error) {
            *pStr = e.name;
            return CUDA_SUCCESS;
        }
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char** pStr)
{
    if (pStr == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *pStr = describe(error);
    return *pStr != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuDeviceGetCount(int* count)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (count == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (device == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0)
        return report(CUDA_ERROR_INVALID_DEVICE, __func__, "ordinal %d: the emulator has device 0 only", ordinal);
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (name == nullptr || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    std::snprintf(name, static_cast<size_t>(len), "kxai CPU emulator (sm_%d%d)", kComputeMajor, kComputeMinor);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (pi == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    for (const DeviceAttribute& a : kDeviceAttributes)
        if (a.attribute == attrib) {
            *pi = a.value;
            return CUDA_SUCCESS;
        }
    // Emulator-only: the counters, for tests in the JVM (JCuda reaches no other export).
    if (attrib >= KXAI_EMU_COUNTER_ATTRIBUTE && attrib < KXAI_EMU_COUNTER_ATTRIBUTE + kCounterCount) {
        *pi = static_cast<int>(d.counters[attrib - KXAI_EMU_COUNTER_ATTRIBUTE] & 0x7fffffffull);
        return CUDA_SUCCESS;
    }
    // Valid attributes the emulator has no meaningful value for read as 0 (feature absent).
    if (attrib <= 0 || attrib >= 256)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "attribute %d does not exist", (int)attrib);
    if (d.unemulated_attributes_reported.insert(attrib).second)
        std::fprintf(stderr, "kxai-emu: cuDeviceGetAttribute: attribute %d is not emulated, reporting 0\n",
                     (int)attrib);
    *pi = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (bytes == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = d.settings.memory_bytes;
    return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int* major, int* minor, CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (major == nullptr || minor == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *major = kComputeMajor;
    *minor = kComputeMinor;
    return CUDA_SUCCESS;
}

// ---- contexts --------------------------------------------------------------------------------

CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    (void)flags;  // scheduling and mapping flags change nothing on the CPU
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (pctx == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    d.contexts.push_back(std::make_unique<CUctx_st>());
    *pctx = d.contexts.back().get();
    context_stack.push_back(*pctx);
    return CUDA_SUCCESS;
}

CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (!is_live(d, ctx) || ctx->primary)
        return report(CUDA_ERROR_INVALID_CONTEXT, __func__, "%p is not a live context created by cuCtxCreate",
                      (void*)ctx);
    release_context_resources(d, ctx);
    ctx->active = false;
    if (!context_stack.empty() && context_stack.back() == ctx)
        context_stack.pop_back();
    return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (ctx != nullptr && !is_live(d, ctx))
        return report(CUDA_ERROR_INVALID_CONTEXT, __func__, "%p is not a live context", (void*)ctx);
    if (context_stack.empty())
        context_stack.push_back(ctx);
    else if (ctx == nullptr)
        context_stack.pop_back();
    else
        context_stack.back() = ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* pctx)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (pctx == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = context_stack.empty() ? nullptr : context_stack.back();
    return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (!is_live(d, ctx))
        return report(CUDA_ERROR_INVALID_CONTEXT, __func__, "%p is not a live context", (void*)ctx);
    context_stack.push_back(ctx);
    return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext* pctx)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (context_stack.empty())
        return report(CUDA_ERROR_INVALID_CONTEXT, __func__, "no current context to pop");
    if (pctx != nullptr)
        *pctx = context_stack.back();
    context_stack.pop_back();
    return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* device)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (device == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    return refuse_during_capture(d, ctx, __func__);
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (pctx == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    ++d.primary->primary_retains;
    d.primary->active = true;
    *pctx = d.primary;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (d.primary->primary_retains == 0)
        return report(CUDA_ERROR_INVALID_CONTEXT, __func__, "the primary context is not retained");
    if (--d.primary->primary_retains == 0) {
        release_context_resources(d, d.primary);
        d.primary->active = false;
    }
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_INIT(d);
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    release_context_resources(d, d.primary);
    d.primary->primary_retains = 0;
    d.primary->active = false;
    return CUDA_SUCCESS;
}

// ---- memory ----------------------------------------------------------------------------------

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (dptr == nullptr || bytesize == 0)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "null result pointer or zero size");
    if (CUresult r = refuse_during_capture(d, ctx, __func__); r != CUDA_SUCCESS)
        return r;
    if (++d.alloc_calls == d.settings.fail_alloc)
        return report(CUDA_ERROR_OUT_OF_MEMORY, __func__, "injected: allocation %llu (KXAI_EMU_FAIL_ALLOC)",
                      d.alloc_calls);
    if (bytesize > d.settings.memory_bytes - d.allocated_bytes)
        return report(CUDA_ERROR_OUT_OF_MEMORY, __func__, "%zu bytes requested, %llu of %llu free (KXAI_EMU_MEM_BYTES)",
                      bytesize, d.settings.memory_bytes - d.allocated_bytes, d.settings.memory_bytes);
    // Exactly bytesize bytes from malloc's family, not a pool, so that AddressSanitizer puts
    // a redzone right after the last byte the kernel may touch.
    void* p = nullptr;
    if (posix_memalign(&p, kAllocationAlignment, bytesize) != 0)
        return report(CUDA_ERROR_OUT_OF_MEMORY, __func__, "host allocation of %zu bytes failed", bytesize);
    std::memset(p, 0xFF, bytesize);
    d.allocations.emplace(reinterpret_cast<uintptr_t>(p), Allocation{bytesize, ctx});
    d.allocated_bytes += bytesize;
    *dptr = reinterpret_cast<uintptr_t>(p);
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (dptr == 0)
        return CUDA_SUCCESS;
    if (CUresult r = refuse_during_capture(d, ctx, __func__); r != CUDA_SUCCESS)
        return r;
    auto it = d.allocations.find(dptr);
    if (it == d.allocations.end())
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "0x%llx is not the start of a live allocation", dptr);
    d.allocated_bytes -= it->second.bytes;
    free(reinterpret_cast<void*>(it->first));
    d.allocations.erase(it);
    return CUDA_SUCCESS;
}

// Page-locked host memory. A real driver pins pages so that async copies can be DMA'd while
// the host goes on; here it is plain memory (0xFF filled, like device memory), tracked so that
// copies can be classified and a free of anything else refused.
CUresult alloc_pinned(const char* call, void** pp, size_t bytesize)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, call);
    if (pp == nullptr || bytesize == 0)
        return report(CUDA_ERROR_INVALID_VALUE, call, "null result pointer or zero size");
    if (CUresult r = refuse_during_capture(d, ctx, call); r != CUDA_SUCCESS)
        return r;
    void* p = nullptr;
    if (posix_memalign(&p, 4096, bytesize) != 0)
        return report(CUDA_ERROR_OUT_OF_MEMORY, call, "host allocation of %zu bytes failed", bytesize);
    std::memset(p, 0xFF, bytesize);
    d.pinned.emplace(reinterpret_cast<uintptr_t>(p), Allocation{bytesize, ctx});
    ++d.counters[kPinnedAllocations];
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult cuMemAllocHost_v2(void** pp, size_t bytesize) { return alloc_pinned(__func__, pp, bytesize); }

CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags)
{
    // PORTABLE and WRITECOMBINED change nothing on the CPU; DEVICEMAP needs mapped host memory,
    // which this device reports it cannot do (CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY = 0).
    if ((Flags & ~(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_WRITECOMBINED | CU_MEMHOSTALLOC_DEVICEMAP)) != 0)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "unknown flags 0x%x", Flags);
    if ((Flags & CU_MEMHOSTALLOC_DEVICEMAP) != 0)
        return report(CUDA_ERROR_NOT_SUPPORTED, __func__, "CU_MEMHOSTALLOC_DEVICEMAP: the device cannot map host memory");
    return alloc_pinned(__func__, pp, bytesize);
}

CUresult cuMemFreeHost(void* p)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (CUresult r = refuse_during_capture(d, ctx, __func__); r != CUDA_SUCCESS)
        return r;
    auto it = d.pinned.find(reinterpret_cast<uintptr_t>(p));
    if (it == d.pinned.end())
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "%p is not the start of a live pinned allocation%s", p,
                      in_allocation(d, reinterpret_cast<uintptr_t>(p), 0) ? " (it is device memory: cuMemFree)" : "");
    free(p);
    d.pinned.erase(it);
    ++d.counters[kPinnedFrees];
    return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (free_bytes == nullptr || total == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *free_bytes = d.settings.memory_bytes - d.allocated_bytes;
    *total = d.settings.memory_bytes;
    return CUDA_SUCCESS;
}


CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) { return copy_htod(__func__, dst, src, n, nullptr, false); }
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) { return copy_dtoh(__func__, dst, src, n, nullptr, false); }
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) { return copy_dtod(__func__, dst, src, n, nullptr, false); }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s)
{
    return copy_htod(__func__, dst, src, n, s, true);
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s)
{
    return copy_dtoh(__func__, dst, src, n, s, true);
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    return copy_dtod(__func__, dst, src, n, s, true);
}
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char uc, size_t n) { return fill(__func__, dst, uc, n, nullptr, false); }
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int ui, size_t n) { return fill(__func__, dst, ui, n, nullptr, false); }
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char uc, size_t n, CUstream s) { return fill(__func__, dst, uc, n, s, true); }
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int ui, size_t n, CUstream s) { return fill(__func__, dst, ui, n, s, true); }

// ---- modules and launches --------------------------------------------------------------------

CUresult cuModuleLoadData(CUmodule* module, const void* image)
{
    std::string log;
    return load_module(module, image, __func__, &log);
}

CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
                            CUjit_option* options, void** optionValues)
{
    std::string log;
    const CUresult r = load_module(module, image, __func__, &log);
    // The JIT error log is the one option whose effect a caller can observe.
    char* buffer = nullptr;
    size_t size = 0;
    for (unsigned i = 0; options != nullptr && optionValues != nullptr && i < numOptions; ++i) {
        if (options[i] == CU_JIT_ERROR_LOG_BUFFER)
            buffer = static_cast<char*>(optionValues[i]);
        else if (options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
            size = reinterpret_cast<size_t>(optionValues[i]);
    }
    if (buffer != nullptr && size > 0)
        std::snprintf(buffer, size, "%s", log.c_str());
    return r;
}

CUresult cuModuleUnload(CUmodule hmod)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (d.modules.count(hmod) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a loaded module", (void*)hmod);
    for (auto& f : hmod->functions)
        d.functions.erase(f.second.get());
    d.modules.erase(hmod);
    delete hmod;
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (hfunc == nullptr || name == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (d.modules.count(hmod) == 0 || hmod->context != ctx)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a module of the current context", (void*)hmod);
    if (auto it = hmod->functions.find(name); it != hmod->functions.end()) {
        *hfunc = it->second.get();
        return CUDA_SUCCESS;
    }
    const kxai_emu::PtxEntry* entry = nullptr;
    for (const kxai_emu::PtxEntry& e : hmod->ptx.entries)
        if (e.name == name)
            entry = &e;
    if (entry == nullptr)
        return report(CUDA_ERROR_NOT_FOUND, __func__, "the module has no .entry %s", name);
    auto kernel = d.kernels.find(name);
    if (kernel == d.kernels.end())
        return report(CUDA_ERROR_NOT_FOUND, __func__,
                      ".entry %s has no CPU kernel in the loaded kernel libraries (rebuild native-tests, "
                      "or add its library to KXAI_EMU_KERNELS)", name);
    const std::string mismatch = compare_signatures(*entry, *kernel->second.kernel);
    if (!mismatch.empty())
        return report(CUDA_ERROR_INVALID_IMAGE, __func__,
                      "%s: PTX and CPU build disagree: %s. PTX: (%s); CPU (%s): %s", name, mismatch.c_str(),
                      describe_params(*entry).c_str(), kernel->second.library.c_str(),
                      kernel->second.kernel->signature);
    auto f = std::make_unique<CUfunc_st>();
    f->module = hmod;
    f->entry = entry;
    f->bound = kernel->second;
    *hfunc = f.get();
    d.functions.insert(f.get());
    hmod->functions.emplace(name, std::move(f));
    return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (pi == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (d.functions.count(hfunc) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a function", (void*)hfunc);
    const kxai_emu::PtxEntry& e = *hfunc->entry;
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        *pi = e.max_threads != 0 ? static_cast<int>(e.max_threads) : kMaxThreadsPerBlock;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = static_cast<int>(e.static_shared_bytes); return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
        *pi = hfunc->module->ptx.target_sm;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = kComputeMajor * 10 + kComputeMinor; return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        *pi = kSharedPerBlock - static_cast<int>(e.static_shared_bytes);
        return CUDA_SUCCESS;
    }
    return report(CUDA_ERROR_NOT_SUPPORTED, __func__, "function attribute %d is not emulated", (int)attrib);
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                        unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                        unsigned int sharedMemBytes, CUstream hStream, void** kernelParams, void** extra)
{
    Driver& d = driver();
    kxai_emu::GridLaunch launch{};
    CUcontext ctx = nullptr;
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        if (CUresult r = require_context(d, __func__, &ctx); r != CUDA_SUCCESS)
            return r;
        if (d.functions.count(f) == 0)
            return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a function (module unloaded?)", (void*)f);
        if (f->module->context != ctx)
            return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%s belongs to another context", f->entry->name.c_str());
        if (CUresult r = check_stream(d, __func__, ctx, hStream); r != CUDA_SUCCESS)
            return r;
        const char* name = f->entry->name.c_str();
        if (extra != nullptr)
            return report(CUDA_ERROR_NOT_SUPPORTED, __func__, "%s: the extra parameter buffer is not emulated; pass kernelParams", name);
        const unsigned long long threads = 1ull * blockDimX * blockDimY * blockDimZ;
        if (gridDimX == 0 || gridDimY == 0 || gridDimZ == 0 || gridDimX > 2147483647u || gridDimY > 65535 ||
            gridDimZ > 65535)
            return report(CUDA_ERROR_INVALID_VALUE, __func__, "%s: grid (%u,%u,%u) is outside the device limits",
                          name, gridDimX, gridDimY, gridDimZ);
        if (threads == 0 || blockDimX > 1024 || blockDimY > 1024 || blockDimZ > 64 || threads > kMaxThreadsPerBlock)
            return report(CUDA_ERROR_INVALID_VALUE, __func__, "%s: block (%u,%u,%u) is outside the device limits",
                          name, blockDimX, blockDimY, blockDimZ);
        if (f->entry->max_threads != 0 && threads > f->entry->max_threads)
            return report(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, __func__,
                          "%s: %llu threads per block, but __launch_bounds__ allows %u", name, threads,
                          f->entry->max_threads);
        if (sharedMemBytes > KXAI_EMU_DYNAMIC_SHARED_CAPACITY ||
            sharedMemBytes + f->entry->static_shared_bytes > static_cast<unsigned>(kSharedPerBlock))
            return report(CUDA_ERROR_INVALID_VALUE, __func__,
                          "%s: %u bytes of dynamic + %u of static shared memory exceed %d per block", name,
                          sharedMemBytes, f->entry->static_shared_bytes, kSharedPerBlock);
        const kxai_emu_kernel& k = *f->bound.kernel;
        if (k.param_count > 0 && kernelParams == nullptr)
            return report(CUDA_ERROR_INVALID_VALUE, __func__, "%s takes %u parameters but kernelParams is null", name,
                          k.param_count);
        // A pointer argument that is not device memory would fault on a GPU as soon as the
        // kernel touched it (CUDA_ERROR_ILLEGAL_ADDRESS, sticky); here it is caught before
        // running. A pointer one past the end of an allocation is accepted (empty ranges).
        for (unsigned i = 0; i < k.param_count; ++i) {
            if (kernelParams[i] == nullptr)
                return report(CUDA_ERROR_INVALID_VALUE, __func__, "%s: kernelParams[%u] is null", name, i);
            if (k.param_kinds[i] != 'p')
                continue;
            uintptr_t value = 0;
            std::memcpy(&value, kernelParams[i], sizeof value);
            if (value != 0 && !in_allocation(d, value, 0)) {
                ctx->sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
                return report(CUDA_ERROR_ILLEGAL_ADDRESS, __func__,
                              "%s: argument %u (%s) = 0x%llx is not device memory (freed, host memory, or a "
                              "misordered argument)",
                              name, i, k.signature, (unsigned long long)value);
            }
        }
        if (CUstream s = capturing(hStream)) {
            GraphNode node(GraphNode::kKernel);
            node.function = f;
            node.grid[0] = gridDimX, node.grid[1] = gridDimY, node.grid[2] = gridDimZ;
            node.block[0] = blockDimX, node.block[1] = blockDimY, node.block[2] = blockDimZ;
            node.shared = sharedMemBytes;
            for (unsigned i = 0; i < k.param_count; ++i) {  // by value, as a real capture does
                const unsigned char* bytes = static_cast<const unsigned char*>(kernelParams[i]);
                node.params.emplace_back(bytes, bytes + k.param_sizes[i]);
            }
            node.call = name;
            record(d, s, std::move(node));
            return CUDA_SUCCESS;
        }
        if (++d.launch_calls == d.settings.fail_launch) {
            ctx->sticky = CUDA_ERROR_LAUNCH_FAILED;
            return report(CUDA_ERROR_LAUNCH_FAILED, __func__, "%s: injected: launch %llu (KXAI_EMU_FAIL_LAUNCH)",
                          name, d.launch_calls);
        }
        ++d.counters[is_default_stream(hStream) ? kLaunchesDefaultStream : kLaunchesCreatedStream];
        launch.kernel = &k;
        launch.dynamic_shared = f->bound.dynamic_shared;
        launch.args = kernelParams;
        launch.grid = {gridDimX, gridDimY, gridDimZ};
        launch.block = {blockDimX, blockDimY, blockDimZ};
        launch.dynamic_shared_bytes = sharedMemBytes;
    }
    // The driver lock is not held while kernels run: other threads may keep using the API,
    // as they could with a real device.
    const std::string error = kxai_emu::run_grid(launch);
    if (error.empty())
        return CUDA_SUCCESS;
    std::lock_guard<std::mutex> lock(d.mutex);
    ctx->sticky = CUDA_ERROR_LAUNCH_FAILED;
    return report(CUDA_ERROR_LAUNCH_FAILED, __func__, "%s", error.c_str());
}

// ---- streams and events (synchronous: every operation has finished when its call returns) ----

CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    // non-blocking or not: every stream is synchronous here; other flags do not exist
    if (phStream == nullptr || (Flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING)) != 0)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "null result pointer or flags 0x%x (0 or CU_STREAM_NON_BLOCKING)",
                      Flags);
    *phStream = new CUstream_st(ctx);
    d.streams.insert(*phStream);
    return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream hStream)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (d.streams.count(hStream) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a live stream", (void*)hStream);
    d.streams.erase(hStream);
    delete hStream;
    return CUDA_SUCCESS;
}

// Synchronizing a capturing stream is illegal (nothing of it runs until the graph is launched):
// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, and the capture is invalidated.
CUresult sync_stream(const char* call, CUstream hStream)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, call);
    if (CUresult r = check_stream(d, call, ctx, hStream); r != CUDA_SUCCESS)
        return r;
    if (CUstream s = capturing(hStream)) {
        s->invalidated = true;
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, call, "stream %p is capturing; the capture is invalidated",
                      (void*)s);
    }
    if (is_default_stream(hStream))
        return refuse_during_capture(d, ctx, call);
    return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream hStream) { return sync_stream(__func__, hStream); }

CUresult cuStreamQuery(CUstream hStream) { return sync_stream(__func__, hStream); }

// ---- stream capture and graphs ---------------------------------------------------------------

CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (is_default_stream(hStream))
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, __func__, "the default stream cannot be captured");
    if (CUresult r = check_stream(d, __func__, ctx, hStream); r != CUDA_SUCCESS)
        return r;
    if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
        mode != CU_STREAM_CAPTURE_MODE_RELAXED)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "capture mode %d", (int)mode);
    if (hStream->capturing)
        return report(CUDA_ERROR_ILLEGAL_STATE, __func__, "stream %p is capturing already", (void*)hStream);
    hStream->capturing = true;
    hStream->invalidated = false;
    hStream->mode = mode;
    hStream->capture_thread = std::this_thread::get_id();
    hStream->graph = std::make_unique<CUgraph_st>();
    hStream->graph->context = ctx;
    return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (phGraph == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (is_default_stream(hStream) || !hStream->capturing) {
        if (!is_default_stream(hStream) && d.streams.count(hStream) == 0)
            return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a live stream", (void*)hStream);
        return report(CUDA_ERROR_ILLEGAL_STATE, __func__, "stream %p is not capturing", (void*)hStream);
    }
    if (CUresult r = check_stream(d, __func__, ctx, hStream); r != CUDA_SUCCESS)
        return r;
    if (hStream->mode != CU_STREAM_CAPTURE_MODE_RELAXED && hStream->capture_thread != std::this_thread::get_id())
        return report(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, __func__, "the capture was begun by another thread");
    hStream->capturing = false;
    std::unique_ptr<CUgraph_st> graph = std::move(hStream->graph);
    if (hStream->invalidated) {
        *phGraph = nullptr;
        return report(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, __func__,
                      "a prohibited call during the capture invalidated it; no graph");
    }
    *phGraph = graph.release();
    d.graphs.insert(*phGraph);
    ++d.counters[kGraphCaptures];
    return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (captureStatus == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_stream(d, __func__, ctx, hStream); r != CUDA_SUCCESS)
        return r;
    *captureStatus = is_default_stream(hStream) || !hStream->capturing ? CU_STREAM_CAPTURE_STATUS_NONE
                     : hStream->invalidated                            ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                                                       : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (phGraphExec == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (d.graphs.count(hGraph) == 0)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "%p is not a live graph", (void*)hGraph);
    if (flags != 0)
        return report(CUDA_ERROR_NOT_SUPPORTED, __func__, "instantiation flags 0x%llx are not emulated", flags);
    // the executable graph is a snapshot: later changes to (or destruction of) the graph leave it alone
    *phGraphExec = new CUgraphExec_st{ctx, hGraph->nodes};
    d.graph_execs.insert(*phGraphExec);
    return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (d.graph_execs.erase(hGraphExec) == 0)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "%p is not a live executable graph", (void*)hGraphExec);
    delete hGraphExec;
    return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph hGraph)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (d.graphs.erase(hGraph) == 0)
        return report(CUDA_ERROR_INVALID_VALUE, __func__, "%p is not a live graph", (void*)hGraph);
    delete hGraph;
    return CUDA_SUCCESS;
}

// Replays the recorded operations in order on hStream, each through the same path (and checks:
// a kernel argument or copy range whose memory was freed since the capture fails as an illegal
// address / invalid value) as the call that recorded it.
CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    Driver& d = driver();
    std::vector<GraphNode> nodes;
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        REQUIRE_CONTEXT(d, ctx, __func__);
        if (d.graph_execs.count(hGraphExec) == 0 || hGraphExec->context != ctx)
            return report(CUDA_ERROR_INVALID_VALUE, __func__, "%p is not a live executable graph of this context",
                          (void*)hGraphExec);
        if (CUresult r = check_stream(d, __func__, ctx, hStream); r != CUDA_SUCCESS)
            return r;
        if (capturing(hStream))
            return report(CUDA_ERROR_NOT_SUPPORTED, __func__, "launching a graph into a capture (a child graph) is not emulated");
        nodes = hGraphExec->nodes;
        ++d.counters[kGraphLaunches];
    }
    for (GraphNode& n : nodes) {
        CUresult r = CUDA_SUCCESS;
        switch (n.kind) {
        case GraphNode::kKernel: {
            std::vector<void*> params;
            for (auto& p : n.params)
                params.push_back(p.data());
            r = cuLaunchKernel(n.function, n.grid[0], n.grid[1], n.grid[2], n.block[0], n.block[1], n.block[2], n.shared,
                               hStream, params.data(), nullptr);
            break;
        }
        case GraphNode::kCopyHtoD: r = copy_htod(n.call.c_str(), n.dst, n.host_src, n.bytes, hStream, true); break;
        case GraphNode::kCopyDtoD: r = copy_dtod(n.call.c_str(), n.dst, n.src, n.bytes, hStream, true); break;
        case GraphNode::kMemset8:
            r = fill(n.call.c_str(), n.dst, static_cast<unsigned char>(n.value), n.bytes, hStream, true);
            break;
        case GraphNode::kMemset32: r = fill(n.call.c_str(), n.dst, n.value, n.bytes, hStream, true); break;
        case GraphNode::kHost: {
            std::lock_guard<std::mutex> lock(d.mutex);
            ++d.counters[is_default_stream(hStream) ? kCublasDefaultStream : kCublasCreatedStream];
        }
            n.host_fn(n.host_arg.get());
            break;
        }
        if (r != CUDA_SUCCESS)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (phEvent == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    *phEvent = new CUevent_st{ctx, Flags, false, {}};
    d.events.insert(*phEvent);
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (d.events.count(hEvent) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a live event", (void*)hEvent);
    if (CUresult r = check_stream(d, __func__, ctx, hStream); r != CUDA_SUCCESS)
        return r;
    hEvent->recorded = true;
    hEvent->when = std::chrono::steady_clock::now();
    return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent hEvent)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (d.events.count(hEvent) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a live event", (void*)hEvent);
    return CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent hEvent)
{
    return cuEventQuery(hEvent);
}

CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (pMilliseconds == nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (d.events.count(hStart) == 0 || d.events.count(hEnd) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "not live events");
    if (!hStart->recorded || !hEnd->recorded || ((hStart->flags | hEnd->flags) & CU_EVENT_DISABLE_TIMING) != 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "both events must be recorded and created with timing");
    *pMilliseconds = std::chrono::duration<float, std::milli>(hEnd->when - hStart->when).count();
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent hEvent)
{
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    REQUIRE_CONTEXT(d, ctx, __func__);
    if (d.events.count(hEvent) == 0)
        return report(CUDA_ERROR_INVALID_HANDLE, __func__, "%p is not a live event", (void*)hEvent);
    d.events.erase(hEvent);
    delete hEvent;
    return CUDA_SUCCESS;
}

}  // extern "C"
