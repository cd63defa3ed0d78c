// Package lrsearch chooses a learning rate in rounds of trials, as the
// reference protocol does by hand: a coarse grid spaced by a constant
// factor, extended past an edge for as long as the best rate lies on it,
// then refined once around the best at half the factor's step (√factor),
// all within a budget of rates.
//
// The search decides each round from the outcomes of the rounds before it
// and nothing else, so replaying it over the same outcomes gives the same
// rounds. A sweep therefore keeps no search state: every process that
// shares a results directory recomputes each search from the cells there,
// and they agree on what to run next.
package lrsearch

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Spec is a search's parameters.
type Spec struct {
	// Lo and Hi are the coarse grid's ends: Lo, Lo·Factor, Lo·Factor², …
	// up to Hi.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Factor is the ratio between neighbouring rates of the coarse grid.
	Factor float64 `json:"factor"`
	// Budget is the most rates the search tries, failed ones included.
	Budget int `json:"budget"`
}

// Defaults of a search around a method's default learning rate.
const (
	DefaultFactor = 4
	// DefaultSpan is how far the coarse grid reaches on either side of the
	// centre: centre/16 to centre·16, five rates at the default factor.
	DefaultSpan   = 16
	DefaultBudget = 12
	// MaxBudget bounds the budget a sweep file may ask for.
	MaxBudget = 100
)

// Around is the default search centred on a learning rate.
func Around(lr float64) Spec {
	return Spec{Lo: Round(lr / DefaultSpan), Hi: Round(lr * DefaultSpan), Factor: DefaultFactor, Budget: DefaultBudget}
}

// Validate reports a spec that cannot search.
func (s Spec) Validate() error {
	for _, v := range []float64{s.Lo, s.Hi} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return fmt.Errorf("range [%g, %g]: want two positive finite learning rates", s.Lo, s.Hi)
		}
	}
	if s.Lo > s.Hi {
		return fmt.Errorf("range [%g, %g]: the first rate must not be above the second", s.Lo, s.Hi)
	}
	if math.IsNaN(s.Factor) || s.Factor < 1.1 || s.Factor > 100 {
		return fmt.Errorf("factor %g: want a number in [1.1, 100]", s.Factor)
	}
	if n := len(s.Coarse()); s.Budget < n || s.Budget > MaxBudget {
		return fmt.Errorf("budget %d: want at least the %d rates of the coarse grid and at most %d", s.Budget, n, MaxBudget)
	}
	return nil
}

// Round keeps three significant digits of a rate, so that rates computed
// by multiplying are the same numbers however they were reached, and read
// as people write them (0.16, not 0.16000000000000003).
func Round(lr float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(lr, 'g', 3, 64), 64)
	return v
}

// roundingSlack is how far, as a ratio, two rates that Round made equal
// can lie apart: three significant digits move a rate by at most 0.5%.
const roundingSlack = 1.01

// Coarse is the first round: Lo·Factor^k for k = 0, 1, … while not above
// Hi. When Hi lies on that grid to rounding (Around's ends are each
// rounded, so Hi/Lo may miss Factor^k by up to 1%), the grid runs
// geometrically from Lo to Hi, so that it ends at Hi and passes through
// the centre: Around(0.0005) is 3.13e-05, 0.000125, 0.0005, 0.002, 0.008.
// A grid longer than MaxBudget is cut there (Validate refuses it).
func (s Spec) Coarse() []float64 {
	if !(s.Lo > 0 && s.Hi >= s.Lo && s.Factor > 1) {
		return nil
	}
	logF := math.Log(s.Factor)
	steps := math.Floor(math.Log(s.Hi*roundingSlack/s.Lo) / logF)
	n := MaxBudget + 1
	if steps < float64(MaxBudget) { // also false for NaN and +Inf
		n = int(steps) + 1
	}
	ratio := s.Factor
	if exact := math.Log(s.Hi/s.Lo) / logF; n > 1 && math.Abs(exact-steps)*logF <= math.Log(roundingSlack) {
		ratio = math.Pow(s.Hi/s.Lo, 1/steps)
	}
	grid := make([]float64, 0, n)
	for k := range n {
		grid = append(grid, Round(s.Lo*math.Pow(ratio, float64(k))))
	}
	return grid
}

// Outcome is what a trial at one rate gave.
type Outcome struct {
	// Score is the selection criterion's value; smaller is better.
	Score float64 `json:"score"`
	// Failed marks a run that collapsed or diverged: it is no candidate,
	// but it bounds the search.
	Failed bool `json:"failed,omitempty"`
	// Plateau marks a model that ended about where the original was: the
	// rate is too small to do anything.
	Plateau bool `json:"plateau,omitempty"`
}

// Trial is one rate tried and its outcome.
type Trial struct {
	LR float64 `json:"lr"`
	// Round is the 1-based round that asked for it.
	Round int `json:"round"`
	Outcome
}

// Stop reasons of a finished search.
const (
	StopRefined = "refined"    // bracketed, then refined around the best
	StopBudget  = "budget"     // the budget ran out
	StopFailed  = "all failed" // every rate collapsed or diverged
)

// Edges of the rates tried.
const (
	edgeSmallest = "smallest"
	edgeLargest  = "largest"
)

// State is a search replayed over the outcomes known so far.
type State struct {
	// Rounds lists the rates each round asked for, in order.
	Rounds [][]float64
	// Trials are the rates with a known outcome, by rate.
	Trials []Trial
	// Pending are the rates of the last round without an outcome yet: the
	// search waits for them.
	Pending []float64
	// Done reports a finished search; Stop says why.
	Done bool
	Stop string
	// Best is the chosen rate (with Found), the best candidate so far
	// while the search runs.
	Best  float64
	Found bool
	// Edge is "smallest" or "largest" when Best is the smallest or
	// largest rate tried.
	Edge string
}

// Chosen returns the chosen rate's trial.
func (st State) Chosen() (Trial, bool) {
	for _, t := range st.Trials {
		if st.Found && t.LR == st.Best {
			return t, true
		}
	}
	return Trial{}, false
}

// Replay runs the search over the outcomes known so far: outcome reports
// a rate's outcome, or false when it has none yet.
func (s Spec) Replay(outcome func(lr float64) (Outcome, bool)) State {
	var st State
	round := s.Coarse()
	refined := false
	for len(round) > 0 {
		st.Rounds = append(st.Rounds, round)
		for _, lr := range round {
			o, ok := outcome(lr)
			if !ok {
				st.Pending = append(st.Pending, lr)
				continue
			}
			st.Trials = append(st.Trials, Trial{LR: lr, Round: len(st.Rounds), Outcome: o})
		}
		slices.SortFunc(st.Trials, func(a, b Trial) int { return cmp.Compare(a.LR, b.LR) })
		st.best()
		if len(st.Pending) > 0 {
			return st
		}
		stop := StopRefined
		round, refined = s.next(st, refined)
		if left := s.Budget - len(st.Trials); len(round) > left {
			round, stop = round[:max(0, left)], StopBudget
		}
		if len(round) == 0 {
			st.Done, st.Stop = true, stop
			if !st.Found {
				st.Stop = StopFailed
			}
		}
	}
	return st
}

// OnPlateau reports whether the chosen rate leaves the model about where
// the original was: the search's best is to do (nearly) nothing.
func (st State) OnPlateau() bool {
	t, ok := st.Chosen()
	return ok && t.Plateau
}

// best finds the candidate with the smallest score (ties: the smaller
// rate) and whether it sits at an edge of the rates tried.
func (st *State) best() {
	st.Found = false
	for _, t := range st.Trials {
		if !t.Failed && (!st.Found || t.Score < st.score(st.Best)) {
			st.Best, st.Found = t.LR, true
		}
	}
	st.Edge = ""
	if n := len(st.Trials); st.Found && n > 1 {
		switch st.Best {
		case st.Trials[0].LR:
			st.Edge = edgeSmallest
		case st.Trials[n-1].LR:
			st.Edge = edgeLargest
		}
	}
}

func (st State) score(lr float64) float64 {
	for _, t := range st.Trials {
		if t.LR == lr {
			return t.Score
		}
	}
	return math.Inf(1)
}

// next is the round after a finished one: one rate past the edge where
// the best lies — above it when it is the largest rate tried (or the only
// one), below it when it is the smallest, unless the model does nothing
// there (the plateau: smaller rates cannot do better) — else, once, the
// rates at √Factor on either side of the best that lie inside the range
// tried. It reports whether the refinement has been asked for.
func (s Spec) next(st State, refined bool) ([]float64, bool) {
	lo, hi := st.Trials[0].LR, st.Trials[len(st.Trials)-1].LR
	best, found := st.Chosen()
	switch {
	case !found: // every rate failed: they were all too large
		return s.untried(st, Round(lo/s.Factor)), refined
	case refined:
		return nil, true
	case st.Edge == edgeLargest || lo == hi:
		return s.untried(st, Round(hi*s.Factor)), false
	case st.Edge == edgeSmallest && !best.Plateau:
		return s.untried(st, Round(lo/s.Factor)), false
	}
	step := math.Sqrt(s.Factor)
	var round []float64
	for _, lr := range []float64{Round(best.LR / step), Round(best.LR * step)} {
		if lr > lo && lr < hi {
			round = append(round, s.untried(st, lr)...)
		}
	}
	return round, true
}

// untried returns lr as a one-rate round unless it was tried already.
func (s Spec) untried(st State, lr float64) []float64 {
	for _, t := range st.Trials {
		if t.LR == lr {
			return nil
		}
	}
	return []float64{lr}
}
