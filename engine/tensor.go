// Package engine defines the tensor type and the op-level Backend contract
// that every compute backend (CPU, CUDA) implements.
//
// Activations are stored in NHWC order: a batch of images is a [N, H, W, C]
// tensor, and a 2-D activation is [N, F]. Convolution weights are stored as
// [K, R, S, C/groups]; checkpoints convert them to PyTorch's [K, C/groups, R, S].
package engine

import (
	"fmt"
	"strings"
)

// DType is the element type of a tensor.
type DType uint8

// The element types a backend may support. Float64 exists for gradient checks
// on the CPU backend; the CUDA backend supports Float32, Int32 and Uint8.
const (
	Float32 DType = iota + 1
	Float64
	Int32
	Uint8
)

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Float64:
		return 8
	case Uint8:
		return 1
	}
	return 0
}

// String returns the safetensors-style name of the type (F32, F64, I32, U8).
func (d DType) String() string {
	switch d {
	case Float32:
		return "F32"
	case Float64:
		return "F64"
	case Int32:
		return "I32"
	case Uint8:
		return "U8"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// IsFloat reports whether the type is a floating-point type.
func (d DType) IsFloat() bool { return d == Float32 || d == Float64 }

// Memory is a backend-owned allocation. Only the backend that made it knows
// its concrete type.
type Memory interface {
	// Elements is the capacity of the allocation in elements.
	Elements() int
}

// Tensor is a dense, contiguous, row-major array living on one backend.
// A Tensor is a view: Offset elements into Mem, with Shape's product elements.
type Tensor struct {
	Shape  []int
	DType  DType
	Mem    Memory
	Offset int
}

// Numel is the number of elements (the product of the shape).
func (t *Tensor) Numel() int { return Numel(t.Shape) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Rows is the size of the leading dimension (the batch size for activations).
func (t *Tensor) Rows() int { return t.Shape[0] }

// Cols is the number of elements per leading index (Numel / Rows).
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 || t.Shape[0] == 0 {
		return 0
	}
	return t.Numel() / t.Shape[0]
}

// Reshape returns a view of the same memory with another shape of equal size.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	if Numel(shape) != t.Numel() {
		panic(fmt.Sprintf("engine: reshape %v to %v changes the size", t.Shape, shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), DType: t.DType, Mem: t.Mem, Offset: t.Offset}
}

// Slice returns the view of rows [lo, hi) of the leading dimension.
func (t *Tensor) Slice(lo, hi int) *Tensor {
	if lo < 0 || hi > t.Shape[0] || lo > hi {
		panic(fmt.Sprintf("engine: slice [%d,%d) of %v", lo, hi, t.Shape))
	}
	shape := append([]int(nil), t.Shape...)
	shape[0] = hi - lo
	return &Tensor{Shape: shape, DType: t.DType, Mem: t.Mem, Offset: t.Offset + lo*t.Cols()}
}

// String describes the tensor's type and shape.
func (t *Tensor) String() string {
	parts := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		parts[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s[%s]", t.DType, strings.Join(parts, ","))
}

// Numel is the product of a shape's dimensions.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
