package qmul

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestHyperValidateRefuses: hyper-parameters that cannot run (or cannot
// be recorded) are refused before anything is loaded.
func TestHyperValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Hyper)
		want string
	}{
		{"momentum 1", func(h *Hyper) { h.Momentum = 1 }, "--momentum 1 must be below 1"},
		{"NaN l1 weight", func(h *Hyper) { h.Params["l1-weight"] = math.NaN() }, "--l1-weight NaN"},
		{"negative l1 weight", func(h *Hyper) { h.Params["l1-weight"] = -1.0 }, "--l1-weight -1 must not be negative"},
		{"a word for a number", func(h *Hyper) { h.Params["l1-weight"] = "high" }, "--l1-weight high: want a number"},
		{"unknown schedule", func(h *Hyper) { h.Params["lr-schedule"] = "weekly" }, "want constant or cosine or multistep"},
		{"milestones going back", func(h *Hyper) { h.Params["lr-milestones"] = []int{5, 3} }, "must be increasing epochs"},
		{"unknown parameter", func(h *Hyper) { h.Params["alpha"] = 0.1 }, "unknown method parameter --alpha"},
		{"NaN lr", func(h *Hyper) { h.LR = math.NaN() }, "--lr NaN"},
	} {
		h := Defaults("l1")
		tc.edit(&h)
		if err := h.Validate("l1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := Defaults("l1").Validate("l1"); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
}

// TestJobRefusesHyperBeforeLoading: bad hyper-parameters are refused
// before the checkpoint or the data are read.
func TestJobRefusesHyperBeforeLoading(t *testing.T) {
	h := Defaults("ft")
	h.Momentum = 1
	_, err := (&Job{Checkpoint: "/nonexistent/model.safetensors", Method: "ft", Forget: "random:5", Hyper: h, Out: t.TempDir()}).Run()
	if err == nil || !strings.Contains(err.Error(), "--momentum 1") {
		t.Errorf("error %v, want the momentum refused first", err)
	}
}

// referenceTable reads the sourced table of docs/methods.md: for each
// method, each parameter's value as written (backticks removed).
func referenceTable(t *testing.T) map[string]map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "methods.md"))
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	table := map[string]map[string]string{}
	inside := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "## ") {
			inside = strings.TrimSpace(line) == "## Defaults and their sources"
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if !inside || !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		param := strings.Trim(strings.TrimSpace(cells[1]), "`")
		value := strings.TrimSpace(strings.ReplaceAll(cells[2], "`", ""))
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			if table[m[1]] == nil {
				table[m[1]] = map[string]string{}
			}
			if _, dup := table[m[1]][param]; dup {
				t.Errorf("docs/methods.md: %s %s has two rows", m[1], param)
			}
			table[m[1]][param] = value
		}
	}
	if len(table) == 0 {
		t.Fatal("docs/methods.md: no table under \"## Defaults and their sources\"")
	}
	return table
}

// sameValue compares a default with the table's text: numerically when
// both are numbers, as text otherwise.
func sameValue(ours, table string) bool {
	a, errA := strconv.ParseFloat(ours, 64)
	b, errB := strconv.ParseFloat(table, 64)
	if errA == nil && errB == nil {
		return a == b
	}
	return ours == table
}

// TestDefaultsMatchTable: every method's defaults equal the sourced table
// of docs/methods.md, shared hyper-parameters and its own, and the table
// has a row for every one of them and nothing more.
func TestDefaultsMatchTable(t *testing.T) {
	table := referenceTable(t)
	for _, name := range UnlearningMethods() {
		m, _ := Lookup(name)
		h := Defaults(name)
		ours := map[string]string{"epochs": strconv.Itoa(h.Epochs), "batch": strconv.Itoa(h.Batch)}
		if !m.NoLR {
			ours["lr"], ours["momentum"], ours["wd"] = FormatValue(h.LR), FormatValue(h.Momentum), FormatValue(h.WeightDecay)
		}
		for _, p := range ParamsOf(name) {
			ours[p.Name] = p.DefaultText(name)
		}
		rows := table[name]
		for _, k := range slices.Sorted(maps.Keys(ours)) {
			got, ok := rows[k]
			switch {
			case !ok:
				t.Errorf("%s: docs/methods.md has no row for %s (our default %s)", name, k, ours[k])
			case !sameValue(ours[k], got):
				t.Errorf("%s: default %s = %s, docs/methods.md says %s", name, k, ours[k], got)
			}
		}
		for k := range rows {
			if _, ok := ours[k]; !ok {
				t.Errorf("%s: docs/methods.md has a row for %s, which it does not read", name, k)
			}
		}
	}
	for name := range table {
		if !slices.Contains(UnlearningMethods(), name) {
			t.Errorf("docs/methods.md has rows for %q, which is no unlearning method", name)
		}
	}
}

// TestParamsJSON: the parameters a run used come back from metrics.json
// with their kinds (whole numbers as int, lists as []int), and a file
// naming a parameter that does not exist is refused.
func TestParamsJSON(t *testing.T) {
	for _, m := range UnlearningMethods() {
		h := Defaults(m).Resolve(m, 10)
		raw, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var back Hyper
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("%s: %v (%s)", m, err, raw)
		}
		if !reflect.DeepEqual(back, h) {
			t.Errorf("%s: %+v came back as %+v", m, h, back)
		}
	}
	var h Hyper
	if err := json.Unmarshal([]byte(`{"params":{"alpha":0.1}}`), &h); err == nil || !strings.Contains(err.Error(), `unknown method parameter "alpha"`) {
		t.Errorf("an unknown parameter: %v", err)
	}
}
