package mia

import (
	"math"
	"strings"
	"testing"
)

// TestEfficacySklearn compares Efficacy with the percentage of forget-set
// samples scikit-learn's attacker labels non-members, on the fixture with
// a target set.
func TestEfficacySklearn(t *testing.T) {
	var n int
	for _, fx := range loadFixtures(t) {
		if fx.Target == nil {
			continue
		}
		n++
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
		if math.Abs(got-fx.Efficacy) > 0.5 {
			t.Errorf("%s: efficacy %.2f, scikit-learn %.2f", fx.Name, got, fx.Efficacy)
		}
	}
	if n == 0 {
		t.Fatal("no fixture with a target set")
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
