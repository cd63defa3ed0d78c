package cpu

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// cacheKey names a free list of the cache: allocations of one type and size.
type cacheKey struct {
	dt engine.DType
	n  int
}

// hostMemory is a Go-heap allocation; exactly one of the slices is non-nil.
type hostMemory struct {
	f32 []float32
	f64 []float64
	i32 []int32
	u8  []uint8
}

// Elements implements engine.Memory.
func (m *hostMemory) Elements() int {
	switch {
	case m.f32 != nil:
		return len(m.f32)
	case m.f64 != nil:
		return len(m.f64)
	case m.i32 != nil:
		return len(m.i32)
	}
	return len(m.u8)
}

// Supports implements engine.Backend: every type is supported.
func (b *Backend) Supports(dt engine.DType) bool { return dt.Size() > 0 }

// Alloc implements engine.Backend.
func (b *Backend) Alloc(dt engine.DType, shape ...int) *engine.Tensor {
	n := engine.Numel(shape)
	if n < 0 || dt.Size() == 0 {
		panic(fmt.Sprintf("cpu: alloc %s%v", dt, shape))
	}
	key := cacheKey{dt, n}
	b.mu.Lock()
	var m *hostMemory
	if l := b.cache[key]; len(l) > 0 {
		m = l[len(l)-1]
		b.cache[key] = l[:len(l)-1]
	}
	b.mu.Unlock()
	if m == nil {
		m = &hostMemory{}
		switch dt {
		case engine.Float32:
			m.f32 = make([]float32, n, max(n, 1))
		case engine.Float64:
			m.f64 = make([]float64, n, max(n, 1))
		case engine.Int32:
			m.i32 = make([]int32, n, max(n, 1))
		case engine.Uint8:
			m.u8 = make([]uint8, n, max(n, 1))
		}
	}
	return &engine.Tensor{Shape: append([]int(nil), shape...), DType: dt, Mem: m}
}

// Zeros implements engine.Backend.
func (b *Backend) Zeros(dt engine.DType, shape ...int) *engine.Tensor {
	t := b.Alloc(dt, shape...)
	b.Fill(t, 0)
	return t
}

// Free implements engine.Backend.
func (b *Backend) Free(t *engine.Tensor) {
	if t == nil {
		return
	}
	m := t.Mem.(*hostMemory)
	key := cacheKey{t.DType, m.Elements()}
	b.mu.Lock()
	b.cache[key] = append(b.cache[key], m)
	b.mu.Unlock()
	t.Mem = nil
}

// Upload implements engine.Backend.
func (b *Backend) Upload(t *engine.Tensor, src any) {
	switch s := src.(type) {
	case []float32:
		copy(F32(t), s[:t.Numel()])
	case []float64:
		copy(F64(t), s[:t.Numel()])
	case []int32:
		copy(I32(t), s[:t.Numel()])
	case []uint8:
		copy(U8(t), s[:t.Numel()])
	default:
		panic(fmt.Sprintf("cpu: upload of %T", src))
	}
}

// Download implements engine.Backend.
func (b *Backend) Download(t *engine.Tensor, dst any) {
	switch d := dst.(type) {
	case []float32:
		copy(d[:t.Numel()], F32(t))
	case []float64:
		copy(d[:t.Numel()], F64(t))
	case []int32:
		copy(d[:t.Numel()], I32(t))
	case []uint8:
		copy(d[:t.Numel()], U8(t))
	default:
		panic(fmt.Sprintf("cpu: download into %T", dst))
	}
}

// Err implements engine.Backend; CPU ops never fail asynchronously.
func (b *Backend) Err() error { return nil }

// F32 returns the elements of a Float32 tensor on the CPU backend.
func F32(t *engine.Tensor) []float32 {
	m := mem(t, engine.Float32)
	return m.f32[t.Offset : t.Offset+t.Numel()]
}

// F64 returns the elements of a Float64 tensor on the CPU backend.
func F64(t *engine.Tensor) []float64 {
	m := mem(t, engine.Float64)
	return m.f64[t.Offset : t.Offset+t.Numel()]
}

// I32 returns the elements of an Int32 tensor on the CPU backend.
func I32(t *engine.Tensor) []int32 {
	m := mem(t, engine.Int32)
	return m.i32[t.Offset : t.Offset+t.Numel()]
}

// U8 returns the elements of a Uint8 tensor on the CPU backend.
func U8(t *engine.Tensor) []uint8 {
	m := mem(t, engine.Uint8)
	return m.u8[t.Offset : t.Offset+t.Numel()]
}

func mem(t *engine.Tensor, dt engine.DType) *hostMemory {
	if t.DType != dt {
		panic(fmt.Sprintf("cpu: %v used as %s", t, dt))
	}
	m, ok := t.Mem.(*hostMemory)
	if !ok {
		panic(fmt.Sprintf("cpu: %v does not live on the CPU backend", t))
	}
	return m
}
