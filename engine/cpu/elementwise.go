package cpu

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/qmulgpu/qmulgpu/engine"
)

// elementwise ops split their work into chunks of at least this many elements.
const minElems = 1 << 15

// Fill implements engine.Backend.
func (b *Backend) Fill(x *engine.Tensor, v float64) {
	defer b.span(opElementwise)()
	switch x.DType {
	case engine.Float32:
		fill(b, F32(x), float32(v))
	case engine.Float64:
		fill(b, F64(x), v)
	case engine.Int32:
		fill(b, I32(x), int32(v))
	case engine.Uint8:
		fill(b, U8(x), uint8(v))
	}
}

func fill[T any](b *Backend, x []T, v T) {
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		s := x[lo:hi]
		for i := range s {
			s[i] = v
		}
	})
}

// Copy implements engine.Backend.
func (b *Backend) Copy(dst, src *engine.Tensor) {
	must(engine.CheckLike("copy", "src", src, dst))
	defer b.span(opElementwise)()
	switch dst.DType {
	case engine.Float32:
		copy(F32(dst), F32(src))
	case engine.Float64:
		copy(F64(dst), F64(src))
	case engine.Int32:
		copy(I32(dst), I32(src))
	case engine.Uint8:
		copy(U8(dst), U8(src))
	}
}

// vectorArgs are the operands of the ops that treat tensors as flat
// vectors: a scalar a and up to three tensors, as each op names them.
type vectorArgs struct {
	a         float64
	x, y, dst *engine.Tensor
}

// Scale implements engine.Backend.
func (b *Backend) Scale(x *engine.Tensor, a float64) {
	dispatch(b, opElementwise, x.DType, vectorArgs{a: a, x: x}, scale[float32], scale[float64])
}

func scale[T float](b *Backend, v vectorArgs) {
	x, a := floats[T](v.x), T(v.a)
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		s := x[lo:hi]
		for i := range s {
			s[i] *= a
		}
	})
}

// scaleRows multiplies an m×n block with leading dimension ld by beta.
func scaleRows[T float](c []T, m, n, ld int, beta T) {
	for i := 0; i < m; i++ {
		row := c[i*ld : i*ld+n]
		for j := range row {
			if beta == 0 {
				row[j] = 0
			} else {
				row[j] *= beta
			}
		}
	}
}

// Axpy implements engine.Backend.
func (b *Backend) Axpy(a float64, x, y *engine.Tensor) {
	must(engine.CheckLike("axpy", "y", y, x))
	dispatch(b, opElementwise, x.DType, vectorArgs{a: a, x: x, y: y}, axpy[float32], axpy[float64])
}

func axpy[T float](b *Backend, v vectorArgs) {
	a, x, y := T(v.a), floats[T](v.x), floats[T](v.y)
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		xs, ys := x[lo:hi], y[lo:hi]
		for i := range xs {
			ys[i] += a * xs[i]
		}
	})
}

// Add implements engine.Backend.
func (b *Backend) Add(dst, x, y *engine.Tensor) {
	must(engine.CheckAdd(dst, x, y))
	dispatch(b, opElementwise, dst.DType, vectorArgs{dst: dst, x: x, y: y}, add[float32], add[float64])
}

func add[T float](b *Backend, v vectorArgs) {
	dst, x, y := floats[T](v.dst), floats[T](v.x), floats[T](v.y)
	b.parallel(len(dst), minElems, func(_, lo, hi int) {
		d, xs, ys := dst[lo:hi], x[lo:hi], y[lo:hi]
		for i := range d {
			d[i] = xs[i] + ys[i]
		}
	})
}

// Gather implements engine.Backend.
func (b *Backend) Gather(dst, src, index *engine.Tensor) {
	must(engine.CheckGather(dst, src, index))
	idx := I32(index)
	defer b.span(opGather)()
	switch dst.DType {
	case engine.Float32:
		gatherRows(F32(dst), F32(src), idx, src.Cols(), src.Rows())
	case engine.Float64:
		gatherRows(F64(dst), F64(src), idx, src.Cols(), src.Rows())
	case engine.Int32:
		gatherRows(I32(dst), I32(src), idx, src.Cols(), src.Rows())
	case engine.Uint8:
		gatherRows(U8(dst), U8(src), idx, src.Cols(), src.Rows())
	}
}

func gatherRows[T any](dst, src []T, idx []int32, cols, rows int) {
	for i, j := range idx {
		if int(j) < 0 || int(j) >= rows {
			panic(fmt.Sprintf("cpu: gather index %d outside [0,%d)", j, rows))
		}
		copy(dst[i*cols:(i+1)*cols], src[int(j)*cols:(int(j)+1)*cols])
	}
}

// must panics with err, a failed precondition of an op (engine's Check
// functions), unless it is nil.
func must(err error) {
	if err != nil {
		panic("cpu: " + err.Error())
	}
}

var (
	cpuModelOnce sync.Once
	cpuModel     string
)

// CPUModel is the processor's model name from /proc/cpuinfo ("unknown CPU"
// when it cannot be read).
func CPUModel() string {
	cpuModelOnce.Do(func() {
		cpuModel = "unknown CPU"
		b, err := os.ReadFile("/proc/cpuinfo")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpuModel = strings.TrimSpace(v)
				return
			}
		}
	})
	return cpuModel
}
