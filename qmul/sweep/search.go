package sweep

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/qmul"
	"github.com/qmulgpu/qmulgpu/qmul/lrsearch"
)

// searchesDir holds one file per learning-rate search: its rounds, trials
// and choice as the cells in the directory decide them (written for the
// report and for people; a sweep recomputes them from the cells).
const searchesDir = "searches"

// LRList is a method's learning rates in a sweep file: a number, a list of
// numbers (a grid: the report keeps the rate with the smallest mean Avg.
// Gap), or a search: `auto`, or a mapping with `auto: true` and any of the
// search's settings.
type LRList struct {
	Rates  []float64 `yaml:"-"`
	AutoLR `yaml:",inline"`
}

// AutoLR is a learning-rate search in a sweep file (lrsearch): zero
// values take the defaults.
type AutoLR struct {
	Auto bool `yaml:"auto"`
	// Range is the coarse grid's ends (default: the method's default rate
	// /16 and ·16).
	Range []float64 `yaml:"range,omitempty"`
	// Factor spaces the coarse grid (default 4).
	Factor float64 `yaml:"factor,omitempty"`
	// Budget is the most rates tried (default 12); each costs a cell per
	// seed searched on.
	Budget int `yaml:"budget,omitempty"`
	// Select is the criterion: gap (default) or proxy.
	Select string `yaml:"select,omitempty"`
	// Seeds are the seeds the search runs on (default: all the sweep's);
	// the chosen rate then runs on the others.
	Seeds []uint64 `yaml:"seeds,omitempty"`
}

// UnmarshalYAML accepts a number, a list of numbers, `auto`, or a mapping
// with auto: true.
func (l *LRList) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Value == "auto":
		l.Auto = true
		return nil
	case n.Kind == yaml.ScalarNode:
		var v float64
		if err := n.Decode(&v); err != nil {
			return err
		}
		l.Rates = []float64{v}
		return nil
	case n.Kind == yaml.MappingNode:
		if err := n.Decode(&l.AutoLR); err != nil {
			return err
		}
		if !l.Auto {
			return fmt.Errorf("line %d: a mapping under lr is a search and needs auto: true (list fixed rates as [0.01, 0.04])", n.Line)
		}
		return nil
	}
	return n.Decode(&l.Rates)
}

// given reports whether the file sets the learning rates.
func (l LRList) given() bool { return len(l.Rates) > 0 || l.Auto }

// validate checks a search's settings at path against the sweep's seeds.
func (a AutoLR) validate(lines map[string]int, path string, seeds []uint64) error {
	if a.Range != nil && len(a.Range) != 2 {
		return lineError(lines, path+".range", "want two learning rates, [lowest, highest]")
	}
	if a.Select != "" {
		if err := qmul.CheckCriterion(a.Select); err != nil {
			return lineError(lines, path+".select", "%v", err)
		}
	}
	if _, given := lines[path+".seeds"]; given && len(a.Seeds) == 0 {
		return lineError(lines, path+".seeds", "list at least one seed (or leave seeds out to search on every seed)")
	}
	for i, s := range a.Seeds {
		if !slices.Contains(seeds, s) {
			return lineError(lines, fmt.Sprintf("%s.seeds.%d", path, i), "seed %d is not one of the sweep's seeds %v", s, seeds)
		}
	}
	return noDuplicates(lines, path+".seeds", a.Seeds)
}

// search returns the learning-rate search of a method entry (its own, or
// the one under unlearn), or nil when its rates are fixed.
func (c *Config) search(e MethodEntry) *AutoLR {
	switch {
	case !qmul.TakesLR(e.Method):
		return nil
	case e.LR.given():
		if e.LR.Auto {
			return &e.LR.AutoLR
		}
		return nil
	case c.Unlearn.LR.Auto:
		return &c.Unlearn.LR.AutoLR
	}
	return nil
}

// spec is the search of an entry with its defaults filled in.
func (a AutoLR) spec(method string) lrsearch.Spec {
	s := lrsearch.Around(qmul.Defaults(method).LR)
	if len(a.Range) == 2 {
		s.Lo, s.Hi = a.Range[0], a.Range[1]
	}
	if a.Factor != 0 {
		s.Factor = a.Factor
	}
	if a.Budget != 0 {
		s.Budget = a.Budget
	}
	return s
}

// criterion is the search's selection criterion.
func (a AutoLR) criterion() string {
	if a.Select == "" {
		return qmul.SelectGap
	}
	return a.Select
}

// Search is one learning-rate search as the cells of a results directory
// decide it: per setting (data set, model, bits, forget set) and method
// entry, over its seeds.
type Search struct {
	Key string `json:"key"`
	Group
	Name   string        `json:"name"`
	Method string        `json:"method"`
	Select string        `json:"select"`
	Spec   lrsearch.Spec `json:"spec"`
	// Seeds are searched on; the chosen rate then runs on FinalSeeds too.
	Seeds      []uint64         `json:"seeds"`
	FinalSeeds []uint64         `json:"final_seeds,omitempty"`
	Rounds     [][]float64      `json:"rounds"`
	Trials     []lrsearch.Trial `json:"trials"`
	// Done reports that no further round will be asked for; Stop says why.
	Done bool   `json:"done"`
	Stop string `json:"stop,omitempty"`
	// LR is the chosen rate (0: none yet, or none at all when Complete).
	LR      float64 `json:"lr,omitempty"`
	Edge    string  `json:"edge,omitempty"`
	Plateau bool    `json:"plateau,omitempty"`
	// Rejected are chosen rates that then failed on a final seed; the next
	// best was taken.
	Rejected []float64 `json:"rejected,omitempty"`
	// Complete: the search is done and its choice has run on every seed.
	Complete bool `json:"complete"`

	cells []Cell // every cell it has asked for, the originals' included
}

// searchSetting is what a search's cells share but their rate and seed.
type searchSetting struct {
	// bases are the cells (method, hyper-parameters, rate unset) per seed.
	bases     map[uint64]Cell
	classWise bool
}

// searchCell is the search's cell at a rate and seed.
func (c *Config) searchCell(st searchSetting, e MethodEntry, lr float64, seed uint64) Cell {
	x := st.bases[seed]
	x.Method, x.Name = e.Method, e.Name
	x.Hyper = c.hyper(e, lr, seed, classes(x.Original.Data.Dataset))
	return x
}

// Plan is what a sweep has asked for so far.
type Plan struct {
	// Cells are the fixed grid's cells (Expand) and every cell the
	// searches have asked for.
	Cells    []Cell
	Searches []*Search
}

// Done reports whether every search is complete.
func (p Plan) Done() bool {
	for _, s := range p.Searches {
		if !s.Complete {
			return false
		}
	}
	return true
}

// fingerprint identifies the plan's state: its cells and its searches'
// rounds, trials and choices.
func (p Plan) fingerprint() string {
	b, _ := json.Marshal(p.Searches)
	return fmt.Sprintf("%d %s", len(p.Cells), b)
}

// Plan expands the grid and replays every search over the cells finished
// in the results directory dir.
func (c *Config) Plan(dir string) Plan {
	p := Plan{Cells: c.Expand()}
	byKey := map[string]bool{}
	for _, x := range p.Cells {
		byKey[x.Key()] = true
	}
	for _, setting := range c.settings() {
		for _, e := range c.Methods {
			a := c.search(e)
			if a == nil {
				continue
			}
			s := c.replay(dir, setting, e, *a)
			p.Searches = append(p.Searches, s)
			for _, x := range s.cells {
				if k := x.Key(); !byKey[k] {
					byKey[k] = true
					p.Cells = append(p.Cells, x)
				}
			}
		}
	}
	return p
}

// settings lists the grid's settings with a base cell per seed (the
// Retrain cell of that seed, to be given a method).
func (c *Config) settings() []searchSetting {
	var out []searchSetting
	index := map[Group]int{}
	for _, x := range c.Expand() {
		if !qmul.FromScratch(x.Method) {
			continue
		}
		g := x.Group()
		i, ok := index[g]
		if !ok {
			spec, _ := qmul.ParseForget(x.Forget) // checked by validate
			i = len(out)
			index[g] = i
			out = append(out, searchSetting{bases: map[uint64]Cell{}, classWise: spec.ClassWise()})
		}
		out[i].bases[x.Seed] = x
	}
	return out
}

// replay recomputes one search from the cells in dir.
func (c *Config) replay(dir string, st searchSetting, e MethodEntry, a AutoLR) *Search {
	seeds := a.Seeds
	if len(seeds) == 0 {
		seeds = c.Seeds
	}
	first := st.bases[seeds[0]]
	s := &Search{Group: first.Group(), Name: e.Name, Method: e.Method, Select: a.criterion(), Spec: a.spec(e.Method), Seeds: seeds}
	for _, seed := range c.Seeds {
		if !slices.Contains(seeds, seed) {
			s.FinalSeeds = append(s.FinalSeeds, seed)
		}
	}
	s.Key = key(struct {
		Setting Cell
		Spec    lrsearch.Spec
		Select  string
		Seeds   []uint64
	}{c.searchCell(st, e, 0, seeds[0]), s.Spec, s.Select, seeds})
	for _, seed := range c.Seeds {
		s.cells = append(s.cells, originalCell(st.bases[seed]))
	}
	state := s.Spec.Replay(func(lr float64) (lrsearch.Outcome, bool) { return c.outcome(dir, st, e, s, lr) })
	for _, round := range state.Rounds {
		for _, lr := range round {
			for _, seed := range seeds {
				s.cells = append(s.cells, c.searchCell(st, e, lr, seed))
			}
		}
	}
	s.Rounds, s.Trials, s.Done, s.Stop, s.Edge = state.Rounds, state.Trials, state.Done, state.Stop, state.Edge
	if state.Found {
		s.LR, s.Plateau = state.Best, state.OnPlateau()
	}
	if state.Done {
		c.finalRounds(dir, st, e, s, state)
	}
	return s
}

// finalRounds runs the search's choice on the seeds it was not searched
// on. A choice that fails on one of them is rejected, and the next best
// rate of the search is taken, as the reference protocol does.
func (c *Config) finalRounds(dir string, st searchSetting, e MethodEntry, s *Search, state lrsearch.State) {
	candidates := slices.DeleteFunc(slices.Clone(state.Trials), func(t lrsearch.Trial) bool { return t.Failed })
	slices.SortStableFunc(candidates, func(a, b lrsearch.Trial) int { return cmp.Compare(a.Score, b.Score) })
	s.LR, s.Plateau = 0, false
	for _, t := range candidates {
		ended, failed := true, false
		for _, seed := range s.FinalSeeds {
			x := c.searchCell(st, e, t.LR, seed)
			s.cells = append(s.cells, x)
			rec, finished, err := readCell(filepath.Join(dir, cellsDir, x.Key()), x.Key())
			switch {
			case err != nil || !finished:
				ended = false
			case rec.Collapsed != "":
				failed = true
			}
		}
		s.LR, s.Plateau = t.LR, t.Plateau
		if !ended {
			return
		}
		if !failed {
			s.Complete = true
			return
		}
		s.Rejected = append(s.Rejected, t.LR)
		s.LR, s.Plateau = 0, false
	}
	s.Complete = true
}

// outcome reads the search's cells at a rate on its seeds: the mean of the
// criterion over the seeds, failed when a seed collapsed, on the plateau
// when every seed stayed where its original was. It reports false until
// every cell and the originals' evaluations have ended.
func (c *Config) outcome(dir string, st searchSetting, e MethodEntry, s *Search, lr float64) (lrsearch.Outcome, bool) {
	var o lrsearch.Outcome
	o.Plateau = true
	var scores []float64
	for _, seed := range s.Seeds {
		x := c.searchCell(st, e, lr, seed)
		rec, finished, err := readCell(filepath.Join(dir, cellsDir, x.Key()), x.Key())
		if err != nil || !finished {
			return o, false
		}
		if rec.Collapsed != "" {
			o.Failed = true
			continue
		}
		orig := originalCell(st.bases[seed])
		base, finished, err := readCell(filepath.Join(dir, cellsDir, orig.Key()), orig.Key())
		if err != nil || !finished {
			return o, false
		}
		score := *rec.AvgGap
		if s.Select == qmul.SelectProxy {
			score = qmul.ProxyGap(rec.Metrics, base.Metrics, st.classWise)
		}
		scores = append(scores, score)
		o.Plateau = o.Plateau && qmul.OnPlateau(rec.Metrics, base.Metrics)
	}
	if o.Failed {
		return lrsearch.Outcome{Failed: true}, true
	}
	o.Score = mean(scores)
	return o, true
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// writeSearches records the searches of a plan in dir/searches (the same
// bytes from every process that computes them).
func writeSearches(dir string, searches []*Search) error {
	if len(searches) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, searchesDir), 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	for _, s := range searches {
		if err := atomicfile.WriteJSON(filepath.Join(dir, searchesDir, s.Key+".json"), s); err != nil {
			return fmt.Errorf("search %s: %w", s.Name, err)
		}
	}
	return nil
}

// describe is the search in one line for the sweep's log.
func (s *Search) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s %s: ", s.Name, s.Forget, s.Dataset, s.Model, s.Quant)
	n := 0
	for _, r := range s.Rounds {
		n += len(r)
	}
	fmt.Fprintf(&b, "round %d, %d of %d rates", len(s.Rounds), n, s.Spec.Budget)
	switch {
	case s.Complete && s.LR != 0:
		fmt.Fprintf(&b, ", chose %g by %s", s.LR, s.Select)
	case s.Complete:
		b.WriteString(", no rate left")
	case s.Done:
		fmt.Fprintf(&b, ", %g on the remaining seeds", s.LR)
	}
	return b.String()
}
