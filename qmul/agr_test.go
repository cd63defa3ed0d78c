package qmul

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

// agrUnlearner builds a qmul unlearner on the twins' small LSQ scenario
// (a model trained briefly, so BatchNorm's running statistics differ from
// a minibatch's and predictions are not saturated).
func agrUnlearner(t *testing.T, record Recorder) (*unlearner, *data.Dataset) {
	t.Helper()
	b := cpu.New(1)
	ds := twinData()
	path := filepath.Join(t.TempDir(), "original.safetensors")
	twinOriginal(t, b, ds, qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}, path)
	o, err := qat.Open(path, b, qat.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := o.Model
	var forget, retain []int
	for i := 0; i < ds.N; i++ {
		if i%4 == 1 {
			forget = append(forget, i)
		} else {
			retain = append(retain, i)
		}
	}
	d := train.Upload(b, ds)
	t.Cleanup(func() { d.Free(b) })
	h := Defaults("qmul")
	h.Batch, h.Params["schedule"] = 8, "sequential"
	s := &Study{B: b, Model: m, Sets: Sets{Train: d, Forget: forget, Retain: retain}, Classes: ds.Classes,
		Phases: map[string]float64{}, Record: record}
	return &unlearner{Study: s, h: h, method: qmulMethod, opt: optim.NewSGD(b, m.Params(), h.Momentum, h.WeightDecay, false),
		ctx: &nn.Ctx{B: b, Train: true}}, ds
}

// snapshot downloads every parameter and state of the model.
func snapshot(u *unlearner) [][]float32 {
	var out [][]float32
	for _, p := range u.Model.Params() {
		out = append(out, slices.Clone(cpu.F32(p.Value)))
	}
	for _, s := range u.Model.States() {
		if s.Value != nil {
			out = append(out, slices.Clone(cpu.F32(s.Value)))
		}
	}
	return out
}

func sameSnapshot(a, b [][]float32) bool {
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestSimilarLabels checks ŷ = argmin_{j≠y} |p_j − p_y| against the
// evaluation-mode probabilities, with the true labels y even while D_f is
// relabelled, in D_f's order, leaving the model untouched.
func TestSimilarLabels(t *testing.T) {
	u, ds := agrUnlearner(t, nil)
	// A previous epoch's relabelling must not be taken for y.
	wrong := make([]int32, len(u.Forget))
	for i, idx := range u.Forget {
		wrong[i] = (ds.Labels[idx] + 1) % int32(ds.Classes)
	}
	u.relabel(wrong)
	before := snapshot(u)
	got := u.similarLabels(0)
	if !sameSnapshot(before, snapshot(u)) {
		t.Fatal("similarLabels changed the model (it must run in evaluation mode)")
	}
	out := train.Evaluate(u.B, u.Model, u.Train, u.Forget, 64, true, nil)
	k := ds.Classes
	checked := 0
	for i, idx := range u.Forget {
		p := out.Probs[i*k : (i+1)*k]
		y := int(ds.Labels[idx])
		gaps := make([]float64, k)
		for j := range gaps {
			gaps[j] = math.Abs(float64(p[j]) - float64(p[y]))
		}
		gaps[y] = math.Inf(1)
		want := slices.Index(gaps, slices.Min(gaps))
		if int(got[i]) == y {
			t.Errorf("forget sample %d: ŷ is its own label %d", idx, y)
		}
		sorted := slices.Sorted(slices.Values(gaps))
		if sorted[1]-sorted[0] < 1e-5 {
			continue // a near tie: float32 probabilities cannot decide it
		}
		checked++
		if int(got[i]) != want {
			t.Errorf("forget sample %d (label %d): ŷ = %d, want %d (p = %v)", idx, y, got[i], want, p)
		}
	}
	if checked < len(u.Forget)/2 {
		t.Fatalf("only %d of %d samples were decidable", checked, len(u.Forget))
	}
}

// TestEpochNorms checks the AGR measurement against a direct computation:
// for every minibatch of the recorded orders, Σ over every trainable tensor
// (weights, BatchNorm affine parameters and LSQ steps) of the L2 norm of
// the mean-CE gradient, with D_f's current labels ŷ and D_r's true ones,
// averaged per group; and that measuring leaves BatchNorm's statistics,
// the parameters and the gradients as they were.
func TestEpochNorms(t *testing.T) {
	var events []Event
	u, _ := agrUnlearner(t, func(ev Event) { events = append(events, ev) })
	u.relabel(u.similarLabels(0))
	before := snapshot(u)
	gf, gr, err := u.epochNorms(0, false)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSnapshot(before, snapshot(u)) {
		t.Error("epochNorms changed the model (BatchNorm statistics must stay frozen)")
	}
	for _, p := range u.opt.Params() {
		if slices.ContainsFunc(cpu.F32(p.Grad), func(g float32) bool { return g != 0 }) {
			t.Fatalf("epochNorms left a gradient in %s", p.Name)
		}
	}
	names := map[string]bool{}
	for _, p := range u.opt.Params() {
		names[p.Name] = true
	}
	for _, want := range []string{"conv2.quan_w_fn.s", "conv2.quan_a_fn.s", "bn2.weight", "bn2.bias", "fc.weight"} {
		if !names[want] {
			t.Fatalf("the optimiser does not train %s (have %v)", want, names)
		}
	}
	direct := func(role string, labels *engine.Tensor) float64 {
		i := slices.IndexFunc(events, func(ev Event) bool { return ev.Kind == "batches" && ev.Role == role })
		if i < 0 {
			t.Fatalf("no %s minibatches recorded", role)
		}
		c := &nn.Ctx{B: u.B, Train: true, FrozenStats: true}
		var sum float64
		for _, idx := range events[i].Batches {
			bt := u.Train.Load(u.B, train.Plan{Index: idx}, data.Augmentation{}, labels)
			train.Step(c, u.Model, bt, nil, 1/float64(len(idx)))
			bt.Free(u.B)
			for _, p := range u.opt.Params() {
				var sq float64
				for _, g := range cpu.F32(p.Grad) {
					sq += float64(g) * float64(g)
				}
				sum += math.Sqrt(sq)
			}
			nn.ZeroGrad(u.B, u.opt.Params())
		}
		return sum / float64(len(events[i].Batches))
	}
	wantF, wantR := direct("measure-forget", u.labels), direct("measure-retain", nil)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"g_f", gf, wantF}, {"g_r", gr, wantR}} {
		if math.Abs(c.got-c.want) > 1e-4*c.want {
			t.Errorf("%s = %.6g, the direct computation gives %.6g", c.name, c.got, c.want)
		}
	}
	// With the true labels instead of ŷ the forget norm is another number:
	// the check above can tell them apart.
	if trueF := direct("measure-forget", nil); math.Abs(trueF-wantF) < 1e-3*wantF {
		t.Errorf("g_f with true labels %.6g ≈ with similar labels %.6g: the scenario cannot tell ŷ from y", trueF, wantF)
	}
}

// TestReleasedLabel checks the released code's label of one sample on
// hand-made logits, one defect per case (the third, dataset order, is the
// twin's to check: TestTwins' released case).
func TestReleasedLabel(t *testing.T) {
	for _, tc := range []struct {
		name string
		z    []float32
		y    int
		want int32
	}{
		// p = (.033, .495, .025, .447): the described label is class 3, the
		// closest probability; |z_j − p_y| is smallest for class 0.
		{"a probability subtracted from logits", []float32{0.3, 3, 0, 2.9}, 1, 0},
		// The minimum is class 2, at position 1 once class 0 is removed.
		{"classes above y come out one lower", []float32{1, 4, 0.05, 3}, 0, 1},
		// The minimum is class 1, at position 0: the true class itself.
		{"the true class can come out", []float32{5, 0.2, 9, 0.6}, 0, 0},
		// Below y, positions and classes agree.
		{"classes below y are right", []float32{0, 5, 2, 1}, 3, 0},
	} {
		if got := releasedLabel(tc.z, tc.y); got != tc.want {
			t.Errorf("%s: label %d, want %d", tc.name, got, tc.want)
		}
	}
}
