//go:build purego

package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// The purego build has no Winograd convolutions: their transforms are C.
type winograd struct{}

func winogradFor(engine.ConvGeom) *winograd { return nil }

func (*winograd) forward(*Backend, []float32, []float32, []float32, engine.ConvGeom) {}
func (*winograd) data(*Backend, []float32, []float32, []float32, engine.ConvGeom)    {}
func (*winograd) filter(*Backend, []float32, []float32, []float32, engine.ConvGeom)  {}
