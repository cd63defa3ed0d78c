package sweep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/stat"

	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qmul"
	"github.com/qmulgpu/qmulgpu/qmul/mia"
)

// Record is one finished cell: its configuration and results.
type Record struct {
	Key string `json:"key"`
	Group
	Name   string  `json:"name"`
	Method string  `json:"method"`
	LR     float64 `json:"lr,omitempty"`
	Seed   uint64  `json:"seed"`
	// Collapsed is the collapse guard's message for a cell whose
	// unlearning collapsed; such a record has no metrics.
	Collapsed string `json:"collapsed,omitempty"`
	qmul.Metrics
	// Proxy is the Retrain-free criterion (qmul.ProxyGap) against the
	// original's evaluation of the same seed, when the directory has it.
	Proxy *float64 `json:"proxy_gap,omitempty"`
}

// Skipped tells which cells a report leaves out.
type Skipped struct {
	// Unfinished counts cells that have not run to the end.
	Unfinished int
	// Corrupt lists damaged cells, each as "cells/KEY: what is wrong"; a
	// sweep runs them again.
	Corrupt []string
}

// Collect reads every finished cell of a results directory, in a fixed
// order, and tells which cells it left out.
func Collect(dir string) ([]Record, Skipped, error) {
	var skipped Skipped
	entries, err := os.ReadDir(filepath.Join(dir, cellsDir))
	if err != nil {
		return nil, skipped, fmt.Errorf("report: %w", err)
	}
	var recs []Record
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cd := filepath.Join(dir, cellsDir, e.Name())
		r, finished, err := readCell(cd, e.Name())
		switch {
		case err != nil:
			skipped.Corrupt = append(skipped.Corrupt, fmt.Sprintf("%s/%s: %v", cellsDir, e.Name(), err))
		case !finished:
			skipped.Unfinished++
		default:
			recs = append(recs, r)
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recordLess(recs[i], recs[j]) })
	addProxies(recs)
	return recs, skipped, nil
}

// addProxies sets each unlearning record's proxy criterion from the
// original's evaluation of its group and seed.
func addProxies(recs []Record) {
	type at struct {
		g    Group
		seed uint64
	}
	originals := map[at]qmul.Metrics{}
	for _, r := range recs {
		if r.Method == originalMethod {
			originals[at{r.Group, r.Seed}] = r.Metrics
		}
	}
	for i := range recs {
		r := &recs[i]
		o, ok := originals[at{r.Group, r.Seed}]
		if !ok || r.Collapsed != "" || qmul.FromScratch(r.Method) {
			continue
		}
		spec, _ := qmul.ParseForget(r.Forget) // a cell's forget set was checked when it ran
		p := qmul.ProxyGap(r.Metrics, o, spec.ClassWise())
		r.Proxy = &p
	}
}

// readCell reads the cell in directory cd, named key; it reports false for
// a cell that has not finished, and an error for a damaged one.
func readCell(cd, key string) (Record, bool, error) {
	raw, err := os.ReadFile(filepath.Join(cd, cellFile))
	if err != nil {
		return Record{}, false, nil
	}
	var c Cell
	if err := json.Unmarshal(raw, &c); err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", cellFile, err)
	}
	if c.Key() != key {
		return Record{}, false, fmt.Errorf("%s describes the cell %s (directory renamed or %s edited)", cellFile, c.Key(), cellFile)
	}
	if _, err := os.Stat(filepath.Join(cd, train.MetricsFile)); err != nil {
		if col, ok := readCollapse(cd); ok && !qmul.FromScratch(c.Method) {
			return Record{Key: key, Group: c.Group(), Name: c.Name, Method: c.Method, LR: c.Hyper.LR, Seed: c.Seed, Collapsed: col.Error}, true, nil
		}
		return Record{}, false, nil
	}
	m, err := readCellMetrics(cd)
	if err != nil {
		return Record{}, false, err
	}
	r := Record{Key: key, Group: c.Group(), Name: c.Name, Method: c.Method, Seed: c.Seed, Metrics: *m}
	if qmul.FromScratch(c.Method) {
		g := 0.0
		r.AvgGap = &g
	} else {
		r.LR = c.Hyper.LR
	}
	if r.AvgGap == nil {
		return Record{}, false, fmt.Errorf("no Avg. Gap (it ran without its Retrain reference)")
	}
	return r, true, nil
}

// readCellMetrics reads a cell's metrics.json, refusing one that is not
// whole: not JSON, a missing metric, or a metric that is not a finite
// percentage.
func readCellMetrics(cd string) (*qmul.Metrics, error) {
	raw, err := os.ReadFile(filepath.Join(cd, train.MetricsFile))
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("%s: damaged: not a JSON object", train.MetricsFile)
	}
	for _, name := range []string{"fa", "ra", "ta", "mia"} {
		if _, ok := fields[name]; !ok {
			return nil, fmt.Errorf("%s: damaged: no %q", train.MetricsFile, name)
		}
	}
	var m qmul.Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: damaged: %v", train.MetricsFile, err)
	}
	for name, v := range map[string]float64{"fa": m.FA, "ra": m.RA, "ta": m.TA, "mia": m.MIA} {
		if math.IsNaN(v) || v < 0 || v > 100 {
			return nil, fmt.Errorf("%s: damaged: %s %g is not a percentage", train.MetricsFile, name, v)
		}
	}
	return &m, nil
}

// methodRank orders methods as qmul.Methods lists them, after the
// original model's row (then Retrain, then the methods).
func methodRank(method string) int {
	if method == originalMethod {
		return -1
	}
	if i := slices.Index(qmul.Methods(), method); i >= 0 {
		return i
	}
	return len(qmul.Methods())
}

// hasLR reports whether a table row or record of the method shows a
// learning rate: not the original model, not Retrain, not SSD.
func hasLR(method string) bool {
	return method != originalMethod && !qmul.FromScratch(method) && qmul.TakesLR(method)
}

func recordLess(a, b Record) bool {
	ka := []string{a.Dataset, a.Model, a.Quant, a.Forget}
	kb := []string{b.Dataset, b.Model, b.Quant, b.Forget}
	if c := slices.Compare(ka, kb); c != 0 {
		return c < 0
	}
	if ra, rb := methodRank(a.Method), methodRank(b.Method); ra != rb {
		return ra < rb
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.LR != b.LR {
		return a.LR < b.LR
	}
	return a.Seed < b.Seed
}

// Stat is a mean and standard deviation over seeds.
type Stat struct {
	Mean, Std float64
	N         int
}

func statOf(v []float64) Stat {
	s := Stat{N: len(v)}
	if len(v) == 0 {
		return s
	}
	s.Mean = stat.Mean(v, nil)
	if len(v) > 1 {
		s.Std = stat.StdDev(v, nil)
	}
	return s
}

func (s Stat) String() string {
	if s.N > 1 {
		return fmt.Sprintf("%.2f ± %.2f", s.Mean, s.Std)
	}
	return fmt.Sprintf("%.2f", s.Mean)
}

// Row is one method's line in a group's table, at its chosen learning
// rate.
type Row struct {
	Name, Method    string
	LR              float64
	FA, RA, TA, MIA Stat
	Gap, RTE        Stat
	Searched        map[float64]Stat // mean Avg. Gap per learning rate tried
	// Collapsed counts, per learning rate, the seeds whose run collapsed;
	// such a rate is not chosen.
	Collapsed   map[float64]int
	seeds       map[float64]int // runs per rate, collapsed ones included
	searchedLRs []float64
	// MIAMeaningless counts the runs at the chosen rate whose confidence
	// attack carries a warning (qmul.Metrics.MIAWarnings): their
	// MIA-efficacy is decided by rounding.
	MIAMeaningless int
	// Edge is "smallest" or "largest" when a search over several rates
	// chose the smallest or largest rate it tried: the best rate may lie
	// beyond the grid, which should be extended.
	Edge string
	// Plateau: at the chosen rate every seed's model stayed where its
	// original was (qmul.OnPlateau): the best this method did was nothing.
	Plateau bool
	// Search is the learning-rate search that chose the rate, if any.
	Search *Search
	// Selection compares the rates the two criteria would choose (nil
	// without two rates or without the original's evaluation).
	Selection *Selection
	// gapBySeed is the Avg. Gap of each seed's run at the chosen rate,
	// for the paired comparisons.
	gapBySeed map[uint64]float64
}

// lrSearch describes a record's part in its row's learning-rate search
// for results.csv: "" without a search, "tried", "best", or "best, at the
// smallest/largest tried" when the best rate is at the edge of the grid.
// (writeCSV says "collapsed" for a run that collapsed.)
func (r Row) lrSearch(lr float64) string {
	switch {
	case len(r.searchedLRs) < 2:
		return ""
	case lr != r.LR:
		return "tried"
	case r.Edge != "":
		return "best, at the " + r.Edge + " tried"
	}
	return "best"
}

// doesNothing reports a row whose best rate is the smallest tried and
// leaves the model where the original was: smaller rates cannot do
// better, so the edge calls for no wider grid.
func (r Row) doesNothing() bool { return r.Plateau && r.Edge == "smallest" }

// Table is one (data set, model, quantization, forget set) group.
type Table struct {
	Group
	Rows []Row
	// AllCollapsed lists the methods (by name) that collapsed at every
	// rate tried, so have no row.
	AllCollapsed []Row
}

// Tables aggregates records over seeds and, per method, keeps the learning
// rate its search chose, or else the one with the smallest mean Avg. Gap
// (the reference protocol; ties go to the smaller rate). The original
// model's row comes first in every table, then Retrain's.
func Tables(recs []Record, searches []*Search) []Table {
	var tables []Table
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Group == recs[i].Group {
			j++
		}
		tables = append(tables, table(recs[i:j], searches))
		i = j
	}
	return tables
}

func table(recs []Record, searches []*Search) Table {
	t := Table{Group: recs[0].Group}
	byName := map[string][]Record{}
	var names []string
	for _, r := range recs {
		if _, ok := byName[r.Name]; !ok {
			names = append(names, r.Name)
		}
		byName[r.Name] = append(byName[r.Name], r)
	}
	for _, name := range names {
		rs := byName[name]
		byLR := map[float64][]Record{}
		var lrs []float64
		for _, r := range rs {
			if _, ok := byLR[r.LR]; !ok {
				lrs = append(lrs, r.LR)
			}
			byLR[r.LR] = append(byLR[r.LR], r)
		}
		sort.Float64s(lrs)
		row, ok := chooseLR(name, rs[0].Method, lrs, byLR)
		row.Selection = compareCriteria(lrs, byLR)
		if s := searchOf(searches, t.Group, name); s != nil {
			row.Search = s
			if len(byLR[s.LR]) > 0 {
				row.LR, row.Edge, ok = s.LR, s.Edge, true
			}
		}
		chosen := slices.DeleteFunc(slices.Clone(byLR[row.LR]), func(r Record) bool { return r.Collapsed != "" })
		if !ok || len(chosen) == 0 {
			t.AllCollapsed = append(t.AllCollapsed, row)
			continue
		}
		row.Plateau = onPlateau(chosen, recs)
		for _, r := range chosen {
			for _, w := range r.MIAWarnings {
				if strings.HasPrefix(w, string(mia.Confidence)+":") {
					row.MIAMeaningless++
				}
			}
		}
		row.FA = statOf(collect(chosen, func(r Record) float64 { return r.FA }))
		row.RA = statOf(collect(chosen, func(r Record) float64 { return r.RA }))
		row.TA = statOf(collect(chosen, func(r Record) float64 { return r.TA }))
		row.MIA = statOf(collect(chosen, func(r Record) float64 { return r.MIA }))
		row.Gap = statOf(collect(chosen, func(r Record) float64 { return *r.AvgGap }))
		row.RTE = statOf(collect(chosen, func(r Record) float64 { return r.RTE }))
		row.gapBySeed = map[uint64]float64{}
		for _, r := range chosen {
			row.gapBySeed[r.Seed] = *r.AvgGap
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// chooseLR fills a row's learning-rate search and picks the rate with the
// smallest mean Avg. Gap among those where no seed collapsed; it reports
// false when every rate collapsed on some seed.
func chooseLR(name, method string, lrs []float64, byLR map[float64][]Record) (Row, bool) {
	row := Row{Name: name, Method: method, Searched: map[float64]Stat{}, Collapsed: map[float64]int{}, seeds: map[float64]int{}, searchedLRs: lrs}
	best, found := math.Inf(1), false
	for _, lr := range lrs {
		var ok []Record
		for _, r := range byLR[lr] {
			if r.Collapsed != "" {
				row.Collapsed[lr]++
			} else {
				ok = append(ok, r)
			}
		}
		row.seeds[lr] = len(byLR[lr])
		row.Searched[lr] = statOf(collect(ok, func(r Record) float64 { return *r.AvgGap }))
		if g := row.Searched[lr]; row.Collapsed[lr] == 0 && g.Mean < best {
			best, row.LR, found = g.Mean, lr, true
		}
	}
	if n := len(lrs); found && n > 1 && row.LR == lrs[0] {
		row.Edge = "smallest"
	} else if found && n > 1 && row.LR == lrs[n-1] {
		row.Edge = "largest"
	}
	return row, found
}

func collect(rs []Record, f func(Record) float64) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return v
}

// Report writes results.csv, results.jsonl, report.md and the plots into
// dir, from every finished cell and the searches recorded there. The
// output depends only on the finished cells, so a second run writes the
// same bytes.
func Report(dir string) (Skipped, error) { return ReportConfig(dir, nil) }

// ReportConfig is Report over the cells and searches a sweep file asks
// for (every cell when cfg is nil): a directory shared by several sweep
// files, such as a search and the run of its choices on more seeds,
// reports each file's cells alone.
func ReportConfig(dir string, cfg *Config) (Skipped, error) {
	recs, skipped, err := Collect(dir)
	if err != nil {
		return skipped, err
	}
	var searches []*Search
	if cfg == nil {
		if searches, err = readSearches(dir); err != nil {
			return skipped, err
		}
	} else {
		plan := cfg.Plan(dir)
		asked := map[string]bool{}
		for _, c := range plan.Cells {
			asked[c.Key()] = true
		}
		recs = slices.DeleteFunc(recs, func(r Record) bool { return !asked[r.Key] })
		searches = plan.Searches
	}
	if len(recs) == 0 {
		return skipped, fmt.Errorf("report: no finished cell in %s", dir)
	}
	return skipped, write(dir, recs, searches, skipped)
}

// write writes the report of the records.
func write(dir string, recs []Record, searches []*Search, skipped Skipped) error {
	tables := Tables(recs, searches)
	if err := atomicfile.Write(filepath.Join(dir, "results.csv"), func(w io.Writer) error { return writeCSV(w, recs, tables) }); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "results.jsonl"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, RatesFile), ratesOf(tables)); err != nil {
		return err
	}
	plots, err := writePlots(dir, tables)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "report.md"), func(w io.Writer) error {
		return writeMarkdown(w, tables, plots, len(recs), skipped)
	})
}

// writeCSV writes one line per record; lr_search says where its rate
// stands in its method's learning-rate search (Row.lrSearch).
func writeCSV(w io.Writer, recs []Record, tables []Table) error {
	rows := map[Group]map[string]Row{}
	for _, t := range tables {
		rows[t.Group] = map[string]Row{}
		for _, r := range slices.Concat(t.Rows, t.AllCollapsed) {
			rows[t.Group][r.Name] = r
		}
	}
	cw := csv.NewWriter(w)
	cw.Write([]string{"dataset", "model", "quant", "forget", "name", "method", "lr", "lr_search", "seed", "fa", "ra", "ta", "mia", "avg_gap", "rte_s", "proxy_gap", "key"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	for _, r := range recs {
		lr, search := "", ""
		if hasLR(r.Method) {
			lr = strconv.FormatFloat(r.LR, 'g', -1, 64)
			search = rows[r.Group][r.Name].lrSearch(r.LR)
		}
		metrics := []string{"", "", "", "", "", "", ""} // a collapsed run has none
		if r.Collapsed != "" {
			search = "collapsed"
		} else {
			metrics = []string{f(r.FA), f(r.RA), f(r.TA), f(r.MIA), f(*r.AvgGap), f(r.RTE), ""}
			if r.Proxy != nil {
				metrics[6] = f(*r.Proxy)
			}
		}
		cw.Write(slices.Concat([]string{r.Dataset, r.Model, r.Quant, r.Forget, r.Name, r.Method, lr, search, strconv.FormatUint(r.Seed, 10)},
			metrics, []string{r.Key}))
	}
	cw.Flush()
	return cw.Error()
}

// slug names a group's files.
func (g Group) slug() string {
	s := strings.ToLower(fmt.Sprintf("%s-%s-%s-%s", g.Dataset, g.Model, g.Quant, g.Forget))
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

func writeMarkdown(w io.Writer, tables []Table, plots map[string][]string, finished int, skipped Skipped) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Sweep report\n\n%d finished cells", finished)
	if skipped.Unfinished > 0 {
		fmt.Fprintf(&b, ", %d unfinished (not included)", skipped.Unfinished)
	}
	if len(skipped.Corrupt) > 0 {
		fmt.Fprintf(&b, ", %d damaged (not included; listed at the end, and run again by the next sweep)", len(skipped.Corrupt))
	}
	b.WriteString(". Values are mean ± standard deviation over seeds, in percent (RTE in seconds); the first row is the original model itself (no unlearning: its Avg. Gap is the gap of doing nothing), then Retrain, then each method at the learning rate its search chose, or else the one with the smallest mean Avg. Gap to Retrain. **Bold**: the best method per column (closest to Retrain for FA, RA, TA and MIA; smallest Avg. Gap and RTE).\n")
	for _, t := range tables {
		fmt.Fprintf(&b, "\n## %s, %s, %s, forget %s\n\n", t.Dataset, t.Model, t.Quant, t.Forget)
		b.WriteString("| method | lr | FA | RA | TA | MIA | Avg. Gap | RTE (s) | seeds |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		best := bestPerColumn(t)
		for i, r := range t.Rows {
			lr := "–"
			if hasLR(r.Method) {
				lr = strconv.FormatFloat(r.LR, 'g', -1, 64)
			}
			if r.Edge != "" && !r.doesNothing() {
				lr += " ⚠ " + r.Edge
			}
			if r.Plateau && hasLR(r.Method) {
				lr += " ⚠ does nothing"
			}
			cells := []Stat{r.FA, r.RA, r.TA, r.MIA, r.Gap, r.RTE}
			fmt.Fprintf(&b, "| %s | %s", r.Name, lr)
			for c, s := range cells {
				v := s.String()
				if qmul.FromScratch(r.Method) && c == 4 || r.Method == originalMethod && c == 5 {
					v = "–"
				} else if best[c] == i {
					v = "**" + v + "**"
				}
				if c == 3 && r.MIAMeaningless > 0 {
					v += " ⚠"
				}
				fmt.Fprintf(&b, " | %s", v)
			}
			fmt.Fprintf(&b, " | %d |\n", r.FA.N)
		}
		writeSearchRounds(&b, t)
		writeSearch(&b, t)
		writeSelection(&b, t)
		writePaired(&b, t)
		writeNotes(&b, t)
		for _, p := range plots[t.slug()] {
			fmt.Fprintf(&b, "\n![%s](%s)\n", p, p)
		}
	}
	if len(skipped.Corrupt) > 0 {
		b.WriteString("\n## Damaged cells (not included)\n\n")
		for _, c := range skipped.Corrupt {
			fmt.Fprintf(&b, "- %s\n", c)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeNotes writes the warnings under a table: meaningless MIA values,
// best rates at a grid's edge, rates that do nothing.
func writeNotes(b *bytes.Buffer, t Table) {
	var meaningless []string
	for _, r := range t.Rows {
		if r.MIAMeaningless > 0 {
			meaningless = append(meaningless, fmt.Sprintf("%s (%d of %d seeds)", r.Name, r.MIAMeaningless, r.MIA.N))
		}
	}
	if len(meaningless) > 0 {
		fmt.Fprintf(b, "\n⚠ MIA-efficacy means nothing where the confidence is constant over the shadow sets for the attacker (mia_warnings): %s.\n",
			strings.Join(meaningless, "; "))
	}
	var edges []string
	for _, r := range t.Rows {
		if r.Edge != "" && !r.doesNothing() {
			edges = append(edges, fmt.Sprintf("%s (%g, the %s tried)", r.Name, r.LR, r.Edge))
		}
	}
	if len(edges) > 0 {
		fmt.Fprintf(b, "\n⚠ Best learning rate at the edge of the searched grid, so the best may lie beyond it: %s. Extend the search.\n",
			strings.Join(edges, "; "))
	}
	var idle []string
	for _, r := range t.Rows {
		if r.Plateau && hasLR(r.Method) {
			idle = append(idle, fmt.Sprintf("%s (%g)", r.Name, r.LR))
		}
	}
	if len(idle) > 0 {
		fmt.Fprintf(b, "\n⚠ Does nothing: at its chosen rate the model stays within %g point of the original on FA, RA, TA and MIA, so no rate tried did better than leaving the model as it was (the original's row): %s.\n",
			qmul.PlateauPoints, strings.Join(idle, "; "))
	}
}

// writeSearch writes the learning-rate searches of a table: the mean Avg.
// Gap per rate, or how many seeds collapsed there, and the methods that
// collapsed at every rate.
func writeSearch(b *bytes.Buffer, t Table) {
	var searched []string
	what := "mean Avg. Gap"
	for _, r := range slices.Concat(t.Rows, t.AllCollapsed) {
		if r.Search != nil || len(r.searchedLRs) < 2 && len(r.Collapsed) == 0 {
			continue
		}
		var parts []string
		for _, lr := range r.searchedLRs {
			if n := r.Collapsed[lr]; n > 0 {
				what = "mean Avg. Gap; a rate where a seed collapsed is not chosen"
				parts = append(parts, fmt.Sprintf("%g → collapsed (%d of %d seeds)", lr, n, r.seeds[lr]))
			} else {
				parts = append(parts, fmt.Sprintf("%g → %.2f", lr, r.Searched[lr].Mean))
			}
		}
		searched = append(searched, fmt.Sprintf("%s: %s", r.Name, strings.Join(parts, ", ")))
	}
	if len(searched) > 0 {
		fmt.Fprintf(b, "\nLearning-rate search (%s): %s.\n", what, strings.Join(searched, "; "))
	}
	var none []string
	for _, r := range t.AllCollapsed {
		none = append(none, r.Name)
	}
	if len(none) > 0 {
		fmt.Fprintf(b, "\n⚠ Collapsed at every learning rate tried, so no row: %s (the messages are in each cell's %s).\n", strings.Join(none, ", "), collapsedFile)
	}
}

// unlearns reports a row that unlearns: not the original model and not
// a method that trains from scratch (Retrain).
func unlearns(r Row) bool {
	return r.Method != originalMethod && !qmul.FromScratch(r.Method)
}

// bestPerColumn returns, per column (FA, RA, TA, MIA, gap, RTE), the row
// index of the best non-Retrain method (−1 when none).
func bestPerColumn(t Table) [6]int {
	best := [6]int{-1, -1, -1, -1, -1, -1}
	var ref *Row
	for i := range t.Rows {
		if qmul.FromScratch(t.Rows[i].Method) {
			ref = &t.Rows[i]
		}
	}
	score := func(r Row, c int) float64 {
		vals := []Stat{r.FA, r.RA, r.TA, r.MIA}
		switch {
		case c < 4 && ref != nil:
			refs := []Stat{ref.FA, ref.RA, ref.TA, ref.MIA}
			return math.Abs(vals[c].Mean - refs[c].Mean)
		case c == 4:
			return r.Gap.Mean
		case c == 5:
			return r.RTE.Mean
		}
		return math.Inf(1)
	}
	for c := range best {
		bv := math.Inf(1)
		for i, r := range t.Rows {
			if !unlearns(r) {
				continue
			}
			if v := score(r, c); v < bv {
				bv, best[c] = v, i
			}
		}
	}
	return best
}
