// Package sweep expands a YAML grid of unlearning runs — data sets ×
// models × bit widths × forget sets × seeds × methods × learning rates —
// into cells keyed by a hash of their configuration, runs them (locally or
// as shards of a cluster job array) into one results directory, and merges
// the results into tables and plots.
package sweep

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine/device"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/internal/clip"
	"github.com/qmulgpu/qmulgpu/qat"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// Config is a sweep file. See docs/sweeps.md for an annotated example.
type Config struct {
	Datasets   []string      `yaml:"datasets"`
	DataDir    string        `yaml:"data_dir"`
	ValFrac    *float64      `yaml:"val_frac"`
	Subset     int           `yaml:"subset"`
	TestSubset int           `yaml:"test_subset"`
	Models     []string      `yaml:"models"`
	Width      float64       `yaml:"width"`
	Quant      QuantGrid     `yaml:"quant"`
	Original   RecipeConfig  `yaml:"original"`
	Forget     []string      `yaml:"forget"`
	Seeds      []uint64      `yaml:"seeds"`
	Unlearn    MethodConfig  `yaml:"unlearn"`
	Methods    []MethodEntry `yaml:"methods"`
	// Conv is the GPU convolution path of the workers (auto, cudnn or
	// im2col; empty: auto); --conv overrides it. Not part of any cell's
	// key: it changes how a result is computed, not what.
	Conv string `yaml:"conv"`
}

// QuantGrid is the quantization part of the grid; Bits lists the weight
// and activation widths to sweep (each as W=A).
type QuantGrid struct {
	Scheme     string   `yaml:"scheme"`
	Bits       []int    `yaml:"bits"`
	PerChannel bool     `yaml:"per_channel"`
	KeepFloat  []string `yaml:"keep_float"`
}

// RecipeConfig is the training recipe of the original and Retrain models.
type RecipeConfig struct {
	Epochs      int      `yaml:"epochs"`
	LR          float64  `yaml:"lr"`
	Batch       int      `yaml:"batch"`
	Momentum    *float64 `yaml:"momentum"`
	WeightDecay *float64 `yaml:"weight_decay"`
	Schedule    string   `yaml:"schedule"`
	Augment     string   `yaml:"augment"`
	// AllowCollapse turns off the collapse guard (as --allow-collapse).
	AllowCollapse bool `yaml:"allow_collapse"`
}

// MethodConfig are hyper-parameters of the methods (zero or absent: the
// method's reference default): the shared ones, and in Params the method
// parameters, one key per row of qmul.Parameters (its Key()).
type MethodConfig struct {
	Epochs      int      `yaml:"epochs"`
	Batch       int      `yaml:"batch"`
	LR          LRList   `yaml:"lr"`
	Momentum    *float64 `yaml:"momentum"`
	WeightDecay *float64 `yaml:"weight_decay"`
	// AllowCollapse turns off the collapse guard (as --allow-collapse).
	AllowCollapse bool `yaml:"allow_collapse"`
	// Params are read from the file by readParams, not by the decoder.
	Params qmul.Params `yaml:"-"`
}

// MethodEntry is one method of the grid; Name tells variants of a method
// apart (default: the method's name).
type MethodEntry struct {
	Method       string `yaml:"method"`
	Name         string `yaml:"name"`
	MethodConfig `yaml:",inline"`
}

// Load reads and validates a sweep file. Errors name the line.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sweep config: %w", err)
	}
	c, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a sweep file's contents.
func Parse(raw []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, yamlError(err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("empty sweep file")
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: a sweep file is a mapping of keys (datasets:, models:, ...)", doc.Line)
	}
	if err := checkKeys(doc, reflect.TypeFor[Config](), "the sweep file"); err != nil {
		return nil, err
	}
	var c Config
	if err := doc.Decode(&c); err != nil {
		return nil, yamlError(err)
	}
	if err := readParams(doc, &c); err != nil {
		return nil, err
	}
	lines := lineIndex(doc, "")
	if err := c.validate(lines); err != nil {
		return nil, err
	}
	return &c, nil
}

// keyContexts names the parts of a sweep file for error messages.
var keyContexts = map[reflect.Type]string{
	reflect.TypeFor[QuantGrid]():    "quant",
	reflect.TypeFor[RecipeConfig](): "original",
	reflect.TypeFor[MethodConfig](): "unlearn",
	reflect.TypeFor[MethodEntry]():  "a method entry",
	reflect.TypeFor[LRList]():       "lr: auto",
}

// yamlKeys lists the keys a struct type reads, inline fields included.
func yamlKeys(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			maps.Copy(keys, yamlKeys(f.Type))
			continue
		}
		if name != "" && name != "-" {
			keys[name] = f.Type
		}
	}
	if t == reflect.TypeFor[MethodConfig]() {
		for _, p := range qmul.Parameters {
			keys[p.Key()] = reflect.TypeFor[any]()
		}
	}
	return keys
}

// readParams fills the method parameters of the unlearn settings and of
// each method entry from the file's mappings: they are the rows of
// qmul.Parameters rather than struct fields, so the decoder leaves them.
func readParams(doc *yaml.Node, c *Config) error {
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i].Value, doc.Content[i+1]
		var err error
		switch {
		case k == "unlearn":
			c.Unlearn.Params, err = paramsOf(v)
		case k == "methods" && v.Kind == yaml.SequenceNode:
			for j, item := range v.Content {
				if j < len(c.Methods) && err == nil {
					c.Methods[j].Params, err = paramsOf(item)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// paramsOf reads the method parameters of one mapping (merged mappings
// first, so that its own keys override theirs).
func paramsOf(n *yaml.Node) (qmul.Params, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	out := qmul.Params{}
	if n.Kind != yaml.MappingNode {
		return out, nil
	}
	for _, pass := range []bool{true, false} {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if merge := k.Tag == "!!merge"; merge != pass {
				continue
			} else if merge {
				if err := mergeParams(out, v); err != nil {
					return nil, err
				}
				continue
			}
			p, ok := qmul.LookupParam(k.Value)
			if !ok || p.Key() != k.Value {
				continue
			}
			var raw any
			if err := v.Decode(&raw); err != nil {
				return nil, fmt.Errorf("line %d: %s: %v", k.Line, k.Value, yamlError(err))
			}
			val, err := p.Coerce(raw)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %v", k.Line, k.Value, err)
			}
			out[p.Name] = val
		}
	}
	return out, nil
}

// mergeParams adds the parameters of the mappings a merge key names.
func mergeParams(out qmul.Params, v *yaml.Node) error {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	for _, item := range items {
		ps, err := paramsOf(item)
		if err != nil {
			return err
		}
		maps.Copy(out, ps)
	}
	return nil
}

// checkKeys reports the first key of a mapping node (and of the mappings
// inside it) that the struct type t does not read, at its line.
func checkKeys(n *yaml.Node, t reflect.Type, where string) error {
	c := keyChecker{seen: map[keyVisit]bool{}}
	return c.check(n, t, where)
}

// keyChecker checks each node once for each type it is read as: aliases
// and merge keys can name one mapping many times over, and a few hundred
// bytes of them would otherwise take exponential time.
type keyChecker struct{ seen map[keyVisit]bool }

type keyVisit struct {
	n *yaml.Node
	t reflect.Type
}

func (c keyChecker) check(n *yaml.Node, t reflect.Type, where string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if c.seen[keyVisit{n, t}] {
		return nil
	}
	c.seen[keyVisit{n, t}] = true
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				if err := c.check(item, t.Elem(), where); err != nil {
					return err
				}
			}
			return nil
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode {
		return nil // scalars and mismatched kinds: the decoder says what is wrong
	}
	if w, ok := keyContexts[t]; ok {
		where = w
	}
	keys := yamlKeys(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Tag == "!!merge" { // "<<: *anchor" merges another mapping's keys
			if err := c.checkMerged(n.Content[i+1], t, where); err != nil {
				return err
			}
			continue
		}
		ft, ok := keys[k.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %s in %s (%s)", k.Line, clip.Quote(k.Value), where, knownKeys(k.Value, keys))
		}
		if err := c.check(n.Content[i+1], ft, where); err != nil {
			return err
		}
	}
	return nil
}

// knownKeys lists the keys a part of the file takes, or, when they are
// too many for one line, the nearest to the unknown one.
func knownKeys(unknown string, keys map[string]reflect.Type) string {
	names := slices.Sorted(maps.Keys(keys))
	if list := strings.Join(names, ", "); len(list) <= 160 {
		return "known: " + list
	}
	best, dist := "", len(unknown)/3+2
	for _, n := range names {
		if d := editDistance(unknown, n); d < dist {
			best, dist = n, d
		}
	}
	if best == "" {
		return "docs/sweeps.md lists the keys"
	}
	return fmt.Sprintf("did you mean %q?", best)
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	if len(a) > 100 {
		return len(a)
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// checkMerged checks the mappings a merge key ("<<") names: one alias or
// a list of them.
func (c keyChecker) checkMerged(v *yaml.Node, t reflect.Type, where string) error {
	if v.Kind == yaml.SequenceNode {
		for _, item := range v.Content {
			if err := c.check(item, t, where); err != nil {
				return err
			}
		}
		return nil
	}
	return c.check(v, t, where)
}

// yamlTypes turns the Go types in the YAML decoder's messages into words.
var yamlTypes = strings.NewReplacer(
	"into []string", "into a list of strings",
	"into []int", "into a list of integers",
	"into []uint64", "into a list of non-negative integers",
	"into []float64", "into a list of numbers",
	"into []sweep.MethodEntry", "into a list of methods",
	"into float64", "into a number",
	"into *float64", "into a number",
	"into uint64", "into a non-negative integer",
	"into int", "into an integer",
	"into bool", "into true or false",
	"into string", "into a string",
	"into sweep.QuantGrid", "into the quant settings (a mapping)",
	"into sweep.RecipeConfig", "into the original's recipe (a mapping)",
	"into sweep.MethodConfig", "into the unlearn settings (a mapping)",
	"into sweep.MethodEntry", "into a method entry (a mapping)",
	"into sweep.AutoLR", "into a learning-rate search (a mapping)",
	"into sweep.Config", "into a sweep file (a mapping)",
	"!!str", "text", "!!int", "integer", "!!float", "number", "!!seq", "list", "!!map", "mapping", "!!bool", "boolean",
	"cannot unmarshal", "cannot read",
)

// yamlError rewrites a YAML decoder error in the file's terms, without the
// decoder's prefix: of several problems, the first and how many follow.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := yamlTypes.Replace(te.Errors[0])
		if more := len(te.Errors) - 1; more > 0 {
			msg += fmt.Sprintf(" (and %d more problems)", more)
		}
		return errors.New(msg)
	}
	return errors.New(yamlTypes.Replace(strings.TrimPrefix(err.Error(), "yaml: ")))
}

// lineIndex maps dotted key paths ("methods.2.lr") to their line numbers.
func lineIndex(n *yaml.Node, prefix string) map[string]int {
	out := map[string]int{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if path != "" {
			out[path] = n.Line
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				out[p] = k.Line
				walk(n.Content[i+1], p)
				out[p] = k.Line
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				walk(item, fmt.Sprintf("%s.%d", path, i))
			}
		}
	}
	walk(n, prefix)
	return out
}

// lineError is a validation error located at a key of the file.
func lineError(lines map[string]int, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	for p := path; p != ""; {
		if l, ok := lines[p]; ok {
			return fmt.Errorf("line %d: %s: %s", l, path, msg)
		}
		i := strings.LastIndex(p, ".")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fmt.Errorf("%s: %s", path, msg)
}

func (c *Config) validate(lines map[string]int) error {
	bad := func(path, format string, args ...any) error { return lineError(lines, path, format, args...) }
	if c.Conv != "" {
		if device.CheckConv(c.Conv) != nil {
			return bad("conv", "%q: want %s", c.Conv, strings.Join(device.ConvModes, ", "))
		}
	}
	if len(c.Datasets) == 0 {
		return bad("datasets", "list at least one data set (%s)", strings.Join(data.Names(), ", "))
	}
	for i, d := range c.Datasets {
		if !slices.Contains(data.Names(), d) {
			return bad(fmt.Sprintf("datasets.%d", i), "unknown data set %q (known: %s)", d, strings.Join(data.Names(), ", "))
		}
	}
	if err := noDuplicates(lines, "datasets", c.Datasets); err != nil {
		return err
	}
	if c.ValFrac == nil {
		v := 0.1
		c.ValFrac = &v
	}
	if v := *c.ValFrac; math.IsNaN(v) || v < 0 || v >= 1 {
		return bad("val_frac", "%g must be in [0, 1)", v)
	}
	if err := c.validateSubsets(lines); err != nil {
		return err
	}
	if len(c.Models) == 0 {
		return bad("models", "list at least one model (%s)", strings.Join(models.Names(), ", "))
	}
	for i, m := range c.Models {
		if !slices.Contains(models.Names(), m) {
			return bad(fmt.Sprintf("models.%d", i), "unknown model %q (known: %s)", m, strings.Join(models.Names(), ", "))
		}
	}
	if err := noDuplicates(lines, "models", c.Models); err != nil {
		return err
	}
	if c.Width == 0 {
		c.Width = 1
	}
	if !(c.Width >= 0.1 && c.Width <= 4) {
		return bad("width", "%g must be in [0.1, 4]", c.Width)
	}
	if err := c.validateQuant(lines); err != nil {
		return err
	}
	if err := c.validateOriginal(lines); err != nil {
		return err
	}
	if err := c.validateForget(lines); err != nil {
		return err
	}
	if _, given := lines["seeds"]; given && len(c.Seeds) == 0 {
		return bad("seeds", "list at least one seed, e.g. [1] (or leave seeds out for seed 1)")
	}
	if len(c.Seeds) == 0 {
		c.Seeds = []uint64{1}
	}
	if err := noDuplicates(lines, "seeds", c.Seeds); err != nil {
		return err
	}
	return c.validateMethods(lines)
}

// noDuplicates reports the first value of the list at path that appears
// twice (it would run the same cells twice).
func noDuplicates[T comparable](lines map[string]int, path string, list []T) error {
	for i, v := range list {
		if j := slices.Index(list, v); j < i {
			return lineError(lines, fmt.Sprintf("%s.%d", path, i), "%v is listed twice (also entry %d)", v, j+1)
		}
	}
	return nil
}

// classCount is the number of classes of a data set, when it can be known
// before loading it (0 otherwise).
func (c *Config) classCount(dataset string) int {
	n, err := data.Classes(dataset, c.DataDir)
	if err != nil {
		return 0
	}
	return n
}

func (c *Config) validateSubsets(lines map[string]int) error {
	for _, s := range []struct {
		key string
		n   int
	}{{"subset", c.Subset}, {"test_subset", c.TestSubset}} {
		if s.n < 0 {
			return lineError(lines, s.key, "%d must not be negative (0: the whole split)", s.n)
		}
		for _, ds := range c.Datasets {
			if k := c.classCount(ds); s.n > 0 && s.n < k {
				return lineError(lines, s.key, "%d samples are fewer than the %d classes of %s", s.n, k, ds)
			}
		}
	}
	return nil
}

func (c *Config) validateQuant(lines map[string]int) error {
	if c.Quant.Scheme == "" {
		c.Quant.Scheme = "none"
	}
	if err := (qat.Config{Scheme: c.Quant.Scheme, WBits: 4, ABits: 4}).Validate(); err != nil {
		return lineError(lines, "quant.scheme", "%v", err)
	}
	if len(c.Quant.Bits) == 0 && c.Quant.Scheme != "none" {
		return lineError(lines, "quant.bits", "list the bit widths to sweep, e.g. [4]")
	}
	for i, bits := range c.Quant.Bits {
		q := c.quantConfig(bits)
		if err := q.Validate(); err != nil {
			return lineError(lines, fmt.Sprintf("quant.bits.%d", i), "%v", err)
		}
	}
	if c.Quant.KeepFloat == nil {
		c.Quant.KeepFloat = qat.DefaultFloat()
	}
	return noDuplicates(lines, "quant.bits", c.Quant.Bits)
}

func (c *Config) validateOriginal(lines map[string]int) error {
	r := &c.Original
	if r.Momentum == nil {
		v := 0.9
		r.Momentum = &v
	}
	if r.WeightDecay == nil {
		v := 5e-4
		r.WeightDecay = &v
	}
	if r.Schedule == "" {
		r.Schedule = "cosine"
	}
	if r.Augment == "" {
		r.Augment = "auto"
	}
	if r.Batch == 0 {
		r.Batch = 128
	}
	for _, ds := range c.Datasets {
		if _, err := data.ParseAugmentation(r.Augment, ds); err != nil {
			return lineError(lines, "original.augment", "%v", err)
		}
	}
	if err := c.recipe(c.Datasets[0], 1).Validate(); err != nil {
		path := "original"
		for _, k := range []string{"lr", "epochs", "batch", "momentum", "weight_decay", "schedule"} {
			if strings.Contains(err.Error(), strings.ReplaceAll(k, "_", " ")) || k == "lr" && strings.Contains(err.Error(), "learning rate") {
				path += "." + k
				break
			}
		}
		return lineError(lines, path, "%v", err)
	}
	return nil
}

func (c *Config) validateForget(lines map[string]int) error {
	if len(c.Forget) == 0 {
		return lineError(lines, "forget", "list at least one forget set (random:N, random:P%%, class:K, indices:FILE)")
	}
	for i, f := range c.Forget {
		path := fmt.Sprintf("forget.%d", i)
		spec, err := qmul.ParseForget(f)
		if err != nil {
			return lineError(lines, path, "%v", err)
		}
		if spec.ClassWise() {
			for _, ds := range c.Datasets {
				if k := c.classCount(ds); k > 0 && spec.Class >= k {
					return lineError(lines, path, "%s: %s has classes 0 to %d", f, ds, k-1)
				}
			}
		}
		if spec.Kind == "indices" {
			if _, err := os.Stat(spec.File); err != nil {
				return lineError(lines, path, "%s: %v", f, err)
			}
		}
	}
	return noDuplicates(lines, "forget", c.Forget)
}

func (c *Config) validateMethods(lines map[string]int) error {
	if len(c.Methods) == 0 {
		return lineError(lines, "methods", "list at least one method (%s)", strings.Join(qmul.Methods(), ", "))
	}
	if err := validLRs(lines, "unlearn.lr", c.Unlearn.LR, c.Seeds); err != nil {
		return err
	}
	names := map[string]bool{}
	for i := range c.Methods {
		e := &c.Methods[i]
		path := fmt.Sprintf("methods.%d", i)
		switch {
		case e.Method == "":
			return lineError(lines, path, "a method entry needs a method: (%s)", strings.Join(qmul.Methods(), ", "))
		case qmul.FromScratch(e.Method):
			return lineError(lines, path+".method", "%s is run for every forget set and seed anyway; do not list it", e.Method)
		case !slices.Contains(qmul.Methods(), e.Method):
			return lineError(lines, path+".method", "unknown method %q (known: %s)", e.Method, strings.Join(qmul.Methods()[1:], ", "))
		}
		if e.Name == "" {
			e.Name = e.Method
		}
		if names[e.Name] {
			return lineError(lines, path+".name", "method name %q appears twice (give variants a name)", e.Name)
		}
		names[e.Name] = true
		if err := validLRs(lines, path+".lr", e.LR, c.Seeds); err != nil {
			return err
		}
		if e.LR.given() && !qmul.TakesLR(e.Method) {
			return lineError(lines, path+".lr", "%s does not train and takes no learning rate", e.Method)
		}
		lrs := c.lrs(*e)
		if a := c.search(*e); a != nil {
			if err := a.spec(e.Method).Validate(); err != nil {
				return lineError(lines, path+".lr", "%v", err)
			}
			lrs = a.spec(e.Method).Coarse()
		}
		for _, ds := range c.Datasets {
			for _, lr := range lrs {
				if err := c.hyper(*e, lr, 1, classes(ds)).Validate(e.Method); err != nil {
					return lineError(lines, path, "%v", err)
				}
			}
		}
	}
	return nil
}

// validLRs checks the learning rates given at path: a list (none given is
// fine: the defaults apply) or a search.
func validLRs(lines map[string]int, path string, lrs LRList, seeds []uint64) error {
	if _, given := lines[path]; given && !lrs.given() {
		return lineError(lines, path, "list at least one learning rate, or auto (or leave lr out for the method's default)")
	}
	if lrs.Auto {
		return lrs.AutoLR.validate(lines, path, seeds)
	}
	for i, lr := range lrs.Rates {
		if math.IsNaN(lr) || math.IsInf(lr, 0) || lr <= 0 {
			p := path
			if _, ok := lines[fmt.Sprintf("%s.%d", path, i)]; ok {
				p = fmt.Sprintf("%s.%d", path, i)
			}
			return lineError(lines, p, "learning rate %g must be a positive finite number", lr)
		}
	}
	return noDuplicates(lines, path, lrs.Rates)
}

func (c *Config) quantConfig(bits int) qat.Config {
	if c.Quant.Scheme == "none" {
		return qat.Config{Scheme: "none"}
	}
	return qat.Config{Scheme: c.Quant.Scheme, WBits: bits, ABits: bits, PerChannel: c.Quant.PerChannel, Float: c.Quant.KeepFloat}
}

// bitsList is the swept bit widths (one 0 entry for float models).
func (c *Config) bitsList() []int {
	if c.Quant.Scheme == "none" {
		return []int{0}
	}
	return c.Quant.Bits
}

// recipe is the original/Retrain recipe for a data set and seed.
func (c *Config) recipe(dataset string, seed uint64) train.Recipe {
	r := c.Original
	t := train.Recipe{Epochs: r.Epochs, Batch: r.Batch, Momentum: *r.Momentum, WeightDecay: *r.WeightDecay, Seed: seed,
		Schedule: optim.Schedule{Kind: r.Schedule, Base: r.LR, Epochs: r.Epochs}}
	t.Aug, _ = data.ParseAugmentation(r.Augment, dataset) // checked by validate
	return t
}

// lrs lists a method's fixed learning rates: its own list, the shared
// list, or its reference default; none when it searches (see Plan).
func (c *Config) lrs(e MethodEntry) []float64 {
	switch {
	case !qmul.TakesLR(e.Method):
		return []float64{qmul.Defaults(e.Method).LR} // not read; keeps the cells' keys
	case c.search(e) != nil:
		return nil
	case len(e.LR.Rates) > 0:
		return e.LR.Rates
	case len(c.Unlearn.LR.Rates) > 0:
		return c.Unlearn.LR.Rates
	}
	return []float64{qmul.Defaults(e.Method).LR}
}

// hyper combines the method's reference defaults, the shared settings
// (method parameters only for the methods that read them) and the entry's
// own (all of them, so that validation rejects one the method does not
// read).
func (c *Config) hyper(e MethodEntry, lr float64, seed uint64, classes int) qmul.Hyper {
	h := qmul.Defaults(e.Method)
	for i, m := range []MethodConfig{c.Unlearn, e.MethodConfig} {
		own := i == 1
		if m.Epochs > 0 {
			h.Epochs = m.Epochs
		}
		if m.Batch > 0 {
			h.Batch = m.Batch
		}
		if m.Momentum != nil {
			h.Momentum = *m.Momentum
		}
		if m.WeightDecay != nil {
			h.WeightDecay = *m.WeightDecay
		}
		h.AllowCollapse = h.AllowCollapse || m.AllowCollapse
		for name, v := range m.Params {
			if own || qmul.Uses(e.Method, name) {
				h.Params[name] = v
			}
		}
	}
	h = h.Resolve(e.Method, classes)
	h.LR, h.Seed = lr, seed
	return h
}

// key hashes a configuration into a cell key.
func key(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
