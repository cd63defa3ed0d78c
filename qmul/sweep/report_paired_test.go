package sweep

import (
	"bytes"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/qmul"
)

// TestPairedTest checks the paired t-test against values worked by hand:
// with two degrees of freedom Student's t has the closed-form
// CDF(t) = 1/2 + t/(2·√(2+t²)), so differences 1, 2, 3 (mean 2, standard
// deviation 1, t = 2·√3) give p = 1 − 2√3/√14 = 0.074180.
func TestPairedTest(t *testing.T) {
	tests := []struct {
		name         string
		d            []float64
		mean, std, p float64
	}{
		{"df 2", []float64{1, 2, 3}, 2, 1, 1 - 2*math.Sqrt(3)/math.Sqrt(14)},
		// df 1 is Cauchy: p = 1 − 2·atan(|t|)/π; d = 1, 3: t = 2/(√2/√2) = 2.
		{"df 1", []float64{1, 3}, 2, math.Sqrt(2), 1 - 2*math.Atan(2)/math.Pi},
		{"symmetric", []float64{-1, 0, 1}, 0, 1, 1},
		{"constant non-zero", []float64{0.5, 0.5, 0.5}, 0.5, 0, 0},
		{"constant zero", []float64{0, 0}, 0, 0, 1},
	}
	for _, tc := range tests {
		mean, std, p := pairedTest(tc.d)
		if math.Abs(mean-tc.mean) > 1e-12 || math.Abs(std-tc.std) > 1e-12 || math.Abs(p-tc.p) > 1e-9 {
			t.Errorf("%s: mean %g std %g p %.9f, want %g %g %.9f", tc.name, mean, std, p, tc.mean, tc.std, tc.p)
		}
	}
	if _, _, p := pairedTest([]float64{1}); !math.IsNaN(p) {
		t.Errorf("one difference: p %g, want NaN", p)
	}
}

// TestReportPairsSeeds builds a table whose best method (qmul) is better
// than ft on every seed by a steady margin, and than rl by a margin that
// swings sign with the seed, and checks the report's verdicts: paired
// differences see ft as beaten although the seeds' spread of ft's gap
// (±1) is far larger than the margin; rl is not distinguishable.
func TestReportPairsSeeds(t *testing.T) {
	g := Group{Dataset: "mnist", Model: "smallcnn", Quant: "lsq-w4a4", Forget: "random:10%"}
	var recs []Record
	add := func(method string, gaps []float64) {
		for i, gap := range gaps {
			gap := gap
			recs = append(recs, Record{Key: method, Group: g, Name: method, Method: method, LR: 0.01, Seed: uint64(i + 1),
				Metrics: qmul.Metrics{AvgGap: &gap}})
		}
	}
	add("original", []float64{4, 4.5, 5})
	add("retrain", []float64{0, 0, 0})
	add("qmul", []float64{1, 2, 3})
	add("ft", []float64{1.3, 2.35, 3.25}) // +0.3, +0.35, +0.25
	add("rl", []float64{0.5, 3, 3.1})     // −0.5, +1, +0.1
	sort.Slice(recs, func(i, j int) bool { return recordLess(recs[i], recs[j]) })

	best, ps := pairedComparisons(Tables(recs, nil)[0])
	if best != "qmul" {
		t.Fatalf("best %q, want qmul", best)
	}
	got := map[string]Paired{}
	for _, p := range ps {
		got[p.Name] = p
	}
	if len(got) != 2 {
		t.Fatalf("comparisons %v: want ft and rl only (not the original or Retrain)", ps)
	}
	if p := got["ft"]; p.Seeds != 3 || math.Abs(p.Diff-0.3) > 1e-9 || p.P >= pairedAlpha {
		t.Errorf("ft: %+v, want 3 seeds, difference 0.3, p < %g", p, pairedAlpha)
	}
	if p := got["rl"]; math.Abs(p.Diff-0.2) > 1e-9 || p.P < 0.5 {
		t.Errorf("rl: %+v, want difference 0.2, p > 0.5", p)
	}
	var b bytes.Buffer
	writePaired(&b, Tables(recs, nil)[0])
	if !strings.Contains(b.String(), "qmul beats ft; it cannot be told apart from rl.") {
		t.Errorf("report:\n%s", b.String())
	}
}
