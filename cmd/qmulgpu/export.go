package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/qat"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a quantized checkpoint's integer weights, scales and zero points (see docs/quantization.md)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Usage: "quantization-aware trained checkpoint"},
			&cli.StringFlag{Name: "out", Usage: "output .safetensors file (not the checkpoint itself)"},
		},
		Action: func(c *cli.Context) error {
			j := qat.ExportJob{Checkpoint: c.String("checkpoint"), Out: c.String("out"), Command: commandLine()}
			if j.Checkpoint == "" || j.Out == "" {
				return fmt.Errorf("--checkpoint and --out are required")
			}
			cfg, err := j.Run()
			if err != nil {
				return err
			}
			fmt.Printf("%s: %s integer weights written to %s\n", j.Checkpoint, cfg, j.Out)
			return nil
		},
	}
}
