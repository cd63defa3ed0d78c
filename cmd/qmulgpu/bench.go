package main

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

// benchReport is what `qmulgpu bench --json` prints.
type benchReport struct {
	Model      string  `json:"model"`
	Quant      string  `json:"quant"`
	Input      [3]int  `json:"input_hwc"`
	Backend    string  `json:"backend"`
	Device     string  `json:"device"`
	Threads    int     `json:"threads,omitempty"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	train.BenchResult
}

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
			cfg, err := modelConfig(c)
			if err != nil {
				return err
			}
			batch, err := positive(c, "batch")
			if err != nil {
				return err
			}
			steps, err := positive(c, "steps")
			if err != nil {
				return err
			}
			cfg.Classes = c.Int("classes")
			cfg.H, cfg.W, cfg.C = 32, 32, 3
			if cfg.Arch == "smallcnn" {
				cfg.H, cfg.W, cfg.C = 28, 28, 1
			}
			if in := c.String("input"); in != "" {
				if _, err := fmt.Sscanf(strings.ReplaceAll(in, "x", " "), "%d %d %d", &cfg.H, &cfg.W, &cfg.C); err != nil {
					return fmt.Errorf("--input %q: want HxWxC, e.g. 32x32x3", in)
				}
			}
			b, err := openBackend(c)
			if err != nil {
				return err
			}
			q, err := quantConfig(c)
			if err != nil {
				return err
			}
			m, err := models.New(b, engine.Float32, cfg, 1)
			if err != nil {
				return err
			}
			if err := qat.Apply(b, m, q); err != nil {
				return err
			}
			r, err := train.Bench(b, m, train.BenchConfig{Batch: batch, Warmup: c.Int("warmup-steps"), Steps: steps, Profile: c.Bool("profile")})
			if err != nil {
				return err
			}
			rep := benchReport{Model: cfg.Arch, Quant: q.String(), Input: [3]int{cfg.H, cfg.W, cfg.C}, Backend: b.Name(), Device: b.Describe(),
				Threads: c.Int("threads"), PeakRSSMiB: peakRSSMiB(), BenchResult: r}
			if c.Bool("json") {
				return printJSON(rep)
			}
			fmt.Printf("%s (%s) batch %d on %s: %.1f images/s (%.1f ms/step), peak RSS %.0f MiB\n",
				cfg.Arch, rep.Quant, batch, rep.Device, r.ImagesPerSec, r.MsPerStep, rep.PeakRSSMiB)
			if w := r.Work; w != nil {
				per := func(n int64) float64 { return float64(n) / float64(r.Steps) }
				fmt.Printf("per step: %.0f kernel launches, %.0f cuBLAS/cuDNN calls, %.0f memsets and copies, %.0f allocations (%.1f MiB)\n",
					per(w.Launches), per(w.LibraryCalls), per(w.MemoryOps), per(w.Allocs), per(w.AllocBytes)/(1<<20))
			}
			printProfile(r.Profile)
			return nil
		},
	}
}

// peakRSSMiB is the process's peak resident memory.
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// printProfile prints bench --profile's rows as a table.
func printProfile(rows []train.ProfileRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Printf("\n%-24s %10s %7s %11s %7s %11s\n", "op family", "ms/step", "share", "CPU ms/step", "share", "calls/step")
	for _, r := range rows {
		fmt.Printf("%-24s %10.2f %6.1f%% %11.2f %6.1f%% %11.1f\n", r.Op, r.MsPerStep, 100*r.Share, r.CPUMsPerStep, 100*r.CPUShare, r.CallsPerStep)
	}
}
