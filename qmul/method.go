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

// Method is one entry of the table of unlearning methods: everything the
// command line, the sweeps, the demo and Unlearn need to know about it.
// Adding a method is one file defining its entry and one row in methods.
type Method struct {
	// Name is the --method value.
	Name string
	// Summary is one line for --help and the docs.
	Summary string
	// Params are the method-specific hyper-parameters it reads, named as
	// their flags (see methodParams); a value set for any other is an
	// error.
	Params []string
	// Defaults sets the method's reference values on the shared ones.
	Defaults func(*Hyper)
	// Check reports unusable method-specific values (nil: nothing to
	// check).
	Check func(Hyper) error
	// Run unlearns the study's model (nil for retrain, which trains from
	// scratch: see Job).
	Run func(u *unlearner) error
	// NoLR marks a method that does not train, so takes no learning rate:
	// --lr (a sweep's lr) is refused and reports show none.
	NoLR bool
}

// methods is the table, in the order reports list them (Retrain first).
var methods = []Method{
	retrainMethod,
	ftMethod,
	rlMethod,
	gaMethod,
	l1Method,
	salunMethod,
	bsMethod,
	qmulMethod,
	slMethod,
	rlAGRMethod,
	oeuMethod,
	scrubMethod,
	ssdMethod,
	negGradPlusMethod,
}

// retrainMethod is the gold standard: the original's recipe from scratch on
// D_r (run by Job, not Unlearn).
var retrainMethod = Method{Name: "retrain", Summary: "train from scratch on the retain set with the original's recipe"}

// methodParams are the method-specific hyper-parameters: flag name, and
// whether a Hyper sets it.
var methodParams = []struct {
	name string
	set  func(Hyper) bool
}{
	{"alpha", func(h Hyper) bool { return h.Alpha != 0 }},
	{"sparsity", func(h Hyper) bool { return h.Sparsity != 0 }},
	{"bound", func(h Hyper) bool { return h.Bound != 0 }},
	{"agr", func(h Hyper) bool { return h.AGR != "" }},
	{"schedule", func(h Hyper) bool { return h.Schedule != "" }},
	{"beta", func(h Hyper) bool { return h.Beta != 0 }},
	{"gamma", func(h Hyper) bool { return h.Gamma != 0 }},
	{"temperature", func(h Hyper) bool { return h.Temperature != 0 }},
	{"max-steps", func(h Hyper) bool { return h.MaxSteps != 0 }},
	{"lambda", func(h Hyper) bool { return h.Lambda != 0 }},
}

// Methods lists the method names, Retrain first.
func Methods() []string {
	out := make([]string, len(methods))
	for i, m := range methods {
		out[i] = m.Name
	}
	return out
}

// UnlearningMethods lists the methods Unlearn runs (all but retrain).
func UnlearningMethods() []string {
	var out []string
	for _, m := range methods {
		if m.Run != nil {
			out = append(out, m.Name)
		}
	}
	return out
}

// Lookup returns a method's table entry.
func Lookup(name string) (Method, error) {
	for _, m := range methods {
		if m.Name == name {
			return m, nil
		}
	}
	return Method{}, fmt.Errorf("unknown method %q (known: %s)", name, strings.Join(Methods(), ", "))
}

// TakesLR reports whether a method trains with a learning rate (an
// unknown method does, so that its own error is the one reported).
func TakesLR(method string) bool {
	m, err := Lookup(method)
	return err != nil || !m.NoLR
}

// Uses reports whether a method reads a method-specific hyper-parameter.
func Uses(method, param string) bool {
	m, err := Lookup(method)
	return err == nil && slices.Contains(m.Params, param)
}

// UsedBy lists the methods that read a method-specific hyper-parameter
// (for help texts).
func UsedBy(param string) string {
	var out []string
	for _, m := range methods {
		if slices.Contains(m.Params, param) {
			out = append(out, m.Name)
		}
	}
	return strings.Join(out, ", ")
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
	// Alpha is ℓ1-sparse's penalty at the first epoch, SCRUB's
	// distillation weight in its min steps and SSD's selection weight.
	Alpha float64 `json:"alpha,omitempty"`
	// Sparsity is the fraction of weights SalUn's mask freezes.
	Sparsity float64 `json:"sparsity,omitempty"`
	// Bound is Boundary Shrink's FGSM step in pixel units (images in
	// [0, 1]).
	Bound float64 `json:"bound,omitempty"`
	// AGR is the reweighting mode of qmul and rl-agr: "epoch", "step" or
	// "sample".
	AGR string `json:"agr,omitempty"`
	// Schedule is the pass order of the methods that relabel D_f (rl,
	// salun, qmul, sl, rl-agr): "sequential" or "joint"; empty means the
	// data set's default (DefaultSchedule).
	Schedule string `json:"schedule,omitempty"`
	// AllowCollapse turns off the collapse guards: the epoch guard
	// (train.CollapseGuard), which stops an unlearning run whose epoch loss
	// rises above ln(classes) after having been below half of it (GA,
	// whose loss rises by design, is never under it), and the total-loss
	// guard (TotalLoss), which refuses a result near chance on D_r.
	AllowCollapse bool `json:"allow_collapse,omitempty"`
	// Beta is NegGrad+'s retain weight: β·CE on D_r − (1−β)·CE on D_f.
	Beta float64 `json:"beta,omitempty"`
	// Gamma is SCRUB's cross-entropy weight in its min steps.
	Gamma float64 `json:"gamma,omitempty"`
	// Temperature is SCRUB's distillation temperature T.
	Temperature float64 `json:"temperature,omitempty"`
	// MaxSteps is how many SCRUB epochs start with a max pass over D_f.
	MaxSteps int `json:"max_steps,omitempty"`
	// Lambda is SSD's dampening constant λ.
	Lambda float64 `json:"lambda,omitempty"`
}

// Defaults returns the reference code bases' hyper-parameters of a method
// (method.md sections 3.3 and 4). The pass schedule is left empty: it
// depends on the data set (DefaultSchedule). An unknown method gets the
// shared values.
func Defaults(method string) Hyper {
	h := Hyper{Epochs: 10, LR: 0.01, Batch: 256, Momentum: 0.9, WeightDecay: 5e-4, LRSchedule: "cosine", Seed: 1}
	if m, err := Lookup(method); err == nil && m.Defaults != nil {
		m.Defaults(&h)
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

// Resolve fills what depends on the data set: the pass schedule of the
// methods that take one.
func (h Hyper) Resolve(method string, classes int) Hyper {
	if h.Schedule == "" && Uses(method, "schedule") {
		h.Schedule = DefaultSchedule(classes)
	}
	return h
}

// Validate reports unusable hyper-parameters for a method, including a
// method-specific one set for a method that does not read it.
func (h Hyper) Validate(method string) error {
	m, err := Lookup(method)
	if err != nil {
		return err
	}
	if h.Epochs < 1 || h.Batch < 1 {
		return fmt.Errorf("%s: epochs %d and batch %d must be at least 1", method, h.Epochs, h.Batch)
	}
	for _, v := range []struct {
		name string
		v    float64
	}{{"lr", h.LR}, {"momentum", h.Momentum}, {"wd", h.WeightDecay}, {"alpha", h.Alpha}, {"bound", h.Bound}, {"sparsity", h.Sparsity},
		{"beta", h.Beta}, {"gamma", h.Gamma}, {"temperature", h.Temperature}, {"lambda", h.Lambda}} {
		if math.IsNaN(v.v) || math.IsInf(v.v, 0) || v.v < 0 {
			return fmt.Errorf("%s: --%s %g must be a finite number ≥ 0", method, v.name, v.v)
		}
	}
	if h.LR == 0 {
		return fmt.Errorf("%s: --lr must be positive", method)
	}
	if h.Momentum >= 1 {
		return fmt.Errorf("%s: --momentum %g must be below 1", method, h.Momentum)
	}
	for _, p := range methodParams {
		if p.set(h) && !slices.Contains(m.Params, p.name) {
			return fmt.Errorf("--%s is not a parameter of %s (it is used by %s)", p.name, method, UsedBy(p.name))
		}
	}
	if h.Schedule != "" && h.Schedule != "sequential" && h.Schedule != "joint" {
		return fmt.Errorf("%s: --schedule %q: want sequential or joint", method, h.Schedule)
	}
	if m.Check != nil {
		if err := m.Check(h); err != nil {
			return fmt.Errorf("%s: %w", method, err)
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
	// Steps counts the optimizer steps taken (one per minibatch).
	Steps int
	// Record, when set, is told every minibatch order and random label
	// draw a method makes (the PyTorch twins replay them).
	Record Recorder
}

// timed adds the time fn takes to phase.
func (s *Study) timed(phase string, fn func() error) error {
	t := time.Now()
	err := fn()
	s.Phases[phase] += time.Since(t).Seconds()
	return err
}

// Unlearn runs a method (not retrain) on the study's model; an empty
// schedule is resolved for the study's number of classes.
func Unlearn(s *Study, method string, h Hyper) error {
	h = h.Resolve(method, s.Classes)
	if err := h.Validate(method); err != nil {
		return err
	}
	m, _ := Lookup(method)
	if m.Run == nil {
		return fmt.Errorf("method %q has no unlearning loop (retrain trains from scratch)", method)
	}
	if s.Phases == nil {
		s.Phases = map[string]float64{}
	}
	u := &unlearner{Study: s, h: h, method: method,
		opt:   optim.NewSGD(s.B, s.Model.Params(), h.Momentum, h.WeightDecay, false),
		sched: optim.Schedule{Kind: h.LRSchedule, Base: h.LR, Epochs: h.Epochs},
		ctx:   &nn.Ctx{B: s.B, Train: true}}
	defer u.release()
	return m.Run(u)
}
