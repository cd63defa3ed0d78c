package train

import (
	"fmt"
	"math/rand/v2"
	"syscall"
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
	// CPUSeconds is the processor time the process used during the timed
	// steps, all threads together: against Seconds × threads it shows how
	// much of the machine a run really had.
	CPUSeconds float64 `json:"cpu_seconds"`
	// Work is the device work of the timed steps, on a backend that counts
	// it (engine.WorkCounter).
	Work *engine.OpWork `json:"work,omitempty"`
	// Profile splits the timed steps by op family (BenchConfig.Profile),
	// with the time outside the backend's ops last.
	Profile []ProfileRow `json:"profile,omitempty"`
}

// ProfileRow is one op family's share of a training step: wall time, and
// processor time (all threads; on a loaded machine the steadier measure).
type ProfileRow struct {
	Op           string  `json:"op"`
	MsPerStep    float64 `json:"ms_per_step"`
	Share        float64 `json:"share"`
	CPUMsPerStep float64 `json:"cpu_ms_per_step"`
	CPUShare     float64 `json:"cpu_share"`
	CallsPerStep float64 `json:"calls_per_step"`
}

// OutsideOps names the profile row of the time a step spends outside the
// backend's ops (the layers' own code, allocation, the Go runtime).
const OutsideOps = "outside ops"

// BenchConfig says what Bench runs.
type BenchConfig struct {
	Batch, Warmup, Steps int
	// Profile times the backend's ops by family; the backend must
	// implement engine.OpTimer.
	Profile bool
}

// Bench times c.Steps training steps of c.Batch random images after
// c.Warmup untimed ones.
func Bench(b engine.Backend, m *models.Model, c BenchConfig) (BenchResult, error) {
	timer, canTime := b.(engine.OpTimer)
	if c.Profile && !canTime {
		return BenchResult{}, fmt.Errorf("the %s backend cannot time its ops (--profile is for the CPU backend)", b.Name())
	}
	batch, warm, steps := c.Batch, c.Warmup, c.Steps
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
	ctx := &nn.Ctx{B: b, Train: true}
	step := func() {
		Step(ctx, m, bt, nil, 1/float64(batch))
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
	if c.Profile {
		timer.TimeOps(true)
		defer timer.TimeOps(false)
	}
	cpu0 := processCPUSeconds()
	start := time.Now()
	for i := 0; i < steps; i++ {
		step()
	}
	if err := b.Err(); err != nil {
		return BenchResult{}, err
	}
	secs := time.Since(start).Seconds()
	res := BenchResult{Steps: steps, Batch: batch, Seconds: secs, ImagesPerSec: float64(steps*batch) / secs,
		MsPerStep: 1000 * secs / float64(steps), CPUSeconds: processCPUSeconds() - cpu0}
	if counts {
		w := counter.Work().OpWork.Sub(before.OpWork)
		res.Work = &w
	}
	if c.Profile {
		res.Profile = profileRows(timer.OpTimes(), secs, res.CPUSeconds, steps)
	}
	return res, nil
}

// profileRows turns op times over steps steps of secs seconds (cpu seconds
// of processor time) into rows per step, with the time outside the ops
// last.
func profileRows(times []engine.OpTime, secs, cpu float64, steps int) []ProfileRow {
	var rows []ProfileRow
	n := float64(steps)
	inside, insideCPU := 0.0, 0.0
	for _, t := range times {
		inside += t.Seconds
		insideCPU += t.CPUSeconds
		rows = append(rows, ProfileRow{Op: t.Op, MsPerStep: 1000 * t.Seconds / n, Share: t.Seconds / secs,
			CPUMsPerStep: 1000 * t.CPUSeconds / n, CPUShare: t.CPUSeconds / cpu, CallsPerStep: float64(t.Calls) / n})
	}
	out, outCPU := secs-inside, cpu-insideCPU
	return append(rows, ProfileRow{Op: OutsideOps, MsPerStep: 1000 * out / n, Share: out / secs,
		CPUMsPerStep: 1000 * outCPU / n, CPUShare: outCPU / cpu})
}

// processCPUSeconds is the user and system time of the process so far.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
