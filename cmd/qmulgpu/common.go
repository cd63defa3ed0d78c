package main

import (
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// deviceFlags select the backend.
func deviceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "auto", Usage: "auto, cpu, cuda or cuda:N"},
		&cli.IntFlag{Name: "threads", Value: 0, Usage: "CPU threads (0: all cores)"},
		&cli.StringFlag{Name: "conv", Value: "auto", EnvVars: []string{"QMUL_CONV"},
			Usage: "convolutions: " + strings.Join(device.ConvModes, ", ") + " (auto: on a GPU cuDNN when it loads, else im2col + cuBLAS SGEMM; on the CPU Winograd for 3x3 stride-1 layers of 16+ channels, else im2col + GEMM)"},
	}
}

// openBackend opens the backend the flags name.
func openBackend(c *cli.Context) (engine.Backend, error) {
	return openDevice(c.String("device"), c.Int("threads"), c.String("conv"))
}

// openDevice opens a backend with its convolution path and the settings
// of the environment (device.OptionsFromEnv), saying on stderr, in one
// line each, where it falls back and which path a GPU's convolutions take.
func openDevice(spec string, threads int, conv string) (engine.Backend, error) {
	opts, err := device.OptionsFromEnv()
	if err != nil {
		return nil, err
	}
	opts.Threads, opts.Conv = threads, conv
	opts.Note = func(s string) { fmt.Fprintln(os.Stderr, "qmulgpu: "+s) }
	return device.Open(spec, opts)
}

// commandLine is the command as typed, for results and checkpoints.
func commandLine() string {
	quoted := make([]string, len(os.Args))
	for i, a := range os.Args {
		if strings.ContainsAny(a, " \t\"'") || a == "" {
			a = fmt.Sprintf("%q", a)
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}

// positive checks an integer flag.
func positive(c *cli.Context, name string) (int, error) {
	v := c.Int(name)
	if v < 1 {
		return 0, fmt.Errorf("--%s %d: must be at least 1", name, v)
	}
	return v, nil
}

// finite checks a float flag is a finite number in [lo, hi].
func finite(c *cli.Context, name string, lo, hi float64) (float64, error) {
	v := c.Float64(name)
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return 0, fmt.Errorf("--%s %g: must be a number in [%g, %g]", name, v, lo, hi)
	}
	return v, nil
}

// warnMIA prints the metrics' MIA warnings on stderr.
func warnMIA(m qmul.Metrics) {
	for _, w := range m.MIAWarnings {
		fmt.Fprintln(os.Stderr, "qmulgpu: warning: MIA "+w)
	}
}

// miaFeaturesLine lists the MIA-efficacy of every attack feature, in the
// order of qmul.MIAFeatures.
func miaFeaturesLine(m qmul.Metrics) string {
	parts := make([]string, 0, len(qmul.MIAFeatures))
	for _, f := range qmul.MIAFeatures {
		if v, ok := m.MIAFeatures[string(f)]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f", f, v))
		}
	}
	return "MIA by feature: " + strings.Join(parts, ", ")
}
