package train

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/optim"
)

// TestCollapseGuard feeds the guard sequences of epoch losses for 10
// classes (ln 10 ≈ 2.3026, half of it ≈ 1.1513) and checks the epoch it
// stops at.
func TestCollapseGuard(t *testing.T) {
	ln10 := math.Log(10)
	tests := []struct {
		name   string
		losses []float64
		stop   int // 1-based epoch reported, 0 for none
	}{
		{"learning", []float64{2.2, 1.1, 0.6, 0.4}, 0},
		{"collapse", []float64{1.9, 0.9, 0.7, 2.31, 2.30}, 4},
		{"never below", []float64{2.5, 2.4, 2.35, 2.31}, 0}, // still looking for a start
		{"starts above then collapses", []float64{2.6, 1.0, 2.4}, 3},
		// Like the original model of the qmul tests, whose third epoch's
		// loss is 2.3050 before it learns.
		{"hovering about chance", []float64{2.2988, 2.2950, 2.3050, 1.9, 0.8}, 0},
		{"not below half", []float64{2.0, math.Nextafter(ln10/2, 3), 2.4}, 0},
		{"just below half", []float64{2.0, math.Nextafter(ln10/2, 0), 2.4}, 3},
		{"exactly at chance", []float64{1.0, ln10, ln10}, 0},
		{"just above chance", []float64{1.0, math.Nextafter(ln10, 3)}, 2},
		{"spike", []float64{0.5, 0.5, 9.0, 0.5}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewCollapseGuard(10)
			stop := 0
			var err error
			for i, l := range tt.losses {
				if err = g.Epoch(i+1, 0.05, l); err != nil {
					stop = i + 1
					break
				}
			}
			if stop != tt.stop {
				t.Fatalf("stopped at epoch %d, want %d (%v)", stop, tt.stop, err)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrCollapsed) {
				t.Errorf("error %v does not wrap ErrCollapsed", err)
			}
			for _, want := range []string{"epoch " + string(rune('0'+stop)) + " ", "lr 0.05", "--allow-collapse"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// collapseRun trains a fresh smallcnn on 1,000 Fashion-MNIST images for two
// epochs at lr 0.01, then at lr high from epoch 3 to 5, with one collapse
// guard across both; it returns the losses of the finished epochs and the
// error of the second phase.
func collapseRun(t *testing.T, high float64) ([]float64, error) {
	splits, err := DataSpec{Dataset: "fashion-mnist", SplitSeed: 3, Subset: 1000, TestSubset: 100}.Load()
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New(2)
	m, err := models.New(b, engine.Float32, ModelFor(models.Config{Arch: "smallcnn"}, splits.Train), 7)
	if err != nil {
		t.Fatal(err)
	}
	opt := optim.NewSGD(b, m.Params(), 0.9, 5e-4, false)
	data := Upload(b, splits.Train)
	defer data.Free(b)
	guard := NewCollapseGuard(splits.Train.Classes)
	var losses []float64
	phase := func(lr float64, from, to int) error {
		tr := &Trainer{B: b, Model: m, Opt: opt, Train: Split{data, splits.TrainIdx}, Collapse: guard,
			Recipe:   Recipe{Epochs: to, Batch: 50, Seed: 7, Schedule: optim.Schedule{Kind: "constant", Base: lr, Epochs: to}},
			EpochEnd: func(s EpochStats) error { losses = append(losses, s.TrainLoss); return nil }}
		return tr.Run(from)
	}
	if err := phase(0.01, 0, 2); err != nil {
		t.Fatal(err)
	}
	if len(losses) != 2 || !(losses[1] < math.Log(10)) {
		t.Fatalf("epoch losses %v, want epoch 2's below ln 10 = 2.3026", losses)
	}
	err = phase(high, 2, 5)
	return losses, err
}

// TestCollapseStopsARealRun trains a model that learns (two epochs at lr
// 0.01 bring the loss to about 0.6) and then raises the rate to 0.5, which
// throws the loss back above ln 10 at once: the guard must stop the run at
// that epoch, naming it and the rate.
func TestCollapseStopsARealRun(t *testing.T) {
	needFashion(t)
	losses, err := collapseRun(t, 0.5)
	if !errors.Is(err, ErrCollapsed) {
		t.Fatalf("error %v, want a collapse (epoch losses %v)", err, losses)
	}
	if !strings.Contains(err.Error(), "epoch 3 at lr 0.5:") {
		t.Errorf("error %q does not name epoch 3 and lr 0.5", err)
	}
	if len(losses) != 2 {
		t.Errorf("%d epochs finished (losses %v), want the 2 before the collapse", len(losses), losses)
	}
}
