package models

import (
	"fmt"
	"math"
	"strings"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// Bounds on a configuration. A configuration read from a file is untrusted:
// Check keeps every size it declares within these before anything is
// built from it.
const (
	MaxClasses  = 100000
	MaxSide     = 4096 // input height and width
	MaxChannels = 64   // input channels
	MinWidth    = 0.1  // MobileNetV2 width multiplier
	MaxWidth    = 4.0
)

// Check validates a configuration's names and sizes without building
// anything.
func (c Config) Check() error {
	switch c.Arch {
	case "smallcnn", "resnet18", "mobilenetv2":
	default:
		return fmt.Errorf("unknown model %s (known: %s)", clip.Quote(c.Arch), strings.Join(Names(), ", "))
	}
	if c.Classes < 2 || c.Classes > MaxClasses {
		return fmt.Errorf("model %s: %d classes, need 2 to %d", c.Arch, c.Classes, MaxClasses)
	}
	if c.H < 8 || c.W < 8 || c.C < 1 {
		return fmt.Errorf("model %s: input %dx%dx%d is too small (at least 8x8x1)", c.Arch, c.H, c.W, c.C)
	}
	if c.H > MaxSide || c.W > MaxSide || c.C > MaxChannels {
		return fmt.Errorf("model %s: input %dx%dx%d is too large (at most %dx%dx%d)", c.Arch, c.H, c.W, c.C, MaxSide, MaxSide, MaxChannels)
	}
	if c.Arch == "mobilenetv2" {
		if w := c.width(); math.IsNaN(w) || w < MinWidth || w > MaxWidth {
			return fmt.Errorf("model mobilenetv2: width multiplier %g outside [%g, %g]", c.Width, MinWidth, MaxWidth)
		}
	}
	return nil
}

// width is MobileNetV2's multiplier with 0 meaning 1.
func (c Config) width() float64 {
	if c.Width == 0 {
		return 1
	}
	return c.Width
}

// Anchor is a tensor whose shape (in PyTorch's layout) follows from a
// configuration.
type Anchor struct {
	Name  string
	Shape []int
}

// Anchors lists the tensors that pin a configuration's sizes: the stem
// convolution's weight (input channels, stem kind, width), the classifier's
// weight (classes and, for smallcnn, the input area) and bias. Every other
// tensor's shape is fixed by the architecture, so a file whose tensors
// match a checked configuration's anchors holds about as many values as
// the model it describes. The configuration must pass Check.
func (c Config) Anchors() []Anchor {
	var stem, fc string
	var stemOut, stemK, fcIn int
	switch c.Arch {
	case "smallcnn":
		stem, stemOut, stemK = "conv1", 32, 3
		fc, fcIn = "fc", 128*((c.H+3)/4)*((c.W+3)/4)
	case "resnet18":
		stem, stemOut, stemK = "conv1", 64, 3
		if min(c.H, c.W) >= 64 {
			stemK = 7
		}
		fc, fcIn = "fc", 512
	case "mobilenetv2":
		stem, stemOut, stemK = "features.0.0", makeDivisible(32*c.width()), 3
		fc, fcIn = "classifier.1", makeDivisible(1280*max(1, c.width()))
	}
	return []Anchor{
		{stem + ".weight", []int{stemOut, c.C, stemK, stemK}},
		{fc + ".weight", []int{c.Classes, fcIn}},
		{fc + ".bias", []int{c.Classes}},
	}
}
