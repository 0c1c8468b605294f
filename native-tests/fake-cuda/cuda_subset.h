// cuda_subset.h: the part of the CUDA driver API (cuda.h) that the fake libcuda.so.1 implements.
//
// Written from the documented ABI so the emulator builds where no CUDA toolkit is installed.
// When cuda.h is available, `make abi-check` compiles this header with
// KXAI_EMU_CHECK_AGAINST_CUDA_H: the types then come from cuda.h, every value below becomes a
// static_assert against cuda.h's, and every prototype below must agree with cuda.h's or the
// compiler rejects the redeclaration.
#pragma once

#include <stddef.h>

#define KXAI_CU_RESULTS(X)                       \
    X(CUDA_SUCCESS, 0)                           \
    X(CUDA_ERROR_INVALID_VALUE, 1)               \
    X(CUDA_ERROR_OUT_OF_MEMORY, 2)               \
    X(CUDA_ERROR_NOT_INITIALIZED, 3)             \
    X(CUDA_ERROR_DEINITIALIZED, 4)               \
    X(CUDA_ERROR_NO_DEVICE, 100)                 \
    X(CUDA_ERROR_INVALID_DEVICE, 101)            \
    X(CUDA_ERROR_INVALID_IMAGE, 200)             \
    X(CUDA_ERROR_INVALID_CONTEXT, 201)           \
    X(CUDA_ERROR_NO_BINARY_FOR_GPU, 209)         \
    X(CUDA_ERROR_INVALID_PTX, 218)               \
    X(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, 222)   \
    X(CUDA_ERROR_INVALID_SOURCE, 300)            \
    X(CUDA_ERROR_FILE_NOT_FOUND, 301)            \
    X(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, 303) \
    X(CUDA_ERROR_INVALID_HANDLE, 400)            \
    X(CUDA_ERROR_ILLEGAL_STATE, 401)             \
    X(CUDA_ERROR_NOT_FOUND, 500)                 \
    X(CUDA_ERROR_NOT_READY, 600)                 \
    X(CUDA_ERROR_ILLEGAL_ADDRESS, 700)           \
    X(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, 701)   \
    X(CUDA_ERROR_CONTEXT_IS_DESTROYED, 709)      \
    X(CUDA_ERROR_LAUNCH_FAILED, 719)             \
    X(CUDA_ERROR_NOT_PERMITTED, 800)             \
    X(CUDA_ERROR_NOT_SUPPORTED, 801)             \
    X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, 900) \
    X(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, 901) \
    X(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, 908) \
    X(CUDA_ERROR_UNKNOWN, 999)

#define KXAI_CU_DEVICE_ATTRIBUTES(X)                               \
    X(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1)                \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 2)                      \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 3)                      \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 4)                      \
    X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 5)                       \
    X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 6)                       \
    X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 7)                       \
    X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 8)          \
    X(CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 9)                \
    X(CU_DEVICE_ATTRIBUTE_WARP_SIZE, 10)                           \
    X(CU_DEVICE_ATTRIBUTE_MAX_PITCH, 11)                           \
    X(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 12)             \
    X(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 13)                          \
    X(CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 14)                   \
    X(CU_DEVICE_ATTRIBUTE_GPU_OVERLAP, 15)                         \
    X(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 16)                \
    X(CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, 17)                 \
    X(CU_DEVICE_ATTRIBUTE_INTEGRATED, 18)                          \
    X(CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, 19)                 \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, 20)                        \
    X(CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 31)                  \
    X(CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 32)                         \
    X(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 33)                          \
    X(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 34)                       \
    X(CU_DEVICE_ATTRIBUTE_TCC_DRIVER, 35)                          \
    X(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 36)                   \
    X(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 37)             \
    X(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 38)                       \
    X(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 39)      \
    X(CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, 40)                  \
    X(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 41)                  \
    X(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 50)                       \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 75)            \
    X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 76)            \
    X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 81) \
    X(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 82)    \
    X(CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, 83)                      \
    X(CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD, 84)                     \
    X(CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, 95)                  \
    X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 97)   \
    X(CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 106)

#define KXAI_CU_FUNCTION_ATTRIBUTES(X)                      \
    X(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0)           \
    X(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, 1)               \
    X(CU_FUNC_ATTRIBUTE_PTX_VERSION, 5)                     \
    X(CU_FUNC_ATTRIBUTE_BINARY_VERSION, 6)                  \
    X(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 8)

#define KXAI_CU_JIT_OPTIONS(X)               \
    X(CU_JIT_ERROR_LOG_BUFFER, 5)            \
    X(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, 6)

#define KXAI_CU_EVENT_FLAGS(X) X(CU_EVENT_DISABLE_TIMING, 0x2)
#define KXAI_CU_STREAM_FLAGS(X) X(CU_STREAM_NON_BLOCKING, 0x1)
#define KXAI_CU_CAPTURE_MODES(X)             \
    X(CU_STREAM_CAPTURE_MODE_GLOBAL, 0)      \
    X(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, 1) \
    X(CU_STREAM_CAPTURE_MODE_RELAXED, 2)
#define KXAI_CU_CAPTURE_STATUSES(X)           \
    X(CU_STREAM_CAPTURE_STATUS_NONE, 0)       \
    X(CU_STREAM_CAPTURE_STATUS_ACTIVE, 1)     \
    X(CU_STREAM_CAPTURE_STATUS_INVALIDATED, 2)
#define KXAI_CU_MEMHOSTALLOC_FLAGS(X)        \
    X(CU_MEMHOSTALLOC_PORTABLE, 0x01)        \
    X(CU_MEMHOSTALLOC_DEVICEMAP, 0x02)       \
    X(CU_MEMHOSTALLOC_WRITECOMBINED, 0x04)

#ifdef KXAI_EMU_CHECK_AGAINST_CUDA_H

#include <cuda.h>
#define KXAI_CU_CHECK_VALUE(name, value) static_assert(name == value, #name " differs from cuda.h");
KXAI_CU_RESULTS(KXAI_CU_CHECK_VALUE)
KXAI_CU_DEVICE_ATTRIBUTES(KXAI_CU_CHECK_VALUE)
KXAI_CU_FUNCTION_ATTRIBUTES(KXAI_CU_CHECK_VALUE)
KXAI_CU_JIT_OPTIONS(KXAI_CU_CHECK_VALUE)
KXAI_CU_EVENT_FLAGS(KXAI_CU_CHECK_VALUE)
KXAI_CU_STREAM_FLAGS(KXAI_CU_CHECK_VALUE)
KXAI_CU_CAPTURE_MODES(KXAI_CU_CHECK_VALUE)
KXAI_CU_CAPTURE_STATUSES(KXAI_CU_CHECK_VALUE)
KXAI_CU_MEMHOSTALLOC_FLAGS(KXAI_CU_CHECK_VALUE)
static_assert(sizeof(CUdeviceptr) == 8, "64-bit device pointers");
#undef KXAI_CU_CHECK_VALUE

#else

#define KXAI_CU_ENUMERATOR(name, value) name = value,
typedef enum cudaError_enum { KXAI_CU_RESULTS(KXAI_CU_ENUMERATOR) } CUresult;
typedef enum CUdevice_attribute_enum {
    KXAI_CU_DEVICE_ATTRIBUTES(KXAI_CU_ENUMERATOR)
} CUdevice_attribute;
typedef enum CUfunction_attribute_enum {
    KXAI_CU_FUNCTION_ATTRIBUTES(KXAI_CU_ENUMERATOR)
} CUfunction_attribute;
typedef enum CUjit_option_enum { KXAI_CU_JIT_OPTIONS(KXAI_CU_ENUMERATOR) } CUjit_option;
typedef enum CUevent_flags_enum { KXAI_CU_EVENT_FLAGS(KXAI_CU_ENUMERATOR) } CUevent_flags;
typedef enum CUstream_flags_enum { KXAI_CU_STREAM_FLAGS(KXAI_CU_ENUMERATOR) } CUstream_flags;
typedef enum CUstreamCaptureMode_enum { KXAI_CU_CAPTURE_MODES(KXAI_CU_ENUMERATOR) } CUstreamCaptureMode;
typedef enum CUstreamCaptureStatus_enum { KXAI_CU_CAPTURE_STATUSES(KXAI_CU_ENUMERATOR) } CUstreamCaptureStatus;
#define CU_MEMHOSTALLOC_PORTABLE 0x01
#define CU_MEMHOSTALLOC_DEVICEMAP 0x02
#define CU_MEMHOSTALLOC_WRITECOMBINED 0x04
#undef KXAI_CU_ENUMERATOR

typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext;
typedef struct CUmod_st* CUmodule;
typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;
typedef struct CUevent_st* CUevent;
typedef struct CUgraph_st* CUgraph;
typedef struct CUgraphExec_st* CUgraphExec;
#define CU_STREAM_LEGACY ((CUstream)0x1)
#define CU_STREAM_PER_THREAD ((CUstream)0x2)

#endif

#ifdef __cplusplus
extern "C" {
#endif

CUresult cuInit(unsigned int flags);
CUresult cuDriverGetVersion(int* driverVersion);
CUresult cuGetErrorName(CUresult error, const char** pStr);
CUresult cuGetErrorString(CUresult error, const char** pStr);

CUresult cuDeviceGetCount(int* count);
CUresult cuDeviceGet(CUdevice* device, int ordinal);
CUresult cuDeviceGetName(char* name, int len, CUdevice dev);
CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev);
CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev);
CUresult cuDeviceComputeCapability(int* major, int* minor, CUdevice dev);

CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev);
CUresult cuCtxDestroy_v2(CUcontext ctx);
CUresult cuCtxSetCurrent(CUcontext ctx);
CUresult cuCtxGetCurrent(CUcontext* pctx);
CUresult cuCtxPushCurrent_v2(CUcontext ctx);
CUresult cuCtxPopCurrent_v2(CUcontext* pctx);
CUresult cuCtxGetDevice(CUdevice* device);
CUresult cuCtxSynchronize(void);
CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev);

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize);
CUresult cuMemFree_v2(CUdeviceptr dptr);
CUresult cuMemGetInfo_v2(size_t* free, size_t* total);
CUresult cuMemAllocHost_v2(void** pp, size_t bytesize);
CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags);
CUresult cuMemFreeHost(void* p);
CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount);
CUresult cuMemcpyDtoH_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount);
CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount,
                              CUstream hStream);
CUresult cuMemcpyDtoHAsync_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream);
CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N);
CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N);
CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream);
CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream);

CUresult cuModuleLoadData(CUmodule* module, const void* image);
CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
                            CUjit_option* options, void** optionValues);
CUresult cuModuleUnload(CUmodule hmod);
CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name);
CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc);
CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void** kernelParams, void** extra);

CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags);
CUresult cuStreamDestroy_v2(CUstream hStream);
CUresult cuStreamSynchronize(CUstream hStream);
CUresult cuStreamQuery(CUstream hStream);
CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode);
CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph);
CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus);
CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags);
CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream);
CUresult cuGraphExecDestroy(CUgraphExec hGraphExec);
CUresult cuGraphDestroy(CUgraph hGraph);

CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags);
CUresult cuEventRecord(CUevent hEvent, CUstream hStream);
CUresult cuEventQuery(CUevent hEvent);
CUresult cuEventSynchronize(CUevent hEvent);
CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd);
CUresult cuEventDestroy_v2(CUevent hEvent);

#ifdef __cplusplus
}
#endif
