package qmul

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// unlearner runs one method's epochs: the machinery every method file
// shares.
type unlearner struct {
	*Study
	h      Hyper
	method Method
	// aug is the augmentation of the training passes: the study's, or
	// none when the method's augment parameter is off.
	aug   data.Augmentation
	opt   *optim.SGD
	sched optim.Schedule
	ctx   *nn.Ctx
	// labels are the training labels with D_f relabelled (Int32 [N]).
	labels *engine.Tensor
	// norm holds the smoothed gradient norms of the forget (0) and retain
	// (1) groups for --agr step and sample.
	norm [2]float64
	// isForget marks D_f members among training indices.
	isForget map[int32]bool
	// note is what the current epoch adds to its trace (AGR norms and
	// weights).
	note EpochTrace
	// retained sums the current epoch's passes over D_r alone, which the
	// collapse guard watches.
	retained train.StepResult
}

// release frees what the run allocated besides the model: the momentum
// buffers, SalUn's masks and the relabelled targets (a learning-rate search
// runs many methods in one process, on a GPU too).
func (u *unlearner) release() {
	for i, t := range u.opt.Buffers() {
		if t != nil {
			u.B.Free(t)
		}
		if m := u.opt.Mask(i); m != nil {
			u.B.Free(m)
			u.opt.SetMask(i, nil)
		}
	}
	if u.labels != nil {
		u.B.Free(u.labels)
		u.labels = nil
	}
}

// Event is one random choice of an unlearning run, as a Recorder sees it.
type Event struct {
	// Kind is "batches" (the minibatch order of one pass) or "labels" (a
	// draw of random labels).
	Kind string `json:"kind"`
	// Role names the pass or draw, e.g. "forget", "retain", "joint",
	// "measure-forget".
	Role string `json:"role"`
	// Batches are the data set indices of each minibatch, in order.
	Batches [][]int32 `json:"batches,omitempty"`
	// Crops and Flips are each minibatch's augmentation (train.Plan's),
	// when the pass is augmented; Pad is the crops' zero padding.
	Crops [][]int32 `json:"crops,omitempty"`
	Flips [][]int32 `json:"flips,omitempty"`
	Pad   int       `json:"pad,omitempty"`
	// Labels are the drawn labels: for all of D_f in its order, or for one
	// minibatch in its order.
	Labels []int32 `json:"labels,omitempty"`
}

// Recorder receives a run's random choices.
type Recorder func(Event)

// record tells the study's recorder about a choice.
func (u *unlearner) record(ev Event) {
	if u.Record != nil {
		u.Record(ev)
	}
}

// plans draws the minibatches of a pass of the shared batch size.
func (u *unlearner) plans(role string, idx []int, r *rand.Rand) []train.Plan {
	return u.plansOf(role, idx, u.h.Batch, r, u.aug)
}

// plansOf draws minibatches of batch samples, shuffled and augmented by r
// (in order and plain when r is nil), and records them under role.
func (u *unlearner) plansOf(role string, idx []int, batch int, r *rand.Rand, aug data.Augmentation) []train.Plan {
	ps := train.Plans(idx, batch, r, aug)
	if u.Record != nil {
		ev := Event{Kind: "batches", Role: role}
		for _, p := range ps {
			ev.Batches = append(ev.Batches, slices.Clone(p.Index))
			if p.Crop != nil {
				ev.Crops = append(ev.Crops, slices.Clone(p.Crop))
			}
			if p.Flip != nil {
				ev.Flips = append(ev.Flips, slices.Clone(p.Flip))
			}
		}
		if len(ev.Crops) > 0 {
			ev.Pad = aug.Pad
		}
		u.Record(ev)
	}
	return ps
}

// EpochTrace records one unlearning epoch; the AGR fields are set for
// qmul, sl and rl-agr (norms of --agr step and sample are the smoothed
// values at the end of the epoch).
type EpochTrace struct {
	train.EpochStats
	NormForget   float64 `json:"norm_forget,omitempty"`
	NormRetain   float64 `json:"norm_retain,omitempty"`
	WeightForget float64 `json:"weight_forget,omitempty"`
	WeightRetain float64 `json:"weight_retain,omitempty"`
}

// epochFunc runs one epoch at learning rate lr and returns its summary.
type epochFunc func(e int, lr float64) (train.StepResult, error)

// loop runs the method's epochs, reporting progress and stopping on a
// non-finite loss or a collapse.
func (u *unlearner) loop(epoch epochFunc) error {
	guard := u.collapseGuard()
	for e := 0; e < u.h.Epochs; e++ {
		began := time.Now()
		u.retained = train.StepResult{}
		lr := u.sched.At(e)
		if u.Progress != nil {
			u.Progress.EpochStart(e+1, u.h.Epochs, 0)
		}
		var r train.StepResult
		err := u.timed("unlearn", func() (err error) {
			r, err = epoch(e, lr)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s epoch %d: %w", u.method.Name, e+1, err)
		}
		if err := u.B.Err(); err != nil {
			return fmt.Errorf("%s epoch %d: %w", u.method.Name, e+1, err)
		}
		secs := time.Since(began).Seconds()
		stats := train.EpochStats{Epoch: e + 1, Epochs: u.h.Epochs, LR: lr,
			TrainLoss: r.Loss / float64(max(1, r.N)), TrainAcc: 100 * float64(r.Correct) / float64(max(1, r.N)),
			Seconds: secs, ImagesPerSec: float64(r.N) / secs}
		u.note.EpochStats = stats
		u.Trace = append(u.Trace, u.note)
		u.note = EpochTrace{}
		if u.Progress != nil {
			u.Progress.EpochEnd(stats)
		}
		if guard != nil {
			if err := guard.Epoch(e+1, lr, u.guardedLoss(stats.TrainLoss)); err != nil {
				return fmt.Errorf("%s: %w", u.method.Name, err)
			}
		}
	}
	return nil
}

// guardedLoss is the loss the collapse guard judges an epoch by: the mean
// loss of its passes over D_r where it had any, since the loss toward the
// forget set's new targets (random or similar labels, shifted labels) may
// rise by design — Q-MUL relabels D_f with the current model every epoch —
// while a model that no longer fits D_r has collapsed. Epochs without a
// retain pass (joint batches, forget-only methods) are judged by their
// whole loss.
func (u *unlearner) guardedLoss(epochLoss float64) float64 {
	if u.retained.N == 0 {
		return epochLoss
	}
	return u.retained.Loss / float64(u.retained.N)
}

// collapseGuard returns the guard of the method's epoch losses, or nil
// where it is turned off or the loss rises by design (Method.Ascends).
func (u *unlearner) collapseGuard() *train.CollapseGuard {
	if u.h.AllowCollapse || u.method.Ascends {
		return nil
	}
	return train.NewCollapseGuard(u.Classes)
}

// stepFunc trains on one batch at learning rate lr.
type stepFunc func(bt *train.Batch, lr float64) (train.StepResult, error)

// pass runs step over the minibatches of idx, shuffled and augmented with
// the epoch's random source (the order recorded under role); labels
// overrides the true labels.
func (u *unlearner) pass(role string, r *rand.Rand, idx []int, labels *engine.Tensor, lr float64, step stepFunc) (train.StepResult, error) {
	res, err := u.run(u.plans(role, idx, r), labels, lr, step)
	if role == "retain" {
		u.retained = sum(u.retained, res)
	}
	return res, err
}

// run runs step over the minibatches of plans.
func (u *unlearner) run(plans []train.Plan, labels *engine.Tensor, lr float64, step stepFunc) (train.StepResult, error) {
	it := u.Train.Iterate(u.B, plans, u.aug, labels)
	defer it.Close()
	var total train.StepResult
	for n := 1; ; n++ {
		bt, ok := it.Next()
		if !ok {
			break
		}
		res, err := step(bt, lr)
		u.Steps++
		bt.Free(u.B)
		if err != nil {
			return total, err
		}
		if !res.Finite() {
			return total, fmt.Errorf("step %d: %w", n, train.ErrDiverged)
		}
		total.N += res.N
		total.Loss += res.Loss
		total.Correct += res.Correct
		if u.Progress != nil {
			u.Progress.StepDone(n, total.Loss/float64(total.N), 100*float64(total.Correct)/float64(total.N), 0)
		}
	}
	return total, nil
}

// sgdStep is a plain step: mean cross-entropy times scale, then the update.
func (u *unlearner) sgdStep(scale float64) stepFunc {
	return func(bt *train.Batch, lr float64) (train.StepResult, error) {
		r := train.Step(u.ctx, u.Model, bt, nil, scale/float64(len(bt.Index)))
		u.opt.Step(u.B, lr)
		nn.ZeroGrad(u.B, u.opt.Params())
		return r, nil
	}
}

func (u *unlearner) rng(e int) *rand.Rand { return train.EpochRNG(u.h.Seed, e) }

// relabel uploads the training labels with D_f's replaced by forget[i].
func (u *unlearner) relabel(forget []int32) {
	if u.labels == nil {
		u.labels = u.B.Alloc(engine.Int32, u.Train.N)
	}
	host := slices.Clone(u.Train.HostLabels)
	for i, idx := range u.Forget {
		host[idx] = forget[i]
	}
	u.B.Upload(u.labels, host)
}

// randomLabels draws n uniformly random classes, as the SalUn code does
// (the true class may be drawn), and records them under role.
func (u *unlearner) randomLabels(role string, r *rand.Rand, n int) []int32 {
	l := make([]int32, n)
	for i := range l {
		l[i] = int32(r.IntN(u.Classes))
	}
	u.record(Event{Kind: "labels", Role: role, Labels: slices.Clone(l)})
	return l
}

// gradNorm is Σ_k ‖∂/∂θ_k‖₂ over every trainable tensor of the gradient
// accumulated in the parameters (one reduction, one download).
func (u *unlearner) gradNorm() float64 {
	ps := u.opt.Params()
	grads := make([]*engine.Tensor, len(ps))
	for i, p := range ps {
		grads[i] = p.Grad
	}
	out := u.B.Alloc(engine.Float32, len(ps))
	u.B.SumSquares(grads, out)
	v := make([]float32, len(ps))
	u.B.Download(out, v)
	u.B.Free(out)
	var s float64
	for _, x := range v {
		s += math.Sqrt(float64(x))
	}
	return s
}
