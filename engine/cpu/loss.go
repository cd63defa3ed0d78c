package cpu

import (
	"fmt"
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
)

// SoftmaxCrossEntropy implements engine.Backend.
func (b *Backend) SoftmaxCrossEntropy(a engine.LossArgs) {
	must(engine.CheckSoftmaxCrossEntropy(a))
	dispatch(b, opLoss, a.Logits.DType, a, softmaxCrossEntropy[float32], softmaxCrossEntropy[float64])
}

func softmaxCrossEntropy[T float](b *Backend, a engine.LossArgs) {
	logits := floats[T](a.Logits)
	n := a.Logits.Rows()
	k := a.Logits.Cols()
	labels := I32(a.Labels)
	weights := floatsOrNil[T](a.Weights)
	dl := floatsOrNil[T](a.DLogits)
	loss, conf, ent := floatsOrNil[T](a.Loss), floatsOrNil[T](a.Conf), floatsOrNil[T](a.Entropy)
	var pred []int32
	if a.Pred != nil {
		pred = I32(a.Pred)
	}
	b.parallel(n, 64, func(_, lo, hi int) {
		p := make([]float64, k)
		for i := lo; i < hi; i++ {
			z := logits[i*k : (i+1)*k]
			y := int(labels[i])
			if y < 0 || y >= k {
				panic(fmt.Sprintf("cpu: label %d outside [0,%d)", y, k))
			}
			best := 0
			for j, v := range z {
				if v > z[best] {
					best = j
				}
			}
			zmax := float64(z[best])
			var sum float64
			for j, v := range z {
				p[j] = math.Exp(float64(v) - zmax)
				sum += p[j]
			}
			logSum := math.Log(sum)
			if loss != nil {
				loss[i] = T(logSum - (float64(z[y]) - zmax))
			}
			if pred != nil {
				pred[i] = int32(best)
			}
			var h float64
			for j := range p {
				p[j] /= sum
				if ent != nil && p[j] > 0 {
					h -= p[j] * (float64(z[j]) - zmax - logSum)
				}
			}
			if conf != nil {
				conf[i] = T(p[y])
			}
			if ent != nil {
				ent[i] = T(h)
			}
			if dl != nil {
				w := a.Scale
				if weights != nil {
					w *= float64(weights[i])
				}
				d := dl[i*k : (i+1)*k]
				for j := range d {
					d[j] = T(w * p[j])
				}
				d[y] = T(w * (p[y] - 1))
			}
		}
	})
}
