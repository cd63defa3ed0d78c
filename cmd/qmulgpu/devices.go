package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// devicesReport is what `qmulgpu devices --json` prints.
type devicesReport struct {
	CPU      string       `json:"cpu"`
	Cores    int          `json:"cores"`
	BLAS     string       `json:"blas"`
	GPUs     []device.GPU `json:"gpus"`
	GPUError string       `json:"gpu_error,omitempty"`
	Auto     string       `json:"auto"`
	// Conv is the path GPU convolutions take under --conv auto, and why.
	Conv string `json:"gpu_convolutions"`
	// Libraries are the GPU libraries loaded, with where each was found.
	Libraries []device.Library `json:"libraries"`
}

func devicesCommand() *cli.Command {
	return &cli.Command{
		Name: "devices",
		Usage: "list the CPU, the GPUs and the GPU libraries (full paths, where found) and say which backend " +
			"--device auto picks (GPU 0 only once it has opened)",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			g := device.Inspect()
			r := devicesReport{CPU: cpu.CPUModel(), Cores: runtime.NumCPU(), BLAS: cpu.BLASName(), GPUs: g.GPUs,
				GPUError: g.Error, Auto: g.Auto, Conv: g.Conv, Libraries: g.Libraries}
			if c.Bool("json") {
				return printJSON(r)
			}
			printDevices(r)
			return nil
		},
	}
}

// printDevices prints the report as text, one line per item.
func printDevices(r devicesReport) {
	fmt.Printf("CPU: %s, %d cores, BLAS %s\n", r.CPU, r.Cores, r.BLAS)
	for _, g := range r.GPUs {
		fmt.Printf("GPU %d: %s, compute capability %s, %.1f/%.1f GiB free, driver %s, CUDA %s\n",
			g.Index, g.Name, g.ComputeCapability, float64(g.MemoryFree)/(1<<30), float64(g.MemoryTotal)/(1<<30), g.Driver, g.CUDA)
	}
	if len(r.GPUs) == 0 {
		fmt.Printf("GPUs: none (%s)\n", r.GPUError)
	}
	for _, l := range r.Libraries {
		line := fmt.Sprintf("library %s: %s (found in: %s)", l.Name, l.Path, l.FoundIn)
		if l.Version != "" {
			line += ", version " + l.Version
		}
		if l.Note != "" {
			line += "; " + l.Note
		}
		fmt.Println(line)
	}
	auto := r.Auto
	if len(r.GPUs) > 0 && r.GPUError != "" {
		auto += " (" + r.GPUError + ")"
	}
	fmt.Printf("--device auto uses: %s\n", auto)
	fmt.Printf("GPU convolutions (--conv auto): %s\n", r.Conv)
}
