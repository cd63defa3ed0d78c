package train

import (
	"math"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
)

// Outputs are a model's per-sample results on a list of samples, in the
// order of the list.
type Outputs struct {
	Index   []int32
	Labels  []int32
	Pred    []int32
	Loss    []float32
	Conf    []float32 // softmax probability of the true class
	Entropy []float32
	// Probs holds the softmax vectors (len(Index)×Classes) when asked for.
	Probs   []float32
	Classes int
}

// Correct counts correctly classified samples.
func (o *Outputs) Correct() int {
	n := 0
	for i, p := range o.Pred {
		if p == o.Labels[i] {
			n++
		}
	}
	return n
}

// Accuracy is the top-1 accuracy in percent (NaN for no samples).
func (o *Outputs) Accuracy() float64 {
	if len(o.Pred) == 0 {
		return math.NaN()
	}
	return 100 * float64(o.Correct()) / float64(len(o.Pred))
}

// MeanLoss is the mean cross-entropy.
func (o *Outputs) MeanLoss() float64 {
	var s float64
	for _, v := range o.Loss {
		s += float64(v)
	}
	return s / float64(max(1, len(o.Loss)))
}

// Evaluate runs the model in evaluation mode (running BatchNorm statistics,
// no augmentation) over the given samples. labels overrides the data set's
// labels when non-nil.
func Evaluate(b engine.Backend, m *models.Model, d *DeviceData, indices []int, batch int, probs bool, labels *engine.Tensor) *Outputs {
	c := &nn.Ctx{B: b, Train: false}
	n := len(indices)
	o := &Outputs{Index: make([]int32, n), Labels: make([]int32, n), Pred: make([]int32, n),
		Loss: make([]float32, n), Conf: make([]float32, n), Entropy: make([]float32, n), Classes: m.Config.Classes}
	if probs {
		o.Probs = make([]float32, n*m.Config.Classes)
	}
	it := d.Iterate(b, Plans(indices, batch, nil, data.Augmentation{}), data.Augmentation{}, labels)
	defer it.Close()
	at := 0
	for {
		bt, ok := it.Next()
		if !ok {
			break
		}
		k := len(bt.Index)
		logits := m.Net.Forward(c, bt.X)
		out := newLossOutputs(b, k)
		b.SoftmaxCrossEntropy(engine.LossArgs{Logits: logits, Labels: bt.Y, Scale: 1,
			Loss: out.loss, Pred: out.pred, Conf: out.conf, Entropy: out.entropy})
		copy(o.Index[at:], bt.Index)
		b.Download(bt.Y, o.Labels[at:at+k])
		out.download(b, o, at)
		if probs {
			z := make([]float32, k*o.Classes)
			b.Download(logits, z)
			softmaxRows(z, o.Classes)
			copy(o.Probs[at*o.Classes:], z)
		}
		out.free(b)
		m.Net.Release(c)
		bt.Free(b)
		at += k
	}
	return o
}

type lossOutputs struct {
	loss, conf, entropy, pred *engine.Tensor
}

func newLossOutputs(b engine.Storage, n int) lossOutputs {
	return lossOutputs{loss: b.Alloc(engine.Float32, n), conf: b.Alloc(engine.Float32, n),
		entropy: b.Alloc(engine.Float32, n), pred: b.Alloc(engine.Int32, n)}
}

func (l lossOutputs) download(b engine.Storage, o *Outputs, at int) {
	k := l.loss.Numel()
	b.Download(l.loss, o.Loss[at:at+k])
	b.Download(l.conf, o.Conf[at:at+k])
	b.Download(l.entropy, o.Entropy[at:at+k])
	b.Download(l.pred, o.Pred[at:at+k])
}

func (l lossOutputs) free(b engine.Storage) {
	b.Free(l.loss)
	b.Free(l.conf)
	b.Free(l.entropy)
	b.Free(l.pred)
}

// softmaxRows turns rows of logits into probabilities in place.
func softmaxRows(z []float32, k int) {
	for r := 0; r < len(z)/k; r++ {
		row := z[r*k : (r+1)*k]
		m := row[0]
		for _, v := range row {
			m = max(m, v)
		}
		var s float64
		for j, v := range row {
			e := math.Exp(float64(v - m))
			row[j] = float32(e)
			s += e
		}
		for j := range row {
			row[j] = float32(float64(row[j]) / s)
		}
	}
}
