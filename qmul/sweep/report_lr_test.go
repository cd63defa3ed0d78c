package sweep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/qmul"
)

// TestReportMarksLRSearchAtEdge builds a table from records whose mean
// Avg. Gap is least at the largest rate tried (qmul), at the smallest
// (rl), inside the grid (ft) and with a single rate (ga), and checks that
// the Markdown and CSV outputs mark exactly the searches whose best is at
// an edge, and the MIA of ga, one of whose runs warns that its confidence
// attack means nothing.
func TestReportMarksLRSearchAtEdge(t *testing.T) {
	g := Group{Dataset: "mnist", Model: "smallcnn", Quant: "lsq-w4a4", Forget: "random:10%"}
	var recs []Record
	add := func(method string, gaps map[float64]float64) {
		for lr, gap := range gaps {
			for seed := uint64(1); seed <= 2; seed++ {
				gap := gap + float64(seed)/100 // seeds differ a little
				r := Record{Key: method, Group: g, Name: method, Method: method, LR: lr, Seed: seed,
					Metrics: qmul.Metrics{FA: 1, RA: 2, TA: 3, MIA: 4, AvgGap: &gap}}
				if method == "ga" && seed == 2 {
					r.MIAWarnings = []string{"entropy: constant", "confidence: constant"}
				}
				if method == "ft" {
					r.MIAWarnings = []string{"entropy: constant"} // not the reported attack
				}
				recs = append(recs, r)
			}
		}
	}
	zero := 0.0
	recs = append(recs, Record{Key: "retrain", Group: g, Name: "retrain", Method: "retrain", Seed: 1, Metrics: qmul.Metrics{AvgGap: &zero}})
	add("qmul", map[float64]float64{0.01: 5, 0.02: 4, 0.04: 3})
	add("rl", map[float64]float64{0.001: 2, 0.01: 6})
	add("ft", map[float64]float64{0.001: 5, 0.01: 1, 0.1: 7})
	add("ga", map[float64]float64{0.0001: 9})
	add("ssd", map[float64]float64{0.01: 8}) // takes no learning rate
	sort.Slice(recs, func(i, j int) bool { return recordLess(recs[i], recs[j]) })

	tables := Tables(recs, nil)
	if len(tables) != 1 {
		t.Fatalf("%d tables, want 1", len(tables))
	}
	edges := map[string]string{}
	for _, r := range tables[0].Rows {
		edges[r.Name] = r.Edge
	}
	want := map[string]string{"retrain": "", "qmul": "largest", "rl": "smallest", "ft": "", "ga": ""}
	for name, e := range want {
		if edges[name] != e {
			t.Errorf("%s: edge %q, want %q", name, edges[name], e)
		}
	}

	var md bytes.Buffer
	if err := writeMarkdown(&md, tables, nil, len(recs), Skipped{}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"| qmul | 0.04 ⚠ largest |", "| rl | 0.001 ⚠ smallest |", "| ft | 0.01 |", "| ga | 0.0001 |", "| ssd | – |",
		"| 4.00 ± 0.00 ⚠ | 9.02 ± 0.01 |",
		"⚠ MIA-efficacy means nothing where the confidence is constant over the shadow sets for the attacker (mia_warnings): ga (1 of 2 seeds).",
		"⚠ Best learning rate at the edge of the searched grid, so the best may lie beyond it: rl (0.001, the smallest tried); qmul (0.04, the largest tried)."} {
		if !strings.Contains(md.String(), line) {
			t.Errorf("report.md lacks %q:\n%s", line, md.String())
		}
	}

	var out bytes.Buffer
	if err := writeCSV(&out, recs, tables); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	search := map[string]string{} // name@lr → lr_search, equal over seeds
	for _, row := range rows[1:] {
		k := row[col["name"]] + "@" + row[col["lr"]]
		if s, ok := search[k]; ok && s != row[col["lr_search"]] {
			t.Errorf("%s: lr_search %q and %q", k, s, row[col["lr_search"]])
		}
		search[k] = row[col["lr_search"]]
	}
	wantSearch := map[string]string{
		"retrain@": "", "ga@0.0001": "", "ssd@": "",
		"qmul@0.01": "tried", "qmul@0.02": "tried", "qmul@0.04": "best, at the largest tried",
		"rl@0.001": "best, at the smallest tried", "rl@0.01": "tried",
		"ft@0.001": "tried", "ft@0.01": "best", "ft@0.1": "tried",
	}
	for k, w := range wantSearch {
		if s, ok := search[k]; !ok || s != w {
			t.Errorf("%s: lr_search %q, want %q", k, s, w)
		}
	}
	if len(search) != len(wantSearch) {
		t.Errorf("%d (name, lr) pairs in results.csv, want %d", len(search), len(wantSearch))
	}
}

// TestAllowCollapseKeys checks that allow_collapse under original and under
// a method reach the original, Retrain and that method's cells only, and
// that cells without it keep the keys they had before the setting existed.
func TestAllowCollapseKeys(t *testing.T) {
	base, err := Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range base.Expand() {
		if raw, _ := json.Marshal(cell); strings.Contains(string(raw), "allow_collapse") {
			t.Errorf("%s: allow_collapse in the key's JSON %s", cell, raw)
		}
	}
	allowed := strings.Replace(strings.Replace(testConfig, "batch: 50}\nforget", "batch: 50, allow_collapse: true}\nforget", 1),
		"  - method: ft\n", "  - method: ft\n    allow_collapse: true\n  - method: ga\n", 1)
	c, err := Parse([]byte(allowed))
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]int{}
	for _, cell := range c.Expand() {
		methods[cell.Method]++
		if !cell.Original.AllowCollapse {
			t.Errorf("%s: the original does not allow collapse", cell)
		}
		if want := cell.Method == "ft"; cell.Hyper.AllowCollapse != want {
			t.Errorf("%s: hyper allow_collapse %v, want %v", cell, cell.Hyper.AllowCollapse, want)
		}
	}
	if methods["ga"] == 0 || methods["ft"] == 0 || methods["retrain"] == 0 {
		t.Fatalf("cells by method %v, want retrain, ft and ga", methods)
	}
}
