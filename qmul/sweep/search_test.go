package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul"
)

const searchConfig = tinySetting + `seeds: [1, 2]
methods:
  - method: ft
    lr: {auto: true, range: [0.01, 0.04], factor: 2, budget: 8, seeds: [1]}
  - method: rl
    lr: [0.01]
`

// fakeCell writes a cell's results as a run would: a collapse, or metrics
// whose Avg. Gap is gap.
func fakeCell(t *testing.T, dir string, c Cell, m qmul.Metrics, collapsed bool) {
	t.Helper()
	cd := filepath.Join(dir, cellsDir, c.Key())
	if err := os.MkdirAll(cd, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	os.WriteFile(filepath.Join(cd, cellFile), b, 0o644)
	if collapsed {
		b, _ = json.Marshal(collapse{Error: "ft: training collapsed"})
		os.WriteFile(filepath.Join(cd, collapsedFile), b, 0o644)
		return
	}
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(cd, train.MetricsFile), b, 0o644)
}

// TestSearchRunsInRounds plays a sweep's learning-rate search through its
// results directory, writing each round's cells as the workers would: ft
// searched on seed 1 from the coarse grid 0.01, 0.02, 0.04 (factor 2),
// with the best Avg. Gap near 0.1 — beyond the grid — and a collapse at
// 0.16. The search must extend past the largest rate until the best is
// inside, treat the collapse as a failure that bounds it, refine at √2
// around the best, then run the choice on seed 2; the choice collapses
// there, so the next best is taken. Each plan lists only cells the
// results so far decide, and the report shows the rounds, the choice and
// how the Retrain-free criterion would have chosen.
func TestSearchRunsInRounds(t *testing.T) {
	c, err := Parse([]byte(searchConfig))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gap := func(lr float64) float64 { return math.Abs(math.Log2(lr / 0.1)) }
	original := qmul.Metrics{FA: 95, RA: 95, TA: 85, MIA: 5, MIATest: 15}
	var plans int
	for plans = 0; plans < 20; plans++ {
		p := c.Plan(dir)
		if p.Done() {
			break
		}
		for _, x := range p.Cells {
			if cellEnded(filepath.Join(dir, cellsDir, x.Key())) {
				continue
			}
			switch x.Method {
			case "retrain":
				fakeCell(t, dir, x, qmul.Metrics{FA: 85, RA: 95, TA: 85, MIA: 15}, false)
			case originalMethod:
				g := 5.0
				fakeCell(t, dir, x, qmul.Metrics{FA: original.FA, RA: original.RA, TA: original.TA, MIA: original.MIA, MIATest: original.MIATest, AvgGap: &g}, false)
			default:
				g := gap(x.Hyper.LR)
				// FA falls as the rate grows: the proxy (FA near the
				// original's TA, 85) prefers 0.04 (FA 83.6) to 0.08 (77.2).
				m := qmul.Metrics{FA: 95 - 40*x.Hyper.LR/(x.Hyper.LR+0.1), RA: 95, TA: 85, MIA: 15, AvgGap: &g}
				collapsed := x.Hyper.LR == 0.16 || x.Hyper.LR == 0.113 && x.Seed == 2
				fakeCell(t, dir, x, m, collapsed)
			}
		}
	}
	p := c.Plan(dir)
	if !p.Done() || len(p.Searches) != 1 {
		t.Fatalf("after %d plans: done %v with %d searches", plans, p.Done(), len(p.Searches))
	}
	s := p.Searches[0]
	wantRounds := [][]float64{{0.01, 0.02, 0.04}, {0.08}, {0.16}, {0.0566, 0.113}}
	if !reflect.DeepEqual(s.Rounds, wantRounds) {
		t.Errorf("rounds %v, want %v", s.Rounds, wantRounds)
	}
	if s.LR != 0.08 || !reflect.DeepEqual(s.Rejected, []float64{0.113}) || !s.Complete || s.Stop != "refined" {
		t.Errorf("chose %v (rejected %v, complete %v, stop %q); want 0.08, [0.113] rejected on seed 2, complete, refined", s.LR, s.Rejected, s.Complete, s.Stop)
	}
	// One plan per round, then one per final candidate: the search never
	// asks for a round before the one it depends on has ended.
	if plans != 6 {
		t.Errorf("%d plans to finish, want 6 (4 rounds, 2 final candidates)", plans)
	}
	// Seed 2 ran only the final candidates; seed 1 every rate.
	perSeed := map[uint64]int{}
	for _, x := range p.Cells {
		if x.Name == "ft" {
			perSeed[x.Seed]++
		}
	}
	if perSeed[1] != 7 || perSeed[2] != 2 {
		t.Errorf("ft cells per seed %v, want 7 on seed 1 and 2 on seed 2", perSeed)
	}
	if again := c.Plan(dir); !reflect.DeepEqual(again.Searches[0], s) || len(again.Cells) != len(p.Cells) {
		t.Error("two plans over the same results differ")
	}

	// The shards' fixed cells are the same as before the search began: a
	// task resubmitted with its shard number finds its own cells again.
	empty := t.TempDir()
	for i := range 3 {
		before := (&Runner{Config: c, Out: empty, Shard: i, Shards: 3}).dealt()
		after := (&Runner{Config: c, Out: dir, Shard: i, Shards: 3}).dealt()
		if !reflect.DeepEqual(before, after) {
			t.Errorf("shard %d of 3 is dealt %d cells before the search and %d after", i, len(before), len(after))
		}
	}
	if err := writeSearches(dir, p.Searches); err != nil {
		t.Fatal(err)
	}
	if _, err := Report(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{
		"| original | – |",
		"| ft | 0.08 |",
		"Search of ft by Avg. Gap to Retrain on seed 1 (7 of 8 rates, stopped: refined): round 1: 0.01 → 3.32, 0.02 → 2.32, 0.04 → 1.32; round 2: 0.08 → 0.32; round 3: 0.16 → collapsed; round 4: 0.0566 → 0.82, 0.113 → 0.18; chosen: **0.08** (0.113 collapsed on another seed, so the next best was taken), then run on seed 2.",
		"| ft | 0.08 | 0.04 | 1.00 | 5 × 1 |", // 0.113 and 0.16 collapsed on a seed
		"The proxy picks Avg. Gap's rate for 0 of 1 methods",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	// report --config with another file over the same directory: only its
	// cells (here rl's and the shared originals and Retrain).
	other, err := Parse([]byte(strings.Replace(searchConfig, "  - method: ft\n    lr: {auto: true, range: [0.01, 0.04], factor: 2, budget: 8, seeds: [1]}\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	rlOnly := c.Plan(dir)
	for _, x := range rlOnly.Cells {
		if x.Name == "rl" {
			g := 1.0
			fakeCell(t, dir, x, qmul.Metrics{FA: 90, RA: 95, TA: 85, MIA: 10, AvgGap: &g}, false)
		}
	}
	if _, err := ReportConfig(dir, other); err != nil {
		t.Fatal(err)
	}
	md, _ = os.ReadFile(filepath.Join(dir, "report.md"))
	if strings.Contains(string(md), "| ft |") || !strings.Contains(string(md), "| rl | 0.01 |") {
		t.Errorf("report --config of the rl-only file:\n%s", md)
	}
}

// TestSearchConfigErrors checks that a search's settings are validated
// with the line they are on.
func TestSearchConfigErrors(t *testing.T) {
	head := "original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nseeds: [1, 2]\nmethods:\n  - method: ft\n"
	cases := []struct{ lr, want string }{
		{"    lr: {range: [0.01, 0.1]}\n", "needs auto: true"},
		{"    lr: {auto: true, range: [0.1]}\n", "line 8: methods.0.lr.range: want two learning rates"},
		{"    lr: {auto: true, factor: 1}\n", "factor 1"},
		{"    lr: {auto: true, budget: 2}\n", "budget 2: want at least the 5 rates"},
		{"    lr: {auto: true, select: retrain}\n", "--select \"retrain\""},
		{"    lr: {auto: true, seeds: [3]}\n", "seed 3 is not one of the sweep's seeds"},
		{"    lr: {auto: true, step: 2}\n", "unknown key \"step\" in lr: auto"},
		{"    lr: automatic\n", "cannot read"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(head + tc.lr))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error containing %q", tc.lr, err, tc.want)
		}
	}
	c, err := Parse([]byte(head + "    lr: auto\n  - method: ssd\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.search(c.Methods[0]).spec("ft").Coarse()); got != "[0.000625 0.0025 0.01 0.04 0.16]" {
		t.Errorf("lr: auto for ft searches %s first", got)
	}
	if c.search(c.Methods[1]) != nil {
		t.Error("ssd, which takes no learning rate, searches one")
	}
}

// TestSearchAcrossShards runs a sweep whose only method searches its
// learning rate as two shards at once into one directory, as two tasks of
// a job array would: every round's cells run once, whichever shard they
// were dealt to, both shards return when the search is complete, and a
// second run finds everything done.
func TestSearchAcrossShards(t *testing.T) {
	needData(t)
	const cfg = tinySetting + `methods:
  - method: ft
    lr: {auto: true, range: [0.01, 0.04], factor: 4, budget: 3}
`
	c, err := Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run := func(shard, shards int) (Summary, error) {
		r := &Runner{Config: c, Out: out, Shard: shard, Shards: shards, Devices: []string{"cpu"}, Poll: 100 * time.Millisecond,
			Open: func(string) (engine.Backend, error) { return cpu.New(1), nil }}
		return r.Run()
	}
	runShards(t, 2, func(i int) error {
		_, err := run(i, 2)
		return err
	})
	p := c.Plan(out)
	if !p.Done() {
		t.Fatalf("both shards returned, the search is not complete: %+v", p.Searches[0])
	}
	s := p.Searches[0]
	n := 0
	for _, r := range s.Rounds {
		n += len(r)
	}
	if n != 3 || len(s.Rounds) != 2 || s.LR == 0 {
		t.Errorf("rounds %v, chose %v; want the budget of 3 rates in 2 rounds and a choice", s.Rounds, s.LR)
	}
	for _, x := range p.Cells {
		if !cellEnded(filepath.Join(out, cellsDir, x.Key())) {
			t.Errorf("cell %s did not run", x)
		}
	}
	if locks, _ := os.ReadDir(filepath.Join(out, locksDir)); len(locks) != 0 {
		t.Errorf("locks left behind: %v", locks)
	}
	if sum, err := run(0, 1); err != nil || sum.Ran != 0 {
		t.Errorf("a second run: %+v, %v; want nothing run", sum, err)
	}
	if _, err := Report(out); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "Search of ft by Avg. Gap to Retrain on seed 1 (3 of 3 rates, stopped: ") {
		t.Errorf("report.md does not show the search:\n%s", md)
	}
}

// TestReportFlagsDoingNothing: a method whose best rate is the smallest
// tried and leaves the model within a point of the original (rl-agr, as
// on random-10% Fashion-MNIST in the study) is marked as doing nothing,
// not as a grid to extend downwards; one whose best is at the smallest
// rate but moved the model (ft) still is; the original's row comes first.
func TestReportFlagsDoingNothing(t *testing.T) {
	g := Group{Dataset: "fashion-mnist", Model: "smallcnn", Quant: "lsq W4A4", Forget: "random:10%"}
	gap := func(v float64) *float64 { return &v }
	orig := qmul.Metrics{FA: 95, RA: 95, TA: 85, MIA: 6, MIATest: 15, AvgGap: gap(4.5)}
	recs := []Record{
		{Key: "o", Group: g, Name: originalMethod, Method: originalMethod, Seed: 1, Metrics: orig},
		{Key: "r", Group: g, Name: "retrain", Method: "retrain", Seed: 1, Metrics: qmul.Metrics{FA: 87, RA: 93, TA: 84.5, MIA: 15, AvgGap: gap(0)}},
		{Key: "a", Group: g, Name: "rl-agr", Method: "rl-agr", LR: 0.0006, Seed: 1, Metrics: qmul.Metrics{FA: 95.2, RA: 94.8, TA: 85.1, MIA: 6.4, AvgGap: gap(4.4)}},
		{Key: "b", Group: g, Name: "rl-agr", Method: "rl-agr", LR: 0.0025, Seed: 1, Metrics: qmul.Metrics{FA: 96, RA: 95, TA: 84, MIA: 5, AvgGap: gap(4.6)}},
		{Key: "c", Group: g, Name: "ft", Method: "ft", LR: 0.01, Seed: 1, Metrics: qmul.Metrics{FA: 90, RA: 93, TA: 84, MIA: 10, AvgGap: gap(2)}},
		{Key: "d", Group: g, Name: "ft", Method: "ft", LR: 0.04, Seed: 1, Metrics: qmul.Metrics{FA: 80, RA: 90, TA: 82, MIA: 20, AvgGap: gap(5)}},
	}
	addProxies(recs)
	if recs[2].Proxy == nil || recs[1].Proxy != nil || recs[0].Proxy == nil {
		t.Fatalf("proxy values: original %v, retrain %v, rl-agr %v; want all but Retrain's", recs[0].Proxy, recs[1].Proxy, recs[2].Proxy)
	}
	var md bytes.Buffer
	if err := writeMarkdown(&md, Tables(recs, nil), nil, len(recs), Skipped{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| original | – | 95.00 | 95.00 | 85.00 | 6.00 | 4.50 | – | 1 |\n| retrain |",
		"| rl-agr | 0.0006 ⚠ does nothing |",
		"| ft | 0.01 ⚠ smallest |",
		"⚠ Does nothing: at its chosen rate the model stays within 1 point of the original on FA, RA, TA and MIA, so no rate tried did better than leaving the model as it was (the original's row): rl-agr (0.0006).",
		"so the best may lie beyond it: ft (0.01, the smallest tried). Extend",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md.String())
		}
	}
}
