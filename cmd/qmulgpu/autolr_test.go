package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnlearnSearchesItsRate runs `unlearn --lr auto` with each criterion
// on a small original: metrics.json must hold every candidate, and the
// chosen rate — the one the model and hyper-parameters were saved with —
// must be the candidate with the smallest Avg. Gap (gap) or proxy value
// (proxy, without Retrain). --select gap without --reference is refused in
// one line before anything runs.
func TestUnlearnSearchesItsRate(t *testing.T) {
	needFashion(t)
	bin := buildCLI(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		b, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	orig := filepath.Join(dir, "orig")
	run(trainArgs(orig, "2", "1", "--quiet", "--val-frac", "0", "--lr", "0.02")...)
	ckpt := filepath.Join(orig, "model.safetensors")
	base := []string{"unlearn", "--checkpoint", ckpt, "--forget", "random:10%", "--threads", "1", "--quiet"}
	retrain := filepath.Join(dir, "retrain")
	run(append(base, "--method", "retrain", "--out", retrain)...)
	search := []string{"--method", "ft", "--epochs", "1", "--batch", "100", "--lr", "auto", "--lr-range", "0.01,0.04", "--lr-budget", "3"}

	cmd := exec.Command(bin, append(append(base, search...), "--out", filepath.Join(dir, "refused"))...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || strings.Count(strings.TrimRight(stderr.String(), "\n"), "\n") != 0 || !strings.Contains(stderr.String(), "--select gap needs --reference") {
		t.Errorf("--select gap without --reference: %v, stderr %q; want one line and a non-zero status", err, stderr.String())
	}

	for _, tc := range []struct {
		sel   string
		extra []string
	}{
		{"gap", []string{"--reference", filepath.Join(retrain, "metrics.json")}},
		{"proxy", nil},
	} {
		out := filepath.Join(dir, "ft-"+tc.sel)
		run(append(append(append(base, search...), "--select", tc.sel, "--out", out), tc.extra...)...)
		raw, err := os.ReadFile(filepath.Join(out, "metrics.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Hyper  struct{ LR float64 } `json:"hyper"`
			AvgGap *float64             `json:"avg_gap"`
			Search struct {
				Select     string      `json:"select"`
				Rounds     [][]float64 `json:"rounds"`
				Chosen     float64     `json:"chosen"`
				Candidates []struct {
					LR     float64  `json:"lr"`
					Round  int      `json:"round"`
					Failed string   `json:"failed"`
					AvgGap *float64 `json:"avg_gap"`
					Proxy  float64  `json:"proxy_gap"`
				} `json:"candidates"`
			} `json:"search"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		s := m.Search
		if len(s.Candidates) != 3 || len(s.Rounds) != 2 || s.Select != tc.sel {
			t.Fatalf("%s: %d candidates in %d rounds (select %q), want the budget of 3 in 2 rounds", tc.sel, len(s.Candidates), len(s.Rounds), s.Select)
		}
		best, bestLR := math.Inf(1), 0.0
		for _, c := range s.Candidates {
			if c.Round < 1 {
				t.Errorf("%s: candidate %g has no round", tc.sel, c.LR)
			}
			if c.Failed != "" {
				continue
			}
			score := c.Proxy
			if tc.sel == "gap" {
				if c.AvgGap == nil {
					t.Fatalf("gap: candidate %g has no avg_gap", c.LR)
				}
				score = *c.AvgGap
			}
			if score < best {
				best, bestLR = score, c.LR
			}
		}
		if s.Chosen != bestLR || m.Hyper.LR != bestLR {
			t.Errorf("%s: chosen %g, saved with lr %g; the best candidate is %g", tc.sel, s.Chosen, m.Hyper.LR, bestLR)
		}
		if (m.AvgGap != nil) != (tc.sel == "gap") {
			t.Errorf("%s: avg_gap %v", tc.sel, m.AvgGap)
		}
	}
}
