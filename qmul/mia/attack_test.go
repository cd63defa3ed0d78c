package mia

import (
	"math"
	"strings"
	"testing"
)

// TestEfficacySklearn compares Efficacy with the percentage of forget-set
// samples scikit-learn's attacker labels non-members, on the fixtures with
// a target set. On the degenerate fixtures — every confidence 1, and
// confidences that differ only in their last float32 bits — the attacker
// must make exactly scikit-learn's prediction for every target; elsewhere
// the two solvers' stopping points may differ within the tolerance.
func TestEfficacySklearn(t *testing.T) {
	var n, exact int
	for _, fx := range loadFixtures(t) {
		if fx.Target == nil {
			continue
		}
		n++
		if fx.Exact {
			exact++
		}
		var members, nonMembers [][]float64
		for i, x := range fx.X {
			if fx.Y[i] == 1 {
				members = append(members, x)
			} else {
				nonMembers = append(nonMembers, x)
			}
		}
		got, err := Efficacy(members, nonMembers, fx.Target, AttackSVC())
		if err != nil {
			t.Fatal(err)
		}
		if tol := map[bool]float64{false: 0.5, true: 1e-9}[fx.Exact]; math.Abs(got-fx.Efficacy) > tol {
			t.Errorf("%s: efficacy %.2f, scikit-learn %.2f", fx.Name, got, fx.Efficacy)
		}
		if !fx.Exact {
			continue
		}
		m, err := AttackSVC().Fit(fx.X, fx.Y)
		if err != nil {
			t.Fatal(err)
		}
		var differ int
		for k, x := range fx.Target {
			if p := m.Predict(x); p != fx.TargetPredict[k] {
				if differ++; differ <= 5 {
					t.Errorf("%s: target %d (%v): predicted %d (decision %.3g), scikit-learn %d",
						fx.Name, k, x[0], p, m.Decision(x), fx.TargetPredict[k])
				}
			}
		}
		if differ > 0 {
			t.Errorf("%s: %d of %d predictions differ from scikit-learn's", fx.Name, differ, len(fx.Target))
		}
	}
	if n == 0 || exact < 2 {
		t.Fatalf("%d fixtures with a target set, %d of them exact; want the saturated and near-saturated ones", n, exact)
	}
}

// TestEfficacySeparable checks Efficacy where the attacker is certain:
// targets like the members score 0 and targets like the non-members 100.
func TestEfficacySeparable(t *testing.T) {
	members := [][]float64{{0.99}, {0.98}, {0.97}, {1}}
	nonMembers := [][]float64{{0.2}, {0.3}, {0.25}, {0.1}}
	tests := []struct {
		name   string
		target [][]float64
		want   float64
	}{
		{"members", [][]float64{{0.95}, {1}}, 0},
		{"non-members", [][]float64{{0.15}, {0.3}, {0.2}}, 100},
		{"mixed", [][]float64{{0.15}, {0.99}, {0.2}, {0.96}}, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Efficacy(members, nonMembers, tt.target, AttackSVC())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("efficacy %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEfficacyErrors(t *testing.T) {
	one := [][]float64{{0.5}}
	tests := []struct {
		name                        string
		members, nonMembers, target [][]float64
		svc                         SVC
		want                        string
	}{
		{"no members", nil, one, one, AttackSVC(), "0 shadow members"},
		{"no non-members", one, nil, one, AttackSVC(), "0 shadow non-members"},
		{"no targets", one, one, nil, AttackSVC(), "0 targets"},
		{"shadow NaN", [][]float64{{math.NaN()}}, one, one, AttackSVC(), "training the attacker: feature 0 of sample 0 is NaN"},
		{"shadow width", one, [][]float64{{0.5, 0.5}}, one, AttackSVC(), "training the attacker: sample 1 has 2 features"},
		{"target width", one, one, [][]float64{{0.5, 0.5}}, AttackSVC(), "target: sample 0 has 2 features, want 1"},
		{"target Inf", one, one, [][]float64{{0.5}, {math.Inf(1)}}, AttackSVC(), "target: feature 0 of sample 1 is +Inf"},
		{"invalid SVC", one, one, one, SVC{}, "training the attacker: C = 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Efficacy(tt.members, tt.nonMembers, tt.target, tt.svc)
			if err == nil || !strings.HasPrefix(err.Error(), "mia: efficacy: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestSpread checks the constant-feature test at the float32 rounding of
// the kernel: exp(−t) rounds to 1 in float32 for t below 2^−25 ≈ 2.98e−8,
// a spread of about 1.727e−4 with one feature and gamma 1.
func TestSpread(t *testing.T) {
	col := func(v ...float64) [][]float64 {
		x := make([][]float64, len(v))
		for i := range v {
			x[i] = []float64{v[i]}
		}
		return x
	}
	tests := []struct {
		name     string
		svc      SVC
		sets     [][][]float64
		spread   float64
		constant bool
	}{
		{"saturated", AttackSVC(), [][][]float64{col(1, 1), col(1)}, 0, true},
		{"float32 ulps", AttackSVC(), [][][]float64{col(1, 1-3*0x1p-24), col(1 - 0x1p-24)}, 3 * 0x1p-24, true},
		{"just constant", AttackSVC(), [][][]float64{col(0.5), col(0.5 + 1.72e-4)}, 1.72e-4, true},
		{"just varying", AttackSVC(), [][][]float64{col(0.5), col(0.5 + 1.74e-4)}, 1.74e-4, false},
		{"spread over both sets", AttackSVC(), [][][]float64{col(1, 1), col(0.9, 1)}, 0.1, false},
		// gamma 1/2 for two features: the box diagonal 2e−4 gives t = 2e−8.
		{"two features", AttackSVC(), [][][]float64{{{0, 0}}, {{1e-4, 0}, {0, 1e-4}}}, math.Sqrt(2) * 1e-4, true},
		{"explicit gamma", SVC{C: 3, Gamma: 100}, [][][]float64{col(0.5), col(0.5 + 1e-4)}, 1e-4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spread, constant := tt.svc.Spread(tt.sets...)
			if math.Abs(spread-tt.spread) > 1e-12 || constant != tt.constant {
				t.Errorf("Spread = %.6g, %v; want %.6g, %v", spread, constant, tt.spread, tt.constant)
			}
		})
	}
	// The degenerate fixtures are constant for the attacker, the others not.
	for _, fx := range loadFixtures(t) {
		if fx.Target == nil {
			continue
		}
		if _, constant := AttackSVC().Spread(fx.X); constant != fx.Exact {
			t.Errorf("%s: constant %v, want %v", fx.Name, constant, fx.Exact)
		}
	}
}
