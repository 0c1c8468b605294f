// device.h: the tests' thin layer over the (fake) driver API.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cuda_subset.h"

namespace device {

// cuInit, and the primary context current on this thread. Aborts the process if the driver
// cannot start: nothing else can be tested then.
void use_primary_context();

// A context of its own for tests that poison it (sticky launch failures): created and made
// current on construction, destroyed on destruction, after which the primary context is
// current again.
class ScopedContext {
public:
    ScopedContext();
    ~ScopedContext();
    ScopedContext(const ScopedContext&) = delete;
    ScopedContext& operator=(const ScopedContext&) = delete;
    CUcontext get() const { return ctx_; }

private:
    CUcontext ctx_ = nullptr;
};

// Device memory owned by the test. A failed allocation leaves ptr 0 and is a test failure.
class Buffer {
public:
    explicit Buffer(size_t bytes);
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    CUdeviceptr ptr() const { return ptr_; }
    size_t bytes() const { return bytes_; }
    void upload(const void* host, size_t bytes);
    void download(void* host, size_t bytes) const;

    template <typename T>
    void upload(const std::vector<T>& host) { upload(host.data(), host.size() * sizeof(T)); }
    template <typename T>
    std::vector<T> download(size_t count) const
    {
        std::vector<T> host(count);
        download(host.data(), count * sizeof(T));
        return host;
    }

private:
    CUdeviceptr ptr_ = 0;
    size_t bytes_;
};

// Loads build/ptx/<module>.ptx into the current context (cached per context).
CUmodule module(const char* name);
CUfunction function(const char* module_name, const char* kernel);

struct Dim {
    unsigned x = 1, y = 1, z = 1;
};

// cuLaunchKernel with one pointer per argument, the layout JCuda's Pointer.to(Pointer.to(..))
// produces. Arguments are copied into locals first, so temporaries are fine.
template <typename... Args>
CUresult launch(CUfunction f, Dim grid, Dim block, unsigned shared_bytes, Args... args)
{
    void* params[] = {static_cast<void*>(&args)..., nullptr};
    return cuLaunchKernel(f, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes, nullptr,
                          params, nullptr);
}

}  // namespace device
