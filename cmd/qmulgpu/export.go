package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/engine/checkpoint"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/qat"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a quantized checkpoint's integer weights, scales and zero points (see docs/quantization.md)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Usage: "quantization-aware trained checkpoint"},
			&cli.StringFlag{Name: "out", Usage: "output .safetensors file"},
		},
		Action: func(c *cli.Context) error {
			in, out := c.String("checkpoint"), c.String("out")
			if in == "" || out == "" {
				return fmt.Errorf("--checkpoint and --out are required")
			}
			b := cpu.New(0)
			m, f, err := checkpoint.Open(in, b, qat.ApplyFromMeta(b))
			if err != nil {
				return err
			}
			cfg, err := qat.FromMeta(f.Metadata)
			if err != nil {
				return err
			}
			meta := map[string]string{"exported_from": in, "command": commandLine()}
			for _, k := range []string{"dataset", "val_frac", "split_seed", "seed"} {
				if v, ok := f.Metadata[k]; ok {
					meta[k] = v
				}
			}
			g, err := qat.Export(b, m, cfg, meta)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			if err := safetensors.WriteFile(out, g); err != nil {
				return err
			}
			fmt.Printf("%s: %s integer weights written to %s\n", in, cfg, out)
			return nil
		},
	}
}
