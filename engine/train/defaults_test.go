package train

import (
	"testing"

	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
)

// stepLosses records the mean loss of every step from the running means
// Progress hears (every minibatch of the run must hold the same number of
// samples).
type stepLosses struct {
	prev   float64
	losses []float64
}

func (s *stepLosses) EpochStart(int, int, int) { s.prev = 0 }
func (s *stepLosses) StepDone(step int, mean, _, _ float64) {
	s.losses = append(s.losses, float64(step)*mean-float64(step-1)*s.prev)
	s.prev = mean
}
func (s *stepLosses) EpochEnd(EpochStats) {}

// TestDefaultRecipeNeverSpikes trains smallcnn with the default recipe of
// `qmulgpu train` (train.DefaultRecipe) on a small Fashion-MNIST subset and
// requires that no minibatch's loss rises above the first one's, the loss
// of the untrained network (about ln 10). At the former default, lr 0.1,
// the second step's loss is already above 5 and one epoch ends near
// chance. ResNet-18 and MobileNetV2 keep the reference code's 0.1, which
// they train with on CIFAR; they are too slow for this test on a CPU.
func TestDefaultRecipeNeverSpikes(t *testing.T) {
	needFashion(t)
	rec := &stepLosses{}
	r := DefaultRecipe("smallcnn", 2)
	j := &Job{
		// 2,560 training images: ten full minibatches of 256 per epoch.
		Data:  DataSpec{Dataset: "fashion-mnist", ValFrac: 0, SplitSeed: 1, Subset: 2560, TestSubset: 500},
		Model: models.Config{Arch: "smallcnn"}, Recipe: r,
		Out: t.TempDir(), Backend: cpu.New(2), Command: "test", Progress: rec,
	}
	res, err := j.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.losses) != 20 {
		t.Fatalf("%d steps recorded, want 20", len(rec.losses))
	}
	initial := rec.losses[0]
	for i, l := range rec.losses {
		if l > initial {
			t.Errorf("step %d: loss %.3f above the initial %.3f (lr %g): the default recipe spikes; all steps: %.2f", i+1, l, initial, r.Schedule.Base, rec.losses)
			break
		}
	}
	if res.TestAcc < 60 {
		t.Errorf("test accuracy %.1f%% after two default epochs, want ≥ 60%%", res.TestAcc)
	}
}
