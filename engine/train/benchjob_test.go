package train

import (
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
)

func TestBenchJob(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model models.Config
		input [3]int
	}{
		{"smallcnn default input", models.Config{Arch: "smallcnn", Classes: 10}, [3]int{28, 28, 1}},
		{"given input", models.Config{Arch: "smallcnn", Classes: 10, H: 16, W: 16, C: 3}, [3]int{16, 16, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prepared := false
			j := &BenchJob{Model: tc.model, Quant: "float", BenchConfig: BenchConfig{Batch: 2, Warmup: 1, Steps: 1}, Backend: cpu.New(1), Threads: 1,
				Prepare: func(*models.Model) error { prepared = true; return nil }}
			r, err := j.Run()
			if err != nil {
				t.Fatal(err)
			}
			if !prepared {
				t.Error("Prepare was not called")
			}
			if r.Model != "smallcnn" || r.Quant != "float" || r.Input != tc.input || r.Backend != "cpu" ||
				r.Threads != 1 || r.Steps != 1 || r.Batch != 2 || !(r.MsPerStep > 0) || !(r.PeakRSSMiB > 0) {
				t.Errorf("report %+v", r)
			}
		})
	}
}
