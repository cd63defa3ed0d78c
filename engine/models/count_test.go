package models

import (
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
)

// TestParamCount: ParamCount agrees with the parameters New allocates, for
// every architecture, stem and a range of MobileNetV2 widths.
func TestParamCount(t *testing.T) {
	b := cpu.New(1)
	for _, cfg := range []Config{
		{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1},
		{Arch: "smallcnn", Classes: 2, H: 9, W: 30, C: 3},
		{Arch: "resnet18", Classes: 10, H: 32, W: 32, C: 3},
		{Arch: "resnet18", Classes: 200, H: 64, W: 64, C: 3},
		{Arch: "mobilenetv2", Classes: 10, H: 32, W: 32, C: 3},
		{Arch: "mobilenetv2", Classes: 100, H: 64, W: 64, C: 3, Width: 0.35},
		{Arch: "mobilenetv2", Classes: 10, H: 32, W: 32, C: 1, Width: 1.4},
	} {
		m, err := New(b, engine.Float32, cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParamCount(cfg)
		if err != nil || got != m.NumParams() {
			t.Errorf("%+v: ParamCount %d (%v), New built %d", cfg, got, err, m.NumParams())
		}
	}
	if _, err := ParamCount(Config{Arch: "smallcnn", Classes: 1e9, H: 28, W: 28, C: 1}); err == nil {
		t.Errorf("ParamCount took a billion classes")
	}
}
