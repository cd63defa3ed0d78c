package qmul

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/qmulgpu/qmulgpu/internal/clip"
	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
)

// Kind is the type of a method parameter's values.
type Kind int

// The kinds of method parameters: a number, a whole number, one of a few
// words, yes or no, a list of whole numbers.
const (
	Float Kind = iota
	Int
	Choice
	Bool
	Ints
)

// Param is one method-specific hyper-parameter: a row of Parameters. Its
// flag is --Name and its sweep-file key Key(); the command line, the sweep
// files, validation, --help and metrics.json all read the row, so adding a
// parameter is one row here (and the code that reads it).
type Param struct {
	// Name is the flag name.
	Name string
	Kind Kind
	// Usage is one line for --help and the docs.
	Usage string
	// Choices are the accepted words of a Choice.
	Choices []string
	// Defaults are the methods that read the parameter, each with its
	// default (docs/methods.md gives the sources). A nil default is
	// filled in from the data set by ByClasses.
	Defaults map[string]any
	// ByClasses gives a nil default from the number of classes.
	ByClasses func(classes int) any
	// ByClassesText describes ByClasses for --help.
	ByClassesText string
	// Check reports an unusable value of the right kind (nil: any).
	Check func(v any) error
}

// Key is the parameter's name in sweep files and metrics.json.
func (p Param) Key() string { return strings.ReplaceAll(p.Name, "-", "_") }

// trainers are the methods that train with a learning rate (all but the
// one that trains from scratch and those that do not train): they read the
// rows of the rate schedule and of augmentation.
var trainers = func() []string {
	var out []string
	for _, m := range methods {
		if !m.FromScratch && !m.NoLR {
			out = append(out, m.Name)
		}
	}
	return out
}()

// same gives every method of names the same default.
func same(v any, names ...string) map[string]any {
	m := make(map[string]any, len(names))
	for _, n := range names {
		m[n] = v
	}
	return m
}

// except returns defaults with some methods' values replaced.
func except(defaults map[string]any, changes map[string]any) map[string]any {
	out := make(map[string]any, len(defaults))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range changes {
		out[k] = v
	}
	return out
}

// The reference milestones of MultiStepLR: the SalUn / Unlearn-Sparse code
// bases' --decreasing_lr 91,136, SCRUB's lr_decay_epochs [3, 5, 9].
var (
	salunMilestones = []int{91, 136}
	scrubMilestones = []int{3, 5, 9}
)

// Parameters is the table of method-specific hyper-parameters.
var Parameters = []Param{
	{Name: "lr-schedule", Kind: Choice, Choices: []string{"constant", "cosine", "multistep"},
		Usage: "learning-rate schedule, stepped per epoch: constant, cosine (to 0), or multistep (×0.1 at each of --lr-milestones)",
		Defaults: except(same("multistep", trainers...), map[string]any{
			"qmul": "cosine", "sl": "cosine", "rl-agr": "cosine", "oeu": "cosine", "neggrad+": "constant"})},
	{Name: "lr-milestones", Kind: Ints, Usage: "epochs (0-based) at which the multistep schedule multiplies the rate by 0.1",
		Defaults: except(same(salunMilestones, trainers...), map[string]any{"scrub": scrubMilestones}), Check: checkMilestones},
	{Name: "augment", Kind: Bool, Usage: "augment the training passes as the original was trained (random crops and flips where its data set has them)",
		Defaults: except(same(true, trainers...), map[string]any{"scrub": false, "neggrad+": false})},
	{Name: "l1-weight", Kind: Float, Usage: "weight of ‖θ‖₁ at the first epoch, decaying linearly to 0",
		Defaults: same(5e-5, "l1"), Check: nonNegative},
	{Name: "mask-ratio", Kind: Float, Usage: "fraction of the weights the saliency mask trains (the most salient; the rest stay at θ_o)",
		Defaults: same(0.5, "salun"), Check: inUnitInterval},
	{Name: "bound", Kind: Float, Usage: "FGSM step in pixel units, images in [0, 1]",
		Defaults: same(0.1, "bs"), Check: inUnitInterval},
	{Name: "agr", Kind: Choice, Choices: []string{"epoch", "step", "sample"},
		Usage:    "gradient reweighting: epoch (the paper's), step or sample",
		Defaults: same("epoch", "qmul", "rl-agr")},
	{Name: "schedule", Kind: Choice, Choices: []string{"sequential", "joint"},
		Usage:     "pass order: sequential (forget pass, then retain pass) or joint (shuffled minibatches of both)",
		Defaults:  same(nil, "rl", "salun", "qmul", "sl", "rl-agr"),
		ByClasses: DefaultSchedule, ByClassesText: "sequential up to 10 classes, joint above"},
	{Name: "similar-labels", Kind: Choice, Choices: []string{"described", "released"},
		Usage:    "similar labels as the paper describes them, or as the released code computes them (its three defects reproduced; docs/methods.md)",
		Defaults: same("described", "qmul", "sl")},
	{Name: "kd-weight", Kind: Float, Usage: "weight α of the distillation term of the min steps",
		Defaults: same(0.001, "scrub"), Check: nonNegative},
	{Name: "ce-weight", Kind: Float, Usage: "weight γ of the cross-entropy term of the min steps",
		Defaults: same(0.99, "scrub"), Check: nonNegative},
	{Name: "temperature", Kind: Float, Usage: "distillation temperature T",
		Defaults: same(4.0, "scrub"), Check: positive},
	{Name: "max-steps", Kind: Int, Usage: "epochs that start with a max pass over the forget set",
		Defaults: same(2, "scrub"), Check: nonNegative},
	{Name: "forget-batch", Kind: Int, Usage: "minibatch size of the forget-set passes",
		Defaults: map[string]any{"scrub": 512, "neggrad+": 32}, Check: positive},
	{Name: "retain-weight", Kind: Float, Usage: "weight β of the retain loss; the forget loss gets 1−β",
		Defaults: same(0.9999, "neggrad+"), Check: openUnitInterval},
	{Name: "selection-weighting", Kind: Float, Usage: "α: a parameter is dampened where its forget importance exceeds α times its training importance",
		Defaults: same(10.0, "ssd"), Check: positive},
	{Name: "dampening-constant", Kind: Float, Usage: "λ: a selected parameter is multiplied by min(λ·I_D/I_f, 1)",
		Defaults: same(1.0, "ssd"), Check: positive},
	{Name: "dampen-quantizers", Kind: Bool, Usage: "also dampen the quantizers' own parameters (LSQ steps, PACT clips)",
		Defaults: same(false, "ssd")},
}

func checkMilestones(v any) error {
	ms := v.([]int)
	for i, m := range ms {
		if m < 1 || i > 0 && m <= ms[i-1] {
			return fmt.Errorf("%s must be increasing epochs ≥ 1", clip.String(FormatValue(ms), 60))
		}
	}
	return nil
}

func number(v any) float64 {
	if i, ok := v.(int); ok {
		return float64(i)
	}
	return v.(float64)
}

func nonNegative(v any) error {
	if number(v) < 0 {
		return fmt.Errorf("%v must not be negative", v)
	}
	return nil
}

func positive(v any) error {
	if !(number(v) > 0) {
		return fmt.Errorf("%v must be positive", v)
	}
	return nil
}

func inUnitInterval(v any) error {
	if x := number(v); !(x > 0 && x <= 1) {
		return fmt.Errorf("%v must be in (0, 1]", v)
	}
	return nil
}

func openUnitInterval(v any) error {
	if x := number(v); !(x > 0 && x < 1) {
		return fmt.Errorf("%v must be in (0, 1)", v)
	}
	return nil
}

// LookupParam returns a parameter's row by flag name or key.
func LookupParam(name string) (Param, bool) {
	name = strings.ReplaceAll(name, "_", "-")
	for _, p := range Parameters {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParamsOf lists the parameters a method reads, in table order.
func ParamsOf(method string) []Param {
	var out []Param
	for _, p := range Parameters {
		if _, ok := p.Defaults[method]; ok {
			out = append(out, p)
		}
	}
	return out
}

// Uses reports whether a method reads a method-specific hyper-parameter.
func Uses(method, param string) bool {
	p, ok := LookupParam(param)
	if !ok {
		return false
	}
	_, ok = p.Defaults[method]
	return ok
}

// UsedBy lists the methods that read a parameter, in the table's order.
func (p Param) UsedBy() []string {
	var out []string
	for _, m := range methods {
		if _, ok := p.Defaults[m.Name]; ok {
			out = append(out, m.Name)
		}
	}
	return out
}

// HelpText is the parameter's usage for --help, with its choices.
func (p Param) HelpText() string {
	if p.Kind == Choice {
		return p.Usage + " (" + strings.Join(p.Choices, "|") + ")"
	}
	return p.Usage
}

// DefaultsText lists the defaults of the methods that read the parameter,
// grouped by value: "cosine for qmul, sl; constant for neggrad+".
func (p Param) DefaultsText() string {
	var values []string
	byValue := map[string][]string{}
	for _, m := range p.UsedBy() {
		v := p.DefaultText(m)
		if _, seen := byValue[v]; !seen {
			values = append(values, v)
		}
		byValue[v] = append(byValue[v], m)
	}
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = v + " for " + strings.Join(byValue[v], ", ")
	}
	return strings.Join(parts, "; ")
}

// DefaultText formats a method's default for help texts.
func (p Param) DefaultText(method string) string {
	v := p.Defaults[method]
	if v == nil && p.ByClasses != nil {
		return p.ByClassesText
	}
	return FormatValue(v)
}

// FormatValue writes a parameter value as the command line takes it.
func FormatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []int:
		s := make([]string, len(x))
		for i, n := range x {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprint(v)
}

// Coerce converts a value decoded from JSON, YAML or a flag to the
// parameter's kind (whole numbers are accepted for numbers, integral
// numbers for whole numbers, "3,5,9" or a list for Ints) and checks it.
func (p Param) Coerce(v any) (any, error) {
	out, err := p.coerceKind(v)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", p.Name, jsonerr.Value(v), err)
	}
	if p.Check != nil {
		if err := p.Check(out); err != nil {
			return nil, fmt.Errorf("--%s %w", p.Name, err)
		}
	}
	return out, nil
}

func (p Param) coerceKind(v any) (any, error) {
	switch p.Kind {
	case Float:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("want a finite number")
			}
			return x, nil
		case int:
			return float64(x), nil
		}
		return nil, fmt.Errorf("want a number")
	case Int:
		return wholeNumber(v)
	case Choice:
		if s, ok := v.(string); ok && slices.Contains(p.Choices, s) {
			return s, nil
		}
		return nil, fmt.Errorf("want %s", strings.Join(p.Choices, " or "))
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("want true or false")
	}
	return wholeNumbers(v)
}

func wholeNumber(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<31 {
			return int(x), nil
		}
	}
	return 0, fmt.Errorf("want a whole number")
}

func wholeNumbers(v any) ([]int, error) {
	var items []any
	switch x := v.(type) {
	case []int:
		return slices.Clone(x), nil
	case []any:
		items = x
	case string:
		for _, f := range strings.Split(x, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("want whole numbers separated by commas")
			}
			items = append(items, n)
		}
	default:
		return nil, fmt.Errorf("want a list of whole numbers")
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, err := wholeNumber(it)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// Params are a run's method-specific hyper-parameters by flag name, with
// values of their rows' kinds (float64, int, string, bool, []int). In JSON
// they are an object keyed by Key().
type Params map[string]any

// Float is a number parameter's value (0 when absent).
func (ps Params) Float(name string) float64 { v, _ := ps[name].(float64); return v }

// Int is a whole-number parameter's value (0 when absent).
func (ps Params) Int(name string) int { v, _ := ps[name].(int); return v }

// String is a choice parameter's value ("" when absent).
func (ps Params) String(name string) string { v, _ := ps[name].(string); return v }

// Bool is a yes-or-no parameter's value (false when absent).
func (ps Params) Bool(name string) bool { v, _ := ps[name].(bool); return v }

// Ints is a list parameter's value (nil when absent).
func (ps Params) Ints(name string) []int { v, _ := ps[name].([]int); return v }

// Clone copies the parameters (lists included).
func (ps Params) Clone() Params {
	out := make(Params, len(ps))
	for k, v := range ps {
		if l, ok := v.([]int); ok {
			v = slices.Clone(l)
		}
		out[k] = v
	}
	return out
}

// MarshalJSON writes the parameters keyed by Key().
func (ps Params) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(ps))
	for k, v := range ps {
		m[strings.ReplaceAll(k, "-", "_")] = v
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads parameters written by MarshalJSON, converting each
// value to its row's kind; unknown names are an error.
func (ps *Params) UnmarshalJSON(raw []byte) error {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return errors.New(jsonerr.Describe(err))
	}
	out := make(Params, len(m))
	for k, v := range m {
		p, ok := LookupParam(k)
		if !ok {
			return fmt.Errorf("unknown method parameter %s", clip.Quote(k))
		}
		c, err := p.Coerce(v)
		if err != nil {
			return err
		}
		out[p.Name] = c
	}
	*ps = out
	return nil
}
