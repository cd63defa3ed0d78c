package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
)

// ErrDiverged is returned (wrapped) when the loss becomes NaN or infinite.
var ErrDiverged = errors.New("loss is not finite")

// Recipe is a training recipe.
type Recipe struct {
	Epochs      int               `json:"epochs"`
	Batch       int               `json:"batch"`
	Schedule    optim.Schedule    `json:"schedule"`
	Momentum    float64           `json:"momentum"`
	WeightDecay float64           `json:"weight_decay"`
	Nesterov    bool              `json:"nesterov"`
	Seed        uint64            `json:"seed"`
	Aug         data.Augmentation `json:"augmentation"`
}

// Validate reports a recipe that cannot run.
func (r Recipe) Validate() error {
	if r.Epochs < 1 {
		return fmt.Errorf("epochs %d: must be at least 1", r.Epochs)
	}
	if r.Batch < 1 {
		return fmt.Errorf("batch %d: must be at least 1", r.Batch)
	}
	for name, v := range map[string]float64{"momentum": r.Momentum, "weight decay": r.WeightDecay} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("%s %g: must be a finite number ≥ 0", name, v)
		}
	}
	if r.Momentum >= 1 {
		return fmt.Errorf("momentum %g: must be below 1", r.Momentum)
	}
	return r.Schedule.Validate()
}

// EpochRNG is the random source of one epoch: shuffling and augmentation
// depend only on the seed and the epoch, so a resumed run draws the same.
func EpochRNG(seed uint64, epoch int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x65706f6368+uint64(epoch)))
}

// StepResult summarises one forward/backward pass.
type StepResult struct {
	N       int
	Loss    float64 // Σ of per-sample losses (unweighted)
	Correct int
}

// Finite reports whether every loss was finite.
func (s StepResult) Finite() bool { return !math.IsNaN(s.Loss) && !math.IsInf(s.Loss, 0) }

// Step runs forward and backward on one batch in training mode and
// accumulates the parameter gradients of scale·Σ_i w_i·CE_i, with w_i from
// weights (Float32 [B]) or 1 when weights is nil.
func Step(c *nn.Ctx, m *models.Model, bt *Batch, weights *engine.Tensor, scale float64) StepResult {
	b := c.B
	n := len(bt.Index)
	logits := m.Net.Forward(c, bt.X)
	dl := b.Alloc(logits.DType, logits.Shape...)
	loss, pred := b.Alloc(logits.DType, n), b.Alloc(engine.Int32, n)
	b.SoftmaxCrossEntropy(engine.LossArgs{Logits: logits, Labels: bt.Y, Weights: weights, Scale: scale,
		DLogits: dl, Loss: loss, Pred: pred})
	if dx := m.Net.Backward(c, dl); dx != nil {
		b.Free(dx)
	}
	b.Free(dl)
	return summarise(b, bt, loss, pred)
}

func summarise(b engine.Backend, bt *Batch, loss, pred *engine.Tensor) StepResult {
	n := len(bt.Index)
	lv, pv, yv := make([]float64, n), make([]int32, n), make([]int32, n)
	if loss.DType == engine.Float64 {
		b.Download(loss, lv)
	} else {
		l32 := make([]float32, n)
		b.Download(loss, l32)
		for i, v := range l32 {
			lv[i] = float64(v)
		}
	}
	b.Download(pred, pv)
	b.Download(bt.Y, yv)
	b.Free(loss)
	b.Free(pred)
	r := StepResult{N: n}
	for i := range lv {
		r.Loss += lv[i]
		if pv[i] == yv[i] {
			r.Correct++
		}
	}
	return r
}

// EpochStats are the statistics of one finished epoch.
type EpochStats struct {
	Epoch     int     `json:"epoch"` // 1-based
	Epochs    int     `json:"epochs"`
	LR        float64 `json:"lr"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	ValAcc    float64 `json:"val_acc,omitempty"`
	TestAcc   float64 `json:"test_acc,omitempty"`
	// Seconds is the whole epoch, evaluation included; TrainSeconds its
	// training steps alone (what Retrain's RTE sums).
	Seconds      float64 `json:"seconds"`
	TrainSeconds float64 `json:"train_seconds,omitempty"`
	ImagesPerSec float64 `json:"images_per_sec"`
}

// Progress receives training progress; the CLI draws bars or prints lines.
type Progress interface {
	// EpochStart announces an epoch (1-based) of steps minibatches.
	EpochStart(epoch, epochs, steps int)
	// StepDone reports the running loss and accuracy of the epoch so far.
	StepDone(step int, loss, acc, imagesPerSec float64)
	// EpochEnd reports the finished epoch.
	EpochEnd(s EpochStats)
}

// Split is a list of samples of a resident data set.
type Split struct {
	Data    *DeviceData
	Indices []int
}

// Trainer trains a model with SGD on a split.
type Trainer struct {
	B      engine.Backend
	Model  *models.Model
	Opt    *optim.SGD
	Recipe Recipe
	Train  Split
	// Val and Test, when they have samples, are evaluated after each epoch.
	Val, Test Split
	Progress  Progress
	// EpochEnd is called after each epoch (checkpointing), before Progress
	// hears of it; an error stops training.
	EpochEnd func(s EpochStats) error
	// Collapse, when set, stops training at the first epoch it reports,
	// before that epoch is checkpointed.
	Collapse *CollapseGuard
}

// Run trains from epoch start (0-based) to the end of the recipe.
func (t *Trainer) Run(start int) error {
	c := &nn.Ctx{B: t.B, Train: true}
	params := t.Model.Params()
	nn.ZeroGrad(t.B, params)
	for e := start; e < t.Recipe.Epochs; e++ {
		began := time.Now()
		lr := t.Recipe.Schedule.At(e)
		plans := Plans(t.Train.Indices, t.Recipe.Batch, EpochRNG(t.Recipe.Seed, e), t.Recipe.Aug)
		if t.Progress != nil {
			t.Progress.EpochStart(e+1, t.Recipe.Epochs, len(plans))
		}
		it := t.Train.Data.Iterate(t.B, plans, t.Recipe.Aug, nil)
		var total StepResult
		step := 0
		for {
			bt, ok := it.Next()
			if !ok {
				break
			}
			c.Train = true
			r := Step(c, t.Model, bt, nil, 1/float64(len(bt.Index)))
			bt.Free(t.B)
			if !r.Finite() {
				it.Close()
				return fmt.Errorf("epoch %d step %d: %w; stopping", e+1, step+1, ErrDiverged)
			}
			t.Opt.Step(t.B, lr)
			nn.ZeroGrad(t.B, params)
			total.N += r.N
			total.Loss += r.Loss
			total.Correct += r.Correct
			step++
			if t.Progress != nil {
				t.Progress.StepDone(step, total.Loss/float64(total.N), 100*float64(total.Correct)/float64(total.N),
					float64(total.N)/time.Since(began).Seconds())
			}
		}
		it.Close()
		if err := t.B.Err(); err != nil {
			return fmt.Errorf("epoch %d: %w", e+1, err)
		}
		trainSecs := time.Since(began).Seconds()
		s := EpochStats{Epoch: e + 1, Epochs: t.Recipe.Epochs, LR: lr,
			TrainLoss: total.Loss / float64(max(1, total.N)), TrainAcc: 100 * float64(total.Correct) / float64(max(1, total.N)),
			TrainSeconds: trainSecs, ImagesPerSec: float64(total.N) / trainSecs}
		if t.Collapse != nil {
			if err := t.Collapse.Epoch(s.Epoch, lr, s.TrainLoss); err != nil {
				return err
			}
		}
		if len(t.Val.Indices) > 0 {
			s.ValAcc = Evaluate(t.B, t.Model, t.Val.Data, t.Val.Indices, evalBatch(t.Recipe.Batch), false, nil).Accuracy()
		}
		if len(t.Test.Indices) > 0 {
			s.TestAcc = Evaluate(t.B, t.Model, t.Test.Data, t.Test.Indices, evalBatch(t.Recipe.Batch), false, nil).Accuracy()
		}
		s.Seconds = time.Since(began).Seconds()
		if t.EpochEnd != nil {
			if err := t.EpochEnd(s); err != nil {
				return err
			}
		}
		if t.Progress != nil {
			t.Progress.EpochEnd(s)
		}
	}
	return nil
}

// evalBatch is the evaluation batch size: larger than training's, since no
// gradients are kept.
func evalBatch(train int) int { return max(train, 256) }

// All lists 0..n-1.
func All(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
