package models

import "github.com/qmulgpu/qmulgpu/engine"

// ParamCount is the number of trainable scalars of the model cfg describes
// (NumParams of the model New would build), found without allocating them:
// a checkpoint reader compares it with the file before building anything.
func ParamCount(cfg Config) (int, error) {
	if err := cfg.Check(); err != nil {
		return 0, err
	}
	if cfg.Arch == "mobilenetv2" {
		cfg.Width = cfg.width()
	}
	bl := &builder{b: shapes{}, dt: engine.Float32}
	n := 0
	for _, p := range bl.build(cfg).Params() {
		n += p.Value.Numel()
	}
	return n, nil
}

// shapes is a backend that only makes tensor headers: enough to construct
// layers (which allocate and fill their tensors) without memory. Any other
// operation is a nil-interface call.
type shapes struct{ engine.Backend }

func (shapes) Zeros(dt engine.DType, shape ...int) *engine.Tensor {
	return &engine.Tensor{Shape: append([]int(nil), shape...), DType: dt}
}

func (s shapes) Alloc(dt engine.DType, shape ...int) *engine.Tensor { return s.Zeros(dt, shape...) }

func (shapes) Fill(*engine.Tensor, float64) {}
