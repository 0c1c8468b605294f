// kernels/shape.cu: data movement with no arithmetic: strided copies (Transpose of up to 6 axes,
// Expand's broadcast), gathers along one axis (a Gather's per-request ids; Select's constant indices,
// for Gather and Slice, passed the same way) and Resize over tap tables, with their backward. Every output element is written by one thread; nothing is rounded, so results equal
// the CPU's bit for bit.
#include "common.cuh"

// Output dims o0..o5 (leading 1s), and for each output axis the input's element stride (0 where
// the input is broadcast along it). y[e] = x[sum_d coord_d(e) * s_d].
extern "C" __global__ void strided_copy6(float* __restrict__ y, const float* __restrict__ x, int o0, int o1,
                                         int o2, int o3, int o4, int o5, long long s0, long long s1,
                                         long long s2, long long s3, long long s4, long long s5)
{
    const kx_index n = (kx_index)o0 * o1 * o2 * o3 * o4 * o5;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        kx_index r = e;
        kx_index src = (r % o5) * s5;
        r /= o5;
        src += (r % o4) * s4;
        r /= o4;
        src += (r % o3) * s3;
        r /= o3;
        src += (r % o2) * s2;
        r /= o2;
        src += (r % o1) * s1;
        r /= o1;
        src += r * s0;
        y[e] = x[src];
    }
}

// Ids along one axis (token ids into an embedding table, or a Select's constant indices): floats holding integers,
// negative ones counting from the end. Ids are checked where requests enter; one out of range
// that still arrives reads nothing and yields NaN rather than another row's data.
__device__ __forceinline__ int kx_gather_id(const float* ids, int j, int dim)
{
    int id = (int)ids[j];
    id = id < 0 ? id + dim : id;
    return id >= 0 && id < dim ? id : -1;
}

// x viewed as [outer, dim, inner], y as [outer, count, inner]: y[o, j, i] = x[o, ids[j], i].
extern "C" __global__ void gather_forward(float* __restrict__ y, const float* __restrict__ x,
                                          const float* __restrict__ ids, long long outer, int count, int dim,
                                          long long inner)
{
    const kx_index n = (kx_index)outer * count * inner;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const kx_index i = e % inner;
        const kx_index r = e / inner;
        const int id = kx_gather_id(ids, (int)(r % count), dim);
        const kx_index o = r / count;
        y[e] = id >= 0 ? x[(o * dim + id) * inner + i] : __int_as_float(0x7fc00000);
    }
}

// The table's gradient: dx[o, k, i] = sum over j with ids[j] == k of dy[o, j, i], increasing j.
extern "C" __global__ void gather_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                           const float* __restrict__ ids, long long outer, int count, int dim,
                                           long long inner)
{
    const kx_index n = (kx_index)outer * dim * inner;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const kx_index i = e % inner;
        const kx_index r = e / inner;
        const int k = (int)(r % dim);
        const kx_index o = r / dim;
        float sum = 0.0f;
        for (int j = 0; j < count; ++j)
            if (kx_gather_id(ids, j, dim) == k)
                sum += dy[(o * count + j) * inner + i];
        dx[e] = sum;
    }
}

// Resize of NCHW's spatial axes: each output row oh reads input rows ih[2oh], ih[2oh+1] with weights
// wh[2oh], wh[2oh+1] (nearest: the second weight 0), columns likewise; summed in double, rounded once.
extern "C" __global__ void resize_forward(float* __restrict__ y, const float* __restrict__ x,
                                          const int* __restrict__ ih, const float* __restrict__ wh,
                                          const int* __restrict__ iw, const float* __restrict__ ww, long long planes,
                                          int h, int w, int oh, int ow)
{
    const kx_index n = (kx_index)planes * oh * ow;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const int j = (int)(e % ow);
        const kx_index r = e / ow;
        const int i = (int)(r % oh);
        const kx_index p = r / oh;
        double v = 0.0;
        for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b)
                v += (double)wh[2 * i + a] * (double)ww[2 * j + b] * (double)x[(p * h + ih[2 * i + a]) * w + iw[2 * j + b]];
        y[e] = (float)v;
    }
}

// Its backward, gathered per input element (no atomics): the output rows that read input row i are
// [lo_h[i], hi_h[i]) (taps are monotone), columns likewise; contributions summed in double in
// output order, as the CPU twin scatters them.
extern "C" __global__ void resize_backward(float* __restrict__ dx, const float* __restrict__ dy,
                                           const int* __restrict__ ih, const float* __restrict__ wh,
                                           const int* __restrict__ iw, const float* __restrict__ ww,
                                           const int* __restrict__ lo_h, const int* __restrict__ hi_h,
                                           const int* __restrict__ lo_w, const int* __restrict__ hi_w, long long planes,
                                           int h, int w, int oh, int ow)
{
    const kx_index n = (kx_index)planes * h * w;
    KX_GRID_STRIDE_LOOP(e, n)
    {
        const int j = (int)(e % w);
        const kx_index r = e / w;
        const int i = (int)(r % h);
        const kx_index p = r / h;
        double v = 0.0;
        for (int o = lo_h[i]; o < hi_h[i]; ++o)
            for (int q = lo_w[j]; q < hi_w[j]; ++q)
                for (int a = 0; a < 2; ++a)
                    for (int b = 0; b < 2; ++b)
                        if (ih[2 * o + a] == i && iw[2 * q + b] == j)
                            v += (double)wh[2 * o + a] * (double)ww[2 * q + b] * (double)dy[(p * oh + o) * ow + q];
        dx[e] = (float)v;
    }
}
