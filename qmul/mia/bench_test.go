package mia

import (
	"math"
	"testing"
)

// splitMix64 is the SplitMix64 generator, which testdata/sklearn_ref.py
// implements too so that the benchmark and the scikit-learn timing fit the
// same data.
type splitMix64 uint64

// float returns a uniform value in [0, 1) with 53 random bits.
func (s *splitMix64) float() float64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// confidences returns n float32-rounded softmax confidences: with
// probability pHigh the value 1 − 10^−e for e uniform in [lo, hi), which
// rounds to exactly 1 for e ≳ 7.2, and otherwise a value uniform in
// [0.1, 1).
func confidences(r *splitMix64, n int, pHigh, lo, hi float64) [][]float64 {
	x := make([][]float64, n)
	for i := range x {
		u, v := r.float(), r.float()
		p := 0.1 + 0.9*v
		if u < pHigh {
			p = 1 - math.Pow(10, -(lo+(hi-lo)*v))
		}
		x[i] = []float64{float64(float32(p))}
	}
	return x
}

// shadow20k returns the benchmark problem: the confidences of 10,000
// members (label 1) followed by those of 10,000 non-members (label 0).
func shadow20k() ([][]float64, []int) {
	r := splitMix64(2024)
	members := confidences(&r, 10000, 0.97, 2, 8)
	nonMembers := confidences(&r, 10000, 0.85, 0.5, 6)
	y := make([]int, 20000)
	for i := range 10000 {
		y[i] = 1
	}
	return append(members, nonMembers...), y
}

// BenchmarkFit20k trains the attacker on 20,000 one-feature shadow samples,
// the size of the CIFAR-10 evaluation. Compare with testdata/sklearn_ref.py.
func BenchmarkFit20k(b *testing.B) {
	x, y := shadow20k()
	var m *Model
	for b.Loop() {
		var err error
		if m, err = AttackSVC().Fit(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(m.Support)), "SVs")
	b.ReportMetric(float64(m.NIter), "iters")
}
