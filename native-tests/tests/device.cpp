// device.cpp: see device.h.
#include "device.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "harness.h"

namespace device {
namespace {

CUcontext primary = nullptr;
std::map<std::pair<CUcontext, std::string>, CUmodule> modules;

}  // namespace

void use_primary_context()
{
    if (primary == nullptr) {
        CUdevice dev = 0;
        if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
            cuDevicePrimaryCtxRetain(&primary, dev) != CUDA_SUCCESS) {
            std::fprintf(stderr, "cannot initialise the fake driver (see kxai-emu messages above)\n");
            std::exit(1);
        }
    }
    cuCtxSetCurrent(primary);
}

ScopedContext::ScopedContext()
{
    use_primary_context();
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx_, 0, 0));
}

ScopedContext::~ScopedContext()
{
    for (auto it = modules.begin(); it != modules.end();)
        it = it->first.first == ctx_ ? modules.erase(it) : std::next(it);
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx_));
    cuCtxSetCurrent(primary);
}

Buffer::Buffer(size_t bytes) : bytes_(bytes)
{
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&ptr_, bytes));
}

Buffer::~Buffer()
{
    if (ptr_ != 0)
        cuMemFree_v2(ptr_);
}

void Buffer::upload(const void* host, size_t bytes)
{
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(ptr_, host, bytes));
}

void Buffer::download(void* host, size_t bytes) const
{
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, ptr_, bytes));
}

CUmodule module(const char* name)
{
    CUcontext ctx = nullptr;
    cuCtxGetCurrent(&ctx);
    const auto key = std::make_pair(ctx, std::string(name));
    if (auto it = modules.find(key); it != modules.end())
        return it->second;
    const std::string text = harness::read_file(harness::ptx_path(name));
    CUmodule m = nullptr;
    CHECK_MSG(!text.empty(), "cannot read %s", harness::ptx_path(name).c_str());
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&m, text.c_str()));
    modules[key] = m;
    return m;
}

CUfunction function(const char* module_name, const char* kernel)
{
    CUfunction f = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&f, module(module_name), kernel));
    return f;
}

}  // namespace device
