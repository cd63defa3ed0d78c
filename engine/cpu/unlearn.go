package cpu

import (
	"fmt"
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
)

// AddSign implements engine.Backend.
func (b *Backend) AddSign(a float64, x, y *engine.Tensor) {
	must(engine.CheckLike("add sign", "y", y, x))
	if x.DType == engine.Float32 {
		addSign(b, float32(a), F32(x), F32(y))
	} else {
		addSign(b, a, F64(x), F64(y))
	}
}

func addSign[T float](b *Backend, a T, x, y []T) {
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			switch {
			case x[i] > 0:
				y[i] += a
			case x[i] < 0:
				y[i] -= a
			}
		}
	})
}

// AddSqrt implements engine.Backend.
func (b *Backend) AddSqrt(dst, src *engine.Tensor) {
	must(engine.CheckLike("add sqrt", "src", src, dst))
	if dst.DType == engine.Float32 {
		d, s := F32(dst), F32(src)
		for i := range d {
			d[i] += float32(math.Sqrt(float64(s[i])))
		}
		return
	}
	d, s := F64(dst), F64(src)
	for i := range d {
		d[i] += math.Sqrt(s[i])
	}
}

// softmaxRow writes the probabilities of one row of logits into p (float64)
// and returns log Σ exp(z − max) and the max.
func softmaxRow[T float](z []T, p []float64) (logSum, zmax float64) {
	zmax = math.Inf(-1)
	for _, v := range z {
		zmax = math.Max(zmax, float64(v))
	}
	var sum float64
	for j, v := range z {
		p[j] = math.Exp(float64(v) - zmax)
		sum += p[j]
	}
	for j := range p {
		p[j] /= sum
	}
	return math.Log(sum), zmax
}

// SimilarLabels implements engine.Backend.
func (b *Backend) SimilarLabels(logits, labels, out *engine.Tensor) {
	must(engine.CheckSimilarLabels(logits, labels, out))
	if logits.DType == engine.Float32 {
		similarLabels(b, F32(logits), logits.Cols(), I32(labels), I32(out))
	} else {
		similarLabels(b, F64(logits), logits.Cols(), I32(labels), I32(out))
	}
}

func similarLabels[T float](b *Backend, logits []T, k int, labels, out []int32) {
	b.parallel(len(labels), 64, func(_, lo, hi int) {
		p := make([]float64, k)
		for i := lo; i < hi; i++ {
			softmaxRow(logits[i*k:(i+1)*k], p)
			y := int(labels[i])
			if y < 0 || y >= k {
				panic(fmt.Sprintf("cpu: label %d outside [0,%d)", y, k))
			}
			best, bestGap := -1, math.Inf(1)
			for j := range p {
				if j == y {
					continue
				}
				if gap := math.Abs(p[j] - p[y]); gap < bestGap {
					best, bestGap = j, gap
				}
			}
			out[i] = int32(best)
		}
	})
}

// SoftmaxEntropy implements engine.Backend.
func (b *Backend) SoftmaxEntropy(a engine.LossArgs) {
	must(engine.CheckSoftmaxEntropy(a))
	if a.Logits.DType == engine.Float32 {
		softmaxEntropy[float32](b, a)
	} else {
		softmaxEntropy[float64](b, a)
	}
}

func softmaxEntropy[T float](b *Backend, a engine.LossArgs) {
	logits := floats[T](a.Logits)
	n, k := a.Logits.Rows(), a.Logits.Cols()
	weights := floatsOrNil[T](a.Weights)
	dl, ent := floatsOrNil[T](a.DLogits), floatsOrNil[T](a.Entropy)
	b.parallel(n, 64, func(_, lo, hi int) {
		p := make([]float64, k)
		for i := lo; i < hi; i++ {
			z := logits[i*k : (i+1)*k]
			logSum, zmax := softmaxRow(z, p)
			var h float64
			for j := range p {
				if p[j] > 0 {
					h -= p[j] * (float64(z[j]) - zmax - logSum)
				}
			}
			if ent != nil {
				ent[i] = T(h)
			}
			if dl == nil {
				continue
			}
			w := a.Scale
			if weights != nil {
				w *= float64(weights[i])
			}
			// ∂H/∂z_j = −p_j·(log p_j + H).
			for j := range p {
				logp := float64(z[j]) - zmax - logSum
				dl[i*k+j] = T(-w * p[j] * (logp + h))
			}
		}
	})
}
