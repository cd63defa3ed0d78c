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

// Scale implements engine.Backend.
func (b *Backend) Scale(x *engine.Tensor, a float64) {
	if x.DType == engine.Float32 {
		scale(b, F32(x), float32(a))
	} else {
		scale(b, F64(x), a)
	}
}

func scale[T float](b *Backend, x []T, a T) {
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
	if x.DType == engine.Float32 {
		axpy(b, float32(a), F32(x), F32(y))
	} else {
		axpy(b, a, F64(x), F64(y))
	}
}

func axpy[T float](b *Backend, a T, x, y []T) {
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
	if dst.DType == engine.Float32 {
		add(b, F32(dst), F32(x), F32(y))
	} else {
		add(b, F64(dst), F64(x), F64(y))
	}
}

func add[T float](b *Backend, dst, x, y []T) {
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
