package models

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine/nn"
)

// makeDivisible rounds v to the nearest multiple of 8, not below 90% of v,
// as torchvision's MobileNetV2 does.
func makeDivisible(v float64) int {
	const d = 8
	n := max(d, int(v+d/2)/d*d)
	if float64(n) < 0.9*v {
		n += d
	}
	return n
}

// mobileNetV2 follows torchvision's module names (features.N...,
// classifier.1) with CIFAR strides: a stride-1 stem and a stride-1 second
// stage when the input is under 64 pixels. torchvision's dropout before the
// classifier is omitted.
func (bl *builder) mobileNetV2(cfg Config) nn.Layer {
	settings := [][4]int{ // expansion t, channels c, repeats n, stride s
		{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
		{6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
	}
	small := min(cfg.H, cfg.W) < 64
	stemStride := 2
	if small {
		stemStride = 1
		settings[1][3] = 1
	}
	in := makeDivisible(32 * cfg.Width)
	last := makeDivisible(1280 * max(1, cfg.Width))
	features := &nn.Sequential{}
	stem := bl.conv("features.0.0", RoleStem, true, cfg.C, in, 3, stemStride, 1, 1)
	stem.SkipInputGrad = true
	features.Add("0", nn.NewSequential(stem, bl.bnReLU6(in)))
	idx := 1
	for _, st := range settings {
		out := makeDivisible(float64(st[1]) * cfg.Width)
		for i := 0; i < st[2]; i++ {
			stride := 1
			if i == 0 {
				stride = st[3]
			}
			// Only the first block's input comes out of a ReLU6 (the stem's).
			signed := idx > 1
			features.Add(fmt.Sprint(idx), bl.invertedResidual(fmt.Sprintf("features.%d", idx), signed, in, out, stride, st[0]))
			in = out
			idx++
		}
	}
	head := bl.conv(fmt.Sprintf("features.%d.0", idx), RoleBody, true, in, last, 1, 1, 0, 1)
	features.Add(fmt.Sprint(idx), nn.NewSequential(head, bl.bnReLU6(last)))
	classifier := &nn.Sequential{}
	classifier.Add("1", bl.linear("classifier.1", false, last, cfg.Classes))
	s := &nn.Sequential{}
	s.Add("features", features).Add("pool", &nn.GlobalAvgPool{}).Add("classifier", classifier)
	return s
}

// invertedResidual is torchvision's block: an optional 1×1 expansion
// (conv-BN-ReLU6), a 3×3 depthwise conv-BN-ReLU6, a 1×1 projection and BN,
// with an identity shortcut when the shape is kept. inSigned tells whether
// the block's input may be negative; the depthwise (after an expansion) and
// projection inputs follow a ReLU6.
func (bl *builder) invertedResidual(name string, inSigned bool, in, out, stride, expand int) nn.Layer {
	hidden := in * expand
	conv := &nn.Sequential{}
	i := 0
	if expand != 1 {
		pw := bl.conv(fmt.Sprintf("%s.conv.%d.0", name, i), RoleBody, inSigned, in, hidden, 1, 1, 0, 1)
		conv.Add(fmt.Sprint(i), nn.NewSequential(pw, bl.bnReLU6(hidden)))
		i++
	}
	dw := bl.conv(fmt.Sprintf("%s.conv.%d.0", name, i), RoleBody, inSigned && expand == 1, hidden, hidden, 3, stride, 1, hidden)
	conv.Add(fmt.Sprint(i), nn.NewSequential(dw, bl.bnReLU6(hidden)))
	i++
	proj := bl.conv(fmt.Sprintf("%s.conv.%d", name, i), RoleBody, false, hidden, out, 1, 1, 0, 1)
	conv.Add(fmt.Sprint(i), proj).Add(fmt.Sprint(i+1), bl.bn(out))
	if stride == 1 && in == out {
		return &nn.Residual{Main: nn.Child{Name: "conv", Layer: conv}}
	}
	return &nn.Sequential{Layers: []nn.Child{{Name: "conv", Layer: conv}}}
}
