package sweep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// TestCollapsedCellsEndTheirRate checks what a collapsed unlearning run
// does to a sweep: the cell is recorded as ended (so the sweep goes on and
// does not run it again), any other error still stops the sweep, and the
// report leaves the rate out of the choice — ft's 0.1 has the smaller mean
// gap over the seeds that finished, but one seed collapsed there, so 0.01
// is chosen — and lists a method that collapsed at every rate (rl) under
// the table instead of giving it a row.
func TestCollapsedCellsEndTheirRate(t *testing.T) {
	c, err := Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	base := c.Expand()[0]
	out := t.TempDir()
	r := &Runner{Config: c, Out: out, Log: io.Discard}
	cell := func(method string, lr float64, seed uint64) Cell {
		x := base
		x.Method, x.Name, x.Hyper, x.Seed = method, method, qmul.Hyper{LR: lr}, seed
		if method == "retrain" {
			x.Hyper = qmul.Hyper{}
		}
		return x
	}
	write := func(x Cell, metrics string) string {
		dir := r.cellDir(x)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(x)
		os.WriteFile(filepath.Join(dir, cellFile), b, 0o644)
		if metrics != "" {
			os.WriteFile(filepath.Join(dir, train.MetricsFile), []byte(metrics), 0o644)
		}
		return dir
	}
	whole := func(gap float64) string {
		return fmt.Sprintf(`{"fa": 10, "ra": 90, "ta": 80, "mia": 5, "avg_gap": %g}`, gap)
	}
	guard := fmt.Errorf("ft: epoch 3 at lr 0.1: %w: the mean loss 6.1 is above ln(classes)", train.ErrCollapsed)
	for seed := uint64(1); seed <= 2; seed++ {
		write(cell("retrain", 0, seed), whole(0))
		write(cell("ft", 0.01, seed), whole(2))
		rl := cell("rl", 0.005, seed)
		if ran, err := r.collapsed(write(rl, ""), rl, 0, 1, guard); !ran || err != nil {
			t.Fatalf("a collapse: ran %v, error %v; want the cell ended and no error", ran, err)
		}
	}
	write(cell("ft", 0.1, 1), whole(1))
	ft := cell("ft", 0.1, 2)
	dir := write(ft, "")
	other := errors.New("disk full")
	if ran, err := r.collapsed(dir, ft, 0, 1, other); ran || err != other {
		t.Fatalf("another error: ran %v, error %v; want it returned", ran, err)
	}
	if r.finished(ft) {
		t.Fatal("a failed cell counts as finished")
	}
	if _, err := r.collapsed(dir, ft, 0, 1, guard); err != nil {
		t.Fatal(err)
	}
	if !r.finished(ft) {
		t.Fatal("a collapsed cell does not count as finished: the sweep would run it again")
	}

	if _, err := Report(out); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, line := range []string{
		"| ft | 0.01 ⚠ smallest |",
		"ft: 0.01 → 2.00, 0.1 → collapsed (1 of 2 seeds)",
		"rl: 0.005 → collapsed (2 of 2 seeds)",
		"⚠ Collapsed at every learning rate tried, so no row: rl",
	} {
		if !strings.Contains(string(md), line) {
			t.Errorf("report.md lacks %q:\n%s", line, md)
		}
	}
	if strings.Contains(string(md), "| rl |") {
		t.Errorf("report.md has a row for rl, which collapsed at every rate:\n%s", md)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "results.csv"))
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	search := map[string]int{}
	for _, row := range rows[1:] {
		if row[7] == "collapsed" {
			search[row[4]+"@"+row[6]]++
			if row[9] != "" || row[13] != "" {
				t.Errorf("collapsed run %v has metrics", row)
			}
		}
	}
	if search["ft@0.1"] != 1 || search["rl@0.005"] != 2 || len(search) != 2 {
		t.Errorf("collapsed runs in results.csv: %v, want ft@0.1 once and rl@0.005 twice", search)
	}
}
