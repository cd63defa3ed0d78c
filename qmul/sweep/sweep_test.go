package sweep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// tinySetting is the setting of the tests' small sweeps: 300 training
// images, one epoch each; a test adds its seeds and methods.
const tinySetting = `
datasets: [fashion-mnist]
val_frac: 0
subset: 300
test_subset: 200
models: [smallcnn]
quant: {scheme: lsq, bits: [4]}
original: {epochs: 1, lr: 0.05, batch: 50}
forget: ["random:10%"]
unlearn: {epochs: 1, batch: 50}
`

const testConfig = tinySetting + `seeds: [1, 2]
methods:
  - method: ft
    lr: [0.01, 0.05]
`

func TestParseErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		yaml, want string
	}{
		{"datasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods: [{method: ft}]\nbogus: 1\n", "line 5"},
		{"datasets: [imagenet]\nmodels: [smallcnn]\nforget: [random:10]\nmethods: [{method: ft}]\n", "line 1"},
		{"datasets: [fashion-mnist]\nmodels: [smallcnn]\nforget:\n  - random:10\n  - nonsense\nmethods: [{method: ft}]\noriginal: {epochs: 1, lr: 0.1}\n", "line 5"},
		{"original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods:\n  - method: ft\n  - method: qmul\n    agr: weekly\n", "line 8: agr: --agr weekly: want epoch or step or sample"},
		{"original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nunlearn: {lr_milestones: [3, 1]}\nmethods:\n  - method: ft\n", "line 5: lr_milestones: --lr-milestones 3,1 must be increasing"},
		{"original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods:\n  - method: scrub\n    kd_weight: [1]\n", "line 7: kd_weight: --kd-weight [1]: want a number"},
		{"original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods:\n  - method: ft\n  - method: sl\n    agr: epoch\n", "--agr is not a parameter of sl"},
		{"datasets: [fashion-mnist]\nmodels: [smallcnn]\nquant: {scheme: lsq, bits: [9]}\nforget: [random:10]\nmethods: [{method: ft}]\n", "line 3"},
		{"original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods:\n  - method: ft\n    lr: -1\n", "line 7"},
		{"original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods:\n  - method: ft\n  - method: ft\n", "line 7"},
		{"datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal: {epochs: x}\n", "line 3"},
		{"models:\n  - {}\n  - {}\n  - {}\n", "line 2: cannot read mapping into a string (and 2 more problems)"},
		{"datasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods: [{method: ft}]\noriginal: {lr: 0.1}\n", "line 5"},
		{"original: {epochs: 1, lr: 0.1}\ndatasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods: [{method: ft}]\nconv: fft\n", "line 6: conv: \"fft\": want auto, cudnn, im2col"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %s", tc.yaml, err, tc.want)
		}
	}
}

// TestConvKeyLeavesCellKeys: the conv key chooses how the workers compute,
// not what: the cells, and so their keys, stay the same.
func TestConvKeyLeavesCellKeys(t *testing.T) {
	plain, err := Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	withConv, err := Parse([]byte(testConfig + "conv: im2col\n"))
	if err != nil {
		t.Fatal(err)
	}
	if withConv.Conv != "im2col" {
		t.Fatalf("conv = %q, want im2col", withConv.Conv)
	}
	a, b := plain.Expand(), withConv.Expand()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d cells", len(a), len(b))
	}
	for i := range a {
		if a[i].Key() != b[i].Key() {
			t.Errorf("cell %d: key %s without conv, %s with it", i, a[i].Key(), b[i].Key())
		}
	}
}

func TestExpandAndShard(t *testing.T) {
	c, err := Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	cells := c.Expand()
	keys := map[string]bool{}
	methods := map[string]int{}
	for _, cell := range cells {
		if keys[cell.Key()] {
			t.Fatalf("duplicate cell key %s", cell)
		}
		keys[cell.Key()] = true
		methods[cell.Method]++
	}
	if len(cells) != 8 || methods[qmul.Reference()] != 2 || methods[originalMethod] != 2 {
		t.Fatalf("%d cells by method %v, want 8: 2 seeds × (retrain + original + ft at 2 rates)", len(cells), methods)
	}
	for _, n := range []int{1, 3, 7} {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			for _, cell := range Shard(cells, i, n) {
				seen[cell.Key()]++
			}
		}
		if len(seen) != 6 {
			t.Errorf("%d shards cover %d cells, want 6 (all but Retrain's)", n, len(seen))
		}
		for k, v := range seen {
			if v != 1 {
				t.Errorf("%d shards: cell %s in %d shards", n, k, v)
			}
		}
	}
	if _, _, err := ParseShard("3/3"); err == nil {
		t.Error("shard 3/3 accepted")
	}
}

func TestShardFromEnv(t *testing.T) {
	t.Setenv("SLURM_ARRAY_TASK_ID", "5")
	t.Setenv("SLURM_ARRAY_TASK_MIN", "4")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "4")
	i, n, ok, err := ShardFromEnv(0)
	if err != nil || !ok || i != 1 || n != 4 {
		t.Errorf("Slurm task 5 of 4..7: %d/%d %v %v", i, n, ok, err)
	}
	os.Unsetenv("SLURM_ARRAY_TASK_ID")
	t.Setenv("JOB_COMPLETION_INDEX", "2")
	if i, n, ok, err = ShardFromEnv(3); err != nil || !ok || i != 2 || n != 3 {
		t.Errorf("indexed Job 2 of 3: %d/%d %v %v", i, n, ok, err)
	}
	if _, _, _, err = ShardFromEnv(0); err == nil {
		t.Error("JOB_COMPLETION_INDEX without --shards accepted")
	}
}

func needData(t *testing.T) {
	t.Helper()
	if _, err := data.Locate("fashion-mnist", ""); err != nil {
		t.Skipf("Fashion-MNIST not installed: %v", err)
	}
	if testing.Short() {
		t.Skip("short mode: no training")
	}
}

func runner(t *testing.T, out string, shard, shards int) *Runner {
	c, err := Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	return &Runner{Config: c, Out: out, Shard: shard, Shards: shards, Devices: []string{"cpu"}, Poll: 200 * time.Millisecond,
		Open: func(string) (engine.Backend, error) { return cpu.New(1), nil }}
}

// checkComplete runs the report and checks every cell is there exactly
// once and no lock is left.
func checkComplete(t *testing.T, out string) {
	t.Helper()
	skipped, err := Report(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped.Corrupt) > 0 || skipped.Unfinished > 0 {
		t.Fatalf("report skipped cells: %+v", skipped)
	}
	f, err := os.Open(filepath.Join(out, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, r := range rows[1:] {
		keys[r[len(r)-1]]++
	}
	if len(rows)-1 != 8 || len(keys) != 8 {
		t.Errorf("results.csv has %d rows and %d distinct cells, want 8 and 8", len(rows)-1, len(keys))
	}
	originals, _ := os.ReadDir(filepath.Join(out, originalsDir))
	if len(originals) != 2 {
		t.Errorf("%d original models trained, want 2", len(originals))
	}
	locks, _ := os.ReadDir(filepath.Join(out, locksDir))
	if len(locks) != 0 {
		t.Errorf("locks left behind: %v", locks)
	}
}

// runShards runs shards 0…n-1 at once, as the tasks of a job array would,
// and fails the test on any shard's error.
func runShards(t *testing.T, n int, run func(shard int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = run(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d of %d: %v", i, n, err)
		}
	}
}

// TestConcurrentShardsShareOneDirectory runs two shards at once into one
// directory: each original and Retrain model is made once, every cell once.
func TestConcurrentShardsShareOneDirectory(t *testing.T) {
	needData(t)
	out := t.TempDir()
	runShards(t, 2, func(i int) error {
		_, err := runner(t, out, i, 2).Run()
		return err
	})
	checkComplete(t, out)
	// A second run finds everything finished.
	s, err := runner(t, out, 0, 1).Run()
	if err != nil || s.Ran != 0 || s.Skipped != 6 {
		t.Errorf("re-run: %+v, %v; want nothing run, 6 skipped", s, err)
	}
	// The report is reproducible byte for byte.
	before := readAll(t, out)
	if _, err := Report(out); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, out)
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Errorf("%s changed when the report was written again", name)
		}
	}
	// A damaged cell is listed by the report and run again by the sweep.
	c := Shard(runner(t, out, 0, 1).Config.Expand(), 0, 1)[0]
	metrics := filepath.Join(out, cellsDir, c.Key(), "metrics.json")
	if err := os.WriteFile(metrics, []byte(`{"fa": 12.5, "ra":`), 0o644); err != nil {
		t.Fatal(err)
	}
	skipped, err := Report(out)
	if err != nil || len(skipped.Corrupt) != 1 || !strings.Contains(skipped.Corrupt[0], c.Key()) {
		t.Fatalf("report of a damaged cell: %+v, %v", skipped, err)
	}
	s, err = runner(t, out, 0, 1).Run()
	if err != nil || s.Ran != 1 || s.Skipped != 5 {
		t.Errorf("re-run with a damaged cell: %+v, %v; want it run, 5 skipped", s, err)
	}
	checkComplete(t, out)
	// So is a damaged Retrain cell (which no shard is dealt).
	retrain := filepath.Join(out, cellsDir, c.RetrainKey(), "metrics.json")
	if err := os.WriteFile(retrain, []byte(`{"fa": 12.5, "ra": 1, "ta": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if skipped, err := Report(out); err != nil || len(skipped.Corrupt) != 1 {
		t.Fatalf("report of a damaged Retrain cell: %+v, %v", skipped, err)
	}
	s, err = runner(t, out, 0, 1).Run()
	if err != nil || s.Ran < 1 || s.Ran+s.Skipped != 6 {
		t.Errorf("re-run with a damaged Retrain cell: %+v, %v; want it made again", s, err)
	}
	checkComplete(t, out)
}

// TestReportSkipsDamagedCells: cells with a damaged metrics.json or
// cell.json are left out of the report and listed, not fatal.
func TestReportSkipsDamagedCells(t *testing.T) {
	c, err := Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cells := c.Expand()
	damaged := map[string]string{
		cells[1].Key(): "not json",
		cells[2].Key(): `{"fa": 1, "ra": 2, "ta": 3}`,
		cells[3].Key(): `{"fa": 1e9, "ra": 2, "ta": 3, "mia": 4, "avg_gap": 1}`,
	}
	for i, cell := range cells[:5] {
		dir := filepath.Join(out, cellsDir, cell.Key())
		os.MkdirAll(dir, 0o755)
		b, _ := json.Marshal(cell)
		if i == 4 {
			b = []byte("{")
		}
		os.WriteFile(filepath.Join(dir, cellFile), b, 0o644)
		m, ok := damaged[cell.Key()]
		if !ok {
			m = `{"fa": 10, "ra": 90, "ta": 80, "mia": 5, "avg_gap": 1.5}`
		}
		os.WriteFile(filepath.Join(dir, "metrics.json"), []byte(m), 0o644)
	}
	skipped, err := Report(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped.Corrupt) != 4 {
		t.Fatalf("skipped %v, want the 4 damaged cells", skipped.Corrupt)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, c := range skipped.Corrupt {
		if !strings.Contains(string(md), c) {
			t.Errorf("report.md does not list %s", c)
		}
	}
	for key := range damaged {
		if cellDone(filepath.Join(out, cellsDir, key)) {
			t.Errorf("damaged cell %s counts as done", key)
		}
	}
	if !cellDone(filepath.Join(out, cellsDir, cells[0].Key())) {
		t.Error("a whole cell does not count as done")
	}
}

func readAll(t *testing.T, dir string) map[string][]byte {
	out := map[string][]byte{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = b
		}
	}
	return out
}

// TestKilledShardReruns kills a shard process with SIGKILL in the middle of
// its work, then runs it again: the results end up complete.
func TestKilledShardReruns(t *testing.T) {
	needData(t)
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperShard$")
	cmd.Env = append(os.Environ(), "QMUL_SWEEP_HELPER="+out)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it has started training (an original in progress).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		entries, _ := os.ReadDir(filepath.Join(out, originalsDir))
		if len(entries) > 0 {
			time.Sleep(1500 * time.Millisecond)
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the helper never started training:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// Its locks are left behind; the re-run takes them over once stale.
	r := runner(t, out, 0, 1)
	r.lease = 2 * time.Second
	if _, err := r.Run(); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, out)
}

// TestHelperShard is the process TestKilledShardReruns kills.
func TestHelperShard(t *testing.T) {
	out := os.Getenv("QMUL_SWEEP_HELPER")
	if out == "" {
		t.Skip("helper process only")
	}
	if _, err := runner(t, out, 0, 1).Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// TestParseRefusesAtLoad: every value of a sweep file is checked when it is
// read, and the error names the line of the faulty key in the file's terms.
// TestParseMergeKeys: anchors and merge keys work in sweep files, and the
// merged keys are checked.
func TestParseMergeKeys(t *testing.T) {
	const base = "datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal: {epochs: 1, lr: 0.1}\nforget: [random:10]\n"
	c, err := Parse([]byte(base + "unlearn: &u {epochs: 2, batch: 32}\nmethods:\n  - method: ft\n    <<: *u\n    lr: 0.02\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Expand()[2].Hyper; h.Epochs != 2 || h.Batch != 32 || h.LR != 0.02 {
		t.Errorf("merged hyper-parameters %+v, want 2 epochs, batch 32, lr 0.02", h)
	}
	_, err = Parse([]byte(base + "unlearn: &u {epochs: 2}\nmethods:\n  - method: ft\n    <<: [*u, {bacth: 3}]\n"))
	if err == nil || !strings.Contains(err.Error(), `line 8: unknown key "bacth" in a method entry`) {
		t.Errorf("error %v, want the merged key named", err)
	}
}

// TestParseMergeBomb: a kilobyte of merge keys naming mappings that merge
// others, ten times over for twelve levels, is refused for its aliasing.
// Each mapping's keys are checked once: checking them once per mention
// took 10^12 steps.
func TestParseMergeBomb(t *testing.T) {
	_, err := Parse(mergeBomb(12))
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Errorf("error %v, want the aliasing refused", err)
	}
}

// mergeBomb is a sweep file whose method entry i merges entry i-1 ten
// times, for the given number of levels.
func mergeBomb(levels int) []byte {
	var b strings.Builder
	b.WriteString("datasets: [mnist]\nmodels: [smallcnn]\nforget: [\"random:10\"]\nmethods:\n  - &m0 {method: ft, name: m0}\n")
	for i := 1; i < levels; i++ {
		prev := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", ")
		fmt.Fprintf(&b, "  - &m%d {<<: [%s], name: m%d}\n", i, prev, i)
	}
	return []byte(b.String())
}

// TestMethodParamsInSweepFiles: a method parameter under unlearn reaches
// the methods that read it, an entry's own overrides it, merged mappings
// carry them, and each lands in the cell's key.
func TestMethodParamsInSweepFiles(t *testing.T) {
	const base = "datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal: {epochs: 1, lr: 0.1}\nforget: [random:10]\n"
	c, err := Parse([]byte(base + "unlearn: &u {lr_schedule: constant, kd_weight: 0.5, augment: true}\nmethods:\n" +
		"  - method: ft\n  - method: scrub\n  - method: scrub\n    name: scrub-own\n    kd_weight: 0.25\n    lr_milestones: [1, 2]\n" +
		"  - method: qmul\n    name: qmul-released\n    <<: {similar_labels: released}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]qmul.Params{}
	keys := map[string]string{}
	for _, cell := range c.Expand() {
		got[cell.Name], keys[cell.Name] = cell.Hyper.Params, cell.Key()
	}
	for _, tc := range []struct {
		name, param string
		want        any
	}{
		{"ft", "lr-schedule", "constant"},
		{"ft", "kd-weight", nil},
		{"ft", "augment", true},
		{"scrub", "kd-weight", 0.5},
		{"scrub", "augment", true},
		{"scrub", "max-steps", 2},
		{"scrub-own", "kd-weight", 0.25},
		{"scrub-own", "lr-milestones", []int{1, 2}},
		{"qmul-released", "similar-labels", "released"},
		{"qmul-released", "lr-schedule", "constant"},
	} {
		if v := got[tc.name][tc.param]; !reflect.DeepEqual(v, tc.want) {
			t.Errorf("%s: %s = %v, want %v", tc.name, tc.param, v, tc.want)
		}
	}
	if keys["scrub"] == keys["scrub-own"] {
		t.Error("two scrub cells differing in kd_weight share a key")
	}
}

func TestParseRefusesAtLoad(t *testing.T) {
	const base = "datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal: {epochs: 1, lr: 0.1}\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"class out of range", base + "forget: [\"class:42\"]\nmethods: [{method: ft}]\n", []string{"line 4", "classes 0 to 9"}},
		{"class out of range of cifar100", "datasets: [cifar10, cifar100]\nmodels: [smallcnn]\noriginal: {epochs: 1, lr: 0.1}\nforget: [\"class:99\"]\nmethods: [{method: ft}]\n", []string{"line 4", "cifar10 has classes 0 to 9"}},
		{"no seeds", base + "forget: [random:10]\nseeds: []\nmethods: [{method: ft}]\n", []string{"line 5", "at least one seed"}},
		{"duplicate seed", base + "forget: [random:10]\nseeds: [1, 1]\nmethods: [{method: ft}]\n", []string{"line 5", "listed twice"}},
		{"duplicate forget set", base + "forget:\n  - random:10\n  - random:10\nmethods: [{method: ft}]\n", []string{"line 6", "listed twice"}},
		{"duplicate bits", base + "quant: {scheme: lsq, bits: [4, 4]}\nforget: [random:10]\nmethods: [{method: ft}]\n", []string{"line 4", "listed twice"}},
		{"zero lr", base + "forget: [random:10]\nmethods:\n  - method: ft\n    lr: [0.01, 0]\n", []string{"line 7", "positive"}},
		{"NaN lr", base + "forget: [random:10]\nmethods:\n  - method: ft\n    lr: .nan\n", []string{"line 7", "positive"}},
		{"empty lr list", base + "forget: [random:10]\nmethods:\n  - method: ft\n    lr: []\n", []string{"line 7", "at least one learning rate"}},
		{"NaN original lr", "datasets: [fashion-mnist]\nmodels: [smallcnn]\nforget: [random:10]\nmethods: [{method: ft}]\noriginal:\n  epochs: 1\n  lr: .nan\n", []string{"line 7", "learning rate"}},
		{"bits out of range", base + "quant: {scheme: lsq, bits: [4, 33]}\nforget: [random:10]\nmethods: [{method: ft}]\n", []string{"line 4"}},
		{"unknown method", base + "forget: [random:10]\nmethods:\n  - method: ft\n    lr: 0.01\n  - method: fancy\n    lr: 0.01\n", []string{"line 8", "unknown method \"fancy\""}},
		{"lr for a method that does not train", base + "forget: [random:10]\nmethods:\n  - method: ssd\n    lr: [0.01, 0.1]\n", []string{"line 7", "ssd does not train and takes no learning rate"}},
		{"momentum 1", base + "forget: [random:10]\nmethods:\n  - method: ft\n    momentum: 1\n", []string{"line 6", "momentum"}},
		{"subset below classes", base + "subset: 5\nforget: [random:10]\nmethods: [{method: ft}]\n", []string{"line 4", "fewer than the 10 classes"}},
		{"negative width", base + "width: -1\nforget: [random:10]\nmethods: [{method: ft}]\n", []string{"line 4", "width"}},
		{"unknown key", base + "forget: [random:10]\nsubsett: 5\nmethods: [{method: ft}]\n", []string{"line 5", `unknown key "subsett" in the sweep file (known: `, "subset"}},
		{"unknown key in a method entry", base + "forget: [random:10]\nmethods:\n  - method: ft\n    lr: 0.01\n    epochs: 2\n    epohcs: 3\n", []string{"line 9", `unknown key "epohcs" in a method entry (did you mean "epochs"?)`}},
		{"unknown key in original", "datasets: [fashion-mnist]\nmodels: [smallcnn]\noriginal:\n  epochs: 1\n  learning_rate: 0.1\n", []string{"line 5", `"learning_rate" in original`}},
		{"wrong type", base + "forget: [random:10]\nmethods:\n  - method: ft\n    epochs: many\n", []string{"line 7", "into an integer"}},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
		for _, goTerm := range []string{"sweep.", "float64", "uint64", "!!"} {
			if strings.Contains(err.Error(), goTerm) {
				t.Errorf("%s: error %q speaks of Go types", tc.name, err)
			}
		}
	}
}

// TestStudyFilesParse: the study's sweep files (docs/study) read and
// validate, and each has its Q-MUL-as-released row.
func TestStudyFilesParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "study", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no sweep files in docs/study")
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		released := false
		for _, e := range c.Methods {
			released = released || e.Method == "qmul" && e.Params["similar-labels"] == "released"
		}
		if !released {
			t.Errorf("%s: no qmul row with similar_labels: released", f)
		}
	}
}
