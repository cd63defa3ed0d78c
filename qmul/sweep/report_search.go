package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
	"github.com/qmulgpu/qmulgpu/qmul"
	"github.com/qmulgpu/qmulgpu/qmul/lrsearch"
)

// readSearches reads the search files of a results directory, in key
// order (none: no searches).
func readSearches(dir string) ([]*Search, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, searchesDir, "*.json"))
	sort.Strings(paths)
	var out []*Search
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		s, err := parseSearch(raw)
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w (delete it: the next sweep writes it again)", p, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseSearch decodes a search record, refusing one that no sweep writes.
func parseSearch(raw []byte) (*Search, error) {
	var s Search
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("not a search record: %s", jsonerr.Describe(err))
	}
	n := 0
	for _, r := range s.Rounds {
		n += len(r)
	}
	switch {
	case s.Name == "" || len(s.Seeds) == 0:
		return nil, fmt.Errorf("not a search record: no name or seeds")
	case n > lrsearch.MaxBudget || len(s.Trials) > n:
		return nil, fmt.Errorf("%d rates in its rounds and %d trials, more than a search tries", n, len(s.Trials))
	}
	return &s, nil
}

// searchOf returns the search of a table row (nil: none). With several
// (a directory shared by sweep files that search differently), the first
// in key order.
func searchOf(searches []*Search, g Group, name string) *Search {
	for _, s := range searches {
		if s.Group == g && s.Name == name {
			return s
		}
	}
	return nil
}

// onPlateau reports whether every record stayed where the original of its
// seed was (false when an original is missing).
func onPlateau(chosen, group []Record) bool {
	for _, r := range chosen {
		i := slices.IndexFunc(group, func(o Record) bool { return o.Method == originalMethod && o.Seed == r.Seed })
		if i < 0 || r.Collapsed != "" || !qmul.OnPlateau(r.Metrics, group[i].Metrics) {
			return false
		}
	}
	return len(chosen) > 0
}

// Selection compares, for one row, the rate Avg. Gap to Retrain chooses
// with the rate the Retrain-free criterion chooses, over the seeds every
// rate without a collapse has run on.
type Selection struct {
	ByGap, ByProxy float64
	// Regret is the mean Avg. Gap at ByProxy minus that at ByGap: what
	// choosing without Retrain costs.
	Regret float64
	Seeds  int
	Rates  int
}

// compareCriteria returns the row's Selection, or nil when fewer than two
// rates can be compared or a record has no proxy value.
func compareCriteria(lrs []float64, byLR map[float64][]Record) *Selection {
	var rates []float64
	var seeds []uint64
	for _, lr := range lrs {
		rs := byLR[lr]
		if slices.ContainsFunc(rs, func(r Record) bool { return r.Collapsed != "" || r.Proxy == nil }) {
			continue
		}
		have := make([]uint64, len(rs))
		for i, r := range rs {
			have[i] = r.Seed
		}
		if rates == nil {
			seeds = have
		} else {
			seeds = slices.DeleteFunc(seeds, func(s uint64) bool { return !slices.Contains(have, s) })
		}
		rates = append(rates, lr)
	}
	if len(rates) < 2 || len(seeds) == 0 {
		return nil
	}
	meanOf := func(lr float64, f func(Record) float64) float64 {
		var v []float64
		for _, r := range byLR[lr] {
			if slices.Contains(seeds, r.Seed) {
				v = append(v, f(r))
			}
		}
		return mean(v)
	}
	gap := func(r Record) float64 { return *r.AvgGap }
	proxy := func(r Record) float64 { return *r.Proxy }
	sel := &Selection{Seeds: len(seeds), Rates: len(rates)}
	bestGap, bestProxy := math.Inf(1), math.Inf(1)
	for _, lr := range rates {
		if g := meanOf(lr, gap); g < bestGap {
			bestGap, sel.ByGap = g, lr
		}
		if p := meanOf(lr, proxy); p < bestProxy {
			bestProxy, sel.ByProxy = p, lr
		}
	}
	sel.Regret = meanOf(sel.ByProxy, gap) - bestGap
	return sel
}

// writeSearches writes a table's learning-rate searches: per search its
// rounds with each rate's criterion (or failure), why it stopped and what
// it chose.
func writeSearchRounds(b *bytes.Buffer, t Table) {
	for _, r := range slices.Concat(t.Rows, t.AllCollapsed) {
		s := r.Search
		if s == nil {
			continue
		}
		what := "Avg. Gap to Retrain"
		if s.Select == qmul.SelectProxy {
			what = "the Retrain-free proxy"
		}
		n := 0
		for _, round := range s.Rounds {
			n += len(round)
		}
		fmt.Fprintf(b, "\nSearch of %s by %s on seed%s %s (%d of %d rates", s.Name, what, plural(len(s.Seeds)), joinSeeds(s.Seeds), n, s.Spec.Budget)
		if s.Done {
			fmt.Fprintf(b, ", stopped: %s", s.Stop)
		} else {
			b.WriteString(", unfinished")
		}
		b.WriteString("):")
		for i, round := range s.Rounds {
			var parts []string
			for _, lr := range round {
				parts = append(parts, trialText(s, lr))
			}
			fmt.Fprintf(b, " round %d: %s;", i+1, strings.Join(parts, ", "))
		}
		switch {
		case s.LR != 0 && s.Complete:
			fmt.Fprintf(b, " chosen: **%g**", s.LR)
		case s.LR != 0:
			fmt.Fprintf(b, " best so far: %g", s.LR)
		default:
			b.WriteString(" no rate chosen")
		}
		if len(s.Rejected) > 0 {
			fmt.Fprintf(b, " (%s collapsed on another seed, so the next best was taken)", joinRates(s.Rejected))
		}
		if len(s.FinalSeeds) > 0 && s.LR != 0 {
			fmt.Fprintf(b, ", then run on seed%s %s", plural(len(s.FinalSeeds)), joinSeeds(s.FinalSeeds))
		}
		b.WriteString(".\n")
	}
}

// trialText is one rate of a search and its outcome.
func trialText(s *Search, lr float64) string {
	for _, t := range s.Trials {
		switch {
		case t.LR != lr:
		case t.Failed:
			return fmt.Sprintf("%g → collapsed", lr)
		case t.Plateau:
			return fmt.Sprintf("%g → %.2f (does nothing)", lr, t.Score)
		default:
			return fmt.Sprintf("%g → %.2f", lr, t.Score)
		}
	}
	return fmt.Sprintf("%g → running", lr)
}

// writeSelection writes how the Retrain-free criterion's choices compare
// with Avg. Gap's, per row and over the table.
func writeSelection(b *bytes.Buffer, t Table) {
	var lines []string
	same, n, regret := 0, 0, 0.0
	for _, r := range t.Rows {
		s := r.Selection
		if s == nil {
			continue
		}
		n++
		regret += s.Regret
		if s.ByGap == s.ByProxy {
			same++
		}
		lines = append(lines, fmt.Sprintf("| %s | %g | %g | %.2f | %d × %d |", r.Name, s.ByGap, s.ByProxy, s.Regret, s.Rates, s.Seeds))
	}
	if n == 0 {
		return
	}
	b.WriteString("\nChoosing without Retrain: the rate each criterion picks among those tried (over the seeds every rate ran on), and the regret, the Avg. Gap the proxy's choice costs over the best.\n\n")
	b.WriteString("| method | by Avg. Gap | by proxy | regret | rates × seeds |\n|---|---:|---:|---:|---:|\n")
	b.WriteString(strings.Join(lines, "\n") + "\n")
	fmt.Fprintf(b, "\nThe proxy picks Avg. Gap's rate for %d of %d methods; mean regret %.2f.\n", same, n, regret/float64(n))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func joinSeeds(seeds []uint64) string {
	parts := make([]string, len(seeds))
	for i, s := range seeds {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ", ")
}

func joinRates(lrs []float64) string {
	parts := make([]string, len(lrs))
	for i, lr := range lrs {
		parts[i] = strconv.FormatFloat(lr, 'g', -1, 64)
	}
	return strings.Join(parts, ", ")
}

// RatesFile is the report's list of chosen learning rates.
const RatesFile = "rates.json"

// Rates are the learning rates a report chose, per table and method: what
// a later run at those rates (the demo, or more seeds) reads.
type Rates struct {
	// Source says where the rates come from.
	Source string `json:"source"`
	Rates  []Rate `json:"rates"`
}

// Rate is one method's chosen learning rate in one setting.
type Rate struct {
	Group
	Name   string  `json:"name"`
	Method string  `json:"method"`
	LR     float64 `json:"lr"`
	// By says how it was chosen: "search (gap)", "search (proxy)" or
	// "grid" (the smallest mean Avg. Gap among the rates listed).
	By string `json:"by"`
	// Seeds counts the seeds that ran at it.
	Seeds int `json:"seeds"`
}

// ratesOf lists the chosen rate of every row that has one.
func ratesOf(tables []Table) Rates {
	out := Rates{Source: "qmulgpu report", Rates: []Rate{}}
	for _, t := range tables {
		for _, r := range t.Rows {
			if !hasLR(r.Method) {
				continue
			}
			by := "grid"
			if r.Search != nil {
				by = "search (" + r.Search.Select + ")"
			}
			out.Rates = append(out.Rates, Rate{Group: t.Group, Name: r.Name, Method: r.Method, LR: r.LR, By: by, Seeds: r.FA.N})
		}
	}
	return out
}
