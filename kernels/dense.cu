// kernels/dense.cu: element-wise work around the GEMMs of dense layers, and broadcasting arithmetic.
//
// Build: nvcc -ptx -arch=compute_75 -fmad=false dense.cu   (g++ through the CPU shim for tests)
// Kernels:
//   bias_act_forward   y[r,c] = act(y[r,c] + bias[c])   in place on a GEMM's output (bias may be null):
//                      the GEMM + bias + activation fusion; the backward reads y (act_backward)
//   bias_act_forward_keep  v = pre[r,c] + bias[c]; pre[r,c] = v; y[r,c] = act(v): the same fusion
//                      when the backward needs the pre-activation (LeakyReLU with alpha < 0, whose
//                      output's sign does not tell the input's)
//   gemm_f64           y[i,j] = alpha * sum_k a[i,k] * op(b)[k,j] + beta * c[j], in DOUBLE, unrounded
//                      (first-layer saving: a Gemm at the path's two ends, 2 rows per example)
//   act_forward        y[e] = act(x[e])
//   act_backward       gx[e] = gy[e] * act'(saved[e]): saved is the forward's output, except for
//                      LeakyReLU, whose slope follows the input's sign (the launcher passes x)
//   binary_forward     out = a (+|-|*|/|^) b with NumPy broadcasting over up to 4 dims
//   binary_grad        Div's and Pow's operand gradients (both operands read), atomics onto broadcast dims
//   binary_backward    ga += scale * gy (* other, when given) reduced onto a broadcast operand (atomics)
//   scale_copy         dst[e] = scale * src[e]
//   unary_forward      y = f(x) for the unary family (kx_unary codes below), computed in double and
//                      rounded once, as the CPU twin (ElementwiseOps.unary) does
//   unary_backward     gx = gy * f'(x), in double from x, rounded once (ElementwiseOps.unaryGradient)
//   transpose4         y = x with its (up to 4) axes permuted: a gather, the input strides given per output axis
//   reduce_forward     ReduceMean/ReduceSum over flagged axes: each output sums its inputs in double in
//                      ascending input order, divides (mean) and rounds once (ShapeOps.reduce)
//   reduce_backward    dx = dy of the output each input reduces into (/ count for a mean)
//   pad_forward        ONNX Pad over up to 4 dims: y[o] = x[source(o)], or value where constant mode
//                      has no source; modes 0 constant, 1 reflect, 2 edge, 3 wrap
//   pad_backward       dx[i] = sum of dy over the outputs that read i, gathered in ascending output
//                      order (axis 0 outermost): deterministic, no atomics, the CPU twin's order
// Activation codes (act): 0 identity, 1 ReLU, 2 LeakyReLU(alpha), 3 Sigmoid, 4 Tanh.
// Saved state: ReLU passes where y > 0, Sigmoid y(1−y), Tanh 1−y² (from the output y);
//   LeakyReLU 1 where x > 0 else alpha (from the input x, right for any alpha). PyTorch's choices at 0.
// Layout invariants: float32, row-major, contiguous. Pad shapes are 4 dims (leading dims padded with
//   1, begin pads 0). Broadcast shapes are given as 4 output dims
//   (leading dims padded with 1) and 4 element strides per operand (0 on broadcast dims).
// Indexing: 64-bit element indices; 1-D grid-stride loops, so any 1-D geometry is correct.
#include "common.cuh"

__device__ __forceinline__ float kx_act(int act, float v, float alpha)
{
    switch (act) {
    case 1: return v > 0.0f ? v : 0.0f;
    case 2: return v > 0.0f ? v : v * alpha;
    case 3: return v >= 0.0f ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
    case 4: return tanhf(v);
    default: return v;
    }
}

__device__ __forceinline__ float kx_act_grad(int act, float y, float alpha)
{
    switch (act) {
    case 1: return y > 0.0f ? 1.0f : 0.0f;
    case 2: return y > 0.0f ? 1.0f : alpha;
    case 3: return (1.0f - y) * y;
    case 4: return 1.0f - y * y;
    default: return 1.0f;
    }
}

extern "C" __global__ void bias_act_forward(float* __restrict__ y, const float* __restrict__ bias,
                                            long long rows, int cols, int act, float alpha)
{
    KX_GRID_STRIDE_LOOP(e, rows * cols)
    {
        const float v = bias ? y[e] + bias[e % cols] : y[e];
        y[e] = kx_act(act, v, alpha);
    }
}

extern "C" __global__ void bias_act_forward_keep(float* __restrict__ y, float* __restrict__ pre,
                                                 const float* __restrict__ bias, long long rows, int cols,
                                                 int act, float alpha)
{
    KX_GRID_STRIDE_LOOP(e, rows * cols)
    {
        const float v = bias ? pre[e] + bias[e % cols] : pre[e];
        pre[e] = v;
        y[e] = kx_act(act, v, alpha);
    }
}

// a [m, k] row-major; b [k, n], or [n, k] when trans_b; c [n] or null. One thread per output; the
// k products are summed in double in increasing k, then scaled, then the bias is added.
extern "C" __global__ void gemm_f64(double* __restrict__ y, const float* __restrict__ a,
                                    const float* __restrict__ b, const float* __restrict__ c, int m,
                                    int n, int k, int trans_b, float alpha, float beta)
{
    KX_GRID_STRIDE_LOOP(e, (kx_index)m * n)
    {
        const kx_index i = e / n;
        const kx_index j = e % n;
        const float* row = a + i * k;
        double acc = 0.0;
        for (int t = 0; t < k; ++t) {
            const float bv = trans_b ? b[j * k + t] : b[(kx_index)t * n + j];
            acc += (double)row[t] * (double)bv;
        }
        double v = (double)alpha * acc;
        if (c)
            v += (double)beta * (double)c[j];
        y[e] = v;
    }
}

extern "C" __global__ void act_forward(float* __restrict__ y, const float* __restrict__ x, long long n,
                                       int act, float alpha)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        y[e] = kx_act(act, x[e], alpha);
    }
}

extern "C" __global__ void act_backward(float* __restrict__ gx, const float* __restrict__ gy,
                                        const float* __restrict__ y, long long n, int act, float alpha)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        // written as gy * (1 - y) * y for sigmoid, matching the CPU twin's order
        gx[e] = act == 3 ? gy[e] * (1.0f - y[e]) * y[e] : gy[e] * kx_act_grad(act, y[e], alpha);
    }
}

// Offset of output element e in an operand with strides s0..s3 over output dims d1..d3.
__device__ __forceinline__ kx_index kx_bcast(kx_index e, int d1, int d2, int d3, long long s0,
                                              long long s1, long long s2, long long s3)
{
    const kx_index i3 = e % d3;
    kx_index r = e / d3;
    const kx_index i2 = r % d2;
    r /= d2;
    const kx_index i1 = r % d1;
    const kx_index i0 = r / d1;
    return i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3;
}

// op: 0 add, 1 sub, 2 mul, 3 div, 4 pow (in double, rounded once); comparisons giving 1 or 0:
// 5 equal, 6 less, 7 greater, 8 not equal.
extern "C" __global__ void binary_forward(float* __restrict__ out, const float* __restrict__ a,
                                          const float* __restrict__ b, int op, int d0, int d1, int d2,
                                          int d3, long long as0, long long as1, long long as2,
                                          long long as3, long long bs0, long long bs1, long long bs2,
                                          long long bs3)
{
    const kx_index n = (kx_index)d0 * d1 * d2 * d3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const float p = a[kx_bcast(e, d1, d2, d3, as0, as1, as2, as3)];
        const float q = b[kx_bcast(e, d1, d2, d3, bs0, bs1, bs2, bs3)];
        out[e] = op == 0 ? p + q
                 : op == 1 ? p - q
                 : op == 2 ? p * q
                 : op == 3 ? p / q
                 : op == 4 ? (float)pow((double)p, (double)q)
                 : op == 5 ? (p == q ? 1.0f : 0.0f)
                 : op == 6 ? (p < q ? 1.0f : 0.0f)
                 : op == 7 ? (p > q ? 1.0f : 0.0f)
                           : (p != q ? 1.0f : 0.0f);
    }
}

// g (the operand's gradient, zero-filled by the caller) += scale * gy[e] * (other ? other[...] : 1),
// reduced onto the operand's broadcast dims with atomics. When the operand has the output's
// shape the launcher uses scale_copy / binary_forward instead, which are deterministic.
extern "C" __global__ void binary_backward(float* g, const float* __restrict__ gy,
                                           const float* __restrict__ other, float scale, int d0, int d1,
                                           int d2, int d3, long long gs0, long long gs1, long long gs2,
                                           long long gs3, long long os0, long long os1, long long os2,
                                           long long os3)
{
    const kx_index n = (kx_index)d0 * d1 * d2 * d3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        float v = scale * gy[e];
        if (other)
            v *= other[kx_bcast(e, d1, d2, d3, os0, os1, os2, os3)];
        atomicAdd(&g[kx_bcast(e, d1, d2, d3, gs0, gs1, gs2, gs3)], v);
    }
}

// Div (op 3) and Pow (op 4): g (zero-filled by the caller) += d(a op b)/d(operand) * gy for operand
// 0 (a) or 1 (b), in double and rounded once (ElementwiseOps.binaryGradient, PyTorch's rules at 0),
// summed onto the operand's broadcast dims with atomics (one term per element when it is not broadcast).
extern "C" __global__ void binary_grad(float* g, const float* __restrict__ gy, const float* __restrict__ a,
                                       const float* __restrict__ b, int op, int operand, int d0, int d1, int d2,
                                       int d3, long long gs0, long long gs1, long long gs2, long long gs3,
                                       long long as0, long long as1, long long as2, long long as3, long long bs0,
                                       long long bs1, long long bs2, long long bs3)
{
    const kx_index n = (kx_index)d0 * d1 * d2 * d3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const double x = a[kx_bcast(e, d1, d2, d3, as0, as1, as2, as3)];
        const double y = b[kx_bcast(e, d1, d2, d3, bs0, bs1, bs2, bs3)];
        const double gv = gy[e];
        double v;
        if (op == 3)
            v = operand == 0 ? gv / y : -gv * x / (y * y);
        else if (operand == 0)
            v = y == 0.0 ? 0.0 : gv * y * pow(x, y - 1.0);
        else
            v = x == 0.0 && y >= 0.0 ? 0.0 : gv * pow(x, y) * log(x);
        atomicAdd(&g[kx_bcast(e, d1, d2, d3, gs0, gs1, gs2, gs3)], (float)v);
    }
}

// Where: out = c != 0 ? x : y, each operand broadcast (its strides over the 4-D output dims).
// A selection, no arithmetic: -inf and NaN pass through as they are (masked attention scores).
extern "C" __global__ void where_forward(float* __restrict__ out, const float* __restrict__ c,
                                         const float* __restrict__ x, const float* __restrict__ y, int d0, int d1,
                                         int d2, int d3, long long cs0, long long cs1, long long cs2, long long cs3,
                                         long long xs0, long long xs1, long long xs2, long long xs3, long long ys0,
                                         long long ys1, long long ys2, long long ys3)
{
    const kx_index n = (kx_index)d0 * d1 * d2 * d3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        out[e] = c[kx_bcast(e, d1, d2, d3, cs0, cs1, cs2, cs3)] != 0.0f ? x[kx_bcast(e, d1, d2, d3, xs0, xs1, xs2, xs3)]
                                                                        : y[kx_bcast(e, d1, d2, d3, ys0, ys1, ys2, ys3)];
    }
}

// Where's backward for x (which 0) or y (which 1): g (zero-filled by the caller) += gy where the
// condition picks that operand, summed onto the operand's broadcast dims with atomics.
extern "C" __global__ void where_backward(float* g, const float* __restrict__ gy, const float* __restrict__ c,
                                          int which, int d0, int d1, int d2, int d3, long long gs0, long long gs1,
                                          long long gs2, long long gs3, long long cs0, long long cs1, long long cs2,
                                          long long cs3)
{
    const kx_index n = (kx_index)d0 * d1 * d2 * d3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const bool picked = (c[kx_bcast(e, d1, d2, d3, cs0, cs1, cs2, cs3)] != 0.0f) == (which == 0);
        if (picked)
            atomicAdd(&g[kx_bcast(e, d1, d2, d3, gs0, gs1, gs2, gs3)], gy[e]);
    }
}

extern "C" __global__ void scale_copy(float* __restrict__ dst, const float* __restrict__ src, long long n,
                                      float scale)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        dst[e] = scale * src[e];
    }
}

extern "C" __global__ void add_inplace(float* __restrict__ dst, const float* __restrict__ src, long long n)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        dst[e] += src[e];
    }
}

// The input coordinate that output coordinate o reads on an axis of size n with `begin` padded
// before it, or -1 where constant mode writes the fill value (the CPU twin: ShapeOps.padSource).
__device__ __forceinline__ int kx_pad_source(int o, int begin, int n, int mode)
{
    const int s = o - begin;
    if (s >= 0 && s < n)
        return s;
    switch (mode) {
    case 1: return s < 0 ? -s : 2 * (n - 1) - s;
    case 2: return s < 0 ? 0 : n - 1;
    case 3: return ((s % n) + n) % n;
    default: return -1;
    }
}

// The 4 coordinates of flat element e of a row-major [d0, d1, d2, d3] tensor (d0 is implied).
__device__ __forceinline__ void kx_coords4(kx_index e, int d1, int d2, int d3, int* c0, int* c1, int* c2, int* c3)
{
    *c3 = (int)(e % d3);
    e /= d3;
    *c2 = (int)(e % d2);
    e /= d2;
    *c1 = (int)(e % d1);
    *c0 = (int)(e / d1);
}

extern "C" __global__ void pad_forward(float* __restrict__ y, const float* __restrict__ x, int mode, float value,
                                       int i0, int i1, int i2, int i3, int o0, int o1, int o2, int o3,
                                       int b0, int b1, int b2, int b3)
{
    const kx_index n = (kx_index)o0 * o1 * o2 * o3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        int c0, c1, c2, c3;
        kx_coords4(e, o1, o2, o3, &c0, &c1, &c2, &c3);
        const int s0 = kx_pad_source(c0, b0, i0, mode);
        const int s1 = kx_pad_source(c1, b1, i1, mode);
        const int s2 = kx_pad_source(c2, b2, i2, mode);
        const int s3 = kx_pad_source(c3, b3, i3, mode);
        y[e] = (s0 < 0 || s1 < 0 || s2 < 0 || s3 < 0)
                   ? value
                   : x[(((kx_index)s0 * i1 + s1) * i2 + s2) * i3 + s3];
    }
}

extern "C" __global__ void pad_backward(float* __restrict__ dx, const float* __restrict__ dy, int mode,
                                        int i0, int i1, int i2, int i3, int o0, int o1, int o2, int o3,
                                        int b0, int b1, int b2, int b3)
{
    const kx_index n = (kx_index)i0 * i1 * i2 * i3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        int c0, c1, c2, c3;
        kx_coords4(e, i1, i2, i3, &c0, &c1, &c2, &c3);
        float acc = 0.0f;
        for (int p0 = 0; p0 < o0; ++p0) {
            if (kx_pad_source(p0, b0, i0, mode) != c0)
                continue;
            for (int p1 = 0; p1 < o1; ++p1) {
                if (kx_pad_source(p1, b1, i1, mode) != c1)
                    continue;
                for (int p2 = 0; p2 < o2; ++p2) {
                    if (kx_pad_source(p2, b2, i2, mode) != c2)
                        continue;
                    for (int p3 = 0; p3 < o3; ++p3) {
                        if (kx_pad_source(p3, b3, i3, mode) == c3)
                            acc += dy[(((kx_index)p0 * o1 + p1) * o2 + p2) * o3 + p3];
                    }
                }
            }
        }
        dx[e] = acc;
    }
}

// Unary codes (Op.Unary.Kind): 0 Clip(a = min, b = max), 1 HardSigmoid(a, b), 2 HardSwish, 3 Sqrt,
// 4 Exp, 5 Log, 6 Erf, 7 Softplus, 8 Elu(a), 9 Selu(a, b = gamma), 10 Gelu, 11 Gelu (tanh), 12 Neg,
// 13 Abs, 14 Trunc, 15 Floor, 16 Ceil, 17 Round, 18 Sign, 19 Reciprocal, 20 Sin, 21 Cos. The constants are the doubles the CPU twin computes (sqrt(2), sqrt(2/pi), ...).
#define KX_SQRT_2 1.4142135623730951
#define KX_SQRT_2_OVER_PI 0.7978845608028654
#define KX_TWO_OVER_SQRT_PI 1.1283791670955126
#define KX_ONE_OVER_SQRT_2PI 0.3989422804014327

__device__ __forceinline__ double kx_unary(int kind, double a, double b, double x)
{
    switch (kind) {
    case 0: return fmin(fmax(x, a), b);
    case 1: return fmax(0.0, fmin(1.0, a * x + b));
    case 2: return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case 3: return sqrt(x);
    case 4: return exp(x);
    case 5: return log(x);
    case 6: return erf(x);
    case 7: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case 8: return x > 0 ? x : a * expm1(x);
    case 9: return b * (x > 0 ? x : a * expm1(x));
    case 10: return 0.5 * x * (1.0 + erf(x / KX_SQRT_2));
    case 11: return 0.5 * x * (1.0 + tanh(KX_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case 12: return -x;
    case 14: return trunc(x);
    case 15: return floor(x);
    case 16: return ceil(x);
    case 17: return rint(x); // half to even in the default rounding mode, as ONNX's Round
    case 18: return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0);
    case 19: return 1.0 / x;
    case 20: return sin(x);
    case 21: return cos(x);
    default: return fabs(x);
    }
}

__device__ __forceinline__ double kx_unary_grad(int kind, double a, double b, double x, double g)
{
    switch (kind) {
    case 0: return x > a && x < b ? g : 0.0;
    case 1: {
        const double t = a * x + b;
        return t > 0.0 && t < 1.0 ? g * a : 0.0;
    }
    case 2: return x < -3.0 ? 0.0 : (x <= 3.0 ? g * (x / 3.0 + 0.5) : g);
    case 3: return g * 0.5 / sqrt(x);
    case 4: return g * exp(x);
    case 5: return g / x;
    case 6: return g * KX_TWO_OVER_SQRT_PI * exp(-x * x);
    case 7: return g / (1.0 + exp(-x));
    case 8: return x > 0 ? g : g * a * exp(x);
    case 9: return b * (x > 0 ? g : g * a * exp(x));
    case 10: return g * (0.5 * (1.0 + erf(x / KX_SQRT_2)) + x * exp(-0.5 * x * x) * KX_ONE_OVER_SQRT_2PI);
    case 11: {
        const double t = tanh(KX_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
        return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * KX_SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x));
    }
    case 12: return -g;
    case 14:
    case 15:
    case 16:
    case 17:
    case 18: return 0.0;
    case 19: return -g / (x * x);
    case 20: return g * cos(x);
    case 21: return -g * sin(x);
    default: return x > 0 ? g : (x < 0 ? -g : 0.0);
    }
}

extern "C" __global__ void unary_forward(float* __restrict__ y, const float* __restrict__ x, long long n, int kind,
                                         float a, float b)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        y[e] = (float)kx_unary(kind, (double)a, (double)b, (double)x[e]);
    }
}

extern "C" __global__ void unary_backward(float* __restrict__ gx, const float* __restrict__ gy,
                                          const float* __restrict__ x, long long n, int kind, float a, float b)
{
    KX_GRID_STRIDE_LOOP(e, n)
    {
        gx[e] = (float)kx_unary_grad(kind, (double)a, (double)b, (double)x[e], (double)gy[e]);
    }
}

// Input dims i0..i3 (leading 1s), r_d != 0 where axis d is reduced; the output is laid out as the
// input with the reduced axes of size 1 (with or without keepdims, the same flat order).
extern "C" __global__ void reduce_forward(float* __restrict__ y, const float* __restrict__ x, int i0, int i1, int i2,
                                          int i3, int r0, int r1, int r2, int r3, int mean)
{
    const int o0 = r0 ? 1 : i0, o1 = r1 ? 1 : i1, o2 = r2 ? 1 : i2, o3 = r3 ? 1 : i3;
    const kx_index n = (kx_index)o0 * o1 * o2 * o3;
    const double count = (double)((r0 ? i0 : 1) * (kx_index)(r1 ? i1 : 1) * (r2 ? i2 : 1) * (r3 ? i3 : 1));
    KX_GRID_STRIDE_LOOP(e, n)
    {
        int c0, c1, c2, c3;
        kx_coords4(e, o1, o2, o3, &c0, &c1, &c2, &c3);
        double sum = 0.0;
        for (int a = r0 ? 0 : c0; a < (r0 ? i0 : c0 + 1); ++a)
            for (int b = r1 ? 0 : c1; b < (r1 ? i1 : c1 + 1); ++b)
                for (int c = r2 ? 0 : c2; c < (r2 ? i2 : c2 + 1); ++c)
                    for (int d = r3 ? 0 : c3; d < (r3 ? i3 : c3 + 1); ++d)
                        sum += x[(((kx_index)a * i1 + b) * i2 + c) * i3 + d];
        y[e] = (float)(mean ? sum / count : sum);
    }
}

// ReduceMax (kind 0) / ReduceMin (kind 1) over flagged axes: the extreme in float (exact, no
// rounding); a NaN in the window makes the output NaN, as in PyTorch.
extern "C" __global__ void reduce_extreme_forward(float* __restrict__ y, const float* __restrict__ x, int i0, int i1,
                                                  int i2, int i3, int r0, int r1, int r2, int r3, int kind)
{
    const int o0 = r0 ? 1 : i0, o1 = r1 ? 1 : i1, o2 = r2 ? 1 : i2, o3 = r3 ? 1 : i3;
    const kx_index n = (kx_index)o0 * o1 * o2 * o3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        int c0, c1, c2, c3;
        kx_coords4(e, o1, o2, o3, &c0, &c1, &c2, &c3);
        float best = x[(((kx_index)c0 * i1 + c1) * i2 + c2) * i3 + c3];
        for (int a = r0 ? 0 : c0; a < (r0 ? i0 : c0 + 1); ++a)
            for (int b = r1 ? 0 : c1; b < (r1 ? i1 : c1 + 1); ++b)
                for (int c = r2 ? 0 : c2; c < (r2 ? i2 : c2 + 1); ++c)
                    for (int d = r3 ? 0 : c3; d < (r3 ? i3 : c3 + 1); ++d) {
                        const float v = x[(((kx_index)a * i1 + b) * i2 + c) * i3 + d];
                        if (v != v || (kind == 0 ? v > best : v < best))
                            best = v;
                        if (best != best)
                            break;
                    }
        y[e] = best;
    }
}

// Their backward (PyTorch's amax/amin rule): dy split evenly among the inputs equal to the output,
// dx[i] = dy[o] / ties where x[i] == y[o], else 0 (and 0 everywhere where the output is NaN).
extern "C" __global__ void reduce_extreme_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                                   const float* __restrict__ x, const float* __restrict__ y, int i0,
                                                   int i1, int i2, int i3, int r0, int r1, int r2, int r3)
{
    const int o1 = r1 ? 1 : i1, o2 = r2 ? 1 : i2, o3 = r3 ? 1 : i3;
    const kx_index n = (kx_index)i0 * i1 * i2 * i3;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        int c0, c1, c2, c3;
        kx_coords4(e, i1, i2, i3, &c0, &c1, &c2, &c3);
        const kx_index o = (((kx_index)(r0 ? 0 : c0) * o1 + (r1 ? 0 : c1)) * o2 + (r2 ? 0 : c2)) * o3 + (r3 ? 0 : c3);
        const float best = y[o];
        if (x[e] != best) {
            dx[e] = 0.0f;
            continue;
        }
        float ties = 0.0f;
        for (int a = r0 ? 0 : c0; a < (r0 ? i0 : c0 + 1); ++a)
            for (int b = r1 ? 0 : c1; b < (r1 ? i1 : c1 + 1); ++b)
                for (int c = r2 ? 0 : c2; c < (r2 ? i2 : c2 + 1); ++c)
                    for (int d = r3 ? 0 : c3; d < (r3 ? i3 : c3 + 1); ++d)
                        ties += x[(((kx_index)(r0 ? a : c0) * i1 + (r1 ? b : c1)) * i2 + (r2 ? c : c2)) * i3
                                  + (r3 ? d : c3)] == best ? 1.0f : 0.0f;
        dx[e] = dy[o] / ties;
    }
}

extern "C" __global__ void reduce_backward(float* __restrict__ dx, const float* __restrict__ dy, int i0, int i1,
                                           int i2, int i3, int r0, int r1, int r2, int r3, int mean)
{
    const int o1 = r1 ? 1 : i1, o2 = r2 ? 1 : i2, o3 = r3 ? 1 : i3;
    const kx_index n = (kx_index)i0 * i1 * i2 * i3;
    const double count = (double)((r0 ? i0 : 1) * (kx_index)(r1 ? i1 : 1) * (r2 ? i2 : 1) * (r3 ? i3 : 1));
    KX_GRID_STRIDE_LOOP(e, n)
    {
        int c0, c1, c2, c3;
        kx_coords4(e, i1, i2, i3, &c0, &c1, &c2, &c3);
        const kx_index o = (((kx_index)(r0 ? 0 : c0) * o1 + (r1 ? 0 : c1)) * o2 + (r2 ? 0 : c2)) * o3 + (r3 ? 0 : c3);
        dx[e] = mean ? (float)((double)dy[o] / count) : dy[o];
    }
}
