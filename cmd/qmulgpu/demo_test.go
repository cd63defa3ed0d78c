package main

import (
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/qmul"
)

// TestDemoReading reads rows of a real demo run (made before the baselines
// took their reference defaults) and one collapsed method: the methods
// that forget, those that stay where the original was and the one that
// collapsed are told apart.
func TestDemoReading(t *testing.T) {
	gap := func(v float64) *float64 { return &v }
	row := func(m string, fa, ra, ta, mia float64, g *float64) qmul.DemoRow {
		return qmul.DemoRow{Method: m, Metrics: qmul.Metrics{FA: fa, RA: ra, TA: ta, MIA: mia, AvgGap: g}}
	}
	rows := []qmul.DemoRow{
		row("original", 94.00, 93.78, 84.70, 8.80, gap(4.45)),
		row("retrain", 85.80, 94.24, 85.05, 17.60, nil),
		row("ft", 84.60, 92.64, 84.40, 18.00, gap(0.96)),
		row("ga", 94.20, 93.98, 84.75, 8.60, gap(4.49)),
		row("qmul", 85.40, 93.84, 85.20, 18.80, gap(0.54)),
		row("rl-agr", 94.40, 94.00, 84.85, 9.00, gap(4.41)),
		{Method: "scrub", LR: 0.5, Failed: "scrub: training collapsed"},
	}
	got := demoReading(rows)
	for _, want := range []string{
		"FA 94.00, Avg. Gap 4.45 to Retrain, whose FA is 85.80",
		"2 of 5 methods forget, ending closer to Retrain than doing nothing, FA ft 84.60, qmul 85.40.",
		"scrub collapsed at the study's rate",
		"At the study's rate ga, rl-agr stay where the original was",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("reading %q lacks %q", got, want)
		}
	}
}
