package cpu

import (
	"math"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
)

// roundEven rounds half to even, as torch.round and CUDA's rintf do.
func roundEven[T float](v T) T { return T(math.RoundToEven(float64(v))) }

// roundSmall rounds half to even like roundEven, for |v| < 2^22, in the
// element type: adding and subtracting 1.5·2^(mantissa bits) leaves v
// rounded by the FPU's default round-to-nearest-even. The quantizers clamp
// to their integer range first (exact, because rounding is monotone and
// the bounds are integers), which keeps v small and saves the float64
// round trip on the hot path.
func roundSmall[T float](v T) T {
	m := T(1 << 23 * 1.5)
	if unsafe.Sizeof(v) == 8 {
		m = T(1 << 52 * 1.5)
	}
	return (v + m) - m
}

// The step-gradient sums of FakeQuantBackward run over blocks of fqBlock
// elements: element i of a block is summed in the element type in partial
// sum i mod fqLanes, and at the block's end each partial sum is widened to
// float64 and added in order. The lanes let the C kernel vectorise the
// same sums (16 float32 lanes are one AVX-512 register).
const (
	fqBlock = 256
	fqLanes = 16
)

// channels splits n elements into ch equal leading-index channels and runs
// fn over (channel, lo, hi) segments in parallel; the worker index w is
// passed for partial reductions. It returns the number of workers used.
func (b *Backend) channels(n, ch int, fn func(w, c, lo, hi int)) int {
	per := n / ch
	if ch == 1 {
		return b.parallel(n, minElems, func(w, lo, hi int) { fn(w, 0, lo, hi) })
	}
	return b.parallel(ch, max(1, minElems/max(1, per)), func(w, lo, hi int) {
		for c := lo; c < hi; c++ {
			fn(w, c, c*per, (c+1)*per)
		}
	})
}

// FakeQuant implements engine.Backend.
func (b *Backend) FakeQuant(a engine.FakeQuantArgs) {
	must(engine.CheckFakeQuant(a, false))
	dispatch(b, opQuant, a.X.DType, a, fakeQuant[float32], fakeQuant[float64])
}

// FakeQuantBackward implements engine.Backend.
func (b *Backend) FakeQuantBackward(a engine.FakeQuantArgs) {
	must(engine.CheckFakeQuant(a, true))
	dispatch(b, opQuant, a.X.DType, a, fakeQuantBackward[float32], fakeQuantBackward[float64])
}

func fakeQuant[T float](b *Backend, a engine.FakeQuantArgs) {
	x, y := floats[T](a.X), floats[T](a.Y)
	scale, zp := floats[T](a.Scale), floatsOrNil[T](a.ZeroPoint)
	lo, hi := T(a.Lo), T(a.Hi)
	b.channels(len(x), len(scale), func(_, c, i0, i1 int) {
		s := T(a.ScaleMul) * scale[c]
		var z T
		if zp != nil {
			z = zp[c]
		}
		xs, ys := x[i0:i1], y[i0:i1]
		if x32, ok := native32(xs); ok {
			nativeFakeQuant(x32, nativeOrNil(ys), float32(s), float32(z), float32(lo), float32(hi))
			return
		}
		ys = ys[:len(xs)]
		for i, v := range xs {
			ys[i] = s * (roundSmall(min(max(v/s+z, lo), hi)) - z)
		}
	})
}

func fakeQuantBackward[T float](b *Backend, a engine.FakeQuantArgs) {
	x, dy, dx := floats[T](a.X), floats[T](a.DY), floatsOrNil[T](a.DX)
	scale, zp := floats[T](a.Scale), floatsOrNil[T](a.ZeroPoint)
	ch := len(scale)
	lo, hi := T(a.Lo), T(a.Hi)
	// Partial sums per worker: inside, above and below, per channel.
	partial := make([][]float64, b.threads)
	for w := range partial {
		partial[w] = make([]float64, 3*ch)
	}
	workers := b.channels(len(x), ch, func(w, c, i0, i1 int) {
		s := T(a.ScaleMul) * scale[c]
		var z T
		if zp != nil {
			z = zp[c]
		}
		var dxs []T
		if dx != nil {
			dxs = dx[i0:i1]
		}
		var in, above, below float64
		if x32, ok := native32(x[i0:i1]); ok {
			in, above, below = nativeFakeQuantGrad(x32, nativeOrNil(dy[i0:i1]), nativeOrNil(dxs),
				float32(s), float32(z), float32(lo), float32(hi), a.Accumulate)
		} else {
			in, above, below = fakeQuantGrad(x[i0:i1], dy[i0:i1], dxs, s, z, lo, hi, a.Accumulate)
		}
		p := partial[w]
		p[c] += in
		p[ch+c] += above
		p[2*ch+c] += below
	})
	if a.DScale == nil {
		return
	}
	ds := floats[T](a.DScale)
	for c := 0; c < ch; c++ {
		var in, above, below float64
		for _, p := range partial[:workers] {
			in += p[c]
			above += p[ch+c]
			below += p[2*ch+c]
		}
		ds[c] += T(a.GradScale * (a.CInside*in + a.CAbove*above + a.CBelow*below))
	}
}

// fakeQuantGrad is FakeQuantBackward on one channel's elements with step s
// and zero point z: it writes (or adds) the straight-through gradient into
// dx, when given, and returns the sums inside, above and below the grid.
func fakeQuantGrad[T float](x, dy, dx []T, s, z, lo, hi T, accumulate bool) (in, above, below float64) {
	for b0 := 0; b0 < len(x); b0 += fqBlock {
		b1 := min(len(x), b0+fqBlock)
		xs, dys := x[b0:b1], dy[b0:b1]
		dys = dys[:len(xs)]
		var dxs []T
		if dx != nil {
			dxs = dx[b0:b1][:len(xs)]
		}
		var bin, babove, bbelow [fqLanes]T
		for i, xv := range xs {
			v := xv/s + z
			d := dys[i]
			l := i % fqLanes
			switch {
			case v < lo:
				bbelow[l] += d
				d = 0
			case v > hi:
				babove[l] += d
				d = 0
			default:
				bin[l] += d * (roundSmall(v) - v)
			}
			switch {
			case dxs == nil:
			case accumulate:
				dxs[i] += d
			default:
				dxs[i] = d
			}
		}
		for l := range fqLanes {
			in, above, below = in+float64(bin[l]), above+float64(babove[l]), below+float64(bbelow[l])
		}
	}
	return in, above, below
}

// Observe implements engine.Backend.
func (b *Backend) Observe(a engine.ObserveArgs) {
	must(engine.CheckObserve(a))
	dispatch(b, opQuant, a.X.DType, a, observe[float32], observe[float64])
}

func observe[T float](b *Backend, a engine.ObserveArgs) {
	mn, mx := floats[T](a.Min), floats[T](a.Max)
	ch := len(mn)
	if a.Update || a.Count == 0 {
		x := floats[T](a.X)
		lows, highs := make([]T, ch), make([]T, ch) // start at 0: zero is always in range
		b.channels(len(x), ch, func(_, c, i0, i1 int) {
			lo, hi := T(0), T(0)
			for _, v := range x[i0:i1] {
				lo, hi = min(lo, v), max(hi, v)
			}
			// Per-tensor chunks run concurrently: merge under the lock.
			b.mu.Lock()
			lows[c], highs[c] = min(lows[c], lo), max(highs[c], hi)
			b.mu.Unlock()
		})
		for c := range mn {
			if a.Count == 0 {
				mn[c], mx[c] = lows[c], highs[c]
			} else {
				m := T(a.Momentum)
				mn[c] += m * (lows[c] - mn[c])
				mx[c] += m * (highs[c] - mx[c])
			}
		}
	}
	scale, zp := floats[T](a.Scale), floats[T](a.ZeroPoint)
	for c := range mn {
		if a.Symmetric {
			scale[c] = max(max(-mn[c], mx[c])/T(a.Hi), 1e-8)
			zp[c] = 0
			continue
		}
		s := max((mx[c]-mn[c])/T(a.Hi-a.Lo), 1e-8)
		scale[c] = s
		zp[c] = min(max(T(a.Lo)-roundEven(mn[c]/s), T(a.Lo)), T(a.Hi))
	}
}

// DoReFaWeights implements engine.Backend.
func (b *Backend) DoReFaWeights(a engine.DoReFaArgs) {
	must(engine.CheckDoReFa(a, false))
	dispatch(b, opQuant, a.W.DType, a, dorefa[float32], dorefa[float64])
}

// DoReFaWeightsBackward implements engine.Backend.
func (b *Backend) DoReFaWeightsBackward(a engine.DoReFaArgs) {
	must(engine.CheckDoReFa(a, true))
	dispatch(b, opQuant, a.W.DType, a, dorefaBackward[float32], dorefaBackward[float64])
}

// dorefaMax returns M = max|tanh(w)| and the first index attaining it.
func dorefaMax[T float](w []T) (float64, int) {
	m, at := -1.0, 0
	for i, v := range w {
		if t := math.Abs(math.Tanh(float64(v))); t > m {
			m, at = t, i
		}
	}
	return math.Max(m, 1e-12), at
}

func dorefa[T float](b *Backend, a engine.DoReFaArgs) {
	w, y := floats[T](a.W), floats[T](a.Y)
	m, _ := dorefaMax(w)
	n := float64(int(1)<<a.Bits - 1)
	b.parallel(len(w), minElems, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			t := math.Tanh(float64(w[i]))
			q := math.RoundToEven(n*(t/(2*m)+0.5)) / n
			y[i] = T(2*q - 1)
		}
	})
}

func dorefaBackward[T float](b *Backend, a engine.DoReFaArgs) {
	w, dy, dw := floats[T](a.W), floats[T](a.DY), floats[T](a.DW)
	m, at := dorefaMax(w)
	var dot float64 // Σ DY·t
	for i, v := range w {
		dot += float64(dy[i]) * math.Tanh(float64(v))
	}
	b.parallel(len(w), minElems, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			t := math.Tanh(float64(w[i]))
			dt := float64(dy[i]) / m
			if i == at {
				dt -= math.Copysign(1, t) * dot / (m * m)
			}
			dw[i] += T(dt * (1 - t*t))
		}
	})
}
