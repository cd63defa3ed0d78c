package study

import (
	"fmt"
	"io/fs"
	"slices"
	"testing"

	"github.com/qmulgpu/qmulgpu/qmul"
)

// TestSweepFilesParse: every sweep file of the study reads as a sweep.
func TestSweepFilesParse(t *testing.T) {
	names, _ := fs.Glob(files, "*.yaml")
	if len(names) < 4 {
		t.Fatalf("%d sweep files embedded, want the study's 4 settings", len(names))
	}
	for _, n := range names {
		if _, err := Config(n); err != nil {
			t.Error(err)
		}
	}
}

// TestDemoIsTheStudysSetting: the demo runs the setting of the study's
// Fashion-MNIST random-10% table on seed 1, and its rates are the ones
// that table's search chose, so that they are the study's choice for
// exactly the demo's setting.
func TestDemoIsTheStudysSetting(t *testing.T) {
	c, err := Config("auto-fmnist-random.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := qmul.DefaultDemo()
	for _, x := range []struct {
		what      string
		demo, cfg any
	}{
		{"data set", "fashion-mnist", c.Datasets[0]},
		{"model", "smallcnn", c.Models[0]},
		{"quantization", "lsq 4", fmt.Sprintf("%s %d", c.Quant.Scheme, c.Quant.Bits[0])},
		{"validation fraction", 0.0, *c.ValFrac},
		{"subset", d.Subset, c.Subset},
		{"test subset", d.TestSubset, c.TestSubset},
		{"original epochs", d.OriginalEpochs, c.Original.Epochs},
		{"original lr", d.OriginalLR, c.Original.LR},
		{"original batch", d.OriginalBatch, c.Original.Batch},
		{"forget set", d.Forget, c.Forget[0]},
		{"seed 1 in the study", true, slices.Contains(c.Seeds, 1)},
		{"unlearning epochs", d.UnlearnEpochs, c.Unlearn.Epochs},
		{"unlearning batch", d.UnlearnBatch, c.Unlearn.Batch},
	} {
		if x.demo != x.cfg {
			t.Errorf("%s: the demo's %v, the study's %v", x.what, x.demo, x.cfg)
		}
	}
	rates, _, err := DemoRates()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ReadRates("rates-fmnist-random.json")
	for _, x := range r.Rates {
		if x.Dataset != "fashion-mnist" || x.Model != "smallcnn" || x.Quant != "lsq W4A4" || x.Forget != "random:10%" {
			t.Errorf("%s: rate for %+v, not the demo's setting", x.Name, x.Group)
		}
	}
	for _, e := range c.Methods {
		if !qmul.TakesLR(e.Method) || e.Name != e.Method {
			continue
		}
		if _, ok := rates[e.Method]; !ok {
			t.Errorf("%s: no demo rate, though the study searches one", e.Method)
		}
	}
	if !c.Unlearn.LR.Auto {
		t.Error("the study's file does not search the rates the demo takes")
	}
	for _, x := range r.Rates {
		if x.By != "search (gap)" || x.Seeds != 3 {
			t.Errorf("%s: chosen by %q on %d seeds, want the search by Avg. Gap run on 3", x.Name, x.By, x.Seeds)
		}
	}
	for _, m := range qmul.UnlearningMethods() {
		if _, ok := rates[m]; !ok && qmul.TakesLR(m) && m != "oeu" {
			t.Errorf("%s: no demo rate; only the experimental oeu is outside the study", m)
		}
	}
}
