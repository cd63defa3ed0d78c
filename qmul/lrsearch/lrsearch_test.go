package lrsearch

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// bowl scores a rate by its distance, in factors of 2, from best.
func bowl(best float64) func(float64) Outcome {
	return func(lr float64) Outcome { return Outcome{Score: math.Abs(math.Log2(lr / best))} }
}

func TestCoarseAndRound(t *testing.T) {
	if got, want := Around(0.01).Coarse(), []float64{0.000625, 0.0025, 0.01, 0.04, 0.16}; !reflect.DeepEqual(got, want) {
		t.Errorf("Around(0.01).Coarse() = %v, want %v", got, want)
	}
	if got, want := (Spec{Lo: 0.001, Hi: 0.1, Factor: 10}).Coarse(), []float64{0.001, 0.01, 0.1}; !reflect.DeepEqual(got, want) {
		t.Errorf("factor 10: %v, want %v", got, want)
	}
	// Rounded ends: 0.0005/16 rounds up to 3.13e-05, and 3.13e-05·4⁴ is
	// above 0.008, which must stay in the grid, and so must the centre.
	if got, want := Around(0.0005).Coarse(), []float64{3.13e-05, 0.000125, 0.0005, 0.002, 0.008}; !reflect.DeepEqual(got, want) {
		t.Errorf("Around(0.0005).Coarse() = %v, want %v", got, want)
	}
	if got, want := Around(0.013).Coarse(), []float64{0.000812, 0.00325, 0.013, 0.052, 0.208}; !reflect.DeepEqual(got, want) {
		t.Errorf("Around(0.013).Coarse() = %v, want %v", got, want)
	}
	// Hi off the grid: the grid stops below it.
	if got, want := (Spec{Lo: 0.001, Hi: 0.05, Factor: 4}).Coarse(), []float64{0.001, 0.004, 0.016}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hi off the grid: %v, want %v", got, want)
	}
	if got := Round(0.16000000000000003); got != 0.16 {
		t.Errorf("Round(0.16000000000000003) = %v", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Lo: 0, Hi: 1, Factor: 4, Budget: 10}, "positive"},
		{Spec{Lo: 1, Hi: 0.1, Factor: 4, Budget: 10}, "not be above"},
		{Spec{Lo: 0.01, Hi: 1, Factor: 1, Budget: 10}, "factor 1"},
		{Spec{Lo: 0.001, Hi: 1, Factor: 2, Budget: 5}, "at least the 10 rates"},
		{Spec{Lo: 0.001, Hi: 1, Factor: 2, Budget: 1000}, "at most 100"},
	} {
		if err := tc.spec.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
	if err := Around(0.01).Validate(); err != nil {
		t.Errorf("the default search: %v", err)
	}
}

// run replays a search to its end with outcomes from f.
func run(s Spec, f func(float64) Outcome) State {
	return s.Replay(func(lr float64) (Outcome, bool) { return f(lr), true })
}

// TestSearch checks the rounds a search asks for: inside the coarse grid
// it refines once; past an edge it extends one rate a round until the best
// is inside, then refines; it stops at its budget; a failed rate is never
// chosen but bounds the search; the plateau stops the search from going
// below it; and when every rate fails it moves down.
func TestSearch(t *testing.T) {
	around := Around(0.01) // 0.000625 … 0.16, factor 4, budget 12
	cases := []struct {
		name   string
		spec   Spec
		f      func(float64) Outcome
		rounds [][]float64
		best   float64
		stop   string
		edge   string
	}{
		{name: "inside", spec: around, f: bowl(0.012),
			rounds: [][]float64{{0.000625, 0.0025, 0.01, 0.04, 0.16}, {0.005, 0.02}},
			best:   0.01, stop: StopRefined},
		{name: "past the largest rate", spec: around, f: bowl(0.7),
			rounds: [][]float64{{0.000625, 0.0025, 0.01, 0.04, 0.16}, {0.64}, {2.56}, {0.32, 1.28}},
			best:   0.64, stop: StopRefined},
		{name: "past the smallest rate", spec: around, f: bowl(0.0001),
			rounds: [][]float64{{0.000625, 0.0025, 0.01, 0.04, 0.16}, {0.000156}, {3.9e-05}, {7.8e-05, 0.000312}},
			best:   7.8e-05, stop: StopRefined},
		{name: "budget", spec: Spec{Lo: 0.01, Hi: 0.16, Factor: 4, Budget: 5}, f: bowl(100),
			rounds: [][]float64{{0.01, 0.04, 0.16}, {0.64}, {2.56}},
			best:   2.56, stop: StopBudget, edge: "largest"},
		{name: "failed rates bound the search", spec: around,
			f:      func(lr float64) Outcome { return Outcome{Score: -lr, Failed: lr > 0.05} },
			rounds: [][]float64{{0.000625, 0.0025, 0.01, 0.04, 0.16}, {0.02, 0.08}},
			best:   0.04, stop: StopRefined},
		{name: "plateau at the smallest rate", spec: around,
			f:      func(lr float64) Outcome { return Outcome{Score: lr, Plateau: lr < 0.005} },
			rounds: [][]float64{{0.000625, 0.0025, 0.01, 0.04, 0.16}, {0.00125}},
			best:   0.000625, stop: StopRefined, edge: "smallest"},
		{name: "every coarse rate fails", spec: Spec{Lo: 1, Hi: 4, Factor: 2, Budget: 9},
			f:      func(lr float64) Outcome { return Outcome{Score: -lr, Failed: lr > 0.2} },
			rounds: [][]float64{{1, 2, 4}, {0.5}, {0.25}, {0.125}, {0.0625}, {0.0884, 0.177}},
			best:   0.177, stop: StopRefined},
		{name: "every rate fails within the budget", spec: Spec{Lo: 1, Hi: 4, Factor: 2, Budget: 4},
			f:      func(lr float64) Outcome { return Outcome{Failed: true} },
			rounds: [][]float64{{1, 2, 4}, {0.5}},
			stop:   StopFailed},
		{name: "one rate, doing nothing", spec: Spec{Lo: 0.01, Hi: 0.01, Factor: 4, Budget: 4},
			f:      func(lr float64) Outcome { return Outcome{Score: 5 - lr, Plateau: lr < 0.02} },
			rounds: [][]float64{{0.01}, {0.04}, {0.16}, {0.64}},
			best:   0.64, stop: StopBudget, edge: "largest"},
	}
	for _, tc := range cases {
		st := run(tc.spec, tc.f)
		if !reflect.DeepEqual(st.Rounds, tc.rounds) {
			t.Errorf("%s: rounds %v, want %v", tc.name, st.Rounds, tc.rounds)
		}
		if !st.Done || st.Stop != tc.stop || st.Edge != tc.edge {
			t.Errorf("%s: done %v, stop %q, edge %q; want done, %q, %q", tc.name, st.Done, st.Stop, st.Edge, tc.stop, tc.edge)
		}
		if found := tc.best != 0; st.Found != found || st.Best != tc.best {
			t.Errorf("%s: best %v (found %v), want %v", tc.name, st.Best, st.Found, tc.best)
		}
		n := 0
		for _, r := range st.Rounds {
			n += len(r)
		}
		if n > tc.spec.Budget || n != len(st.Trials) {
			t.Errorf("%s: %d rates asked for, %d trials, budget %d", tc.name, n, len(st.Trials), tc.spec.Budget)
		}
	}
	if !run(cases[5].spec, cases[5].f).OnPlateau() || run(cases[0].spec, cases[0].f).OnPlateau() {
		t.Error("OnPlateau does not tell the plateau case from the others")
	}
}

// TestReplayWaitsForPendingRates replays a search whose second round is
// half known: it must stop there, list the missing rate and ask for nothing
// beyond it; with every outcome known, the same rounds come out.
func TestReplayWaitsForPendingRates(t *testing.T) {
	s, f := Around(0.01), bowl(0.7)
	full := run(s, f)
	known := map[float64]bool{}
	for _, r := range full.Rounds[:2] {
		for _, lr := range r {
			known[lr] = true
		}
	}
	known[0.04] = false
	st := s.Replay(func(lr float64) (Outcome, bool) { return f(lr), known[lr] })
	if st.Done || !reflect.DeepEqual(st.Pending, []float64{0.04}) || len(st.Rounds) != 1 {
		t.Errorf("with 0.04 unknown: done %v, pending %v, %d rounds; want not done, [0.04], 1 round", st.Done, st.Pending, len(st.Rounds))
	}
	known[0.04] = true
	st = s.Replay(func(lr float64) (Outcome, bool) { return f(lr), known[lr] })
	if st.Done || !reflect.DeepEqual(st.Rounds, full.Rounds[:3]) || !reflect.DeepEqual(st.Pending, []float64{2.56}) {
		t.Errorf("two rounds known: rounds %v, pending %v; want %v and [2.56]", st.Rounds, st.Pending, full.Rounds[:3])
	}
	if again := run(s, f); !reflect.DeepEqual(again, full) {
		t.Error("two replays over the same outcomes differ")
	}
}

// TestCoarseIsBounded: a spec from a hostile file cannot ask for an
// unbounded grid before Validate refuses it.
func TestCoarseIsBounded(t *testing.T) {
	for _, s := range []Spec{
		{Lo: 1e-300, Hi: 1e300, Factor: 1.0000001},
		{Lo: math.SmallestNonzeroFloat64, Hi: math.MaxFloat64, Factor: 2},
		{Lo: 1, Hi: math.Inf(1), Factor: 2},
		{Lo: 1, Hi: 2, Factor: math.NaN()},
		{Lo: 1, Hi: 2, Factor: math.Inf(1)},
	} {
		if n := len(s.Coarse()); n > MaxBudget+1 {
			t.Errorf("%+v: %d rates", s, n)
		}
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
}
