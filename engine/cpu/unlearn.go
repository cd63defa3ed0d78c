package cpu

import (
	"fmt"
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
)

// AddSign implements engine.Backend.
func (b *Backend) AddSign(a float64, x, y *engine.Tensor) {
	must(engine.CheckLike("add sign", "y", y, x))
	dispatch(b, opElementwise, x.DType, vectorArgs{a: a, x: x, y: y}, addSign[float32], addSign[float64])
}

func addSign[T float](b *Backend, v vectorArgs) {
	a, x, y := T(v.a), floats[T](v.x), floats[T](v.y)
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
	dispatch(b, opElementwise, dst.DType, vectorArgs{dst: dst, x: src}, addSqrt[float32], addSqrt[float64])
}

func addSqrt[T float](_ *Backend, v vectorArgs) {
	d, s := floats[T](v.dst), floats[T](v.x)
	for i := range d {
		d[i] += T(math.Sqrt(float64(s[i])))
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
	dispatch(b, opLoss, logits.DType, engine.LossArgs{Logits: logits, Labels: labels, Pred: out}, similarLabels[float32], similarLabels[float64])
}

// similarLabels writes each row's similar label into a.Pred.
func similarLabels[T float](b *Backend, a engine.LossArgs) {
	logits, k, labels, out := floats[T](a.Logits), a.Logits.Cols(), I32(a.Labels), I32(a.Pred)
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
	dispatch(b, opLoss, a.Logits.DType, a, softmaxEntropy[float32], softmaxEntropy[float64])
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
