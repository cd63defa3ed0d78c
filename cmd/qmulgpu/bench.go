package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

func benchCommand() *cli.Command {
	flags := append(append(modelFlags(), quantFlags()...),
		&cli.IntFlag{Name: "batch", Value: 128, Usage: "minibatch size"},
		&cli.IntFlag{Name: "steps", Value: 10, Usage: "timed steps"},
		&cli.IntFlag{Name: "warmup-steps", Value: 2, Usage: "untimed steps first"},
		&cli.StringFlag{Name: "input", Usage: "input HxWxC (default: 28x28x1 for smallcnn, 32x32x3 otherwise)"},
		&cli.IntFlag{Name: "classes", Value: 10, Usage: "number of classes"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON"},
	)
	flags = append(flags, deviceFlags()...)
	return &cli.Command{
		Name:  "bench",
		Usage: "time full training steps (forward, backward, SGD update) on random data",
		Flags: flags,
		Action: func(c *cli.Context) error {
			j, err := benchJob(c)
			if err != nil {
				return err
			}
			return runJob(c, nil, nil, j.Run, benchText)
		},
	}
}

func benchJob(c *cli.Context) (*train.BenchJob, error) {
	cfg, err := modelConfig(c)
	if err != nil {
		return nil, err
	}
	j := &train.BenchJob{Warmup: c.Int("warmup-steps"), Threads: c.Int("threads")}
	if j.Batch, err = positive(c, "batch"); err != nil {
		return nil, err
	}
	if j.Steps, err = positive(c, "steps"); err != nil {
		return nil, err
	}
	cfg.Classes = c.Int("classes")
	if in := c.String("input"); in != "" {
		if _, err := fmt.Sscanf(strings.ReplaceAll(in, "x", " "), "%d %d %d", &cfg.H, &cfg.W, &cfg.C); err != nil {
			return nil, fmt.Errorf("--input %q: want HxWxC, e.g. 32x32x3", in)
		}
	}
	if j.Backend, err = openBackend(c); err != nil {
		return nil, err
	}
	q, err := quantConfig(c)
	if err != nil {
		return nil, err
	}
	j.Model, j.Quant = cfg, q.String()
	j.Prepare = func(m *models.Model) error { return qat.Apply(j.Backend, m, q) }
	return j, nil
}

// benchText is bench's line, and its device work per step where the
// backend counts it.
func benchText(r *train.BenchReport) string {
	s := fmt.Sprintf("%s (%s) batch %d on %s: %.1f images/s (%.1f ms/step), peak RSS %.0f MiB",
		r.Model, r.Quant, r.Batch, r.Device, r.ImagesPerSec, r.MsPerStep, r.PeakRSSMiB)
	if w := r.Work; w != nil {
		per := func(n int64) float64 { return float64(n) / float64(r.Steps) }
		s += fmt.Sprintf("\nper step: %.0f kernel launches, %.0f cuBLAS/cuDNN calls, %.0f memsets and copies, %.0f allocations (%.1f MiB)",
			per(w.Launches), per(w.LibraryCalls), per(w.MemoryOps), per(w.Allocs), per(w.AllocBytes)/(1<<20))
	}
	return s
}
