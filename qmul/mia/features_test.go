package mia

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

func TestFeatures(t *testing.T) {
	// Three samples of three classes, all values exact in float32: an
	// ordinary one, a one-hot one with the wrong label, whose logarithms
	// are clamped at LogFloor, and one whose largest probability is tied.
	probs := []float32{
		0.5, 0.25, 0.25,
		0, 1, 0,
		0.375, 0.375, 0.25,
	}
	labels := []int{1, 0, 0}
	ln := math.Log
	tests := []struct {
		kind Feature
		want [][]float64
	}{
		{Confidence, [][]float64{{0.25}, {0}, {0.375}}},
		// Ties go to the first class, as torch.argmax.
		{Correctness, [][]float64{{0}, {0}, {1}}},
		// −0.5 ln 0.5 − 2·0.25 ln 0.25 = 1.5 ln 2; 0 ln 0 = 0.
		{Entropy, [][]float64{{1.5 * ln(2)}, {0}, {-2*0.375*ln(0.375) - 0.25*ln(0.25)}}},
		// Sample 0: −0.75 ln 0.25 − 0.5 ln 0.5 − 0.25 ln 0.75.
		// Sample 1: −(1 − 0) ln(LogFloor) − 1·ln(LogFloor) − 0 ln 1.
		// Sample 2: −0.625 ln 0.375 − 0.375 ln 0.625 − 0.25 ln 0.75.
		{MEntropy, [][]float64{
			{2*ln(2) - 0.25*ln(0.75)},
			{-2 * ln(1e-30)},
			{-0.625*ln(0.375) - 0.375*ln(0.625) - 0.25*ln(0.75)},
		}},
		{Prob, [][]float64{{0.5, 0.25, 0.25}, {0, 1, 0}, {0.375, 0.375, 0.25}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			got, err := Features(tt.kind, probs, 3, labels)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d rows, want %d", len(got), len(tt.want))
			}
			for i, row := range got {
				if len(row) != len(tt.want[i]) {
					t.Fatalf("row %d = %v, want %v", i, row, tt.want[i])
				}
				for j, v := range row {
					if math.Abs(v-tt.want[i][j]) > 1e-12 {
						t.Errorf("row %d = %v, want %v", i, row, tt.want[i])
						break
					}
				}
			}
		})
	}
}

func TestFeaturesErrors(t *testing.T) {
	tests := []struct {
		name    string
		kind    Feature
		probs   []float32
		classes int
		labels  []int
		want    string
	}{
		{"no classes", Confidence, nil, 0, nil, "0 classes"},
		{"length", Confidence, []float32{0.5, 0.5, 1}, 2, []int{0, 1}, "3 probabilities for 2 samples of 2 classes"},
		{"kind", "loss", []float32{0.5, 0.5}, 2, []int{0}, `unknown feature "loss"`},
		{"negative label", Confidence, []float32{0.5, 0.5}, 2, []int{-1}, "label -1 of sample 0"},
		{"label too large", Prob, []float32{0.5, 0.5, 1, 0}, 2, []int{0, 2}, "label 2 of sample 1"},
		{"NaN", Entropy, []float32{0.5, float32(math.NaN())}, 2, []int{0}, "probability NaN of class 1 of sample 0"},
		{"above 1", MEntropy, []float32{1.5, 0}, 2, []int{0}, "probability 1.5 of class 0"},
		{"negative", Correctness, []float32{-0.5, 0}, 2, []int{0}, "probability -0.5 of class 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Features(tt.kind, tt.probs, tt.classes, tt.labels)
			if err == nil || !strings.HasPrefix(err.Error(), "mia: features: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestFeaturesEfficacySklearn computes every attack feature from the softmax
// outputs of testdata/features_sklearn.json and compares the MIA-efficacy
// with scikit-learn's on features computed by testdata/gen_features.py.
func TestFeaturesEfficacySklearn(t *testing.T) {
	raw, err := os.ReadFile("testdata/features_sklearn.json")
	if err != nil {
		t.Fatal(err)
	}
	type outputs struct {
		Probs  []float32
		Labels []int
	}
	var fx struct {
		Classes         int
		Members, Target outputs
		NonMembers      outputs `json:"non_members"`
		Efficacy        map[string]float64
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.Efficacy) != 5 {
		t.Fatalf("efficacy for %d features, want 5", len(fx.Efficacy))
	}
	for _, kind := range []Feature{Confidence, Correctness, Entropy, MEntropy, Prob} {
		var sets [3][][]float64
		for k, o := range []outputs{fx.Members, fx.NonMembers, fx.Target} {
			if sets[k], err = Features(kind, o.Probs, fx.Classes, o.Labels); err != nil {
				t.Fatal(err)
			}
		}
		got, err := Efficacy(sets[0], sets[1], sets[2], AttackSVC())
		if err != nil {
			t.Fatal(err)
		}
		want, ok := fx.Efficacy[string(kind)]
		if !ok || math.Abs(got-want) > 0.5 {
			t.Errorf("%s: efficacy %.2f, scikit-learn %.2f", kind, got, want)
		}
	}
}
