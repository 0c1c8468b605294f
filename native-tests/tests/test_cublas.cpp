// test_cublas.cpp: the fake libcublas.so.12 against a naive column-major loop.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cublas_subset.h"
#include "emu_memory.h"
#include "device.h"
#include "harness.h"

namespace {

struct Shape {
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc;
    int a_cols() const { return ta == CUBLAS_OP_N ? k : m; }  // stored A is lda x a_cols
    int b_cols() const { return tb == CUBLAS_OP_N ? n : k; }
};

std::vector<float> random_floats(size_t n, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1, 1);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

// op(X)[r, c] for column-major storage with leading dimension ld.
float element(const float* x, cublasOperation_t op, int ld, int r, int c)
{
    return op == CUBLAS_OP_N ? x[r + static_cast<size_t>(c) * ld] : x[c + static_cast<size_t>(r) * ld];
}

// C = alpha op(A) op(B) + beta C, in double; with the bound (k + 2) eps (|alpha| sum|a||b| + |beta c|)
// for a float computation in any summation order.
void expect_gemm(const Shape& s, float alpha, const float* A, const float* B, float beta, const float* C0,
                 const float* C)
{
    int shown = 0;
    for (int j = 0; j < s.n; ++j)
        for (int i = 0; i < s.m; ++i) {
            double dot = 0, magnitude = 0;
            for (int l = 0; l < s.k; ++l) {
                const double p = static_cast<double>(element(A, s.ta, s.lda, i, l)) * element(B, s.tb, s.ldb, l, j);
                dot += p;
                magnitude += std::fabs(p);
            }
            const double c0 = beta == 0.0f ? 0.0 : C0[i + static_cast<size_t>(j) * s.ldc];
            const double want = alpha * dot + beta * c0;
            const double tol = (s.k + 2) * FLT_EPSILON * (std::fabs(alpha) * magnitude + std::fabs(beta * c0));
            const float got = C[i + static_cast<size_t>(j) * s.ldc];
            if (!(std::fabs(got - want) <= tol) && shown++ < 5)
                CHECK_MSG(false, "C[%d,%d] = %.9g, want %.9g (tolerance %.3g)", i, j, got, want, tol);
        }
    CHECK_MSG(shown == 0, "%d elements of C differ", shown);
}

const char* op_name(cublasOperation_t op) { return op == CUBLAS_OP_N ? "N" : "T"; }

Shape shape(cublasOperation_t ta, cublasOperation_t tb)
{
    const int m = 37, n = 29, k = 53;
    // Leading dimensions larger than the rows, so that padding and ld are both exercised.
    return {ta, tb, m, n, k, (ta == CUBLAS_OP_N ? m : k) + 3, (tb == CUBLAS_OP_N ? k : n) + 2, m + 5};
}

void test_sgemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, float beta)
{
    const Shape s = shape(ta, tb);
    const size_t a_len = static_cast<size_t>(s.lda) * s.a_cols(), b_len = static_cast<size_t>(s.ldb) * s.b_cols(),
                 c_len = static_cast<size_t>(s.ldc) * s.n;
    const std::vector<float> A = random_floats(a_len, 1), B = random_floats(b_len, 2), C0 = random_floats(c_len, 3);
    device::Buffer dA(a_len * 4), dB(b_len * 4), dC(c_len * 4);
    dA.upload(A);
    dB.upload(B);
    if (beta != 0.0f)
        dC.upload(C0);  // with beta == 0, C stays NaN-filled: cuBLAS must not read it
    const float alpha = 1.5f;
    if (cublasSgemm_v2(handle, ta, tb, s.m, s.n, s.k, &alpha, reinterpret_cast<const float*>(dA.ptr()), s.lda,
                       reinterpret_cast<const float*>(dB.ptr()), s.ldb, &beta, reinterpret_cast<float*>(dC.ptr()),
                       s.ldc) != CUBLAS_STATUS_SUCCESS) {
        CHECK_MSG(false, "cublasSgemm_v2 failed");
        return;
    }
    const std::vector<float> C = dC.download<float>(c_len);
    expect_gemm(s, alpha, A.data(), B.data(), beta, C0.data(), C.data());
}

void test_strided_batched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb)
{
    const Shape s = shape(ta, tb);
    const int batch = 3;
    // Strides with a gap between matrices.
    const long long sa = static_cast<long long>(s.lda) * s.a_cols() + 7, sb = static_cast<long long>(s.ldb) * s.b_cols() + 1,
                    sc = static_cast<long long>(s.ldc) * s.n + 4;
    const std::vector<float> A = random_floats(sa * batch, 4), B = random_floats(sb * batch, 5),
                             C0 = random_floats(sc * batch, 6);
    device::Buffer dA(A.size() * 4), dB(B.size() * 4), dC(C0.size() * 4);
    dA.upload(A);
    dB.upload(B);
    dC.upload(C0);
    const float alpha = -0.75f, beta = 0.5f;
    if (cublasSgemmStridedBatched(handle, ta, tb, s.m, s.n, s.k, &alpha, reinterpret_cast<const float*>(dA.ptr()),
                                  s.lda, sa, reinterpret_cast<const float*>(dB.ptr()), s.ldb, sb, &beta,
                                  reinterpret_cast<float*>(dC.ptr()), s.ldc, sc, batch) != CUBLAS_STATUS_SUCCESS) {
        CHECK_MSG(false, "cublasSgemmStridedBatched failed");
        return;
    }
    const std::vector<float> C = dC.download<float>(C0.size());
    for (int i = 0; i < batch; ++i)
        expect_gemm(s, alpha, &A[i * sa], &B[i * sb], beta, &C0[i * sc], &C[i * sc]);
    // The gaps between matrices are untouched.
    CHECK(C[sc - 1] == C0[sc - 1]);
}

void test_misuse(cublasHandle_t handle)
{
    device::Buffer a(16 * 16 * 4), b(16 * 16 * 4), c(16 * 16 * 4), scalars(8);
    const float* A = reinterpret_cast<const float*>(a.ptr());
    const float* B = reinterpret_cast<const float*>(b.ptr());
    float* C = reinterpret_cast<float*>(c.ptr());
    const float one = 1.0f, zero = 0.0f;
    CHECK(cublasSgemm_v2(handle, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 16, &one, A, 15, B, 16, &zero, C, 16) ==
          CUBLAS_STATUS_INVALID_VALUE);  // lda < m
    CHECK(cublasSgemm_v2(handle, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 16, &one, A, 17, B, 16, &zero, C, 16) ==
          CUBLAS_STATUS_EXECUTION_FAILED);  // lda 17 runs past the 16x16 buffer
    CHECK(cublasSgemm_v2(handle, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 16,
                         reinterpret_cast<const float*>(scalars.ptr()), A, 16, B, 16, &zero, C,
                         16) == CUBLAS_STATUS_EXECUTION_FAILED);  // device alpha in host pointer mode
    const float host_scalars[2] = {1.0f, 0.0f};
    scalars.upload(host_scalars, sizeof host_scalars);
    CHECK(cublasSetPointerMode_v2(handle, CUBLAS_POINTER_MODE_DEVICE) == CUBLAS_STATUS_SUCCESS);
    const float* d_alpha = reinterpret_cast<const float*>(scalars.ptr());
    CHECK(cublasSgemm_v2(handle, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 16, d_alpha, A, 16, B, 16, d_alpha + 1, C, 16) ==
          CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSetPointerMode_v2(handle, CUBLAS_POINTER_MODE_HOST) == CUBLAS_STATUS_SUCCESS);
}

void test_handle_state()
{
    cublasHandle_t h = nullptr;
    CHECK(cublasCreate_v2(&h) == CUBLAS_STATUS_SUCCESS);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(0x1), got = nullptr;
    CHECK(cublasSetStream_v2(h, stream) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasGetStream_v2(h, &got) == CUBLAS_STATUS_SUCCESS && got == stream);
    cublasMath_t mode = CUBLAS_DEFAULT_MATH;
    CHECK(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasGetMathMode(h, &mode) == CUBLAS_STATUS_SUCCESS && mode == CUBLAS_TF32_TENSOR_OP_MATH);
    CHECK(cublasDestroy_v2(h) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasDestroy_v2(h) == CUBLAS_STATUS_NOT_INITIALIZED);
}



// A GEMM on a capturing stream is recorded (scalars by value), runs at each graph launch, and
// counts as work on a created stream; one on a destroyed stream is refused.
void test_capture(cublasHandle_t handle)
{
    const int m = 3, n = 2, k = 4;
    const std::vector<float> a = random_floats(m * k, 11), b = random_floats(k * n, 12);
    device::Buffer A(a.size() * 4), B(b.size() * 4), C(m * n * 4);
    A.upload(a.data(), a.size() * 4);
    B.upload(b.data(), b.size() * 4);
    CUstream stream = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CHECK(cublasSetStream_v2(handle, stream) == CUBLAS_STATUS_SUCCESS);
    const unsigned long long on_stream = kxai_emu_counter("cublas_created_stream");
    float alpha = 1.0f, beta = 0.0f;
    CHECK_CU(CUDA_SUCCESS, cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cublasSgemm_v2(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, reinterpret_cast<float*>(A.ptr()), m,
                         reinterpret_cast<float*>(B.ptr()), k, &beta, reinterpret_cast<float*>(C.ptr()), m) ==
          CUBLAS_STATUS_SUCCESS);
    alpha = 100.0f;  // read at the call, as cuBLAS reads host scalars
    CUgraph graph = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuStreamEndCapture(stream, &graph));
    CHECK(std::isnan(C.download<float>(1)[0]));  // recorded, not run
    CHECK(kxai_emu_counter("cublas_created_stream") == on_stream);
    CUgraphExec exec = nullptr;
    CHECK_CU(CUDA_SUCCESS, cuGraphInstantiateWithFlags(&exec, graph, 0));
    CHECK_CU(CUDA_SUCCESS, cuGraphDestroy(graph));
    CHECK_CU(CUDA_SUCCESS, cuGraphLaunch(exec, stream));
    const std::vector<float> c0(m * n, 0.0f);
    expect_gemm(Shape{CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m}, 1.0f, a.data(), b.data(), 0.0f, c0.data(),
                C.download<float>(m * n).data());
    CHECK(kxai_emu_counter("cublas_created_stream") == on_stream + 1);
    CHECK_CU(CUDA_SUCCESS, cuGraphExecDestroy(exec));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(stream));
    CHECK(cublasSgemm_v2(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, reinterpret_cast<float*>(A.ptr()), m,
                         reinterpret_cast<float*>(B.ptr()), k, &beta, reinterpret_cast<float*>(C.ptr()), m) ==
          CUBLAS_STATUS_EXECUTION_FAILED);
    CHECK(cublasSetStream_v2(handle, nullptr) == CUBLAS_STATUS_SUCCESS);
}

// CUBLAS_TF32_TENSOR_OP_MATH: A and B read as TF32 (to nearest, ties away, 10-bit mantissa); the
// result is a float GEMM of the rounded operands, and differs from the plain SGEMM's.
void test_tf32_math(cublasHandle_t handle)
{
    const int m = 5, n = 4, k = 33;
    const std::vector<float> a = random_floats(m * k, 21), b = random_floats(k * n, 22);
    std::vector<float> ar(a), br(b);
    for (std::vector<float>* v : {&ar, &br})
        for (float& x : *v) {
            unsigned u;
            std::memcpy(&u, &x, 4);
            u = (u + 0x1000u) & 0xffffe000u;  // normal numbers here
            std::memcpy(&x, &u, 4);
        }
    device::Buffer A(a.size() * 4), B(b.size() * 4), C(m * n * 4);
    A.upload(a.data(), a.size() * 4);
    B.upload(b.data(), b.size() * 4);
    const float one = 1.0f, zero = 0.0f;
    const auto gemm = [&] {
        return cublasSgemm_v2(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, reinterpret_cast<float*>(A.ptr()), m,
                              reinterpret_cast<float*>(B.ptr()), k, &zero, reinterpret_cast<float*>(C.ptr()), m);
    };
    CHECK(gemm() == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> plain = C.download<float>(m * n);
    CHECK(cublasSetMathMode(handle, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS);
    CHECK(gemm() == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> t = C.download<float>(m * n);
    CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS);
    const std::vector<float> c0(m * n, 0.0f);
    expect_gemm(Shape{CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, m, k, m}, 1.0f, ar.data(), br.data(), 0.0f, c0.data(), t.data());
    int differ = 0;
    for (int i = 0; i < m * n; ++i)
        differ += t[i] != plain[i];
    CHECK_MSG(differ > 0, "TF32 operands changed no element of C");
}

}  // namespace

SUITE(cublas)
{
    device::use_primary_context();
    cublasHandle_t handle = nullptr;
    if (cublasCreate_v2(&handle) != CUBLAS_STATUS_SUCCESS)
        return harness::run_case("cublasCreate_v2", [] { CHECK_MSG(false, "cublasCreate_v2 failed"); });
    for (cublasOperation_t ta : {CUBLAS_OP_N, CUBLAS_OP_T})
        for (cublasOperation_t tb : {CUBLAS_OP_N, CUBLAS_OP_T}) {
            const std::string ops = std::string(op_name(ta)) + op_name(tb);
            harness::run_case("cublasSgemm_v2 " + ops + " beta=-0.5", [=] { test_sgemm(handle, ta, tb, -0.5f); });
            harness::run_case("cublasSgemm_v2 " + ops + " beta=0 over NaN", [=] { test_sgemm(handle, ta, tb, 0.0f); });
            harness::run_case("cublasSgemmStridedBatched " + ops, [=] { test_strided_batched(handle, ta, tb); });
        }
    harness::run_case("cuBLAS argument, bounds and pointer-mode checks", [=] { test_misuse(handle); });
    harness::run_case("cuBLAS handle state", test_handle_state);
    harness::run_case("CUBLAS_TF32_TENSOR_OP_MATH rounds A and B to TF32", [=] { test_tf32_math(handle); });
    harness::run_case("cuBLAS on a capturing stream: recorded, scalars by value, run at the graph launch",
                      [=] { test_capture(handle); });
    cublasDestroy_v2(handle);
}
