// kxai's binding to oneDNN's convolutions (dev.kxai.backend.cpu.OneDnn): forward and input gradient
// of a 2-D convolution in float, on the whole batch at once, for the CPU backend's float path.
//
// Why oneDNN: its direct convolutions run on blocked layouts (nChw8c/16c) at about twice what
// im2col + OpenBLAS sgemm reaches on the same cores, with no im2col/col2im traffic. kxai keeps its
// own guarantees on top: the forward is a plain float sum of products in some order (direct
// algorithm only, never Winograd, whose transforms add error outside that bound), so the Java side
// bounds each output's rounding by gamma_{k+1} * sum|terms| and recomputes the near-decision ones in
// double, as it does for sgemm.
//
// One Conv = one handle: the weights and bias copied once (the Java arrays may move), primitives and
// the weights reordered to each primitive's layout cached per batch size. Handles are shared by the
// threads of a service: the cache is under a mutex, execution is thread-safe in oneDNN, and the
// blocked copies of activations live in per-thread buffers.
#include <jni.h>
#include <dnnl.hpp>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <string>
#include <vector>

extern "C" void omp_set_num_threads(int);

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// geometry as the Java side passes it (OneDnn.geometry)
// CS: input channels per slice of the forward (groups == 1 only; CS >= C: one slice)
enum Geom { C, H, W, M, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW, G, OH, OW, CS, GEOM_LEN };

// The forward runs over slices of the input channels, each a convolution of CS channels whose float
// sum is added to the output by oneDNN's sum post-op: every output is then a float sum tree of depth
// at most CS*KH*KW + slices (Higham: error <= gamma_depth * sum|terms|, whatever the order inside),
// instead of C*KH*KW for one convolution over all channels -- the bound the Java side checks decisions
// against, and with it the share of outputs it must recompute in double, stays that of a K-blocked GEMM.
struct SlicePrim {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward prim;
};

struct PerBatch {
    std::vector<SlicePrim> slices;  // one per slice of the input channels
    std::vector<memory> sliceWeights;
    bool hasBwd = false;
    dnnl::convolution_backward_data::primitive_desc bwdPd;
    dnnl::convolution_backward_data bwd;
    memory bwdWeights;
};

struct Conv {
    int g[GEOM_LEN];
    std::vector<float> weights;  // oihw (goihw for groups), as ONNX stores them
    std::vector<float> bias;     // empty: none
    std::mutex lock;
    std::map<int, std::shared_ptr<PerBatch>> batches;

    int slices() const { return g[CS] >= g[C] ? 1 : (g[C] + g[CS] - 1) / g[CS]; }
    int sliceChannels(int j) const { return slices() == 1 ? g[C] : std::min(g[CS], g[C] - j * g[CS]); }
};

dnnl::engine &engine() {
    static dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}

memory::dims srcDims(const Conv &c, int n, int channels) { return {n, channels, c.g[H], c.g[W]}; }
memory::dims srcDims(const Conv &c, int n) { return srcDims(c, n, c.g[C]); }
memory::dims dstDims(const Conv &c, int n) { return {n, c.g[M], c.g[OH], c.g[OW]}; }
memory::dims weightDims(const Conv &c, int channels) {
    if (c.g[G] == 1) return {c.g[M], channels, c.g[KH], c.g[KW]};
    return {c.g[G], c.g[M] / c.g[G], channels / c.g[G], c.g[KH], c.g[KW]};
}
memory::dims weightDims(const Conv &c) { return weightDims(c, c.g[C]); }
tag weightTag(const Conv &c) { return c.g[G] == 1 ? tag::oihw : tag::goihw; }

// the plain NCHW input's channels [c0, c0 + channels) of every image, as a strided view
memory::desc srcSliceDesc(const Conv &c, int n, int channels) {
    memory::dim plane = static_cast<memory::dim>(c.g[H]) * c.g[W];
    return memory::desc(srcDims(c, n, channels), dt::f32,
                        memory::dims{c.g[C] * plane, plane, c.g[W], 1});
}

// weights [M, C, KH, KW]'s input channels [c0, c0 + channels) (groups == 1) or all of them, reordered
// into the layout a primitive chose
memory reorderedWeights(Conv &c, int c0, int channels, const memory::desc &want) {
    memory::desc view;
    float *base = c.weights.data();
    if (c.g[G] == 1) {
        memory::dim taps = static_cast<memory::dim>(c.g[KH]) * c.g[KW];
        view = memory::desc(weightDims(c, channels), dt::f32, memory::dims{c.g[C] * taps, taps, c.g[KW], 1});
        base += c0 * taps;
    } else {
        view = memory::desc(weightDims(c), dt::f32, weightTag(c));
    }
    memory user(view, engine(), base);
    memory out(want, engine());
    dnnl::stream s(engine());
    dnnl::reorder(user, out).execute(s, user, out);
    s.wait();
    return out;
}

std::shared_ptr<PerBatch> perBatch(Conv &c, int n, bool backward) {
    std::lock_guard<std::mutex> guard(c.lock);
    auto &slot = c.batches[n];
    memory::dims strides = {c.g[SH], c.g[SW]};
    memory::dims dilation = {c.g[DH] - 1, c.g[DW] - 1};  // oneDNN counts dilation from 0
    memory::dims padL = {c.g[PT], c.g[PL]};
    memory::dims padR = {c.g[PB], c.g[PR]};
    if (!slot) {
        auto pb = std::make_shared<PerBatch>();
        memory::desc dst(dstDims(c, n), dt::f32, tag::any);
        for (int j = 0; j < c.slices(); j++) {
            int channels = c.sliceChannels(j);
            memory::desc src(srcDims(c, n, channels), dt::f32, tag::any);
            memory::desc wei(weightDims(c, channels), dt::f32, tag::any);
            SlicePrim sp;
            dnnl::primitive_attr attr;
            if (j > 0) {
                dnnl::post_ops ops;
                ops.append_sum(1.0f);  // dst += this slice's sum (in float)
                attr.set_post_ops(ops);
            }
            // forward_training: the first slice's primitive is the backward's hint when there is one
            if (j == 0 && !c.bias.empty()) {
                memory::desc b({c.g[M]}, dt::f32, tag::x);
                dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training,
                                                  dnnl::algorithm::convolution_direct, src, wei, b, dst, strides,
                                                  dilation, padL, padR);
                sp.pd = dnnl::convolution_forward::primitive_desc(d, attr, engine());
            } else {
                dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training,
                                                  dnnl::algorithm::convolution_direct, src, wei, dst, strides,
                                                  dilation, padL, padR);
                sp.pd = dnnl::convolution_forward::primitive_desc(d, attr, engine());
            }
            // every slice accumulates into the first slice's layout
            if (j == 0) dst = sp.pd.dst_desc();
            sp.prim = dnnl::convolution_forward(sp.pd);
            pb->sliceWeights.push_back(reorderedWeights(c, j * c.g[CS], channels, sp.pd.weights_desc()));
            pb->slices.push_back(std::move(sp));
        }
        slot = pb;
    }
    if (backward && !slot->hasBwd) {
        PerBatch &pb = *slot;
        memory::desc dsrc(srcDims(c, n), dt::f32, tag::any);
        memory::desc wei(weightDims(c), dt::f32, tag::any);
        memory::desc ddst(dstDims(c, n), dt::f32, tag::any);
        dnnl::convolution_forward::desc hd(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                           dsrc, wei, ddst, strides, dilation, padL, padR);
        dnnl::convolution_forward::primitive_desc hint(hd, engine());
        dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, dsrc, wei, ddst, strides,
                                                dilation, padL, padR);
        pb.bwdPd = dnnl::convolution_backward_data::primitive_desc(d, engine(), hint);
        pb.bwd = dnnl::convolution_backward_data(pb.bwdPd);
        pb.bwdWeights = reorderedWeights(c, 0, c.g[C], pb.bwdPd.weights_desc());
        pb.hasBwd = true;
    }
    return slot;
}

// per-thread buffers for the blocked copies of one call's input and output (grown, never shrunk)
float *scratch(int which, size_t bytes) {
    thread_local std::vector<float> buffers[2];
    auto &b = buffers[which];
    if (b.size() * sizeof(float) < bytes) b.resize(bytes / sizeof(float) + 16);
    return b.data();
}

void throwJava(JNIEnv *env, const std::string &message) {
    jclass cls = env->FindClass("java/lang/IllegalStateException");
    if (cls != nullptr) env->ThrowNew(cls, message.c_str());
}

// pins the Java arrays `in` (read) and `out` (written) for body(inPtr, outPtr) -- no JNI call may run
// meanwhile -- and turns an exception of oneDNN's into an IllegalStateException once they are released
template <typename Body>
void pinned(JNIEnv *env, jfloatArray in, jfloatArray out, Body body) {
    float *inPtr = static_cast<float *>(env->GetPrimitiveArrayCritical(in, nullptr));
    float *outPtr = inPtr == nullptr ? nullptr : static_cast<float *>(env->GetPrimitiveArrayCritical(out, nullptr));
    if (outPtr == nullptr) {
        if (inPtr != nullptr) env->ReleasePrimitiveArrayCritical(in, inPtr, JNI_ABORT);
        return;  // OutOfMemoryError pending
    }
    std::string error;
    try {
        body(inPtr, outPtr);
    } catch (const dnnl::error &e) {
        error = std::string("oneDNN: ") + e.what();
    } catch (const std::exception &e) {
        error = std::string("oneDNN binding: ") + e.what();
    }
    env->ReleasePrimitiveArrayCritical(out, outPtr, 0);
    env->ReleasePrimitiveArrayCritical(in, inPtr, JNI_ABORT);
    if (!error.empty()) throwJava(env, error);
}

// runs one primitive from the plain NCHW array `in` to the plain NCHW array `out` (Java arrays,
// pinned for the call), reordering through the primitive's layouts where they differ
template <typename Exec>
void run(JNIEnv *env, jfloatArray in, const memory::desc &inPlain, const memory::desc &inWant, jfloatArray out,
         const memory::desc &outPlain, const memory::desc &outWant, Exec exec) {
    pinned(env, in, out, [&](float *inPtr, float *outPtr) {
        dnnl::stream s(engine());
        memory inUser(inPlain, engine(), inPtr);
        memory outUser(outPlain, engine(), outPtr);
        memory inMem = inWant == inPlain ? inUser : memory(inWant, engine(), scratch(0, inWant.get_size()));
        memory outMem = outWant == outPlain ? outUser : memory(outWant, engine(), scratch(1, outWant.get_size()));
        if (inWant != inPlain) dnnl::reorder(inUser, inMem).execute(s, inUser, inMem);
        exec(s, inMem, outMem);
        if (outWant != outPlain) dnnl::reorder(outMem, outUser).execute(s, outMem, outUser);
        s.wait();
    });
}

}  // namespace

extern "C" {

JNIEXPORT jstring JNICALL Java_dev_kxai_backend_cpu_OneDnn_version(JNIEnv *env, jclass) {
    const dnnl_version_t *v = dnnl_version();
    std::string s = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                    std::to_string(v->patch) + " (" + (v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other") +
                    " threads)";
    return env->NewStringUTF(s.c_str());
}

// the OpenMP wait policy this process runs with (kxai_ompenv.c sets it before libgomp loads)
JNIEXPORT jstring JNICALL Java_dev_kxai_backend_cpu_OneDnn_waitPolicy(JNIEnv *env, jclass) {
    const char *v = std::getenv("OMP_WAIT_POLICY");
    return env->NewStringUTF(v == nullptr ? "" : v);
}

JNIEXPORT jlong JNICALL Java_dev_kxai_backend_cpu_OneDnn_create(JNIEnv *env, jclass, jintArray geometry,
                                                                jfloatArray weights, jfloatArray bias) {
    if (env->GetArrayLength(geometry) != GEOM_LEN) {
        throwJava(env, "oneDNN binding: geometry needs " + std::to_string(GEOM_LEN) + " values");
        return 0;
    }
    auto *c = new Conv();
    env->GetIntArrayRegion(geometry, 0, GEOM_LEN, c->g);
    c->weights.resize(env->GetArrayLength(weights));
    env->GetFloatArrayRegion(weights, 0, static_cast<jsize>(c->weights.size()), c->weights.data());
    if (bias != nullptr) {
        c->bias.resize(env->GetArrayLength(bias));
        env->GetFloatArrayRegion(bias, 0, static_cast<jsize>(c->bias.size()), c->bias.data());
    }
    return reinterpret_cast<jlong>(c);
}

JNIEXPORT void JNICALL Java_dev_kxai_backend_cpu_OneDnn_free(JNIEnv *, jclass, jlong handle) {
    delete reinterpret_cast<Conv *>(handle);
}

// y[n, M, OH, OW] = conv(x[n, C, H, W]) + bias, in float, slice by slice, with `threads` OpenMP threads
JNIEXPORT void JNICALL Java_dev_kxai_backend_cpu_OneDnn_forward(JNIEnv *env, jclass, jlong handle, jint n,
                                                                jfloatArray x, jfloatArray y, jint threads) {
    Conv &c = *reinterpret_cast<Conv *>(handle);
    std::shared_ptr<PerBatch> pb;
    try {
        pb = perBatch(c, n, false);
    } catch (const dnnl::error &e) {
        throwJava(env, std::string("oneDNN: no direct convolution for this layer: ") + e.what());
        return;
    }
    omp_set_num_threads(threads);
    pinned(env, x, y, [&](float *xPtr, float *yPtr) {
        dnnl::stream s(engine());
        memory::desc yPlain(dstDims(c, n), dt::f32, tag::nchw);
        memory yUser(yPlain, engine(), yPtr);
        const memory::desc &dstWant = pb->slices[0].pd.dst_desc();
        memory dst = dstWant == yPlain ? yUser : memory(dstWant, engine(), scratch(1, dstWant.get_size()));
        memory bias;
        if (!c.bias.empty()) bias = memory({{c.g[M]}, dt::f32, tag::x}, engine(), c.bias.data());
        size_t plane = static_cast<size_t>(c.g[H]) * c.g[W];
        for (size_t j = 0; j < pb->slices.size(); j++) {
            SlicePrim &sp = pb->slices[j];
            int channels = c.sliceChannels(static_cast<int>(j));
            memory::desc view = srcSliceDesc(c, n, channels);
            memory xSlice(view, engine(), xPtr + j * c.g[CS] * plane);
            memory src = sp.pd.src_desc() == view ? xSlice
                                                  : memory(sp.pd.src_desc(), engine(), scratch(0, sp.pd.src_desc().get_size()));
            if (!(sp.pd.src_desc() == view)) dnnl::reorder(xSlice, src).execute(s, xSlice, src);
            std::unordered_map<int, memory> args = {
                {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, pb->sliceWeights[j]}, {DNNL_ARG_DST, dst}};
            if (j == 0 && !c.bias.empty()) args[DNNL_ARG_BIAS] = bias;
            sp.prim.execute(s, args);
        }
        if (!(dstWant == yPlain)) dnnl::reorder(dst, yUser).execute(s, dst, yUser);
        s.wait();
    });
}

// dx[n, C, H, W] = the input gradient of the convolution for dy[n, M, OH, OW], in float
JNIEXPORT void JNICALL Java_dev_kxai_backend_cpu_OneDnn_backwardData(JNIEnv *env, jclass, jlong handle, jint n,
                                                                     jfloatArray dy, jfloatArray dx, jint threads) {
    Conv &c = *reinterpret_cast<Conv *>(handle);
    std::shared_ptr<PerBatch> pb;
    try {
        pb = perBatch(c, n, true);
    } catch (const dnnl::error &e) {
        throwJava(env, std::string("oneDNN: no direct backward-data convolution for this layer: ") + e.what());
        return;
    }
    omp_set_num_threads(threads);
    run(env, dy, {dstDims(c, n), dt::f32, tag::nchw}, pb->bwdPd.diff_dst_desc(), dx,
        {srcDims(c, n), dt::f32, tag::nchw}, pb->bwdPd.diff_src_desc(),
        [&](dnnl::stream &s, memory &ddst, memory &dsrc) {
            pb->bwd.execute(s, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, pb->bwdWeights},
                                {DNNL_ARG_DIFF_SRC, dsrc}});
        });
}

// the implementation oneDNN chose for a layer at batch n ("jit:avx512_core", "gemm:jit", ...)
JNIEXPORT jstring JNICALL Java_dev_kxai_backend_cpu_OneDnn_implementation(JNIEnv *env, jclass, jlong handle,
                                                                          jint n, jboolean backward) {
    Conv &c = *reinterpret_cast<Conv *>(handle);
    try {
        auto pb = perBatch(c, n, backward);
        return env->NewStringUTF(backward ? pb->bwdPd.impl_info_str() : pb->slices[0].pd.impl_info_str());
    } catch (const dnnl::error &e) {
        throwJava(env, std::string("oneDNN: ") + e.what());
        return nullptr;
    }
}

}  // extern "C"
