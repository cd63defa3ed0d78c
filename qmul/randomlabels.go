package qmul

import (
	"math/rand/v2"
	"slices"

	"github.com/qmulgpu/qmulgpu/engine/train"
)

// RL (method.md section 4): D_f with labels drawn uniformly over all
// classes, D_r with its true labels, in the schedule Q-MUL uses (section
// 3.3): sequential — one pass over D_f with labels drawn afresh for every
// minibatch, then one pass over D_r — or joint — D_f's labels drawn once per
// epoch, shuffled minibatches of D_f ∪ D_r. Labels come from their own
// random stream, so that with one seed RL, SL, Q-MUL and RL+AGR see the
// same minibatch orders.

var rlMethod = Method{
	Name:    "rl",
	Summary: "random labels on the forget set, true labels on the retain set",
	Run:     func(u *unlearner) error { return u.loop(u.randomLabelEpoch) },
}

// labelRNG is the random stream of epoch e's label draws.
func (u *unlearner) labelRNG(e int) *rand.Rand { return train.EpochRNG(u.h.Seed^0x6c6162656c, e) }

// randomLabelEpoch is one epoch of RL (and of SalUn's training).
func (u *unlearner) randomLabelEpoch(e int, lr float64) (train.StepResult, error) {
	r, lab := u.rng(e), u.labelRNG(e)
	step := u.sgdStep(1)
	if u.h.String("schedule") == "joint" {
		u.relabel(u.randomLabels("forget", lab, len(u.Forget)))
		return u.pass("joint", r, append(slices.Clone(u.Forget), u.Retain...), u.labels, lr, step)
	}
	fr, err := u.pass("forget", r, u.Forget, nil, lr, u.withRandomLabels(lab, step))
	if err != nil {
		return fr, err
	}
	rr, err := u.pass("retain", r, u.Retain, nil, lr, step)
	return sum(fr, rr), err
}

// withRandomLabels replaces a forget minibatch's labels by a fresh draw
// from r before step trains on it.
func (u *unlearner) withRandomLabels(r *rand.Rand, step stepFunc) stepFunc {
	return func(bt *train.Batch, lr float64) (train.StepResult, error) {
		u.B.Upload(bt.Y, u.randomLabels("batch", r, len(bt.Index)))
		return step(bt, lr)
	}
}

// sum adds two passes' summaries.
func sum(a, b train.StepResult) train.StepResult {
	return train.StepResult{N: a.N + b.N, Loss: a.Loss + b.Loss, Correct: a.Correct + b.Correct}
}
