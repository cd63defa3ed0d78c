package train

import (
	"syscall"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
)

// BenchJob times full training steps of a model with random weights on
// random data: `qmulgpu bench`.
type BenchJob struct {
	// Model is the network; zero input dimensions mean 28×28×1 for
	// smallcnn and 32×32×3 otherwise.
	Model models.Config
	// Quant describes the quantization Prepare applies, for the report.
	Quant string
	// Prepare, when set, is applied to the model before it is timed (the
	// quantizers).
	Prepare func(*models.Model) error
	// BenchConfig is the minibatch size, the untimed and the timed steps,
	// and whether ops are timed by family.
	BenchConfig
	Backend engine.Backend
	// Threads is the --threads the backend was opened with, for the
	// report.
	Threads int
}

// BenchReport is what a BenchJob measured, with what it ran.
type BenchReport struct {
	Model      string  `json:"model"`
	Quant      string  `json:"quant"`
	Input      [3]int  `json:"input_hwc"`
	Backend    string  `json:"backend"`
	Device     string  `json:"device"`
	Threads    int     `json:"threads,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	BenchResult
}

// Run builds the model and times it.
func (j *BenchJob) Run() (*BenchReport, error) {
	cfg := j.Model
	if cfg.H == 0 && cfg.W == 0 && cfg.C == 0 {
		cfg.H, cfg.W, cfg.C = 32, 32, 3
		if cfg.Arch == "smallcnn" {
			cfg.H, cfg.W, cfg.C = 28, 28, 1
		}
	}
	m, err := models.New(j.Backend, engine.Float32, cfg, 1)
	if err != nil {
		return nil, err
	}
	if j.Prepare != nil {
		if err := j.Prepare(m); err != nil {
			return nil, err
		}
	}
	r, err := Bench(j.Backend, m, j.BenchConfig)
	if err != nil {
		return nil, err
	}
	return &BenchReport{Model: cfg.Arch, Quant: j.Quant, Input: [3]int{cfg.H, cfg.W, cfg.C},
		Backend: j.Backend.Name(), Device: j.Backend.Describe(), Threads: j.Threads,
		PeakRSSMiB: peakRSSMiB(), BenchResult: r}, nil
}

// peakRSSMiB is the process's peak resident memory.
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}
