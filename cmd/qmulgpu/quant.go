package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/qat"
)

// quantFlags select fake quantization.
func quantFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "quant", Usage: "quantization scheme: " + strings.Join(qat.Schemes(), ", ") + " (default none)"},
		&cli.IntFlag{Name: "wbits", Value: 4, Usage: "weight bits (2-8)"},
		&cli.IntFlag{Name: "abits", Value: 4, Usage: "activation bits (2-8)"},
		&cli.BoolFlag{Name: "per-channel", Usage: "LSQ: one weight step per output channel"},
		&cli.StringFlag{Name: "keep-float", Value: strings.Join(qat.DefaultFloat(), ","), Usage: "layer roles (stem, downsample, classifier, body) or layer names kept in float"},
		&cli.BoolFlag{Name: "quant-first-last", Usage: "also quantize the stem and the classifier"},
	}
}

// quantConfig reads the quantization flags; an unset --quant gives an empty
// scheme (meaning "whatever the checkpoint has" where one is loaded).
func quantConfig(c *cli.Context) (qat.Config, error) {
	q := qat.Config{Scheme: c.String("quant"), WBits: c.Int("wbits"), ABits: c.Int("abits"), PerChannel: c.Bool("per-channel")}
	if !q.Enabled() {
		if q.Scheme == "" && (c.IsSet("wbits") || c.IsSet("abits")) {
			return q, fmt.Errorf("--wbits/--abits need --quant (one of %s)", strings.Join(qat.Schemes(), ", "))
		}
		return q, q.Validate()
	}
	for _, f := range strings.Split(c.String("keep-float"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			q.Float = append(q.Float, f)
		}
	}
	if c.Bool("quant-first-last") {
		q.Float = slices.DeleteFunc(q.Float, func(s string) bool { return s == "stem" || s == "classifier" })
	}
	return q, q.Validate()
}
