// libcudnn.cpp: the fake cuDNN, built as libcudnn.so.9 (linked with
// OpenBLAS): the legacy
// convolution entry points cuda/cudnn.go resolves, computed on the host
// (device pointers are host pointers under the fake driver), with the
// contract a real cuDNN 9 has:
//
//   - descriptors must be created, set and not yet destroyed; tensors are
//     4-D NHWC float, filters KRSC ("NHWC") float, convolutions 2-D
//     cross-correlations whose group count divides both channel counts;
//     the output shape must be the one cudnnGetConvolution2dForwardOutputDim
//     gives; anything else is CUDNN_STATUS_BAD_PARAM (or _NOT_SUPPORTED);
//   - each algorithm needs the workspace cudnnGet*WorkspaceSize reports;
//     a smaller one is CUDNN_STATUS_BAD_PARAM, and the fake writes every
//     byte of the workspace it needs (so AddressSanitizer, in the checked
//     build, catches a buffer shorter than the size passed);
//   - out = alpha·conv + beta·out, and with beta = 0 out is not read;
//   - the heuristics (cudnnGet*Algorithm_v7) list every algorithm of the
//     pass in a fixed order, the unsupported ones (FFT, Winograd) with
//     CUDNN_STATUS_NOT_SUPPORTED; the ones that real cuDNN implements with
//     atomics are marked non-deterministic; cudnnFind*AlgorithmEx returns
//     the supported algorithms that fit the workspace given, fastest first,
//     after writing the output;
//   - grouped convolutions (group count > 1, depthwise ones included) of
//     float NHWC tensors are described, but no algorithm of any pass
//     supports them: the heuristics and searches report every algorithm
//     with CUDNN_STATUS_NOT_SUPPORTED, and the workspace queries and the
//     passes themselves return it (see docs/gpu.md for why);
//   - the first convolution call (a heuristics query, search, workspace
//     query or pass) opens the sub-library libcudnn_cnn.so.9 by bare name,
//     as cuDNN 9 does, and fails with CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED
//     when the loader cannot find it;
//
// Every algorithm computes the same sums (im2col and OpenBLAS SGEMM per
// image and group), so results do not depend on which one runs, and the
// search, which computes once, reports times in the heuristics' order. QM_EMU_CUDNN_VERSION sets what
// cudnnGetVersion reports (default 90100, cuDNN 9.1.0), to test the
// binding's version check. Each call of an entry point that computes or
// chooses is counted in the census directory QM_EMU_CENSUS names.
#include <cblas.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "census.h"

#define API extern "C" __attribute__((visibility("default")))

typedef int cudnnStatus_t;

namespace {

// Status codes of cuDNN 9.
enum : cudnnStatus_t {
    SUCCESS = 0,
    NOT_INITIALIZED = 1001,
    SUBLIBRARY_LOADING_FAILED = 1008,
    BAD_PARAM = 2000,
    BAD_PARAM_NULL_POINTER = 2002,
    NOT_SUPPORTED = 3000,
};

enum { DATA_FLOAT = 0, TENSOR_NHWC = 1, CROSS_CORRELATION = 1 };
enum { FORWARD, BACKWARD_DATA, BACKWARD_FILTER };

struct Handle {
    void* stream = nullptr;
};
struct Tensor {
    bool set = false;
    int n = 0, c = 0, h = 0, w = 0;
};
struct Filter {
    bool set = false;
    int k = 0, c = 0, r = 0, s = 0;
};
struct Conv {
    bool set = false;
    int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1;
    int groups = 1;
    int math = 0;
};

// An algorithm of a pass, as the fake implements it.
struct Algo {
    int id;
    bool supported;
    bool deterministic;
    int workspace; // WS_* below
};
enum { WS_NONE, WS_TAPS, WS_COLUMNS, WS_FILTER };

// The algorithms per pass, in the heuristics' order. Numbers are cuDNN's
// (cudnnConvolutionFwdAlgo_t, ...BwdDataAlgo_t, ...BwdFilterAlgo_t).
const std::vector<Algo> algos[3] = {
    {{1, true, true, WS_TAPS}, {0, true, true, WS_NONE}, {2, true, true, WS_COLUMNS}, {4, false, true, WS_NONE},
        {6, false, true, WS_NONE}},
    {{0, true, false, WS_NONE}, {1, true, true, WS_NONE}, {2, false, true, WS_NONE}, {4, false, true, WS_NONE}},
    {{0, true, false, WS_NONE}, {1, true, true, WS_FILTER}, {3, true, false, WS_FILTER}, {2, false, true, WS_NONE}},
};

const char* const pass_names[3] = {"ConvolutionForward", "ConvolutionBackwardData", "ConvolutionBackwardFilter"};

std::mutex lock;
std::set<const void*> handles, tensors, filters, convs;

// load_cnn opens the convolution sub-library, once, by bare name.
cudnnStatus_t load_cnn()
{
    static const cudnnStatus_t st = [] {
        void* h = dlopen("libcudnn_cnn.so.9", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "fake cuDNN: %s\n", dlerror());
            return SUBLIBRARY_LOADING_FAILED;
        }
        return SUCCESS;
    }();
    return st;
}

// count records one call of an entry point in the census (census.h).
void count(const char* name)
{
    static const qm_emu::Census census("cudnn");
    census.count(name);
}

template <class T> T* live(std::set<const void*>& set, const void* p)
{
    std::lock_guard<std::mutex> g(lock);
    return set.count(p) ? (T*)p : nullptr;
}

template <class T> cudnnStatus_t create(std::set<const void*>& set, void** out)
{
    if (!out)
        return BAD_PARAM_NULL_POINTER;
    T* t = new T();
    std::lock_guard<std::mutex> g(lock);
    set.insert(t);
    *out = t;
    return SUCCESS;
}

template <class T> cudnnStatus_t destroy(std::set<const void*>& set, void* p)
{
    std::lock_guard<std::mutex> g(lock);
    if (!set.erase(p))
        return BAD_PARAM;
    delete (T*)p;
    return SUCCESS;
}

// Shape is a checked convolution: its descriptors, all set and mutually
// consistent.
struct Shape {
    int n, h, w, c, k, r, s, oh, ow, cg, kg;
    Conv conv;
};

int out_dim(int in, int pad, int filter, int dil, int stride)
{
    return 1 + (in + 2 * pad - ((filter - 1) * dil + 1)) / stride;
}

cudnnStatus_t check_shape(const void* xd, const void* wd, const void* cd, const void* yd, Shape* sh)
{
    Tensor* x = live<Tensor>(tensors, xd);
    Tensor* y = live<Tensor>(tensors, yd);
    Filter* w = live<Filter>(filters, wd);
    Conv* c = live<Conv>(convs, cd);
    if (!x || !y || !w || !c || !x->set || !y->set || !w->set || !c->set)
        return BAD_PARAM;
    if (x->c != w->c * c->groups || w->k % c->groups != 0 || y->c != w->k || y->n != x->n)
        return BAD_PARAM;
    if (y->h != out_dim(x->h, c->pad_h, w->r, c->dil_h, c->u) || y->w != out_dim(x->w, c->pad_w, w->s, c->dil_w, c->v))
        return BAD_PARAM;
    if (c->dil_h != 1 || c->dil_w != 1)
        return NOT_SUPPORTED; // the fake computes undilated convolutions only
    *sh = Shape{x->n, x->h, x->w, x->c, w->k, w->r, w->s, y->h, y->w, w->c, w->k / c->groups, *c};
    return SUCCESS;
}

// grouped_unsupported reports whether no algorithm runs sh: a grouped
// convolution of float NHWC tensors (the only kind the fake describes).
bool grouped_unsupported(const Shape& sh) { return sh.conv.groups > 1; }

size_t workspace_bytes(const Shape& sh, int kind)
{
    switch (kind) {
    case WS_TAPS:
        return (size_t)sh.r * sh.s * sh.cg * sizeof(int);
    case WS_COLUMNS:
        return (size_t)sh.n * sh.oh * sh.ow * sh.r * sh.s * sh.cg * sizeof(float);
    case WS_FILTER:
        return (size_t)sh.k * sh.r * sh.s * sh.cg * sizeof(float);
    }
    return 0;
}

const Algo* find_algo(int pass, int id)
{
    for (const Algo& a : algos[pass])
        if (a.id == id)
            return &a;
    return nullptr;
}

// im2col fills col [oh·ow, r·s·cg] with image n's input windows for group
// g (zero outside the image).
void im2col(const Shape& sh, const float* x, int n, int g, float* col)
{
    const Conv& cv = sh.conv;
    size_t rsc = (size_t)sh.r * sh.s * sh.cg;
    for (int oy = 0; oy < sh.oh; oy++)
        for (int ox = 0; ox < sh.ow; ox++) {
            float* row = col + ((size_t)oy * sh.ow + ox) * rsc;
            for (int r = 0; r < sh.r; r++)
                for (int s = 0; s < sh.s; s++) {
                    float* dst = row + ((size_t)r * sh.s + s) * sh.cg;
                    int iy = oy * cv.u - cv.pad_h + r, ix = ox * cv.v - cv.pad_w + s;
                    if (iy < 0 || iy >= sh.h || ix < 0 || ix >= sh.w) {
                        memset(dst, 0, sh.cg * sizeof(float));
                        continue;
                    }
                    memcpy(dst, x + (((size_t)n * sh.h + iy) * sh.w + ix) * sh.c + (size_t)g * sh.cg,
                        sh.cg * sizeof(float));
                }
        }
}

// col2im adds col [oh·ow, r·s·cg] into image n, group g, of acc [n,h,w,c].
void col2im(const Shape& sh, const float* col, int n, int g, float* acc)
{
    const Conv& cv = sh.conv;
    size_t rsc = (size_t)sh.r * sh.s * sh.cg;
    for (int oy = 0; oy < sh.oh; oy++)
        for (int ox = 0; ox < sh.ow; ox++)
            for (int r = 0; r < sh.r; r++)
                for (int s = 0; s < sh.s; s++) {
                    int iy = oy * cv.u - cv.pad_h + r, ix = ox * cv.v - cv.pad_w + s;
                    if (iy < 0 || iy >= sh.h || ix < 0 || ix >= sh.w)
                        continue;
                    const float* src = col + ((size_t)oy * sh.ow + ox) * rsc + ((size_t)r * sh.s + s) * sh.cg;
                    float* dst = acc + (((size_t)n * sh.h + iy) * sh.w + ix) * sh.c + (size_t)g * sh.cg;
                    for (int c = 0; c < sh.cg; c++)
                        dst[c] += src[c];
                }
}

// compute runs pass on host memory: out = alpha·conv + beta·out, with
// x [n,h,w,c], w [k,r,s,cg], y [n,oh,ow,k]: per image and group, im2col
// and an OpenBLAS SGEMM into a scratch sum (so that out is read only when
// beta is not 0).
void compute(int pass, const Shape& sh, const float* x, const float* w, const float* y, float* out, float alpha,
    float beta)
{
    size_t out_len = pass == FORWARD ? (size_t)sh.n * sh.oh * sh.ow * sh.k
        : pass == BACKWARD_DATA      ? (size_t)sh.n * sh.h * sh.w * sh.c
                                     : (size_t)sh.k * sh.r * sh.s * sh.cg;
    std::vector<float> acc(out_len, 0.0f);
    int pixels = sh.oh * sh.ow, rsc = sh.r * sh.s * sh.cg;
    std::vector<float> col((size_t)pixels * rsc);
    for (int n = 0; n < sh.n; n++)
        for (int g = 0; g < sh.conv.groups; g++) {
            const float* wg = w + (size_t)g * sh.kg * rsc;        // [kg, rsc]
            const float* yg = y + (size_t)n * pixels * sh.k + (size_t)g * sh.kg; // [pixels, kg], ld k
            switch (pass) {
            case FORWARD:
                im2col(sh, x, n, g, col.data());
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, pixels, sh.kg, rsc, 1.0f, col.data(), rsc, wg,
                    rsc, 0.0f, acc.data() + (size_t)n * pixels * sh.k + (size_t)g * sh.kg, sh.k);
                break;
            case BACKWARD_DATA:
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, pixels, rsc, sh.kg, 1.0f, yg, sh.k, wg, rsc,
                    0.0f, col.data(), rsc);
                col2im(sh, col.data(), n, g, acc.data());
                break;
            default:
                im2col(sh, x, n, g, col.data());
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, sh.kg, rsc, pixels, 1.0f, yg, sh.k, col.data(),
                    rsc, 1.0f, acc.data() + (size_t)g * sh.kg * rsc, rsc);
            }
        }
    for (size_t i = 0; i < out_len; i++)
        out[i] = beta != 0 ? alpha * acc[i] + beta * out[i] : alpha * acc[i];
}

// run checks one call of pass and computes it.
cudnnStatus_t run(int pass, void* handle, const void* alpha, const void* xd, const void* x, const void* wd, const void* w,
    const void* cd, const void* yd, const void* y, int algo, void* ws, size_t ws_bytes, const void* beta, void* out)
{
    count(pass_names[pass]);
    if (!live<Handle>(handles, handle))
        return NOT_INITIALIZED;
    if (cudnnStatus_t st = load_cnn())
        return st;
    Shape sh;
    if (cudnnStatus_t st = check_shape(xd, wd, cd, yd, &sh))
        return st;
    if (!alpha || !beta || !x || !w || !y)
        return BAD_PARAM_NULL_POINTER;
    const Algo* a = find_algo(pass, algo);
    if (!a)
        return BAD_PARAM;
    if (!a->supported || grouped_unsupported(sh))
        return NOT_SUPPORTED;
    size_t need = workspace_bytes(sh, a->workspace);
    if (ws_bytes < need || (need > 0 && !ws))
        return BAD_PARAM;
    if (need > 0)
        memset(ws, 0x5a, need);
    compute(pass, sh, (const float*)x, (const float*)w, (const float*)y, (float*)out, *(const float*)alpha,
        *(const float*)beta);
    return SUCCESS;
}

// Perf is cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t.
struct Perf {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    int determinism;
    int math;
    int reserved[3];
};

cudnnStatus_t heuristics(int pass, void* handle, const void* xd, const void* wd, const void* cd, const void* yd,
    int requested, int* returned, Perf* perf)
{
    count((std::string("Get") + pass_names[pass] + "Algorithm_v7").c_str());
    if (!live<Handle>(handles, handle))
        return NOT_INITIALIZED;
    if (cudnnStatus_t st = load_cnn())
        return st;
    Shape sh;
    if (cudnnStatus_t st = check_shape(xd, wd, cd, yd, &sh))
        return st;
    if (requested < 1 || !returned || !perf)
        return BAD_PARAM;
    int n = 0;
    for (const Algo& a : algos[pass]) {
        if (n == requested)
            break;
        bool ok = a.supported && !grouped_unsupported(sh);
        perf[n++] = Perf{a.id, ok ? SUCCESS : NOT_SUPPORTED, -1.0f, ok ? workspace_bytes(sh, a.workspace) : 0,
            a.deterministic ? 1 : 0, sh.conv.math, {0, 0, 0}};
    }
    *returned = n;
    return SUCCESS;
}

cudnnStatus_t find(int pass, void* handle, const void* xd, const void* x, const void* wd, const void* w, const void* cd,
    const void* yd, const void* y, void* out, int requested, int* returned, Perf* perf, void* ws, size_t ws_bytes)
{
    count((std::string("Find") + pass_names[pass] + "AlgorithmEx").c_str());
    if (!live<Handle>(handles, handle))
        return NOT_INITIALIZED;
    if (cudnnStatus_t st = load_cnn())
        return st;
    Shape sh;
    if (cudnnStatus_t st = check_shape(xd, wd, cd, yd, &sh))
        return st;
    if (requested < 1 || !returned || !perf || !x || !w || !y || (ws_bytes > 0 && !ws))
        return BAD_PARAM;
    if (grouped_unsupported(sh)) { // every algorithm fails, as the search reports it
        int n = 0;
        for (const Algo& a : algos[pass])
            if (n < requested)
                perf[n++] = Perf{a.id, NOT_SUPPORTED, -1.0f, 0, a.deterministic ? 1 : 0, sh.conv.math, {0, 0, 0}};
        *returned = n;
        return SUCCESS;
    }
    // Every algorithm computes the same sums: compute once (the output
    // must hold a result afterwards, as after a real search) and report
    // times that keep the heuristics' order, so the choice is the same on
    // every run.
    auto t0 = std::chrono::steady_clock::now();
    compute(pass, sh, (const float*)x, (const float*)w, (const float*)y, (float*)out, 1.0f, 0.0f);
    float ms = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::vector<Perf> found;
    for (const Algo& a : algos[pass]) {
        size_t need = workspace_bytes(sh, a.workspace);
        if (!a.supported || need > ws_bytes)
            continue;
        if (need > 0)
            memset(ws, 0x5a, need);
        float t = ms * (1.0f + 0.1f * (float)found.size());
        found.push_back(Perf{a.id, SUCCESS, t, need, a.deterministic ? 1 : 0, sh.conv.math, {0, 0, 0}});
    }
    int n = std::min((int)found.size(), requested);
    std::copy(found.begin(), found.begin() + n, perf);
    *returned = n;
    return SUCCESS;
}

cudnnStatus_t workspace(int pass, void* handle, const void* xd, const void* wd, const void* cd, const void* yd, int algo,
    size_t* bytes)
{
    count((std::string("Get") + pass_names[pass] + "WorkspaceSize").c_str());
    if (!live<Handle>(handles, handle))
        return NOT_INITIALIZED;
    if (cudnnStatus_t st = load_cnn())
        return st;
    Shape sh;
    if (cudnnStatus_t st = check_shape(xd, wd, cd, yd, &sh))
        return st;
    const Algo* a = find_algo(pass, algo);
    if (!a || !bytes)
        return BAD_PARAM;
    if (!a->supported || grouped_unsupported(sh))
        return NOT_SUPPORTED;
    *bytes = workspace_bytes(sh, a->workspace);
    return SUCCESS;
}

} // namespace

API size_t cudnnGetVersion(void)
{
    const char* v = getenv("QM_EMU_CUDNN_VERSION");
    return v && *v ? (size_t)atoll(v) : 90100;
}

// The CUDA runtime the fake says it was built for: 12.8.
API size_t cudnnGetCudartVersion(void) { return 12080; }

API const char* cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case SUCCESS:
        return "CUDNN_STATUS_SUCCESS";
    case NOT_INITIALIZED:
        return "CUDNN_STATUS_NOT_INITIALIZED";
    case BAD_PARAM:
        return "CUDNN_STATUS_BAD_PARAM";
    case BAD_PARAM_NULL_POINTER:
        return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case SUBLIBRARY_LOADING_FAILED:
        return "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED";
    case NOT_SUPPORTED:
        return "CUDNN_STATUS_NOT_SUPPORTED";
    }
    return "CUDNN_STATUS_UNKNOWN";
}

API cudnnStatus_t cudnnCreate(void** h) { return create<Handle>(handles, h); }
API cudnnStatus_t cudnnDestroy(void* h) { return destroy<Handle>(handles, h); }

API cudnnStatus_t cudnnSetStream(void* h, void* stream)
{
    Handle* p = live<Handle>(handles, h);
    if (!p)
        return NOT_INITIALIZED;
    p->stream = stream;
    return SUCCESS;
}

API cudnnStatus_t cudnnCreateTensorDescriptor(void** d) { return create<Tensor>(tensors, d); }
API cudnnStatus_t cudnnDestroyTensorDescriptor(void* d) { return destroy<Tensor>(tensors, d); }
API cudnnStatus_t cudnnCreateFilterDescriptor(void** d) { return create<Filter>(filters, d); }
API cudnnStatus_t cudnnDestroyFilterDescriptor(void* d) { return destroy<Filter>(filters, d); }
API cudnnStatus_t cudnnCreateConvolutionDescriptor(void** d) { return create<Conv>(convs, d); }
API cudnnStatus_t cudnnDestroyConvolutionDescriptor(void* d) { return destroy<Conv>(convs, d); }

API cudnnStatus_t cudnnSetTensor4dDescriptor(void* d, int format, int type, int n, int c, int h, int w)
{
    Tensor* t = live<Tensor>(tensors, d);
    if (!t || n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return BAD_PARAM;
    if (format != TENSOR_NHWC || type != DATA_FLOAT)
        return NOT_SUPPORTED;
    *t = Tensor{true, n, c, h, w};
    return SUCCESS;
}

API cudnnStatus_t cudnnSetFilter4dDescriptor(void* d, int type, int format, int k, int c, int h, int w)
{
    Filter* f = live<Filter>(filters, d);
    if (!f || k <= 0 || c <= 0 || h <= 0 || w <= 0)
        return BAD_PARAM;
    if (format != TENSOR_NHWC || type != DATA_FLOAT)
        return NOT_SUPPORTED;
    *f = Filter{true, k, c, h, w};
    return SUCCESS;
}

API cudnnStatus_t cudnnSetConvolution2dDescriptor(void* d, int pad_h, int pad_w, int u, int v, int dil_h, int dil_w,
    int mode, int compute_type)
{
    Conv* c = live<Conv>(convs, d);
    if (!c || pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0)
        return BAD_PARAM;
    if (mode != CROSS_CORRELATION || compute_type != DATA_FLOAT)
        return NOT_SUPPORTED;
    int groups = c->groups, math = c->math;
    *c = Conv{true, pad_h, pad_w, u, v, dil_h, dil_w, groups, math};
    return SUCCESS;
}

API cudnnStatus_t cudnnSetConvolutionGroupCount(void* d, int groups)
{
    Conv* c = live<Conv>(convs, d);
    if (!c || groups <= 0)
        return BAD_PARAM;
    c->groups = groups;
    return SUCCESS;
}

// Math types: DEFAULT (0), TENSOR_OP (1), TENSOR_OP_ALLOW_CONVERSION (2),
// FMA (3). The fake computes in full precision whichever is set.
API cudnnStatus_t cudnnSetConvolutionMathType(void* d, int math)
{
    Conv* c = live<Conv>(convs, d);
    if (!c || math < 0 || math > 3)
        return BAD_PARAM;
    c->math = math;
    return SUCCESS;
}

API cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const void* cd, const void* xd, const void* wd, int* n, int* c,
    int* h, int* w)
{
    Conv* cv = live<Conv>(convs, cd);
    Tensor* x = live<Tensor>(tensors, xd);
    Filter* f = live<Filter>(filters, wd);
    if (!cv || !x || !f || !cv->set || !x->set || !f->set || !n || !c || !h || !w)
        return BAD_PARAM;
    if (x->c != f->c * cv->groups)
        return BAD_PARAM;
    *n = x->n;
    *c = f->k;
    *h = out_dim(x->h, cv->pad_h, f->r, cv->dil_h, cv->u);
    *w = out_dim(x->w, cv->pad_w, f->s, cv->dil_w, cv->v);
    return *h > 0 && *w > 0 ? SUCCESS : BAD_PARAM;
}

// The three passes. Argument order is cuDNN's: forward (x, w → y),
// backward data (w, dy → dx), backward filter (x, dy → dw).

API cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(void* h, const void* xd, const void* wd, const void* cd,
    const void* yd, int requested, int* returned, Perf* perf)
{
    return heuristics(FORWARD, h, xd, wd, cd, yd, requested, returned, perf);
}
API cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(void* h, const void* wd, const void* dyd, const void* cd,
    const void* dxd, int requested, int* returned, Perf* perf)
{
    return heuristics(BACKWARD_DATA, h, dxd, wd, cd, dyd, requested, returned, perf);
}
API cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(void* h, const void* xd, const void* dyd,
    const void* cd, const void* dwd, int requested, int* returned, Perf* perf)
{
    return heuristics(BACKWARD_FILTER, h, xd, dwd, cd, dyd, requested, returned, perf);
}

API cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(void* h, const void* xd, const void* x, const void* wd,
    const void* w, const void* cd, const void* yd, void* y, int requested, int* returned, Perf* perf, void* ws,
    size_t ws_bytes)
{
    return find(FORWARD, h, xd, x, wd, w, cd, yd, y, y, requested, returned, perf, ws, ws_bytes);
}
API cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(void* h, const void* wd, const void* w, const void* dyd,
    const void* dy, const void* cd, const void* dxd, void* dx, int requested, int* returned, Perf* perf, void* ws,
    size_t ws_bytes)
{
    return find(BACKWARD_DATA, h, dxd, dx, wd, w, cd, dyd, dy, dx, requested, returned, perf, ws, ws_bytes);
}
API cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(void* h, const void* xd, const void* x,
    const void* dyd, const void* dy, const void* cd, const void* dwd, void* dw, int requested, int* returned,
    Perf* perf, void* ws, size_t ws_bytes)
{
    return find(BACKWARD_FILTER, h, xd, x, dwd, dw, cd, dyd, dy, dw, requested, returned, perf, ws, ws_bytes);
}

API cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(void* h, const void* xd, const void* wd, const void* cd,
    const void* yd, int algo, size_t* bytes)
{
    return workspace(FORWARD, h, xd, wd, cd, yd, algo, bytes);
}
API cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(void* h, const void* wd, const void* dyd, const void* cd,
    const void* dxd, int algo, size_t* bytes)
{
    return workspace(BACKWARD_DATA, h, dxd, wd, cd, dyd, algo, bytes);
}
API cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(void* h, const void* xd, const void* dyd,
    const void* cd, const void* dwd, int algo, size_t* bytes)
{
    return workspace(BACKWARD_FILTER, h, xd, dwd, cd, dyd, algo, bytes);
}

API cudnnStatus_t cudnnConvolutionForward(void* h, const void* alpha, const void* xd, const void* x, const void* wd,
    const void* w, const void* cd, int algo, void* ws, size_t ws_bytes, const void* beta, const void* yd, void* y)
{
    return run(FORWARD, h, alpha, xd, x, wd, w, cd, yd, y, algo, ws, ws_bytes, beta, y);
}
API cudnnStatus_t cudnnConvolutionBackwardData(void* h, const void* alpha, const void* wd, const void* w,
    const void* dyd, const void* dy, const void* cd, int algo, void* ws, size_t ws_bytes, const void* beta,
    const void* dxd, void* dx)
{
    return run(BACKWARD_DATA, h, alpha, dxd, dx, wd, w, cd, dyd, dy, algo, ws, ws_bytes, beta, dx);
}
API cudnnStatus_t cudnnConvolutionBackwardFilter(void* h, const void* alpha, const void* xd, const void* x,
    const void* dyd, const void* dy, const void* cd, int algo, void* ws, size_t ws_bytes, const void* beta,
    const void* dwd, void* dw)
{
    return run(BACKWARD_FILTER, h, alpha, xd, x, dwd, dw, cd, dyd, dy, algo, ws, ws_bytes, beta, dw);
}
