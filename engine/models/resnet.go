package models

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine/nn"
)

// resnet18 follows torchvision's module names (conv1, bn1, layerN.B.conv1,
// .bn1, .conv2, .bn2, .downsample.0/.1, fc). Inputs under 64 pixels get the
// CIFAR stem (3×3 stride 1, no max-pool); larger ones the ImageNet stem
// (7×7 stride 2 and a 3×3 stride-2 max-pool).
func (bl *builder) resnet18(cfg Config) nn.Layer {
	s := &nn.Sequential{}
	imagenet := min(cfg.H, cfg.W) >= 64
	var stem *nn.Conv2d
	if imagenet {
		stem = bl.conv("conv1", RoleStem, true, cfg.C, 64, 7, 2, 3, 1)
	} else {
		stem = bl.conv("conv1", RoleStem, true, cfg.C, 64, 3, 1, 1, 1)
	}
	stem.SkipInputGrad = true
	s.Add("conv1", stem).Add("bn1", bl.bnReLU(64))
	if imagenet {
		s.Add("maxpool", nn.NewMaxPool(3, 2, 1))
	}
	in := 64
	for i, out := range []int{64, 128, 256, 512} {
		stride := 2
		if i == 0 {
			stride = 1
		}
		layer := &nn.Sequential{}
		name := fmt.Sprintf("layer%d", i+1)
		for j := 0; j < 2; j++ {
			layer.Add(fmt.Sprint(j), bl.basicBlock(fmt.Sprintf("%s.%d", name, j), in, out, stride))
			in, stride = out, 1
		}
		s.Add(name, layer)
	}
	fc := bl.linear("fc", false, 512, cfg.Classes)
	s.Add("avgpool", &nn.GlobalAvgPool{}).Add("fc", fc)
	return s
}

// basicBlock is relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
func (bl *builder) basicBlock(name string, in, out, stride int) nn.Layer {
	main := &nn.Sequential{}
	main.Add("conv1", bl.conv(name+".conv1", RoleBody, false, in, out, 3, stride, 1, 1)).
		Add("bn1", bl.bnReLU(out)).
		Add("conv2", bl.conv(name+".conv2", RoleBody, false, out, out, 3, 1, 1, 1)).
		Add("bn2", bl.bn(out))
	r := &nn.Residual{Main: nn.Child{Name: "", Layer: main}, Post: nn.NewReLU()}
	if stride != 1 || in != out {
		ds := nn.NewSequential(bl.conv(name+".downsample.0", RoleDownsample, false, in, out, 1, stride, 0, 1), bl.bn(out))
		r.Shortcut = &nn.Child{Name: "downsample", Layer: ds}
	}
	return r
}
