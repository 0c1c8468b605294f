// cublas.cpp: a fake libcublas.so.12 computing SGEMM with OpenBLAS.
//
// cuBLAS is column-major; so is the cblas call below (CblasColMajor), so arguments pass
// through unchanged. Argument checks follow cuBLAS (CUBLAS_STATUS_INVALID_VALUE); matrices are
// then checked against the fake driver's allocations, because a wrong leading dimension or
// stride on a GPU reads or writes outside the buffer (an illegal address, or silently wrong
// numbers) and here it must fail loudly instead (CUBLAS_STATUS_EXECUTION_FAILED + a message).
// Streams are recorded but, like the fake driver's, synchronous; each GEMM goes to the driver as
// work on the handle's stream (kxai_emu_stream_submit: refused on a destroyed stream, counted by
// kind, and recorded as a graph node, scalars by value, while the stream captures).
#include <cblas.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <cstring>
#include <set>
#include <vector>

#include "cublas_subset.h"
#include "emu_memory.h"

struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
    cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};

namespace {

std::mutex handles_mutex;
std::set<cublasHandle_t> handles;

cublasStatus_t report(cublasStatus_t status, const char* call, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
cublasStatus_t report(cublasStatus_t status, const char* call, const char* fmt, ...)
{
    char message[512];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    std::fprintf(stderr, "kxai-emu: %s: %s: %s\n", call, cublasGetStatusName(status), message);
    return status;
}

bool live(cublasHandle_t handle)
{
    std::lock_guard<std::mutex> lock(handles_mutex);
    return handles.count(handle) != 0;
}

bool is_transpose(cublasOperation_t op) { return op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// Elements spanned by a column-major rows x cols matrix with leading dimension ld.
long long extent(int rows, int cols, int ld)
{
    return rows == 0 || cols == 0 ? 0 : static_cast<long long>(cols - 1) * ld + rows;
}

bool in_device_memory(const float* p, long long elements)
{
    return kxai_emu_is_device_range(reinterpret_cast<unsigned long long>(p),
                                    static_cast<size_t>(elements) * sizeof(float)) != 0;
}

struct Gemm {
    cublasOperation_t transa, transb;
    int m, n, k, lda, ldb, ldc;
};

cublasStatus_t check_arguments(const char* call, cublasHandle_t handle, const Gemm& g)
{
    if (!live(handle))
        return report(CUBLAS_STATUS_NOT_INITIALIZED, call, "%p is not a live cuBLAS handle", (void*)handle);
    const bool valid_ops = g.transa >= CUBLAS_OP_N && g.transa <= CUBLAS_OP_C && g.transb >= CUBLAS_OP_N &&
                           g.transb <= CUBLAS_OP_C;
    const int a_rows = is_transpose(g.transa) ? g.k : g.m;
    const int b_rows = is_transpose(g.transb) ? g.n : g.k;
    if (!valid_ops || g.m < 0 || g.n < 0 || g.k < 0 || g.lda < (a_rows > 1 ? a_rows : 1) ||
        g.ldb < (b_rows > 1 ? b_rows : 1) || g.ldc < (g.m > 1 ? g.m : 1))
        return report(CUBLAS_STATUS_INVALID_VALUE, call,
                      "transa=%d transb=%d m=%d n=%d k=%d lda=%d ldb=%d ldc=%d (column-major: lda >= rows of "
                      "stored A = %d, ldb >= %d, ldc >= m)",
                      g.transa, g.transb, g.m, g.n, g.k, g.lda, g.ldb, g.ldc, a_rows, b_rows);
    return CUBLAS_STATUS_SUCCESS;
}

// alpha and beta live where the pointer mode says; reading one from the wrong side is a crash
// on a GPU system, so it is refused here.
cublasStatus_t check_scalars(const char* call, cublasHandle_t handle, const float* alpha, const float* beta)
{
    const bool device = handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
    for (const float* s : {alpha, beta}) {
        if (s == nullptr)
            return report(CUBLAS_STATUS_INVALID_VALUE, call, "alpha or beta is null");
        if (in_device_memory(s, 1) != device)
            return report(CUBLAS_STATUS_EXECUTION_FAILED, call,
                          "alpha/beta %p is %s memory but the pointer mode is %s", (const void*)s,
                          device ? "host" : "device", device ? "DEVICE" : "HOST");
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t check_matrices(const char* call, const Gemm& g, const float* A, const float* B, const float* C,
                              int batch)
{
    const int a_rows = is_transpose(g.transa) ? g.k : g.m, a_cols = is_transpose(g.transa) ? g.m : g.k;
    const int b_rows = is_transpose(g.transb) ? g.n : g.k, b_cols = is_transpose(g.transb) ? g.k : g.n;
    const struct {
        const char* name;
        const float* p;
        long long elements;
    } matrices[] = {{"A", A, extent(a_rows, a_cols, g.lda)},
                    {"B", B, extent(b_rows, b_cols, g.ldb)},
                    {"C", C, extent(g.m, g.n, g.ldc)}};
    for (const auto& mtx : matrices)
        if (mtx.elements > 0 && !in_device_memory(mtx.p, mtx.elements))
            return report(CUBLAS_STATUS_EXECUTION_FAILED, call,
                          "batch %d: %s at %p spans %lld floats (leading dimension and shape) outside any "
                          "device allocation",
                          batch, mtx.name, (const void*)mtx.p, mtx.elements);
    return CUBLAS_STATUS_SUCCESS;
}

void sgemm(const Gemm& g, float alpha, const float* A, const float* B, float beta, float* C)
{
    cblas_sgemm(CblasColMajor, is_transpose(g.transa) ? CblasTrans : CblasNoTrans,
                is_transpose(g.transb) ? CblasTrans : CblasNoTrans, g.m, g.n, g.k, alpha, A, g.lda, B, g.ldb,
                beta, C, g.ldc);
}

// One GEMM call (batch of `batch` products) as work for the driver: the scalars by value, so a
// captured call replays with the values it was called with (cuBLAS reads host scalars at the call).
struct GemmWork {
    Gemm g;
    float alpha, beta;
    const float *A, *B;
    float* C;
    long long strideA, strideB, strideC;
    int batch;
    bool tf32;  // the handle's math mode at the call: CUBLAS_TF32_TENSOR_OP_MATH
};

// TF32 rounding as kernels/common.cuh's kx_tf32 (cvt.rna.tf32.f32 on normal numbers: 10-bit
// mantissa, to nearest, ties away; zeros, subnormals, infinities and NaN unchanged).
float tf32(float x)
{
    unsigned u;
    std::memcpy(&u, &x, 4);
    const unsigned e = u & 0x7f800000u;
    if (e == 0u || e == 0x7f800000u)
        return x;
    u = (u + 0x1000u) & 0xffffe000u;
    std::memcpy(&x, &u, 4);
    return x;
}

// A stored rows x cols matrix (leading dimension ld) with every element rounded to TF32.
std::vector<float> tf32_copy(const float* m, int rows, int cols, int ld)
{
    std::vector<float> out(static_cast<size_t>(extent(rows, cols, ld)));
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = tf32(m[i]);
    return out;
}

// CUBLAS_TF32_TENSOR_OP_MATH: A and B read as TF32 (what tensor cores do), products and sums in
// float as before; otherwise plain SGEMM.
void run_gemm(void* p)
{
    const GemmWork& w = *static_cast<const GemmWork*>(p);
    const Gemm& g = w.g;
    for (int i = 0; i < w.batch; ++i) {
        const float* A = w.A + i * w.strideA;
        const float* B = w.B + i * w.strideB;
        if (!w.tf32) {
            sgemm(g, w.alpha, A, B, w.beta, w.C + i * w.strideC);
            continue;
        }
        const std::vector<float> a = tf32_copy(A, is_transpose(g.transa) ? g.k : g.m, is_transpose(g.transa) ? g.m : g.k,
                                               g.lda);
        const std::vector<float> b = tf32_copy(B, is_transpose(g.transb) ? g.n : g.k, is_transpose(g.transb) ? g.k : g.n,
                                               g.ldb);
        sgemm(g, w.alpha, a.data(), b.data(), w.beta, w.C + i * w.strideC);
    }
}

void release_gemm(void* p) { delete static_cast<GemmWork*>(p); }

cublasStatus_t submit(const char* call, cublasHandle_t handle, const GemmWork& w)
{
    if (kxai_emu_stream_submit(handle->stream, call, run_gemm, new GemmWork(w), release_gemm) != 0)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

extern "C" {

// Called by the generated stubs (build/gen/cublas_stubs.c).
int kxai_emu_cublas_unsupported(const char* call)
{
    return report(CUBLAS_STATUS_NOT_SUPPORTED, call, "not emulated (kxai native-tests fake libcublas.so.12)");
}

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle)
{
    if (handle == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new cublasContext;
    std::lock_guard<std::mutex> lock(handles_mutex);
    handles.insert(*handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
{
    std::lock_guard<std::mutex> lock(handles_mutex);
    if (handles.erase(handle) == 0)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (version == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    *version = 120000;
    return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "cuBLAS error";
    }
}

size_t cublasGetCudartVersion(void) { return 12000; }

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = streamId;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* streamId)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (streamId == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    *streamId = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math_mode = mode;  // CUBLAS_TF32_TENSOR_OP_MATH: SGEMM reads A and B as TF32 (run_gemm)
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math_mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode)
{
    if (!live(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                              int n, int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc)
{
    const Gemm g{transa, transb, m, n, k, lda, ldb, ldc};
    if (cublasStatus_t s = check_arguments(__func__, handle, g); s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;
    if (cublasStatus_t s = check_scalars(__func__, handle, alpha, beta); s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (cublasStatus_t s = check_matrices(__func__, g, A, B, C, 0); s != CUBLAS_STATUS_SUCCESS)
        return s;
    return submit(__func__, handle,
                  GemmWork{g, *alpha, *beta, A, B, C, 0, 0, 0, 1, handle->math_mode == CUBLAS_TF32_TENSOR_OP_MATH});
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC,
                                         int batchCount)
{
    const Gemm g{transa, transb, m, n, k, lda, ldb, ldc};
    if (cublasStatus_t s = check_arguments(__func__, handle, g); s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (batchCount < 0)
        return report(CUBLAS_STATUS_INVALID_VALUE, __func__, "batchCount %d < 0", batchCount);
    if (m == 0 || n == 0 || batchCount == 0)
        return CUBLAS_STATUS_SUCCESS;
    if (cublasStatus_t s = check_scalars(__func__, handle, alpha, beta); s != CUBLAS_STATUS_SUCCESS)
        return s;
    for (int i = 0; i < batchCount; ++i)
        if (cublasStatus_t s = check_matrices(__func__, g, A + i * strideA, B + i * strideB, C + i * strideC, i);
            s != CUBLAS_STATUS_SUCCESS)
            return s;
    return submit(__func__, handle,
                  GemmWork{g, *alpha, *beta, A, B, C, strideA, strideB, strideC, batchCount,
                           handle->math_mode == CUBLAS_TF32_TENSOR_OP_MATH});
}

}  // extern "C"
