package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qmulgpu/qmulgpu/qmul"
	"github.com/qmulgpu/qmulgpu/qmul/lrsearch"
)

// searchFlags set up `unlearn --lr auto`.
func searchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "select", Value: qmul.SelectGap, Usage: "with --lr auto, how the best rate is chosen: gap (Avg. Gap to Retrain, needs --reference) or proxy (no Retrain)"},
		&cli.StringFlag{Name: "lr-range", Usage: "with --lr auto, the coarse grid's lowest and highest rates, LO,HI (default: the method's rate /16 and ·16)"},
		&cli.Float64Flag{Name: "lr-factor", Value: lrsearch.DefaultFactor, Usage: "with --lr auto, the ratio between neighbouring rates of the coarse grid"},
		&cli.IntFlag{Name: "lr-budget", Value: lrsearch.DefaultBudget, Usage: "with --lr auto, the most rates tried"},
	}
}

// lrFlag reads --lr: a rate (set tells whether it was given) or `auto`,
// which returns the search the other flags describe.
func lrFlag(c *cli.Context, method string) (lr float64, set bool, search *qmul.LRSearch, err error) {
	v := c.String("lr")
	if v != "auto" {
		for _, f := range []string{"select", "lr-range", "lr-factor", "lr-budget"} {
			if c.IsSet(f) {
				return 0, false, nil, fmt.Errorf("--%s goes with --lr auto", f)
			}
		}
	}
	switch {
	case !c.IsSet("lr"):
		return 0, false, nil, nil
	case v != "auto":
		lr, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false, nil, fmt.Errorf("--lr %q: want a number or auto", v)
		}
		return lr, true, nil, nil
	}
	spec := lrsearch.Around(qmul.Defaults(method).LR)
	if r := c.String("lr-range"); r != "" {
		lo, hi, ok := strings.Cut(r, ",")
		a, err1 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
		b, err2 := strconv.ParseFloat(strings.TrimSpace(hi), 64)
		if !ok || err1 != nil || err2 != nil {
			return 0, false, nil, fmt.Errorf("--lr-range %q: want LO,HI (two learning rates)", r)
		}
		spec.Lo, spec.Hi = a, b
	}
	spec.Factor, spec.Budget = c.Float64("lr-factor"), c.Int("lr-budget")
	s := &qmul.LRSearch{Spec: spec, Select: c.String("select")}
	if !c.Bool("quiet") {
		s.Log = os.Stderr
	}
	return 0, false, s, nil
}

// plateauWarning says that a search's choice leaves the model as it was.
func plateauWarning(plateau bool) string {
	if !plateau {
		return ""
	}
	return "; warning: at this rate the model stays where the original was (within a point on FA, RA, TA and MIA): no rate tried did better than doing nothing"
}
