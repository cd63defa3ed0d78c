package qmul

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
)

// Methods lists the unlearning methods (retrain is run by Retrain).
func Methods() []string {
	return []string{"retrain", "ft", "rl", "ga", "l1", "salun", "bs", "qmul", "sl", "rl-agr", "oeu"}
}

// Hyper are a method's hyper-parameters.
type Hyper struct {
	Epochs      int     `json:"epochs"`
	LR          float64 `json:"lr"`
	Batch       int     `json:"batch"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	// LRSchedule is the learning-rate schedule ("cosine", stepped per epoch).
	LRSchedule string `json:"lr_schedule"`
	Seed       uint64 `json:"seed"`
	// Alpha is ℓ1-sparse's penalty at the first epoch.
	Alpha float64 `json:"alpha,omitempty"`
	// Sparsity is the fraction of weights SalUn's mask freezes.
	Sparsity float64 `json:"sparsity,omitempty"`
	// Bound is Boundary Shrink's FGSM step in normalised input units.
	Bound float64 `json:"bound,omitempty"`
	// AGR is the reweighting mode of qmul and rl-agr: "epoch", "step" or
	// "sample".
	AGR string `json:"agr,omitempty"`
	// Schedule is the pass order of qmul, sl and rl-agr: "sequential" or
	// "joint".
	Schedule string `json:"schedule,omitempty"`
}

// Defaults returns the reference code bases' hyper-parameters of a method
// (method.md sections 3.3 and 4). The pass schedule of qmul, sl and rl-agr
// is left empty: it depends on the data set (DefaultSchedule).
func Defaults(method string) Hyper {
	h := Hyper{Epochs: 10, LR: 0.01, Batch: 256, Momentum: 0.9, WeightDecay: 5e-4, LRSchedule: "cosine", Seed: 1}
	switch method {
	case "ga":
		h.Epochs, h.LR = 5, 1e-4
	case "l1":
		h.Alpha = 5e-5
	case "salun":
		h.LR, h.Sparsity = 0.013, 0.5
	case "bs":
		h.LR, h.Bound = 1e-5, 0.1
	case "qmul", "rl-agr":
		h.AGR = "epoch"
	}
	return h
}

// DefaultSchedule is the reference code's choice: sequential passes for
// ten-class sets (CIFAR-10, SVHN, and here MNIST and Fashion-MNIST), joint
// minibatches for larger label spaces (CIFAR-100, Tiny-ImageNet).
func DefaultSchedule(classes int) string {
	if classes <= 10 {
		return "sequential"
	}
	return "joint"
}

// Validate reports unusable hyper-parameters for a method.
func (h Hyper) Validate(method string) error {
	if !slices.Contains(Methods(), method) {
		return fmt.Errorf("unknown method %q (known: %s)", method, strings.Join(Methods(), ", "))
	}
	if h.Epochs < 1 || h.Batch < 1 {
		return fmt.Errorf("%s: epochs %d and batch %d must be at least 1", method, h.Epochs, h.Batch)
	}
	for name, v := range map[string]float64{"lr": h.LR, "momentum": h.Momentum, "wd": h.WeightDecay, "alpha": h.Alpha, "bound": h.Bound, "sparsity": h.Sparsity} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("%s: --%s %g must be a finite number ≥ 0", method, name, v)
		}
	}
	if h.LR == 0 {
		return fmt.Errorf("%s: --lr must be positive", method)
	}
	if h.Momentum >= 1 {
		return fmt.Errorf("%s: --momentum %g must be below 1", method, h.Momentum)
	}
	if method == "salun" && !(h.Sparsity > 0 && h.Sparsity < 1) {
		return fmt.Errorf("salun: --sparsity %g must be in (0, 1)", h.Sparsity)
	}
	if method == "qmul" || method == "rl-agr" {
		if !slices.Contains([]string{"epoch", "step", "sample"}, h.AGR) {
			return fmt.Errorf("%s: --agr %q: want epoch, step or sample", method, h.AGR)
		}
	}
	if method == "qmul" || method == "rl-agr" || method == "sl" {
		if h.Schedule != "sequential" && h.Schedule != "joint" {
			return fmt.Errorf("%s: --schedule %q: want sequential or joint", method, h.Schedule)
		}
		if h.AGR == "step" && h.Schedule == "joint" {
			return fmt.Errorf("%s: --agr step measures each group's minibatch gradient and needs --schedule sequential; with joint minibatches use --agr sample or epoch", method)
		}
	}
	return (optim.Schedule{Kind: h.LRSchedule, Base: h.LR, Epochs: h.Epochs}).Validate()
}

// Study is what an unlearning method works on.
type Study struct {
	B engine.Backend
	// Model starts as the original model θ_o and is unlearned in place.
	Model *models.Model
	// Original rebuilds a fresh copy of θ_o (Boundary Shrink attacks a
	// frozen one).
	Original func() (*models.Model, error)
	Sets
	Classes  int
	Aug      data.Augmentation
	Progress train.Progress
	// Phases accumulates wall-clock seconds per phase.
	Phases map[string]float64
	// Trace receives one record per epoch.
	Trace []EpochTrace
}

// timed adds the time fn takes to phase.
func (s *Study) timed(phase string, fn func() error) error {
	t := time.Now()
	err := fn()
	s.Phases[phase] += time.Since(t).Seconds()
	return err
}

// Unlearn runs a method (not retrain) on the study's model.
func Unlearn(s *Study, method string, h Hyper) error {
	if err := h.Validate(method); err != nil {
		return err
	}
	if s.Phases == nil {
		s.Phases = map[string]float64{}
	}
	u := &unlearner{Study: s, h: h, method: method,
		opt:   optim.NewSGD(s.B, s.Model.Params(), h.Momentum, h.WeightDecay, false),
		sched: optim.Schedule{Kind: h.LRSchedule, Base: h.LR, Epochs: h.Epochs},
		ctx:   &nn.Ctx{B: s.B, Train: true}}
	switch method {
	case "ft", "l1":
		return u.loop(u.fineTuneEpoch)
	case "rl":
		return u.loop(u.randomLabelEpoch)
	case "ga":
		return u.loop(u.gradientAscentEpoch)
	case "salun":
		if err := s.timed("saliency", u.saliencyMask); err != nil {
			return err
		}
		return u.loop(u.randomLabelEpoch)
	case "bs":
		return u.boundaryShrink()
	case "qmul", "sl", "rl-agr":
		return u.loop(u.qmulEpoch)
	case "oeu":
		return u.loop(u.oeuEpoch)
	}
	return fmt.Errorf("method %q has no unlearning loop (retrain trains from scratch)", method)
}
