package train

import (
	"math/rand/v2"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
)

// BenchResult is the throughput of full training steps (forward, backward
// and SGD update) on random data.
type BenchResult struct {
	Steps        int     `json:"steps"`
	Batch        int     `json:"batch"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
	MsPerStep    float64 `json:"ms_per_step"`
	// Work is the device work of the timed steps, on a backend that counts
	// it (engine.WorkCounter).
	Work *engine.OpWork `json:"work,omitempty"`
}

// Bench times steps training steps of batch random images after warm
// warm-up steps.
func Bench(b engine.Backend, m *models.Model, batch, warm, steps int) (BenchResult, error) {
	cfg := m.Config
	r := rand.New(rand.NewPCG(1, 1))
	xv := make([]float32, batch*cfg.H*cfg.W*cfg.C)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	yv := make([]int32, batch)
	for i := range yv {
		yv[i] = int32(r.IntN(cfg.Classes))
	}
	bt := &Batch{X: b.Alloc(engine.Float32, batch, cfg.H, cfg.W, cfg.C), Y: b.Alloc(engine.Int32, batch), Index: make([]int32, batch)}
	defer bt.Free(b)
	b.Upload(bt.X, xv)
	b.Upload(bt.Y, yv)
	opt := optim.NewSGD(b, m.Params(), 0.9, 5e-4, false)
	c := &nn.Ctx{B: b, Train: true}
	step := func() {
		Step(c, m, bt, nil, 1/float64(batch))
		opt.Step(b, 0.01)
		nn.ZeroGrad(b, m.Params())
	}
	for i := 0; i < warm; i++ {
		step()
	}
	if err := b.Err(); err != nil {
		return BenchResult{}, err
	}
	counter, counts := b.(engine.WorkCounter)
	var before engine.Work
	if counts {
		before = counter.Work()
	}
	start := time.Now()
	for i := 0; i < steps; i++ {
		step()
	}
	if err := b.Err(); err != nil {
		return BenchResult{}, err
	}
	secs := time.Since(start).Seconds()
	res := BenchResult{Steps: steps, Batch: batch, Seconds: secs, ImagesPerSec: float64(steps*batch) / secs,
		MsPerStep: 1000 * secs / float64(steps)}
	if counts {
		w := counter.Work().OpWork.Sub(before.OpWork)
		res.Work = &w
	}
	return res, nil
}
