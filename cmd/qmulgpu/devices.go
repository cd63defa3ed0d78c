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
}

func devicesCommand() *cli.Command {
	return &cli.Command{
		Name:  "devices",
		Usage: "list the CPU and GPUs and say which backend --device auto picks",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			r := devicesReport{CPU: cpu.CPUModel(), Cores: runtime.NumCPU(), BLAS: cpu.BLASName(), Auto: "cpu",
				Conv: device.ConvStatus()}
			gpus, err := device.GPUs()
			if err != nil {
				r.GPUError = err.Error()
			}
			r.GPUs = gpus
			if len(gpus) > 0 {
				r.Auto = "cuda:0"
			}
			if c.Bool("json") {
				return printJSON(r)
			}
			fmt.Printf("CPU: %s, %d cores, BLAS %s\n", r.CPU, r.Cores, r.BLAS)
			for _, g := range gpus {
				fmt.Printf("GPU %d: %s, compute capability %s, %.1f/%.1f GiB free, driver %s, CUDA %s\n",
					g.Index, g.Name, g.ComputeCapability, float64(g.MemoryFree)/(1<<30), float64(g.MemoryTotal)/(1<<30), g.Driver, g.CUDA)
			}
			if len(gpus) == 0 {
				fmt.Printf("GPUs: none (%s)\n", r.GPUError)
			}
			fmt.Printf("--device auto uses: %s\n", r.Auto)
			fmt.Printf("GPU convolutions (--conv auto): %s\n", r.Conv)
			return nil
		},
	}
}
