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

// softmaxOutputs returns n float32 softmax vectors of 10 classes with
// labels: logits standard normal plus a bonus of margin·(−ln u) on the true
// class, so that a larger margin gives more confident outputs.
func softmaxOutputs(r *splitMix64, n int, margin float64) ([]float32, []int) {
	const classes = 10
	probs, labels := make([]float32, n*classes), make([]int, n)
	for i := range n {
		labels[i] = int(r.float() * classes)
		z := make([]float64, classes)
		for j := range z {
			// Box-Muller.
			z[j] = math.Sqrt(-2*math.Log(1-r.float())) * math.Cos(2*math.Pi*r.float())
		}
		z[labels[i]] -= margin * math.Log(1-r.float())
		var sum float64
		for j := range z {
			z[j] = math.Exp(z[j])
			sum += z[j]
		}
		for j := range z {
			probs[i*classes+j] = float32(z[j] / sum)
		}
	}
	return probs, labels
}

// BenchmarkEfficacyProb20k runs the attack on the whole probability vector
// (10 features) with 10,000 shadow members, 10,000 non-members and 4,500
// targets, the sizes of the CIFAR-10 evaluation.
func BenchmarkEfficacyProb20k(b *testing.B) {
	r := splitMix64(7)
	var sets [3][][]float64
	for k, n := range []int{10000, 10000, 4500} {
		probs, labels := softmaxOutputs(&r, n, []float64{8, 4, 6}[k])
		var err error
		if sets[k], err = Features(Prob, probs, 10, labels); err != nil {
			b.Fatal(err)
		}
	}
	var eff float64
	for b.Loop() {
		var err error
		if eff, err = Efficacy(sets[0], sets[1], sets[2], AttackSVC()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(eff, "efficacy")
}
