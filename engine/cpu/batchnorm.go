package cpu

import (
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
)

// BatchNorm implements engine.Backend.
func (b *Backend) BatchNorm(a engine.BatchNormArgs) {
	if a.X.DType == engine.Float32 {
		batchNorm[float32](b, a)
	} else {
		batchNorm[float64](b, a)
	}
}

// BatchNormBackward implements engine.Backend.
func (b *Backend) BatchNormBackward(a engine.BatchNormArgs) {
	if a.X.DType == engine.Float32 {
		batchNormBackward[float32](b, a)
	} else {
		batchNormBackward[float64](b, a)
	}
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
		for r := lo; r < hi; r++ {
			xs, ys := x[r*c:(r+1)*c], y[r*c:(r+1)*c]
			for j, v := range xs {
				ys[j] = v*scale[j] + shift[j]
			}
		}
	})
}

func batchNormBackward[T float](b *Backend, a engine.BatchNormArgs) {
	x, dy := floats[T](a.X), floats[T](a.DY)
	gamma := floats[T](a.Gamma)
	mean, invstd := floats[T](a.Mean), floats[T](a.InvStd)
	c := len(gamma)
	rows := len(x) / c
	// Σ dy and Σ dy·x per channel give Σ dy·x̂ = invstd·(Σ dy·x − mean·Σ dy).
	sums := columnSums(b, dy, c, x)
	sumDy, sumDyXhat := make([]float64, c), make([]float64, c)
	for j := 0; j < c; j++ {
		sumDy[j] = sums[j]
		sumDyXhat[j] = float64(invstd[j]) * (sums[c+j] - float64(mean[j])*sums[j])
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
	b.parallel(rows, max(1, minElems/c), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			xs, ds, os := x[r*c:(r+1)*c], dy[r*c:(r+1)*c], dx[r*c:(r+1)*c]
			for j := range os {
				os[j] = ds[j]*k[j] + xs[j]*u[j] + v[j]
			}
		}
	})
}
