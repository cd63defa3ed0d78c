//go:build cuda

package cuda

/*
#include <stdlib.h>
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Kernel arguments reach cuLaunchKernel as an array of pointers, one per
// parameter, each pointing at the parameter's value. The driver copies the
// values when the launch is queued, so one arena of C memory, owned by the
// binding and rewritten for every launch, holds them all: no Go pointer is
// ever handed to the driver for it to keep, which keeps cgocheck and the
// race detector quiet.

const (
	// maxKernelArgs bounds the parameters of a kernel.
	maxKernelArgs = 32
	// maxArgBytes is CUDA's limit on the size of a kernel's parameters.
	maxArgBytes = 4096
	// ptrSize is the size of a host pointer in the parameter array.
	ptrSize = int(unsafe.Sizeof(uintptr(0)))
)

//go:generate go run ./internal/cmd/kernelgen -root ..

// devPtr is a device address (a CUdeviceptr); a kernel receives it as a
// pointer, and 0 as NULL.
type devPtr uint64

// deviceElem are the element types of device arrays that kernels take.
type deviceElem interface {
	float32 | float64 | int32 | int64 | uint8 | uint32 | uint64
}

// dptr is the device address of an array of T: what a kernel's T* (or
// const T*) parameter takes, dptr[float32] for a float*. 0 is NULL.
type dptr[T deviceElem] devPtr

// add returns p advanced by n elements.
func (p dptr[T]) add(n int) dptr[T] {
	var elem T
	return p + dptr[T](n*int(unsafe.Sizeof(elem)))
}

// kernelCall is a kernel and its arguments, ready to launch. The
// generated launcher of each kernel builds it: cuda/X_kernels.go holds,
// for each kernel qm_foo of kernels/X.cu, a function qmFoo whose
// parameters have the kernel's names and Go types matching its C ones
// (written by kernelgen, cuda/internal/kernelgen; run `go generate -tags
// cuda ./cuda` after changing a kernel's signature). A launch that does
// not fit the kernel's signature therefore does not compile.
type kernelCall struct {
	kernel string // the kernel's extern "C" name
	args   []any  // as pack takes them
}

// rawArg is a kernel argument passed by value as bytes: a struct parameter,
// laid out by the caller as the C compiler lays out the struct.
type rawArg struct {
	data  []byte
	align int
}

// structArg passes the struct at v by value: its bytes, aligned as Go
// (and C) align it. The generated Go twin of a kernel struct has the C
// layout.
func structArg[T any](v *T) rawArg {
	return rawArg{unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v)), int(unsafe.Alignof(*v))}
}

// dim3 is a grid or block shape.
type dim3 struct{ x, y, z uint32 }

// String formats d as "x×y×z".
func (d dim3) String() string { return fmt.Sprintf("%d×%d×%d", d.x, d.y, d.z) }

// argArena is C memory holding the parameter array (maxKernelArgs
// pointers) followed by the parameter values (maxArgBytes bytes).
type argArena struct {
	mem  unsafe.Pointer
	ptrs []uintptr
	vals []byte
}

// newArgArena allocates an arena; free releases it.
func newArgArena() *argArena {
	mem := C.malloc(C.size_t(maxKernelArgs*ptrSize + maxArgBytes))
	return &argArena{
		mem:  mem,
		ptrs: unsafe.Slice((*uintptr)(mem), maxKernelArgs),
		vals: unsafe.Slice((*byte)(unsafe.Add(mem, maxKernelArgs*ptrSize)), maxArgBytes),
	}
}

func (a *argArena) free() {
	C.free(a.mem)
	*a = argArena{}
}

// pack writes args into the arena, each value aligned to its size (or the
// rawArg's alignment), and returns the parameter array for cuLaunchKernel.
// The accepted types are devPtr, int32, int64, float32, float64 and rawArg,
// matching pointer, int, long long, float, double and struct parameters;
// anything else is a programming error and panics.
func (a *argArena) pack(args []any) unsafe.Pointer {
	if len(args) > maxKernelArgs {
		panic(fmt.Sprintf("cuda: %d kernel arguments, at most %d", len(args), maxKernelArgs))
	}
	off := 0
	for i, arg := range args {
		var data []byte
		align := 0
		switch v := arg.(type) {
		case devPtr:
			data = binary.NativeEndian.AppendUint64(nil, uint64(v))
		case int64:
			data = binary.NativeEndian.AppendUint64(nil, uint64(v))
		case int32:
			data = binary.NativeEndian.AppendUint32(nil, uint32(v))
		case float64:
			data = binary.NativeEndian.AppendUint64(nil, math.Float64bits(v))
		case float32:
			data = binary.NativeEndian.AppendUint32(nil, math.Float32bits(v))
		case rawArg:
			data, align = v.data, v.align
		default:
			panic(fmt.Sprintf("cuda: kernel argument %d has unsupported type %T", i, arg))
		}
		if align == 0 {
			align = len(data)
		}
		off = (off + align - 1) / align * align
		if off+len(data) > maxArgBytes {
			panic(fmt.Sprintf("cuda: kernel arguments exceed %d bytes", maxArgBytes))
		}
		copy(a.vals[off:], data)
		a.ptrs[i] = uintptr(unsafe.Pointer(&a.vals[off]))
		off += len(data)
	}
	return a.mem
}
