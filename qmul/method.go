package qmul

import (
	"fmt"
	"maps"
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
// Adding a method is one file defining its entry and one row in methods;
// its own hyper-parameters are rows of Parameters.
type Method struct {
	// Name is the --method value.
	Name string
	// Summary is one line for --help and the docs.
	Summary string
	// Defaults sets the method's reference values of the shared
	// hyper-parameters (docs/methods.md gives the sources).
	Defaults func(*Hyper)
	// Check reports unusable combinations of values (nil: nothing to
	// check beyond each parameter's own row).
	Check func(Hyper) error
	// Run unlearns the study's model (nil for the method that trains from
	// scratch: see Job).
	Run func(u *unlearner) error
	// FromScratch marks Retrain: it trains from scratch on D_r with the
	// original's recipe, is every other method's reference, and is run
	// by Job, not Unlearn.
	FromScratch bool
	// NoLR marks a method that does not train, so takes no learning rate:
	// --lr (a sweep's lr) is refused and reports show none.
	NoLR bool
	// Ascends marks a method whose training loss rises by design (it
	// ascends the loss on D_f alone): the collapse guard does not watch it.
	Ascends bool
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
var retrainMethod = Method{Name: "retrain", Summary: "train from scratch on the retain set with the original's recipe", FromScratch: true}

// Methods lists the method names, Retrain first.
func Methods() []string {
	out := make([]string, len(methods))
	for i, m := range methods {
		out[i] = m.Name
	}
	return out
}

// UnlearningMethods lists the methods Unlearn runs (all but Retrain).
func UnlearningMethods() []string {
	var out []string
	for _, m := range methods {
		if !m.FromScratch {
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

// Reference is the name of the method every other one is compared with:
// the one that trains from scratch (Retrain).
func Reference() string {
	for _, m := range methods {
		if m.FromScratch {
			return m.Name
		}
	}
	panic("qmul: no method trains from scratch")
}

// FromScratch reports whether a method trains from scratch (is Retrain).
func FromScratch(method string) bool {
	m, err := Lookup(method)
	return err == nil && m.FromScratch
}

// TakesLR reports whether a method trains with a learning rate (an
// unknown method does, so that its own error is the one reported).
func TakesLR(method string) bool {
	m, err := Lookup(method)
	return err != nil || !m.NoLR
}

// Hyper are a method's hyper-parameters: the shared ones, and in Params
// the method's own (the rows of Parameters it reads).
type Hyper struct {
	Epochs      int     `json:"epochs"`
	LR          float64 `json:"lr"`
	Batch       int     `json:"batch"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	Seed        uint64  `json:"seed"`
	// AllowCollapse turns off the collapse guards: the epoch guard
	// (train.CollapseGuard), which stops an unlearning run whose epoch loss
	// rises above ln(classes) after having been below half of it (methods
	// that ascend the loss by design, Method.Ascends, are not under it),
	// and the total-loss guard (TotalLoss), which refuses a result near
	// chance on D_r.
	AllowCollapse bool `json:"allow_collapse,omitempty"`
	// Params are the method's own hyper-parameters, by flag name.
	Params Params `json:"params,omitempty"`
}

// Float, Int, String, Bool and Ints read a method parameter.
func (h Hyper) Float(name string) float64 { return h.Params.Float(name) }
func (h Hyper) Int(name string) int       { return h.Params.Int(name) }
func (h Hyper) String(name string) string { return h.Params.String(name) }
func (h Hyper) Bool(name string) bool     { return h.Params.Bool(name) }
func (h Hyper) Ints(name string) []int    { return h.Params.Ints(name) }

// Set sets a method parameter (its value converted to the row's kind and
// checked); whether the method reads it is Validate's question.
func (h *Hyper) Set(name string, v any) error {
	p, ok := LookupParam(name)
	if !ok {
		return fmt.Errorf("unknown method parameter --%s", name)
	}
	c, err := p.Coerce(v)
	if err != nil {
		return err
	}
	if h.Params == nil {
		h.Params = Params{}
	}
	h.Params[p.Name] = c
	return nil
}

// Defaults returns the reference code bases' hyper-parameters of a method
// (docs/methods.md). Parameters whose default depends on the data set
// (the pass schedule) are left out: Resolve fills them. An unknown method
// gets the shared values.
func Defaults(method string) Hyper {
	h := Hyper{Epochs: 10, LR: 0.01, Batch: 256, Momentum: 0.9, WeightDecay: 5e-4, Seed: 1, Params: Params{}}
	m, err := Lookup(method)
	if err != nil {
		return h
	}
	if m.Defaults != nil {
		m.Defaults(&h)
	}
	for _, p := range ParamsOf(method) {
		if v := p.Defaults[method]; v != nil {
			h.Params[p.Name], _ = p.Coerce(v) // copies lists
		}
	}
	return h
}

// DefaultSchedule is the reference code's choice: sequential passes for
// ten-class sets (CIFAR-10, SVHN, and here MNIST and Fashion-MNIST), joint
// minibatches for larger label spaces (CIFAR-100, Tiny-ImageNet).
func DefaultSchedule(classes int) any {
	if classes <= 10 {
		return "sequential"
	}
	return "joint"
}

// Resolve fills what depends on the data set (the pass schedule of the
// methods that take one) and any of the method's parameters left unset.
func (h Hyper) Resolve(method string, classes int) Hyper {
	h.Params = h.Params.Clone()
	for _, p := range ParamsOf(method) {
		if _, set := h.Params[p.Name]; set {
			continue
		}
		v := p.Defaults[method]
		if v == nil && p.ByClasses != nil {
			v = p.ByClasses(classes)
		}
		if c, err := p.Coerce(v); err == nil {
			h.Params[p.Name] = c
		}
	}
	return h
}

// Validate reports unusable hyper-parameters for a method, including a
// method parameter set for a method that does not read it.
func (h Hyper) Validate(method string) error {
	m, err := Lookup(method)
	if err != nil {
		return err
	}
	if err := h.validateShared(method); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(h.Params)) {
		p, ok := LookupParam(name)
		if !ok {
			return fmt.Errorf("%s: unknown method parameter --%s", method, name)
		}
		if !Uses(method, name) {
			return fmt.Errorf("--%s is not a parameter of %s (it is used by %s)", name, method, strings.Join(p.UsedBy(), ", "))
		}
		if _, err := p.Coerce(h.Params[name]); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
	}
	if m.Check != nil {
		if err := m.Check(h); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
	}
	if m.NoLR {
		return nil
	}
	return h.schedule().Validate()
}

// validateShared checks the shared hyper-parameters.
func (h Hyper) validateShared(method string) error {
	if h.Epochs < 1 || h.Batch < 1 {
		return fmt.Errorf("%s: epochs %d and batch %d must be at least 1", method, h.Epochs, h.Batch)
	}
	for _, v := range []struct {
		name string
		v    float64
	}{{"lr", h.LR}, {"momentum", h.Momentum}, {"wd", h.WeightDecay}} {
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
	return nil
}

// schedule is the learning-rate schedule the parameters describe.
func (h Hyper) schedule() optim.Schedule {
	return optim.Schedule{Kind: h.String("lr-schedule"), Base: h.LR, Epochs: h.Epochs,
		Milestones: h.Ints("lr-milestones"), Gamma: 0.1}
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
	if m.FromScratch {
		return fmt.Errorf("method %q has no unlearning loop (it trains from scratch)", method)
	}
	if s.Phases == nil {
		s.Phases = map[string]float64{}
	}
	u := &unlearner{Study: s, h: h, method: m,
		opt:   optim.NewSGD(s.B, s.Model.Params(), h.Momentum, h.WeightDecay, false),
		sched: h.schedule(),
		ctx:   &nn.Ctx{B: s.B, Train: true}}
	defer u.release()
	if h.Bool("augment") {
		u.aug = s.Aug
	}
	return m.Run(u)
}

// MethodsHelp lists every method with its summary and the defaults of
// the hyper-parameters it reads, shared and its own, as flags (for
// `unlearn --help`).
func MethodsHelp() string {
	var sb strings.Builder
	sb.WriteString("Methods and their defaults (the reference code's; docs/methods.md cites the sources):\n")
	for _, m := range methods {
		fmt.Fprintf(&sb, "\n   %-9s %s\n", m.Name, m.Summary)
		if m.FromScratch {
			sb.WriteString("             the original's recipe (--epochs, --lr and --batch override it)\n")
			continue
		}
		h := Defaults(m.Name)
		flags := []string{fmt.Sprintf("--epochs %d", h.Epochs)}
		if !m.NoLR {
			flags = append(flags, "--lr "+FormatValue(h.LR))
		}
		flags = append(flags, fmt.Sprintf("--batch %d", h.Batch))
		if !m.NoLR {
			flags = append(flags, "--momentum "+FormatValue(h.Momentum), "--wd "+FormatValue(h.WeightDecay))
		}
		for _, p := range ParamsOf(m.Name) {
			flags = append(flags, "--"+p.Name+" "+p.DefaultText(m.Name))
		}
		sb.WriteString(wrapFlags(flags, 13, 79))
	}
	return sb.String()
}

// wrapFlags joins flags into lines of at most width characters, each
// indented by indent spaces.
func wrapFlags(flags []string, indent, width int) string {
	var sb strings.Builder
	line := strings.Repeat(" ", indent)
	for i, f := range flags {
		if i > 0 && len(line)+1+len(f) > width {
			sb.WriteString(line + "\n")
			line = strings.Repeat(" ", indent)
		} else if i > 0 {
			line += " "
		}
		line += f
	}
	return sb.String() + line + "\n"
}
