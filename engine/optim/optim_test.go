package optim

import (
	"math"
	"testing"
)

func TestScheduleAt(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		want []float64
	}{
		{"constant", Schedule{Kind: "constant", Base: 0.1, Epochs: 3}, []float64{0.1, 0.1, 0.1}},
		{"cosine", Schedule{Kind: "cosine", Base: 1, Epochs: 4}, []float64{1, (1 + math.Cos(math.Pi/4)) / 2, 0.5, (1 + math.Cos(3*math.Pi/4)) / 2}},
		{"step", Schedule{Kind: "step", Base: 1, Epochs: 5, StepSize: 2, Gamma: 0.1}, []float64{1, 1, 0.1, 0.1, 0.01}},
		// MultiStepLR(milestones=[1, 3], gamma=0.5) stepped once per epoch.
		{"multistep", Schedule{Kind: "multistep", Base: 1, Epochs: 5, Milestones: []int{1, 3}, Gamma: 0.5}, []float64{1, 0.5, 0.5, 0.25, 0.25}},
		{"multistep past the run", Schedule{Kind: "multistep", Base: 1, Epochs: 3, Milestones: []int{91, 136}, Gamma: 0.1}, []float64{1, 1, 1}},
		{"warmup cosine", Schedule{Kind: "cosine", Base: 1, Epochs: 4, Warmup: 2}, []float64{0.5, 1, 1, 0.5}},
	}
	for _, tc := range tests {
		if err := tc.s.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for e, want := range tc.want {
			if got := tc.s.At(e); math.Abs(got-want) > 1e-12 {
				t.Errorf("%s: epoch %d lr = %g, want %g", tc.name, e, got, want)
			}
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	bad := []Schedule{
		{Kind: "cosine", Base: math.NaN(), Epochs: 3},
		{Kind: "cosine", Base: -1, Epochs: 3},
		{Kind: "cosine", Base: 0.1, Epochs: 0},
		{Kind: "linear", Base: 0.1, Epochs: 3},
		{Kind: "step", Base: 0.1, Epochs: 3},
		{Kind: "multistep", Base: 0.1, Epochs: 3, Milestones: []int{2, 2}, Gamma: 0.1},
		{Kind: "multistep", Base: 0.1, Epochs: 3, Milestones: []int{2}},
		{Kind: "cosine", Base: 0.1, Epochs: 3, Warmup: 3},
	}
	for _, s := range bad {
		if s.Validate() == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
}
