package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
)

// TestStepFloat64 runs Step on a float64 model (the reference that
// float32 results are measured against) and checks its loss and gradients
// against the same model in float32.
func TestStepFloat64(t *testing.T) {
	b := cpu.New(0)
	cfg := models.Config{Arch: "smallcnn", Classes: 10, H: 8, W: 8, C: 3}
	const n = 16
	r := rand.New(rand.NewPCG(1, 1))
	xv := make([]float64, n*cfg.H*cfg.W*cfg.C)
	for i := range xv {
		xv[i] = float64(float32(r.NormFloat64()))
	}
	yv := make([]int32, n)
	for i := range yv {
		yv[i] = int32(r.IntN(cfg.Classes))
	}
	run := func(dt engine.DType, from *models.Model) (*models.Model, StepResult) {
		m, err := models.New(b, dt, cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		if from != nil {
			for i, p := range from.Params() {
				upload(b, m.Params()[i].Value, download(b, p.Value))
			}
		}
		bt := &Batch{X: b.Alloc(dt, n, cfg.H, cfg.W, cfg.C), Y: b.Alloc(engine.Int32, n), Index: make([]int32, n)}
		defer bt.Free(b)
		upload(b, bt.X, xv)
		b.Upload(bt.Y, yv)
		return m, Step(&nn.Ctx{B: b, Train: true}, m, bt, nil, 1.0/n)
	}
	m32, r32 := run(engine.Float32, nil)
	m64, r64 := run(engine.Float64, m32)
	if d := math.Abs(r64.Loss - r32.Loss); !(d <= 1e-5*r64.Loss) {
		t.Errorf("loss %g in float64, %g in float32", r64.Loss, r32.Loss)
	}
	for i, p := range m64.Params() {
		want, got := download(b, p.Grad), download(b, m32.Params()[i].Grad)
		var top, d float64
		for j := range want {
			top = math.Max(top, math.Abs(want[j]))
			d = math.Max(d, math.Abs(got[j]-want[j]))
		}
		if !(d <= 1e-4*top) {
			t.Errorf("%s: float32 gradient %.3g from float64's, whose largest is %.3g", p.Name, d, top)
		}
	}
}

func download(b engine.Backend, t *engine.Tensor) []float64 {
	v := make([]float64, t.Numel())
	if t.DType == engine.Float64 {
		b.Download(t, v)
		return v
	}
	f := make([]float32, t.Numel())
	b.Download(t, f)
	for i, x := range f {
		v[i] = float64(x)
	}
	return v
}

func upload(b engine.Backend, t *engine.Tensor, v []float64) {
	if t.DType == engine.Float64 {
		b.Upload(t, v)
		return
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	b.Upload(t, f)
}
