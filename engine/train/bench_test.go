package train

import (
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
	r, err := Bench(b, m, batch, 1, bm.N)
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
