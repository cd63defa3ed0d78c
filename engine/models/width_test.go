package models_test

import (
	"math"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
)

func TestMobileNetWidthOutOfRange(t *testing.T) {
	for _, w := range []float64{math.NaN(), math.Inf(1), 0.05, 5} {
		cfg := models.Config{Arch: "mobilenetv2", Classes: 10, H: 32, W: 32, C: 3, Width: w}
		_, err := models.New(cpu.New(1), engine.Float32, cfg, 1)
		if err == nil || !strings.Contains(err.Error(), "width multiplier") {
			t.Errorf("width %g: error %v, want the width refused", w, err)
		}
	}
}
