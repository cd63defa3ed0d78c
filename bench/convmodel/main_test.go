package main

import (
	"math"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/qat"
)

// TestResNet18Shapes checks the recorded shapes against ResNet-18's known
// size: 20 convolutions (stem, 16 in the blocks, 3 downsampling 1×1) and
// 0.56 GMAC per 32×32 image forward.
func TestResNet18Shapes(t *testing.T) {
	rec, err := record(models.Config{Arch: "resnet18", Classes: 10, H: 32, W: 32, C: 3}, qat.Config{Scheme: "none"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	forward, macs := 0, 0.0
	for _, c := range rec.convs {
		if c.backward {
			continue
		}
		forward++
		g := c.g
		macs += float64(g.OutH()*g.OutW()*g.K) * float64(g.R*g.S*g.C/g.Groups)
	}
	if forward != 20 {
		t.Errorf("%d forward convolutions, want 20", forward)
	}
	if math.Abs(macs/1e9-0.556) > 0.005 {
		t.Errorf("%.3f GMAC per image, want 0.556", macs/1e9)
	}
}

// TestConvCost checks one layer by hand: ResNet-18's layer-1 3×3
// convolution at batch 256 has a column matrix of 256·32·32·576 floats
// (604 MB), written and read once forward on the im2col path.
func TestConvCost(t *testing.T) {
	g := engine.ConvGeom{N: 3, H: 32, W: 32, C: 64, K: 64, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	x := 256.0 * 32 * 32 * 64
	w := 64.0 * 9 * 64
	col := 256.0 * 32 * 32 * 576
	im2col := convCost(conv{g: g}, 256, "im2col")
	cudnn := convCost(conv{g: g}, 256, "cudnn")
	if want := 4 * (x + 2*col + w + x); im2col.bytes != want {
		t.Errorf("im2col forward moves %g bytes, want %g", im2col.bytes, want)
	}
	if want := 4 * (x + w + x); cudnn.bytes != want {
		t.Errorf("cuDNN forward moves %g bytes, want %g", cudnn.bytes, want)
	}
	if want := 2 * col * 64; im2col.flops != want || cudnn.flops != want {
		t.Errorf("FLOPs %g and %g, want %g", im2col.flops, cudnn.flops, want)
	}
	// 604 MB of columns: 1 chunk of 256 MiB would not hold them.
	if im2col.launches != 2*3 {
		t.Errorf("%d launches, want 6 (3 chunks of im2col + GEMM)", im2col.launches)
	}
}
