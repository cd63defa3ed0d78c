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
		&cli.BoolFlag{Name: "profile", Usage: "split the step into op families (conv forward, dX, dW, BatchNorm, ...; CPU backend)"},
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
	j := &train.BenchJob{Threads: c.Int("threads")}
	j.Warmup, j.Profile = c.Int("warmup-steps"), c.Bool("profile")
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

// benchText is bench's line, its device work per step where the backend
// counts it, and with --profile the step split into op families.
func benchText(r *train.BenchReport) string {
	s := fmt.Sprintf("%s (%s) batch %d on %s: %.1f images/s (%.1f ms/step), peak RSS %.0f MiB",
		r.Model, r.Quant, r.Batch, r.Device, r.ImagesPerSec, r.MsPerStep, r.PeakRSSMiB)
	if w := r.Work; w != nil {
		per := func(n int64) float64 { return float64(n) / float64(r.Steps) }
		s += fmt.Sprintf("\nper step: %.0f kernel launches, %.0f cuBLAS/cuDNN calls, %.0f memsets and copies, %.0f allocations (%.1f MiB)",
			per(w.Launches), per(w.LibraryCalls), per(w.MemoryOps), per(w.Allocs), per(w.AllocBytes)/(1<<20))
	}
	return s + profileText(r.Profile)
}

// profileText is bench --profile's rows as a table after a blank line, or
// "" without rows.
func profileText(rows []train.ProfileRow) string {
	if len(rows) == 0 {
		return ""
	}
	s := fmt.Sprintf("\n\n%-24s %10s %7s %11s %7s %11s", "op family", "ms/step", "share", "CPU ms/step", "share", "calls/step")
	for _, r := range rows {
		s += fmt.Sprintf("\n%-24s %10.2f %6.1f%% %11.2f %6.1f%% %11.1f", r.Op, r.MsPerStep, 100*r.Share, r.CPUMsPerStep, 100*r.CPUShare, r.CallsPerStep)
	}
	return s
}
