package train

import (
	"math"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
)

func benchModel(bm *testing.B, cfg models.Config, batch int) {
	b := cpu.New(0)
	m, err := models.New(b, engine.Float32, cfg, 1)
	if err != nil {
		bm.Fatal(err)
	}
	r, err := Bench(b, m, BenchConfig{Batch: batch, Warmup: 1, Steps: bm.N})
	if err != nil {
		bm.Fatal(err)
	}
	bm.ReportMetric(r.ImagesPerSec, "img/s")
}

func BenchmarkStepSmallCNN(bm *testing.B) {
	benchModel(bm, models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1}, 128)
}

func BenchmarkStepResNet18(bm *testing.B) {
	benchModel(bm, models.Config{Arch: "resnet18", Classes: 10, H: 32, W: 32, C: 3}, 64)
}

// TestBenchProfile checks that --profile counts every op of a smallcnn
// step in its family and that the rows add up to the whole step.
func TestBenchProfile(t *testing.T) {
	b := cpu.New(2)
	cfg := models.Config{Arch: "smallcnn", Classes: 10, H: 12, W: 12, C: 1}
	m, err := models.New(b, engine.Float32, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Bench(b, m, BenchConfig{Batch: 4, Warmup: 1, Steps: 2, Profile: true})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]float64{}
	var share float64
	for _, row := range r.Profile {
		calls[row.Op] = row.CallsPerStep
		share += row.Share
	}
	// Three convolutions, the stem without an input gradient; three
	// BatchNorms forward and backward; one SGD update per parameter.
	want := map[string]float64{"conv forward": 3, "conv dX": 2, "conv dW": 3, "BatchNorm (+ReLU)": 6,
		"SGD": float64(len(m.Params())), "loss": 1}
	for op, n := range want {
		if calls[op] != n {
			t.Errorf("%s: %g calls per step, want %g (profile %+v)", op, calls[op], n, r.Profile)
		}
	}
	if last := r.Profile[len(r.Profile)-1]; last.Op != OutsideOps {
		t.Errorf("last row %q, want %q", last.Op, OutsideOps)
	}
	if math.Abs(share-1) > 1e-9 {
		t.Errorf("shares add up to %g, want 1", share)
	}
}
