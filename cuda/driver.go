//go:build cuda

package cuda

/*
#include <stdlib.h>
#include "binding.h"

// Shims without a context: each calls the entry point fn.

static CUresult qm_cuInit(void* fn, unsigned int flags) {
	return ((CUresult (*)(unsigned int))fn)(flags);
}

static CUresult qm_cuDriverGetVersion(void* fn, int* v) {
	return ((CUresult (*)(int*))fn)(v);
}

static CUresult qm_cuDeviceGetCount(void* fn, int* n) {
	return ((CUresult (*)(int*))fn)(n);
}

static CUresult qm_cuDeviceGet(void* fn, CUdevice* dev, int ordinal) {
	return ((CUresult (*)(CUdevice*, int))fn)(dev, ordinal);
}

static CUresult qm_cuDeviceGetName(void* fn, char* name, int len, CUdevice dev) {
	return ((CUresult (*)(char*, int, CUdevice))fn)(name, len, dev);
}

static CUresult qm_cuDeviceGetAttribute(void* fn, int* v, int attr, CUdevice dev) {
	return ((CUresult (*)(int*, int, CUdevice))fn)(v, attr, dev);
}

static CUresult qm_cuDeviceTotalMem(void* fn, size_t* bytes, CUdevice dev) {
	return ((CUresult (*)(size_t*, CUdevice))fn)(bytes, dev);
}

static CUresult qm_cuDevicePrimaryCtxRetain(void* fn, CUcontext* ctx, CUdevice dev) {
	return ((CUresult (*)(CUcontext*, CUdevice))fn)(ctx, dev);
}

static CUresult qm_cuDevicePrimaryCtxRelease(void* fn, CUdevice dev) {
	return ((CUresult (*)(CUdevice))fn)(dev);
}

static CUresult qm_cuGetErrorText(void* fn, CUresult r, const char** s) {
	return ((CUresult (*)(CUresult, const char**))fn)(r, s);
}

// Shims with a context: each makes ctx current through set first.

static CUresult qm_cuCtxSynchronize(void* set, CUcontext ctx, void* fn) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(void))fn)();
}

static CUresult qm_cuMemAlloc(void* set, CUcontext ctx, void* fn, CUdeviceptr* p, size_t bytes) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUdeviceptr*, size_t))fn)(p, bytes);
}

static CUresult qm_cuMemFree(void* set, CUcontext ctx, void* fn, CUdeviceptr p) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUdeviceptr))fn)(p);
}

static CUresult qm_cuMemGetInfo(void* set, CUcontext ctx, void* fn, size_t* free, size_t* total) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(size_t*, size_t*))fn)(free, total);
}

// qm_upload and qm_download copy on stream s and wait for the stream, so
// that the host buffer (which may be Go memory) is not used after return.
static CUresult qm_upload(void* set, CUcontext ctx, void* copy, void* sync,
		CUdeviceptr dst, const void* src, size_t bytes, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	CUresult r = ((CUresult (*)(CUdeviceptr, const void*, size_t, CUstream))copy)(dst, src, bytes, s);
	if (r != 0)
		return r;
	r = ((CUresult (*)(CUstream))sync)(s);
	return r != 0 ? (QM_FAILED_SYNC | r) : 0;
}

static CUresult qm_download(void* set, CUcontext ctx, void* copy, void* sync,
		void* dst, CUdeviceptr src, size_t bytes, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	CUresult r = ((CUresult (*)(void*, CUdeviceptr, size_t, CUstream))copy)(dst, src, bytes, s);
	if (r != 0)
		return r;
	r = ((CUresult (*)(CUstream))sync)(s);
	return r != 0 ? (QM_FAILED_SYNC | r) : 0;
}

static CUresult qm_cuMemcpyDtoDAsync(void* set, CUcontext ctx, void* fn,
		CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUdeviceptr, CUdeviceptr, size_t, CUstream))fn)(dst, src, bytes, s);
}

static CUresult qm_cuMemsetD8Async(void* set, CUcontext ctx, void* fn,
		CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUdeviceptr, unsigned char, size_t, CUstream))fn)(dst, v, n, s);
}

static CUresult qm_cuMemsetD32Async(void* set, CUcontext ctx, void* fn,
		CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUdeviceptr, unsigned int, size_t, CUstream))fn)(dst, v, n, s);
}

static CUresult qm_cuModuleLoadData(void* set, CUcontext ctx, void* fn, CUmodule* m, const void* image) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUmodule*, const void*))fn)(m, image);
}

static CUresult qm_cuModuleUnload(void* set, CUcontext ctx, void* fn, CUmodule m) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUmodule))fn)(m);
}

static CUresult qm_cuModuleGetFunction(void* set, CUcontext ctx, void* fn, CUfunction* f, CUmodule m,
		const char* name) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUfunction*, CUmodule, const char*))fn)(f, m, name);
}

static CUresult qm_cuLaunchKernel(void* set, CUcontext ctx, void* fn, CUfunction f,
		unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz,
		CUstream s, void* params) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,
		unsigned int, unsigned int, CUstream, void**, void**))fn)(f, gx, gy, gz, bx, by, bz, 0, s,
		(void**)params, NULL);
}

static CUresult qm_cuStreamCreate(void* set, CUcontext ctx, void* fn, CUstream* s, unsigned int flags) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUstream*, unsigned int))fn)(s, flags);
}

static CUresult qm_cuStreamSynchronize(void* set, CUcontext ctx, void* fn, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUstream))fn)(s);
}

static CUresult qm_cuStreamDestroy(void* set, CUcontext ctx, void* fn, CUstream s) {
	QM_SET_CURRENT(set, ctx);
	return ((CUresult (*)(CUstream))fn)(s);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/cuda/libsearch"
)

// driverLibrary is the soname of the CUDA driver library.
const driverLibrary = "libcuda.so.1"

// Device attributes (CUdevice_attribute) the binding reads.
const (
	attrMultiprocessorCount    = 16
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
)

// streamNonBlocking is CU_STREAM_NON_BLOCKING: the backend's stream does
// not synchronise with the legacy default stream.
const streamNonBlocking = 1

// Error is a failed call into the CUDA driver or cuBLAS.
type Error struct {
	// Call names the entry point and its salient arguments,
	// e.g. "cuMemAlloc_v2(268435456 bytes)".
	Call string
	// Code is the CUresult or cublasStatus_t.
	Code int
	// Name and Text are the library's name and description of Code,
	// e.g. "CUDA_ERROR_OUT_OF_MEMORY" and "out of memory".
	Name, Text string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s: %s", e.Call, e.Name, e.Text) }

// driver is the CUDA driver library, opened with dlopen, and the entry
// points the binding calls. Only ABI-stable entry points are used: the
// versioned (_v2) names where the driver has them, which every driver since
// CUDA 4 exports with unchanged signatures.
type driver struct {
	lib *library
	// version is the CUDA version the driver supports, as
	// cuDriverGetVersion gives it (1000·major + 10·minor).
	version int

	cuInit                    unsafe.Pointer
	cuDriverGetVersion        unsafe.Pointer
	cuDeviceGetCount          unsafe.Pointer
	cuDeviceGet               unsafe.Pointer
	cuDeviceGetName           unsafe.Pointer
	cuDeviceGetAttribute      unsafe.Pointer
	cuDeviceTotalMem          unsafe.Pointer
	cuDevicePrimaryCtxRetain  unsafe.Pointer
	cuDevicePrimaryCtxRelease unsafe.Pointer
	cuCtxSetCurrent           unsafe.Pointer
	cuCtxSynchronize          unsafe.Pointer
	cuMemAlloc                unsafe.Pointer
	cuMemFree                 unsafe.Pointer
	cuMemGetInfo              unsafe.Pointer
	cuMemcpyHtoDAsync         unsafe.Pointer
	cuMemcpyDtoHAsync         unsafe.Pointer
	cuMemcpyDtoDAsync         unsafe.Pointer
	cuMemsetD8Async           unsafe.Pointer
	cuMemsetD32Async          unsafe.Pointer
	cuModuleLoadData          unsafe.Pointer
	cuModuleUnload            unsafe.Pointer
	cuModuleGetFunction       unsafe.Pointer
	cuLaunchKernel            unsafe.Pointer
	cuStreamCreate            unsafe.Pointer
	cuStreamSynchronize       unsafe.Pointer
	cuStreamDestroy           unsafe.Pointer
	cuGetErrorName            unsafe.Pointer
	cuGetErrorString          unsafe.Pointer
}

// symbols lists where each entry point goes and the names to try, best
// first.
func (d *driver) symbols() []symbol {
	return []symbol{
		{dst: &d.cuInit, names: []string{"cuInit"}},
		{dst: &d.cuDriverGetVersion, names: []string{"cuDriverGetVersion"}},
		{dst: &d.cuDeviceGetCount, names: []string{"cuDeviceGetCount"}},
		{dst: &d.cuDeviceGet, names: []string{"cuDeviceGet"}},
		{dst: &d.cuDeviceGetName, names: []string{"cuDeviceGetName"}},
		{dst: &d.cuDeviceGetAttribute, names: []string{"cuDeviceGetAttribute"}},
		{dst: &d.cuDeviceTotalMem, names: []string{"cuDeviceTotalMem_v2"}},
		{dst: &d.cuDevicePrimaryCtxRetain, names: []string{"cuDevicePrimaryCtxRetain"}},
		{dst: &d.cuDevicePrimaryCtxRelease, names: []string{"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"}},
		{dst: &d.cuCtxSetCurrent, names: []string{"cuCtxSetCurrent"}},
		{dst: &d.cuCtxSynchronize, names: []string{"cuCtxSynchronize"}},
		{dst: &d.cuMemAlloc, names: []string{"cuMemAlloc_v2"}},
		{dst: &d.cuMemFree, names: []string{"cuMemFree_v2"}},
		{dst: &d.cuMemGetInfo, names: []string{"cuMemGetInfo_v2"}},
		{dst: &d.cuMemcpyHtoDAsync, names: []string{"cuMemcpyHtoDAsync_v2"}},
		{dst: &d.cuMemcpyDtoHAsync, names: []string{"cuMemcpyDtoHAsync_v2"}},
		{dst: &d.cuMemcpyDtoDAsync, names: []string{"cuMemcpyDtoDAsync_v2"}},
		{dst: &d.cuMemsetD8Async, names: []string{"cuMemsetD8Async"}},
		{dst: &d.cuMemsetD32Async, names: []string{"cuMemsetD32Async"}},
		{dst: &d.cuModuleLoadData, names: []string{"cuModuleLoadData"}},
		{dst: &d.cuModuleUnload, names: []string{"cuModuleUnload"}},
		{dst: &d.cuModuleGetFunction, names: []string{"cuModuleGetFunction"}},
		{dst: &d.cuLaunchKernel, names: []string{"cuLaunchKernel"}},
		{dst: &d.cuStreamCreate, names: []string{"cuStreamCreate"}},
		{dst: &d.cuStreamSynchronize, names: []string{"cuStreamSynchronize"}},
		{dst: &d.cuStreamDestroy, names: []string{"cuStreamDestroy_v2", "cuStreamDestroy"}},
		{dst: &d.cuGetErrorName, names: []string{"cuGetErrorName"}},
		{dst: &d.cuGetErrorString, names: []string{"cuGetErrorString"}},
	}
}

// loadDriver opens the CUDA driver library (a soname on the loader path,
// or a file) and resolves its entry points; it does not initialise the
// driver.
func loadDriver(path string) (*driver, error) {
	lib, err := openLibrary("CUDA driver", libsearch.Candidate{Path: path, Where: "loader path"}, "")
	if err != nil {
		return nil, fmt.Errorf("%w (is the NVIDIA driver installed?)", err)
	}
	d := &driver{lib: lib}
	if err := lib.resolve(d.symbols()); err != nil {
		lib.close()
		return nil, err
	}
	return d, nil
}

// theDriver is the process's CUDA driver, loaded and initialised once.
var theDriver = sync.OnceValues(func() (*driver, error) {
	// Number devices as nvidia-smi and NVML (Discover) do.
	if os.Getenv("CUDA_DEVICE_ORDER") == "" {
		if err := os.Setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID"); err != nil {
			return nil, fmt.Errorf("set CUDA_DEVICE_ORDER: %w", err)
		}
	}
	d, err := loadDriver(driverLibrary)
	if err != nil {
		return nil, err
	}
	if err := d.check(C.qm_cuInit(d.cuInit, 0), "cuInit(0)"); err != nil {
		return nil, err
	}
	var v C.int
	if err := d.check(C.qm_cuDriverGetVersion(d.cuDriverGetVersion, &v), "cuDriverGetVersion"); err != nil {
		return nil, err
	}
	d.version = int(v)
	record("driver", d.lib.report("CUDA "+cudaVersionString(d.version), ""))
	return d, nil
})

// cudaMajor is the newest CUDA major version the driver runs.
func (d *driver) cudaMajor() int { return d.version / 1000 }

// Bits a shim sets in its result when the cuCtxSetCurrent before its call,
// or the cuStreamSynchronize after it, failed (QM_FAILED_* in binding.h).
const (
	failedSetCurrent = C.QM_FAILED_SET_CURRENT
	failedSync       = C.QM_FAILED_SYNC
)

// check turns a result into an *Error naming the call, formatted from
// format and args only when the call failed; nil means success.
func (d *driver) check(r C.CUresult, format string, args ...any) error {
	return d.checkCode(int(r), format, args...)
}

// checkCode is check for a result held in an int.
func (d *driver) checkCode(code int, format string, args ...any) error {
	if code == 0 {
		return nil
	}
	call := fmt.Sprintf(format, args...)
	switch {
	case code&failedSetCurrent != 0:
		code &^= failedSetCurrent
		call = "cuCtxSetCurrent (before " + call + ")"
	case code&failedSync != 0:
		code &^= failedSync
		call = "cuStreamSynchronize (after " + call + ")"
	}
	name, text := d.describe(code)
	return &Error{Call: call, Code: code, Name: name, Text: text}
}

// describe returns the driver's name and description of a CUresult.
func (d *driver) describe(code int) (name, text string) {
	name, text = fmt.Sprintf("CUDA_ERROR_%d", code), "unknown error"
	var s *C.char
	if C.qm_cuGetErrorText(d.cuGetErrorName, C.CUresult(code), &s) == 0 && s != nil {
		name = C.GoString(s)
	}
	s = nil
	if C.qm_cuGetErrorText(d.cuGetErrorString, C.CUresult(code), &s) == 0 && s != nil {
		text = C.GoString(s)
	}
	return name, text
}

// isOutOfMemory reports whether err is the driver's out-of-memory error.
func isOutOfMemory(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Name == "CUDA_ERROR_OUT_OF_MEMORY"
}

func (d *driver) deviceCount() (int, error) {
	var n C.int
	err := d.check(C.qm_cuDeviceGetCount(d.cuDeviceGetCount, &n), "cuDeviceGetCount")
	return int(n), err
}

func (d *driver) device(ordinal int) (C.CUdevice, error) {
	var dev C.CUdevice
	err := d.check(C.qm_cuDeviceGet(d.cuDeviceGet, &dev, C.int(ordinal)), "cuDeviceGet(%d)", ordinal)
	return dev, err
}

func (d *driver) deviceName(dev C.CUdevice) (string, error) {
	var buf [256]C.char
	if err := d.check(C.qm_cuDeviceGetName(d.cuDeviceGetName, &buf[0], C.int(len(buf)), dev), "cuDeviceGetName"); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

func (d *driver) deviceAttribute(dev C.CUdevice, attr int) (int, error) {
	var v C.int
	err := d.check(C.qm_cuDeviceGetAttribute(d.cuDeviceGetAttribute, &v, C.int(attr), dev), "cuDeviceGetAttribute(%d)", attr)
	return int(v), err
}

func (d *driver) deviceTotalMem(dev C.CUdevice) (uint64, error) {
	var n C.size_t
	err := d.check(C.qm_cuDeviceTotalMem(d.cuDeviceTotalMem, &n, dev), "cuDeviceTotalMem_v2")
	return uint64(n), err
}

func (d *driver) primaryCtxRetain(dev C.CUdevice) (C.CUcontext, error) {
	var ctx C.CUcontext
	err := d.check(C.qm_cuDevicePrimaryCtxRetain(d.cuDevicePrimaryCtxRetain, &ctx, dev), "cuDevicePrimaryCtxRetain")
	return ctx, err
}

func (d *driver) primaryCtxRelease(dev C.CUdevice) error {
	return d.check(C.qm_cuDevicePrimaryCtxRelease(d.cuDevicePrimaryCtxRelease, dev), "cuDevicePrimaryCtxRelease")
}

func (d *driver) ctxSynchronize(ctx C.CUcontext) error {
	return d.check(C.qm_cuCtxSynchronize(d.cuCtxSetCurrent, ctx, d.cuCtxSynchronize), "cuCtxSynchronize")
}

func (d *driver) memAlloc(ctx C.CUcontext, bytes uint64) (devPtr, error) {
	var p C.CUdeviceptr
	err := d.check(C.qm_cuMemAlloc(d.cuCtxSetCurrent, ctx, d.cuMemAlloc, &p, C.size_t(bytes)), "cuMemAlloc_v2(%d bytes)", bytes)
	return devPtr(p), err
}

func (d *driver) memFree(ctx C.CUcontext, p devPtr) error {
	return d.check(C.qm_cuMemFree(d.cuCtxSetCurrent, ctx, d.cuMemFree, C.CUdeviceptr(p)), "cuMemFree_v2")
}

func (d *driver) memGetInfo(ctx C.CUcontext) (free, total uint64, err error) {
	var f, t C.size_t
	err = d.check(C.qm_cuMemGetInfo(d.cuCtxSetCurrent, ctx, d.cuMemGetInfo, &f, &t), "cuMemGetInfo_v2")
	return uint64(f), uint64(t), err
}

// upload copies bytes from host memory src to dst on stream s and waits for
// the stream.
func (d *driver) upload(ctx C.CUcontext, s C.CUstream, dst devPtr, src unsafe.Pointer, bytes uint64) error {
	r := C.qm_upload(d.cuCtxSetCurrent, ctx, d.cuMemcpyHtoDAsync, d.cuStreamSynchronize,
		C.CUdeviceptr(dst), src, C.size_t(bytes), s)
	return d.check(r, "cuMemcpyHtoDAsync_v2(%d bytes)", bytes)
}

// download copies bytes from src to host memory dst on stream s and waits
// for the stream.
func (d *driver) download(ctx C.CUcontext, s C.CUstream, dst unsafe.Pointer, src devPtr, bytes uint64) error {
	r := C.qm_download(d.cuCtxSetCurrent, ctx, d.cuMemcpyDtoHAsync, d.cuStreamSynchronize,
		dst, C.CUdeviceptr(src), C.size_t(bytes), s)
	return d.check(r, "cuMemcpyDtoHAsync_v2(%d bytes)", bytes)
}

func (d *driver) copyAsync(ctx C.CUcontext, s C.CUstream, dst, src devPtr, bytes uint64) error {
	r := C.qm_cuMemcpyDtoDAsync(d.cuCtxSetCurrent, ctx, d.cuMemcpyDtoDAsync, C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(bytes), s)
	return d.check(r, "cuMemcpyDtoDAsync_v2(%d bytes)", bytes)
}

func (d *driver) memsetD8Async(ctx C.CUcontext, s C.CUstream, dst devPtr, v uint8, n uint64) error {
	r := C.qm_cuMemsetD8Async(d.cuCtxSetCurrent, ctx, d.cuMemsetD8Async, C.CUdeviceptr(dst), C.uchar(v), C.size_t(n), s)
	return d.check(r, "cuMemsetD8Async(%d bytes)", n)
}

func (d *driver) memsetD32Async(ctx C.CUcontext, s C.CUstream, dst devPtr, v uint32, n uint64) error {
	r := C.qm_cuMemsetD32Async(d.cuCtxSetCurrent, ctx, d.cuMemsetD32Async, C.CUdeviceptr(dst), C.uint(v), C.size_t(n), s)
	return d.check(r, "cuMemsetD32Async(%d words)", n)
}

// moduleLoadData loads a module image (fatbin, cubin or PTX) from C memory.
func (d *driver) moduleLoadData(ctx C.CUcontext, image unsafe.Pointer) (C.CUmodule, error) {
	var m C.CUmodule
	err := d.check(C.qm_cuModuleLoadData(d.cuCtxSetCurrent, ctx, d.cuModuleLoadData, &m, image), "cuModuleLoadData")
	return m, err
}

func (d *driver) moduleUnload(ctx C.CUcontext, m C.CUmodule) error {
	return d.check(C.qm_cuModuleUnload(d.cuCtxSetCurrent, ctx, d.cuModuleUnload, m), "cuModuleUnload")
}

func (d *driver) moduleGetFunction(ctx C.CUcontext, m C.CUmodule, name string) (C.CUfunction, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var f C.CUfunction
	err := d.check(C.qm_cuModuleGetFunction(d.cuCtxSetCurrent, ctx, d.cuModuleGetFunction, &f, m, cname), "cuModuleGetFunction(%s)", name)
	return f, err
}

// launchKernel launches f on stream s; params is the kernelParams array,
// in C memory (see argArena).
func (d *driver) launchKernel(ctx C.CUcontext, s C.CUstream, f C.CUfunction, name string, grid, block dim3, params unsafe.Pointer) error {
	r := C.qm_cuLaunchKernel(d.cuCtxSetCurrent, ctx, d.cuLaunchKernel, f,
		C.uint(grid.x), C.uint(grid.y), C.uint(grid.z), C.uint(block.x), C.uint(block.y), C.uint(block.z), s, params)
	return d.check(r, "cuLaunchKernel(%s, grid %v, block %v)", name, grid, block)
}

func (d *driver) streamCreate(ctx C.CUcontext, flags uint) (C.CUstream, error) {
	var s C.CUstream
	err := d.check(C.qm_cuStreamCreate(d.cuCtxSetCurrent, ctx, d.cuStreamCreate, &s, C.uint(flags)), "cuStreamCreate")
	return s, err
}

func (d *driver) streamSynchronize(ctx C.CUcontext, s C.CUstream) error {
	return d.check(C.qm_cuStreamSynchronize(d.cuCtxSetCurrent, ctx, d.cuStreamSynchronize, s), "cuStreamSynchronize")
}

func (d *driver) streamDestroy(ctx C.CUcontext, s C.CUstream) error {
	return d.check(C.qm_cuStreamDestroy(d.cuCtxSetCurrent, ctx, d.cuStreamDestroy, s), "cuStreamDestroy_v2")
}
