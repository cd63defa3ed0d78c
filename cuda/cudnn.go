//go:build cuda

package cuda

/*
#include <stdlib.h>
#include "binding.h"

// qm_cudnn holds the cuDNN entry points the binding calls. It lives in C
// memory, so the shims below can take it as one argument.
typedef struct {
	void* getVersion;
	void* getCudartVersion;
	void* getErrorString;
	void* create;
	void* destroy;
	void* setStream;
	void* createTensor;
	void* destroyTensor;
	void* setTensor4d;
	void* createFilter;
	void* destroyFilter;
	void* setFilter4d;
	void* createConv;
	void* destroyConv;
	void* setConv2d;
	void* setGroupCount;
	void* setMathType;
	void* getOutputDim;
	void* getFwd;
	void* getBwdData;
	void* getBwdFilter;
	void* findFwd;
	void* findBwdData;
	void* findBwdFilter;
	void* wsFwd;
	void* wsBwdData;
	void* wsBwdFilter;
	void* fwd;
	void* bwdData;
	void* bwdFilter;
} qm_cudnn;

// Enumerators of cudnn.h (the same values in cuDNN 8 and 9).
enum {
	QM_CUDNN_DATA_FLOAT = 0,
	QM_CUDNN_TENSOR_NHWC = 1,
	QM_CUDNN_CROSS_CORRELATION = 1,
};

// The passes of a convolution (convPass in Go).
enum { QM_PASS_FORWARD = 0, QM_PASS_BACKWARD_DATA = 1, QM_PASS_BACKWARD_FILTER = 2 };

// The descriptors of one convolution shape.
typedef struct {
	cudnnTensorDescriptor_t x, y;
	cudnnFilterDescriptor_t w;
	cudnnConvolutionDescriptor_t conv;
} qm_cudnn_desc;

typedef cudnnStatus_t (*qm_fn_create)(void**);
typedef cudnnStatus_t (*qm_fn_destroy)(void*);

static size_t qm_cudnnGetVersion(void* fn) { return ((size_t (*)(void))fn)(); }

static const char* qm_cudnnGetErrorString(void* fn, cudnnStatus_t s) {
	return ((const char* (*)(cudnnStatus_t))fn)(s);
}

static cudnnStatus_t qm_cudnnCreate(void* set, CUcontext ctx, const qm_cudnn* l, cudnnHandle_t* h) {
	QM_SET_CURRENT(set, ctx);
	return ((cudnnStatus_t (*)(cudnnHandle_t*))l->create)(h);
}

static cudnnStatus_t qm_cudnnDestroy(void* set, CUcontext ctx, const qm_cudnn* l, cudnnHandle_t h) {
	QM_SET_CURRENT(set, ctx);
	return ((cudnnStatus_t (*)(cudnnHandle_t))l->destroy)(h);
}

static cudnnStatus_t qm_cudnnSetStream(void* set, CUcontext ctx, const qm_cudnn* l, cudnnHandle_t h, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	return ((cudnnStatus_t (*)(cudnnHandle_t, CUstream))l->setStream)(h, s);
}

// qm_cudnn_describe creates and sets the descriptors of the convolution of
// x [n,h,w,c] (NHWC) by w [k,r,s,c/groups] (KRSC, cuDNN's NHWC filter
// layout) into y [n,k,oh,ow] (NHWC), and checks that cuDNN computes the
// same output shape. On failure *failed names the call and the caller
// destroys whatever d holds.
static cudnnStatus_t qm_cudnn_describe(const qm_cudnn* l, qm_cudnn_desc* d, int n, int h, int w, int c,
		int k, int r, int s, int stride, int pad, int groups, int oh, int ow, const char** failed) {
	cudnnStatus_t st;
#define QM_TRY(name, call)     \
	do {                       \
		*failed = name;        \
		if ((st = (call)) != 0) \
			return st;         \
	} while (0)
	QM_TRY("cudnnCreateTensorDescriptor", ((qm_fn_create)l->createTensor)((void**)&d->x));
	QM_TRY("cudnnCreateTensorDescriptor", ((qm_fn_create)l->createTensor)((void**)&d->y));
	QM_TRY("cudnnCreateFilterDescriptor", ((qm_fn_create)l->createFilter)((void**)&d->w));
	QM_TRY("cudnnCreateConvolutionDescriptor", ((qm_fn_create)l->createConv)((void**)&d->conv));
	QM_TRY("cudnnSetTensor4dDescriptor(x)",
		((cudnnStatus_t (*)(cudnnTensorDescriptor_t, int, int, int, int, int, int))l->setTensor4d)(
			d->x, QM_CUDNN_TENSOR_NHWC, QM_CUDNN_DATA_FLOAT, n, c, h, w));
	QM_TRY("cudnnSetFilter4dDescriptor",
		((cudnnStatus_t (*)(cudnnFilterDescriptor_t, int, int, int, int, int, int))l->setFilter4d)(
			d->w, QM_CUDNN_DATA_FLOAT, QM_CUDNN_TENSOR_NHWC, k, c / groups, r, s));
	QM_TRY("cudnnSetConvolution2dDescriptor",
		((cudnnStatus_t (*)(cudnnConvolutionDescriptor_t, int, int, int, int, int, int, int, int))l->setConv2d)(
			d->conv, pad, pad, stride, stride, 1, 1, QM_CUDNN_CROSS_CORRELATION, QM_CUDNN_DATA_FLOAT));
	QM_TRY("cudnnSetConvolutionGroupCount",
		((cudnnStatus_t (*)(cudnnConvolutionDescriptor_t, int))l->setGroupCount)(d->conv, groups));
	int dims[4];
	QM_TRY("cudnnGetConvolution2dForwardOutputDim",
		((cudnnStatus_t (*)(cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
			int*, int*, int*, int*))l->getOutputDim)(d->conv, d->x, d->w, &dims[0], &dims[1], &dims[2], &dims[3]));
	if (dims[0] != n || dims[1] != k || dims[2] != oh || dims[3] != ow) {
		*failed = "cudnnGetConvolution2dForwardOutputDim (output shape differs)";
		return -1;
	}
	QM_TRY("cudnnSetTensor4dDescriptor(y)",
		((cudnnStatus_t (*)(cudnnTensorDescriptor_t, int, int, int, int, int, int))l->setTensor4d)(
			d->y, QM_CUDNN_TENSOR_NHWC, QM_CUDNN_DATA_FLOAT, n, k, oh, ow));
	*failed = NULL;
	return 0;
#undef QM_TRY
}

// qm_cudnn_undescribe destroys the descriptors d holds.
static cudnnStatus_t qm_cudnn_undescribe(const qm_cudnn* l, qm_cudnn_desc* d) {
	cudnnStatus_t r = 0, s;
	if (d->conv && (s = ((qm_fn_destroy)l->destroyConv)(d->conv)) != 0) r = s;
	if (d->w && (s = ((qm_fn_destroy)l->destroyFilter)(d->w)) != 0) r = s;
	if (d->y && (s = ((qm_fn_destroy)l->destroyTensor)(d->y)) != 0) r = s;
	if (d->x && (s = ((qm_fn_destroy)l->destroyTensor)(d->x)) != 0) r = s;
	return r;
}

static cudnnStatus_t qm_setMath(const qm_cudnn* l, const qm_cudnn_desc* d, int math) {
	return ((cudnnStatus_t (*)(cudnnConvolutionDescriptor_t, int))l->setMathType)(d->conv, math);
}

// qm_cudnn_algorithms lists up to max algorithms for pass into out, best
// first, with math type math on the convolution descriptor: cuDNN's
// heuristics (find = 0) or its measurements on the operands x, w, y with
// workspace ws (find = 1; this overwrites the pass's output). For the
// backward passes y is dy, and x is dx or w is dw.
static cudnnStatus_t qm_cudnn_algorithms(void* set, CUcontext ctx, const qm_cudnn* l, cudnnHandle_t h,
		const qm_cudnn_desc* d, int pass, int find, int math, CUdeviceptr x, CUdeviceptr w, CUdeviceptr y,
		CUdeviceptr ws, size_t wsBytes, int max, int* n, qm_cudnnAlgoPerf* out) {
	QM_SET_CURRENT(set, ctx);
	cudnnStatus_t st = qm_setMath(l, d, math);
	if (st != 0)
		return st;
	void* px = (void*)(uintptr_t)x;
	void* pw = (void*)(uintptr_t)w;
	void* py = (void*)(uintptr_t)y;
	void* pws = (void*)(uintptr_t)ws;
	typedef cudnnStatus_t (*get_fn)(cudnnHandle_t, void*, void*, void*, void*, int, int*, qm_cudnnAlgoPerf*);
	typedef cudnnStatus_t (*find_fn)(cudnnHandle_t, void*, void*, void*, void*, void*, void*, void*, int, int*,
		qm_cudnnAlgoPerf*, void*, size_t);
	switch (pass) {
	case QM_PASS_FORWARD:
		return find ? ((find_fn)l->findFwd)(h, d->x, px, d->w, pw, d->conv, d->y, py, max, n, out, pws, wsBytes)
			: ((get_fn)l->getFwd)(h, d->x, d->w, d->conv, d->y, max, n, out);
	case QM_PASS_BACKWARD_DATA:
		return find ? ((find_fn)l->findBwdData)(h, d->w, pw, d->y, py, d->conv, d->x, px, max, n, out, pws, wsBytes)
			: ((get_fn)l->getBwdData)(h, d->w, d->y, d->conv, d->x, max, n, out);
	default:
		return find ? ((find_fn)l->findBwdFilter)(h, d->x, px, d->y, py, d->conv, d->w, pw, max, n, out, pws, wsBytes)
			: ((get_fn)l->getBwdFilter)(h, d->x, d->y, d->conv, d->w, max, n, out);
	}
}

// qm_cudnn_workspace reads the workspace algorithm algo of pass needs.
static cudnnStatus_t qm_cudnn_workspace(void* set, CUcontext ctx, const qm_cudnn* l, cudnnHandle_t h,
		const qm_cudnn_desc* d, int pass, int algo, int math, size_t* bytes) {
	QM_SET_CURRENT(set, ctx);
	cudnnStatus_t st = qm_setMath(l, d, math);
	if (st != 0)
		return st;
	typedef cudnnStatus_t (*ws_fn)(cudnnHandle_t, void*, void*, void*, void*, int, size_t*);
	switch (pass) {
	case QM_PASS_FORWARD:
		return ((ws_fn)l->wsFwd)(h, d->x, d->w, d->conv, d->y, algo, bytes);
	case QM_PASS_BACKWARD_DATA:
		return ((ws_fn)l->wsBwdData)(h, d->w, d->y, d->conv, d->x, algo, bytes);
	default:
		return ((ws_fn)l->wsBwdFilter)(h, d->x, d->y, d->conv, d->w, algo, bytes);
	}
}

// qm_cudnn_run queues pass with algorithm algo and math type math:
// out = conv + beta·out, where out is y (forward), x (dx, backward data) or
// w (dw, backward filter).
static cudnnStatus_t qm_cudnn_run(void* set, CUcontext ctx, const qm_cudnn* l, cudnnHandle_t h,
		const qm_cudnn_desc* d, int pass, int algo, int math, CUdeviceptr x, CUdeviceptr w, CUdeviceptr y,
		CUdeviceptr ws, size_t wsBytes, float beta) {
	QM_SET_CURRENT(set, ctx);
	cudnnStatus_t st = qm_setMath(l, d, math);
	if (st != 0)
		return st;
	float alpha = 1.0f;
	void* px = (void*)(uintptr_t)x;
	void* pw = (void*)(uintptr_t)w;
	void* py = (void*)(uintptr_t)y;
	void* pws = (void*)(uintptr_t)ws;
	typedef cudnnStatus_t (*run_fn)(cudnnHandle_t, const void*, void*, const void*, void*, const void*, void*, int,
		void*, size_t, const void*, void*, void*);
	switch (pass) {
	case QM_PASS_FORWARD:
		return ((run_fn)l->fwd)(h, &alpha, d->x, px, d->w, pw, d->conv, algo, pws, wsBytes, &beta, d->y, py);
	case QM_PASS_BACKWARD_DATA:
		return ((run_fn)l->bwdData)(h, &alpha, d->w, pw, d->y, py, d->conv, algo, pws, wsBytes, &beta, d->x, px);
	default:
		return ((run_fn)l->bwdFilter)(h, &alpha, d->x, px, d->y, py, d->conv, algo, pws, wsBytes, &beta, d->w, pw);
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/cuda/libsearch"
	"github.com/qmulgpu/qmulgpu/engine"
)

// cudnnSonames are the cuDNN versions tried, newest first. Each opens
// its sub-libraries (libcudnn_*.so.N) from its folder first: cuDNN 9
// loads them by bare name when it first needs them.
var cudnnSonames = []string{"libcudnn.so.9", "libcudnn.so.8"}

// minCudnnMajor is the oldest cuDNN the binding accepts: 8 brought the
// math types that TF32 needs, and the legacy entry points it calls keep
// their signatures from 8 through 9.
const minCudnnMajor = 8

// cuDNN math types (cudnnMathType_t).
const (
	cudnnDefaultMath = 0 // tensor cores allowed; TF32 for float data on sm_80+
	cudnnFMAMath     = 3 // no tensor cores: full FP32
)

// maxAlgos bounds the algorithms one query returns: more than any pass
// has (8 forward, 6 backward-data, 7 backward-filter algorithms).
const maxAlgos = 8

// cudnnVersion is a decoded cudnnGetVersion: MAJOR·1000 + MINOR·100 +
// PATCH up to cuDNN 8, MAJOR·10000 + MINOR·100 + PATCH from cuDNN 9.
type cudnnVersion struct{ major, minor, patch int }

func decodeCudnnVersion(v int) cudnnVersion {
	if v >= 10000 {
		return cudnnVersion{v / 10000, v / 100 % 100, v % 100}
	}
	return cudnnVersion{v / 1000, v / 100 % 10, v % 100}
}

func (v cudnnVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

// cudnn is the cuDNN library, opened with dlopen, and its entry points in
// C memory.
type cudnn struct {
	lib     *library
	version cudnnVersion
	// cudart is the CUDA runtime version it was built for
	// (cudnnGetCudartVersion: 1000·major + 10·minor; 0 when unknown).
	cudart int
	fn     *C.qm_cudnn
}

// symbols lists where each entry point goes. All are in cuDNN 8 and 9.
func (l *cudnn) symbols() []symbol {
	f := l.fn
	p := func(field *unsafe.Pointer, name string) symbol { return symbol{dst: field, names: []string{name}} }
	return []symbol{
		p(&f.getErrorString, "cudnnGetErrorString"),
		p(&f.create, "cudnnCreate"),
		p(&f.destroy, "cudnnDestroy"),
		p(&f.setStream, "cudnnSetStream"),
		p(&f.createTensor, "cudnnCreateTensorDescriptor"),
		p(&f.destroyTensor, "cudnnDestroyTensorDescriptor"),
		p(&f.setTensor4d, "cudnnSetTensor4dDescriptor"),
		p(&f.createFilter, "cudnnCreateFilterDescriptor"),
		p(&f.destroyFilter, "cudnnDestroyFilterDescriptor"),
		p(&f.setFilter4d, "cudnnSetFilter4dDescriptor"),
		p(&f.createConv, "cudnnCreateConvolutionDescriptor"),
		p(&f.destroyConv, "cudnnDestroyConvolutionDescriptor"),
		p(&f.setConv2d, "cudnnSetConvolution2dDescriptor"),
		p(&f.setGroupCount, "cudnnSetConvolutionGroupCount"),
		p(&f.setMathType, "cudnnSetConvolutionMathType"),
		p(&f.getOutputDim, "cudnnGetConvolution2dForwardOutputDim"),
		p(&f.getFwd, "cudnnGetConvolutionForwardAlgorithm_v7"),
		p(&f.getBwdData, "cudnnGetConvolutionBackwardDataAlgorithm_v7"),
		p(&f.getBwdFilter, "cudnnGetConvolutionBackwardFilterAlgorithm_v7"),
		p(&f.findFwd, "cudnnFindConvolutionForwardAlgorithmEx"),
		p(&f.findBwdData, "cudnnFindConvolutionBackwardDataAlgorithmEx"),
		p(&f.findBwdFilter, "cudnnFindConvolutionBackwardFilterAlgorithmEx"),
		p(&f.wsFwd, "cudnnGetConvolutionForwardWorkspaceSize"),
		p(&f.wsBwdData, "cudnnGetConvolutionBackwardDataWorkspaceSize"),
		p(&f.wsBwdFilter, "cudnnGetConvolutionBackwardFilterWorkspaceSize"),
		p(&f.fwd, "cudnnConvolutionForward"),
		p(&f.bwdData, "cudnnConvolutionBackwardData"),
		p(&f.bwdFilter, "cudnnConvolutionBackwardFilter"),
	}
}

// openCudnn opens one candidate (its sub-libraries first), checks its
// version and the CUDA runtime it was built for against driverMajor (the
// newest CUDA major version the driver runs; 0: not checked), and
// resolves its entry points.
func openCudnn(c libsearch.Candidate, driverMajor int) (*cudnn, error) {
	parts := "libcudnn_*.so*"
	if major := libsearch.Major(c.Path); major > 0 {
		parts = fmt.Sprintf("libcudnn_*.so.%d", major)
	}
	lib, err := openLibrary("cuDNN", c, "cuDNN sub-library", parts)
	if err != nil {
		return nil, err
	}
	l := &cudnn{lib: lib, fn: (*C.qm_cudnn)(C.calloc(1, C.size_t(unsafe.Sizeof(C.qm_cudnn{}))))}
	if err := l.check(driverMajor); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// check reads the version and resolves the entry points.
func (l *cudnn) check(driverMajor int) error {
	path := l.lib.path
	err := l.lib.resolve([]symbol{{dst: &l.fn.getVersion, names: []string{"cudnnGetVersion"}},
		{dst: &l.fn.getCudartVersion, names: []string{"cudnnGetCudartVersion"}, optional: true}})
	if err != nil {
		return fmt.Errorf("%w (not a cuDNN library?)", err)
	}
	l.version = decodeCudnnVersion(int(C.qm_cudnnGetVersion(l.fn.getVersion)))
	if l.version.major < minCudnnMajor {
		return fmt.Errorf("%s is cuDNN %v, too old: need %d or newer", path, l.version, minCudnnMajor)
	}
	if l.fn.getCudartVersion != nil {
		l.cudart = int(C.qm_cudnnGetVersion(l.fn.getCudartVersion))
	}
	if m := l.cudart / 1000; driverMajor > 0 && m > driverMajor {
		return fmt.Errorf("cuDNN %v for CUDA %d needs a driver for CUDA %d, this one runs CUDA %d at most", l.version, m, m, driverMajor)
	}
	if err := l.lib.resolve(l.symbols()); err != nil {
		return fmt.Errorf("%w (a broken or partial cuDNN %v install?)", err, l.version)
	}
	return nil
}

// close releases the library; l must not be used afterwards.
func (l *cudnn) close() {
	C.free(unsafe.Pointer(l.fn))
	l.lib.close()
}

// pickCudnn returns the first candidate that opens, that the driver
// (CUDA driverMajor; 0: not checked) can run and that try accepts (try
// creates a handle and probes it on the device; nil accepts every one),
// and a note naming each library found and passed over, and why.
func pickCudnn(cands []libsearch.Candidate, driverMajor int, try func(*cudnn) error) (*cudnn, string, error) {
	open := func(c libsearch.Candidate) (*cudnn, error) { return openCudnn(c, driverMajor) }
	l, passed, ok := firstUsable(cands, open, try, (*cudnn).close, func(l *cudnn) string { return l.lib.path })
	if !ok {
		return nil, "", fmt.Errorf("no usable cuDNN (install cuDNN 8 or 9, or NVIDIA's cuDNN pip wheel, or set QMUL_CUDNN to its path): %s",
			strings.Join(passed, "; "))
	}
	return l, choiceNote("cuDNN", passed), nil
}

// cudnnChoice is the process's cuDNN.
var cudnnChoice choice[*cudnn]

// chooseCudnn creates a cuDNN handle on stream s of ctx, choosing the
// process's cuDNN at the first call: of the candidates of QMUL_CUDNN or of
// the search, newest version first, the first that the driver runs and
// whose handle passes the probe.
func chooseCudnn(drv *driver, ctx C.CUcontext, s C.CUstream) (*dnnHandle, error) {
	var h *dnnHandle
	handle := func(l *cudnn) (err error) {
		h, err = newDnnHandle(l, drv, ctx, s)
		return err
	}
	err := cudnnChoice.use(handle, func(try func(*cudnn) error) (*cudnn, error) {
		l, note, err := pickCudnn(searchCandidates("QMUL_CUDNN", cudnnSonames), drv.cudaMajor(), try)
		if err == nil {
			record("cudnn", l.lib.report(l.version.String(), note))
		}
		return l, err
	})
	return h, err
}

// CudnnStatus says which cuDNN library the cuda build would use, or why
// it has none, without touching a GPU: for `qmulgpu devices` on a machine
// where no device opens.
func CudnnStatus() (string, error) {
	l, _, err := pickCudnn(searchCandidates("QMUL_CUDNN", cudnnSonames), 0, nil)
	if err != nil {
		return "", err
	}
	defer l.close()
	return fmt.Sprintf("cuDNN %v (%s)", l.version, l.lib.path), nil
}

// dnnHandle is a cuDNN handle bound to one context and stream: the
// executor's convLib on a GPU.
type dnnHandle struct {
	lib *cudnn
	drv *driver
	ctx C.CUcontext
	h   C.cudnnHandle_t
}

var _ convLib = (*dnnHandle)(nil)

// newDnnHandle creates a handle in ctx that runs on stream s, and probes
// it with a heuristics query for a small convolution, which makes cuDNN 9
// load its convolution sub-library now rather than at the first layer.
func newDnnHandle(lib *cudnn, drv *driver, ctx C.CUcontext, s C.CUstream) (*dnnHandle, error) {
	d := &dnnHandle{lib: lib, drv: drv, ctx: ctx}
	if err := d.check(C.qm_cudnnCreate(drv.cuCtxSetCurrent, ctx, lib.fn, &d.h), "cudnnCreate (%s)", lib.lib.path); err != nil {
		return nil, err
	}
	err := d.check(C.qm_cudnnSetStream(drv.cuCtxSetCurrent, ctx, lib.fn, d.h, s), "cudnnSetStream")
	if err == nil {
		err = d.probe()
	}
	if err != nil {
		return nil, errors.Join(err, d.close())
	}
	return d, nil
}

// probe asks for the forward algorithms of a 3×3 convolution.
func (d *dnnHandle) probe() error {
	g := engine.ConvGeom{N: 1, H: 8, W: 8, C: 8, K: 8, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	desc, err := d.describe(g)
	if err != nil {
		return err
	}
	_, err = d.algorithms(desc, passForward, false, true, convOperands{}, 0, 0)
	return errors.Join(err, d.undescribe(desc))
}

// check turns a cuDNN status into an *Error naming the call; nil means
// success.
func (d *dnnHandle) check(r C.cudnnStatus_t, format string, args ...any) error {
	code := int(r)
	if code == 0 {
		return nil
	}
	if code&failedSetCurrent != 0 {
		return d.drv.checkCode(code, format, args...)
	}
	return &Error{Call: fmt.Sprintf(format, args...), Code: code, Name: d.statusName(code), Text: "cuDNN call failed"}
}

// statusName is cuDNN's name for a status code (cudnnGetErrorString).
func (d *dnnHandle) statusName(code int) string {
	if s := C.qm_cudnnGetErrorString(d.lib.fn.getErrorString, C.cudnnStatus_t(code)); s != nil {
		return C.GoString(s)
	}
	return fmt.Sprintf("CUDNN_STATUS_%d", code)
}

func (d *dnnHandle) name() string { return fmt.Sprintf("cuDNN %v (%s)", d.lib.version, d.lib.lib.path) }

func (d *dnnHandle) cdesc(desc convDesc) *C.qm_cudnn_desc {
	return (*C.qm_cudnn_desc)(unsafe.Pointer(desc.(*C.qm_cudnn_desc)))
}

func (d *dnnHandle) describe(g engine.ConvGeom) (convDesc, error) {
	cd := (*C.qm_cudnn_desc)(C.calloc(1, C.size_t(unsafe.Sizeof(C.qm_cudnn_desc{}))))
	var failed *C.char
	r := C.qm_cudnn_describe(d.lib.fn, cd, C.int(g.N), C.int(g.H), C.int(g.W), C.int(g.C), C.int(g.K), C.int(g.R),
		C.int(g.S), C.int(g.Stride), C.int(g.Pad), C.int(g.Groups), C.int(g.OutH()), C.int(g.OutW()), &failed)
	if r != 0 {
		call := "cuDNN descriptor"
		if failed != nil {
			call = C.GoString(failed)
		}
		err := d.check(r, "%s for %+v", call, g)
		return nil, errors.Join(err, d.undescribe(cd))
	}
	return cd, nil
}

func (d *dnnHandle) undescribe(desc convDesc) error {
	cd := d.cdesc(desc)
	err := d.check(C.qm_cudnn_undescribe(d.lib.fn, cd), "cudnnDestroy*Descriptor")
	C.free(unsafe.Pointer(cd))
	return err
}

func mathType(tf32 bool) C.int {
	if tf32 {
		return cudnnDefaultMath
	}
	return cudnnFMAMath
}

func (d *dnnHandle) algorithms(desc convDesc, pass convPass, find, tf32 bool, op convOperands, ws devPtr, wsBytes uint64) ([]convAlgo, error) {
	var perf [maxAlgos]C.qm_cudnnAlgoPerf
	var n C.int
	findFlag := C.int(0)
	if find {
		findFlag = 1
	}
	r := C.qm_cudnn_algorithms(d.drv.cuCtxSetCurrent, d.ctx, d.lib.fn, d.h, d.cdesc(desc), C.int(pass), findFlag,
		mathType(tf32), C.CUdeviceptr(op.x), C.CUdeviceptr(op.w), C.CUdeviceptr(op.y), C.CUdeviceptr(ws),
		C.size_t(wsBytes), maxAlgos, &n, &perf[0])
	what := "cudnnGet%sAlgorithm_v7"
	if find {
		what = "cudnnFind%sAlgorithmEx"
	}
	if err := d.check(r, what, pass.cudnnName()); err != nil {
		return nil, err
	}
	algos := make([]convAlgo, 0, int(n))
	for _, p := range perf[:min(int(n), maxAlgos)] {
		algos = append(algos, convAlgo{algo: int(p.algo), status: int(p.status), time: float32(p.time),
			memory: uint64(p.memory), deterministic: p.determinism == 1, math: int(p.mathType)})
	}
	return algos, nil
}

func (d *dnnHandle) workspace(desc convDesc, pass convPass, a convAlgo) (uint64, error) {
	var bytes C.size_t
	r := C.qm_cudnn_workspace(d.drv.cuCtxSetCurrent, d.ctx, d.lib.fn, d.h, d.cdesc(desc), C.int(pass), C.int(a.algo),
		C.int(a.math), &bytes)
	return uint64(bytes), d.check(r, "cudnnGet%sWorkspaceSize(algorithm %d)", pass.cudnnName(), a.algo)
}

func (d *dnnHandle) run(desc convDesc, pass convPass, a convAlgo, op convOperands, ws devPtr, wsBytes uint64, beta float32) error {
	r := C.qm_cudnn_run(d.drv.cuCtxSetCurrent, d.ctx, d.lib.fn, d.h, d.cdesc(desc), C.int(pass), C.int(a.algo),
		C.int(a.math), C.CUdeviceptr(op.x), C.CUdeviceptr(op.w), C.CUdeviceptr(op.y), C.CUdeviceptr(ws),
		C.size_t(wsBytes), C.float(beta))
	return d.check(r, "cudnn%s(algorithm %d, workspace %d bytes)", pass.runName(), a.algo, wsBytes)
}

func (d *dnnHandle) close() error {
	return d.check(C.qm_cudnnDestroy(d.drv.cuCtxSetCurrent, d.ctx, d.lib.fn, d.h), "cudnnDestroy")
}
