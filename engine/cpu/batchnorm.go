package cpu

import (
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
)

// BatchNorm implements engine.Backend.
func (b *Backend) BatchNorm(a engine.BatchNormArgs) {
	must(engine.CheckBatchNorm(a, false))
	dispatch(b, opBatchNorm, a.X.DType, a, batchNorm[float32], batchNorm[float64])
}

// BatchNormBackward implements engine.Backend.
func (b *Backend) BatchNormBackward(a engine.BatchNormArgs) {
	must(engine.CheckBatchNorm(a, true))
	dispatch(b, opBatchNorm, a.X.DType, a, batchNormBackward[float32], batchNormBackward[float64])
}

func batchNorm[T float](b *Backend, a engine.BatchNormArgs) {
	x, y := floats[T](a.X), floats[T](a.Y)
	gamma, beta := floats[T](a.Gamma), floats[T](a.Beta)
	mean, invstd := floats[T](a.Mean), floats[T](a.InvStd)
	rm, rv := floats[T](a.RunMean), floats[T](a.RunVar)
	c := len(gamma)
	rows := len(x) / c
	if a.Train {
		sums := columnSums(b, x, c, x)
		m := a.Momentum
		for j := 0; j < c; j++ {
			mu := sums[j] / float64(rows)
			v := math.Max(sums[c+j]/float64(rows)-mu*mu, 0)
			mean[j] = T(mu)
			invstd[j] = T(1 / math.Sqrt(v+a.Eps))
			unbiased := v
			if rows > 1 {
				unbiased = v * float64(rows) / float64(rows-1)
			}
			rm[j] = T((1-m)*float64(rm[j]) + m*mu)
			rv[j] = T((1-m)*float64(rv[j]) + m*unbiased)
		}
	} else {
		for j := 0; j < c; j++ {
			mean[j] = rm[j]
			invstd[j] = T(1 / math.Sqrt(float64(rv[j])+a.Eps))
		}
	}
	// y = x·scale + shift with scale = γ·invstd, shift = β − mean·scale.
	scale, shift := make([]T, c), make([]T, c)
	for j := range scale {
		scale[j] = gamma[j] * invstd[j]
		shift[j] = beta[j] - mean[j]*scale[j]
	}
	b.parallel(rows, max(1, minElems/c), func(_, lo, hi int) {
		if x32, ok := native32(x[lo*c : hi*c]); ok {
			nativeBNApply(x32, nativeOrNil(y[lo*c:hi*c]), hi-lo, c, nativeOrNil(scale), nativeOrNil(shift), int(a.Act))
			return
		}
		for r := lo; r < hi; r++ {
			xs, ys := x[r*c:(r+1)*c], y[r*c:(r+1)*c]
			switch a.Act {
			case engine.ReLU:
				for j, v := range xs {
					ys[j] = max(v*scale[j]+shift[j], 0)
				}
			case engine.ReLU6:
				for j, v := range xs {
					ys[j] = min(max(v*scale[j]+shift[j], 0), 6)
				}
			default:
				for j, v := range xs {
					ys[j] = v*scale[j] + shift[j]
				}
			}
		}
	})
}

// flat reports where a fused activation has zero gradient (act 0: never).
func flat[T float](act engine.Activation, y T) bool {
	return (act == engine.ReLU || act == engine.ReLU6) && y <= 0 || act == engine.ReLU6 && y >= 6
}

// bnSums returns, per channel, Σ dy and Σ dy·x over the rows, with dy
// zeroed where the fused activation is flat, summed in float64 like
// columnSums (which it is without a fused activation).
func bnSums[T float](b *Backend, a engine.BatchNormArgs, x, dy []T, c int) (sumDy, sumDyX []float64) {
	if a.Act == 0 {
		s := columnSums(b, dy, c, x)
		return s[:c], s[c:]
	}
	y := floats[T](a.Y)
	rows := len(x) / c
	partial := make([][]float64, b.threads)
	chunks := b.parallel(rows, max(1, minElems/c), func(w, lo, hi int) {
		acc := make([]float64, 2*c)
		partial[w] = acc
		sd, sx := acc[:c], acc[c:]
		if dy32, ok := native32(dy[lo*c : hi*c]); ok {
			nativeBNGradSums(dy32, nativeOrNil(x[lo*c:hi*c]), nativeOrNil(y[lo*c:hi*c]), hi-lo, c, int(a.Act), sd, sx)
			return
		}
		for r := lo; r < hi; r++ {
			ds := dy[r*c : (r+1)*c]
			xs := x[r*c : (r+1)*c][:len(ds)]
			ys := y[r*c : (r+1)*c][:len(ds)]
			sd, sx := sd[:len(ds)], sx[:len(ds)]
			if a.Act == engine.ReLU {
				for j, d := range ds {
					if !(ys[j] <= 0) {
						sd[j] += float64(d)
						sx[j] += float64(d) * float64(xs[j])
					}
				}
				continue
			}
			for j, d := range ds {
				if !flat(a.Act, ys[j]) {
					sd[j] += float64(d)
					sx[j] += float64(d) * float64(xs[j])
				}
			}
		}
	})
	sumDy, sumDyX = make([]float64, c), make([]float64, c)
	for _, p := range partial[:chunks] {
		for j := 0; j < c; j++ {
			sumDy[j] += p[j]
			sumDyX[j] += p[c+j]
		}
	}
	return sumDy, sumDyX
}

func batchNormBackward[T float](b *Backend, a engine.BatchNormArgs) {
	x, dy := floats[T](a.X), floats[T](a.DY)
	gamma := floats[T](a.Gamma)
	mean, invstd := floats[T](a.Mean), floats[T](a.InvStd)
	c := len(gamma)
	rows := len(x) / c
	// Σ dy and Σ dy·x per channel give Σ dy·x̂ = invstd·(Σ dy·x − mean·Σ dy).
	sumDy, sumDyX := bnSums(b, a, x, dy, c)
	sumDyXhat := make([]float64, c)
	for j := 0; j < c; j++ {
		sumDyXhat[j] = float64(invstd[j]) * (sumDyX[j] - float64(mean[j])*sumDy[j])
	}
	if a.DGamma != nil {
		dg := floats[T](a.DGamma)
		for j := range dg {
			dg[j] += T(sumDyXhat[j])
		}
	}
	if a.DBeta != nil {
		db := floats[T](a.DBeta)
		for j := range db {
			db[j] += T(sumDy[j])
		}
	}
	if a.DX == nil {
		return
	}
	dx := floats[T](a.DX)
	// Training: dx = γ·invstd·(dy − Σdy/M − x̂·Σdy·x̂/M); evaluation: dx = γ·invstd·dy.
	// Both are dx = dy·k + x·u + v per channel.
	k, u, v := make([]T, c), make([]T, c), make([]T, c)
	for j := 0; j < c; j++ {
		gi := float64(gamma[j]) * float64(invstd[j])
		k[j] = T(gi)
		if a.Train {
			is := float64(invstd[j])
			cu := -gi * is * sumDyXhat[j] / float64(rows)
			u[j] = T(cu)
			v[j] = T(-gi*sumDy[j]/float64(rows) - cu*float64(mean[j]))
		}
	}
	var y []T
	if a.Act != 0 {
		y = floats[T](a.Y)
	}
	bnGradApply(b, a.Act, x, dy, y, dx, k, u, v)
}

// bnGradApply writes dx = dy'·k + x·u + v per channel, where dy' is dy
// zeroed where the fused activation act (output y) is flat.
func bnGradApply[T float](b *Backend, act engine.Activation, x, dy, y, dx, k, u, v []T) {
	c := len(k)
	rows := len(x) / c
	b.parallel(rows, max(1, minElems/c), func(_, lo, hi int) {
		if dy32, ok := native32(dy[lo*c : hi*c]); ok {
			var ys []T
			if y != nil {
				ys = y[lo*c : hi*c]
			}
			nativeBNGradApply(dy32, nativeOrNil(x[lo*c:hi*c]), nativeOrNil(ys), nativeOrNil(dx[lo*c:hi*c]), hi-lo, c, int(act),
				nativeOrNil(k), nativeOrNil(u), nativeOrNil(v))
			return
		}
		for r := lo; r < hi; r++ {
			xs, ds, os := x[r*c:(r+1)*c], dy[r*c:(r+1)*c], dx[r*c:(r+1)*c]
			if y == nil {
				for j := range os {
					os[j] = ds[j]*k[j] + xs[j]*u[j] + v[j]
				}
				continue
			}
			ys := y[r*c : (r+1)*c]
			if act == engine.ReLU {
				for j := range os {
					d := ds[j]
					if ys[j] <= 0 {
						d = 0
					}
					os[j] = d*k[j] + xs[j]*u[j] + v[j]
				}
				continue
			}
			for j := range os {
				d := ds[j]
				if flat(act, ys[j]) {
					d = 0
				}
				os[j] = d*k[j] + xs[j]*u[j] + v[j]
			}
		}
	})
}
