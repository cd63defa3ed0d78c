//go:build cuda

package cuda

/*
#include <stdlib.h>
#include "binding.h"
*/
import "C"

import (
	_ "embed"
	"errors"
	"fmt"
	"unsafe"
)

// fatbin holds every kernel of kernels/*.cu, compiled by CMakeLists.txt.
//
//go:embed kernels.fatbin
var fatbin []byte

// gpu is the executor of a Backend on a CUDA device: its primary context,
// one non-blocking stream, the kernel module and a cuBLAS handle.
type gpu struct {
	drv    *driver
	dev    C.CUdevice
	ctx    C.CUcontext
	stream C.CUstream
	module C.CUmodule
	blas   *blasHandle
	dnn    *dnnHandle // nil until convLibrary loads cuDNN
	dnnErr error      // why cuDNN is unusable, once tried
	funcs  map[string]C.CUfunction
	args   *argArena
}

// openGPU starts an executor on device index, with TF32 math in cuBLAS on
// or off.
func openGPU(index int, tf32 bool) (*gpu, deviceInfo, error) {
	var info deviceInfo
	drv, err := theDriver()
	if err != nil {
		return nil, info, err
	}
	n, err := drv.deviceCount()
	if err != nil {
		return nil, info, err
	}
	if index < 0 || index >= n {
		return nil, info, fmt.Errorf("no CUDA device %d (%d present)", index, n)
	}
	dev, err := drv.device(index)
	if err != nil {
		return nil, info, err
	}
	if info, err = describeDevice(drv, dev); err != nil {
		return nil, info, err
	}
	ctx, err := drv.primaryCtxRetain(dev)
	if err != nil {
		return nil, info, err
	}
	g := &gpu{drv: drv, dev: dev, ctx: ctx, funcs: make(map[string]C.CUfunction), args: newArgArena()}
	if err := g.start(tf32); err != nil {
		return nil, info, errors.Join(err, g.close())
	}
	return g, info, nil
}

// describeDevice reads the name, compute capability, SM count and memory.
func describeDevice(drv *driver, dev C.CUdevice) (deviceInfo, error) {
	var info deviceInfo
	var err error
	if info.name, err = drv.deviceName(dev); err != nil {
		return info, err
	}
	if info.major, err = drv.deviceAttribute(dev, attrComputeCapabilityMajor); err != nil {
		return info, err
	}
	if info.minor, err = drv.deviceAttribute(dev, attrComputeCapabilityMinor); err != nil {
		return info, err
	}
	if info.sms, err = drv.deviceAttribute(dev, attrMultiprocessorCount); err != nil {
		return info, err
	}
	info.totalMem, err = drv.deviceTotalMem(dev)
	return info, err
}

// start creates the stream, loads the kernels and creates the cuBLAS
// handle (choosing the process's cuBLAS the first time); close undoes
// whatever it did.
func (g *gpu) start(tf32 bool) error {
	var err error
	if g.stream, err = g.drv.streamCreate(g.ctx, streamNonBlocking); err != nil {
		return err
	}
	// The driver reads the image during the call only; C memory gives it
	// the alignment a fatbin expects.
	img := C.CBytes(fatbin)
	g.module, err = g.drv.moduleLoadData(g.ctx, img)
	C.free(img)
	if err != nil {
		return fmt.Errorf("loading the kernels (built for sm_80, sm_86, sm_89, sm_90 and PTX compute_80): %w", err)
	}
	g.blas, err = chooseCublas(g.drv, g.ctx, g.stream, tf32)
	return err
}

// close releases what openGPU acquired, in reverse order.
func (g *gpu) close() error {
	var errs []error
	if g.stream != nil {
		errs = append(errs, g.drv.streamSynchronize(g.ctx, g.stream))
	}
	if g.dnn != nil {
		errs = append(errs, g.dnn.close())
		g.dnn = nil
	}
	if g.blas != nil {
		errs = append(errs, g.blas.destroy())
		g.blas = nil
	}
	if g.module != nil {
		errs = append(errs, g.drv.moduleUnload(g.ctx, g.module))
		g.module = nil
	}
	if g.stream != nil {
		errs = append(errs, g.drv.streamDestroy(g.ctx, g.stream))
		g.stream = nil
	}
	if g.ctx != nil {
		errs = append(errs, g.drv.ctxSynchronize(g.ctx), g.drv.primaryCtxRelease(g.dev))
		g.ctx = nil
	}
	if g.args.mem != nil {
		g.args.free()
	}
	return errors.Join(errs...)
}

func (g *gpu) alloc(bytes uint64) (devPtr, error) { return g.drv.memAlloc(g.ctx, bytes) }

func (g *gpu) free(p devPtr) error { return g.drv.memFree(g.ctx, p) }

func (g *gpu) memInfo() (free, total uint64, err error) { return g.drv.memGetInfo(g.ctx) }

func (g *gpu) sync() error { return g.drv.streamSynchronize(g.ctx, g.stream) }

func (g *gpu) upload(dst devPtr, src unsafe.Pointer, bytes uint64) error {
	return g.drv.upload(g.ctx, g.stream, dst, src, bytes)
}

func (g *gpu) download(dst unsafe.Pointer, src devPtr, bytes uint64) error {
	return g.drv.download(g.ctx, g.stream, dst, src, bytes)
}

func (g *gpu) copy(dst, src devPtr, bytes uint64) error {
	return g.drv.copyAsync(g.ctx, g.stream, dst, src, bytes)
}

func (g *gpu) memset8(dst devPtr, v uint8, n uint64) error {
	return g.drv.memsetD8Async(g.ctx, g.stream, dst, v, n)
}

func (g *gpu) memset32(dst devPtr, v uint32, n uint64) error {
	return g.drv.memsetD32Async(g.ctx, g.stream, dst, v, n)
}

// launch looks kernel up in the module (once) and queues it.
func (g *gpu) launch(kernel string, grid, block dim3, args []any) error {
	f, ok := g.funcs[kernel]
	if !ok {
		var err error
		if f, err = g.drv.moduleGetFunction(g.ctx, g.module, kernel); err != nil {
			return err
		}
		g.funcs[kernel] = f
	}
	return g.drv.launchKernel(g.ctx, g.stream, f, kernel, grid, block, g.args.pack(args))
}

func (g *gpu) gemm(a gemmArgs) error { return g.blas.gemm(a) }

func (g *gpu) setTF32(on bool) error { return g.blas.setTF32(on) }

// convLibrary creates a cuDNN handle on the first call (choosing the
// process's cuDNN if no backend has yet).
func (g *gpu) convLibrary() (convLib, error) {
	if g.dnn == nil && g.dnnErr == nil {
		g.dnn, g.dnnErr = chooseCudnn(g.drv, g.ctx, g.stream)
	}
	if g.dnnErr != nil {
		return nil, g.dnnErr
	}
	return g.dnn, nil
}
