// Package models builds the networks qmulgpu trains: smallcnn, resnet18
// (CIFAR and ImageNet stems) and mobilenetv2 (width multiplier, CIFAR
// strides), with PyTorch's state_dict names.
package models

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
)

// Config selects and sizes a network.
type Config struct {
	// Arch is the architecture name (see Names).
	Arch string `json:"arch"`
	// Classes is the number of outputs.
	Classes int `json:"classes"`
	// H, W, C are the input height, width and channels.
	H int `json:"h"`
	W int `json:"w"`
	C int `json:"c"`
	// Width is MobileNetV2's width multiplier (0 means 1).
	Width float64 `json:"width,omitempty"`
}

// Role says where a quantizable layer sits, which decides whether the
// default configuration quantizes it.
type Role string

// Roles of quantizable layers.
const (
	RoleStem       Role = "stem"       // the first convolution
	RoleDownsample Role = "downsample" // a 1×1 shortcut convolution
	RoleBody       Role = "body"       // every other convolution
	RoleClassifier Role = "classifier" // the final linear layer
)

// Site is a convolution or linear layer that a quantizer can wrap.
type Site struct {
	// Name is the layer's PyTorch module name ("layer1.0.conv1").
	Name string
	Role Role
	// InputSigned is false when the layer's input comes straight out of a
	// ReLU or ReLU6 (so an unsigned activation grid fits it).
	InputSigned bool
	// Conv or Linear is the layer.
	Conv   *nn.Conv2d
	Linear *nn.Linear
}

// Model is a built network.
type Model struct {
	Config Config
	Net    nn.Layer
	Sites  []Site
	DType  engine.DType
}

// Names lists the supported architectures.
func Names() []string { return []string{"mobilenetv2", "resnet18", "smallcnn"} }

// New builds the network described by cfg on backend b with parameters of
// type dt, initialised from seed with PyTorch's default distributions.
func New(b engine.Backend, dt engine.DType, cfg Config, seed uint64) (*Model, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Arch == "mobilenetv2" {
		cfg.Width = cfg.width()
	}
	bl := &builder{b: b, dt: dt}
	net := bl.build(cfg)
	nn.Name(net, "")
	nn.Init(b, net, rand.New(rand.NewPCG(seed, 0x6d6f64656c)))
	m := &Model{Config: cfg, Net: net, Sites: bl.sites, DType: dt}
	if err := m.checkNames(); err != nil {
		return nil, err
	}
	return m, nil
}

// Params lists the trainable parameters in a fixed order.
func (m *Model) Params() []*nn.Param { return m.Net.Params() }

// States lists the non-trainable state in a fixed order.
func (m *Model) States() []*nn.State { return m.Net.States() }

// NumParams counts trainable scalars.
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.Params() {
		n += p.Value.Numel()
	}
	return n
}

func (m *Model) checkNames() error {
	seen := map[string]bool{}
	for _, p := range m.Params() {
		if p.Name == "" || seen[p.Name] {
			return fmt.Errorf("model %s: parameter name %q empty or repeated", m.Config.Arch, p.Name)
		}
		seen[p.Name] = true
	}
	for _, s := range m.States() {
		if s.Name == "" || seen[s.Name] {
			return fmt.Errorf("model %s: state name %q empty or repeated", m.Config.Arch, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// ParamNames lists parameter and state names, sorted (for documentation
// and tests).
func (m *Model) ParamNames() []string {
	var names []string
	for _, p := range m.Params() {
		names = append(names, p.Name)
	}
	for _, s := range m.States() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

// builder assembles layers and records quantizable sites.
type builder struct {
	b     engine.Backend
	dt    engine.DType
	sites []Site
}

// build makes the layers of a checked configuration (its Width resolved).
func (bl *builder) build(cfg Config) nn.Layer {
	switch cfg.Arch {
	case "smallcnn":
		return bl.smallCNN(cfg)
	case "resnet18":
		return bl.resnet18(cfg)
	}
	return bl.mobileNetV2(cfg)
}

func (bl *builder) conv(name string, role Role, inSigned bool, in, out, k, stride, pad, groups int) *nn.Conv2d {
	c := nn.NewConv2d(bl.b, bl.dt, in, out, k, stride, pad, groups, false)
	bl.sites = append(bl.sites, Site{Name: name, Role: role, InputSigned: inSigned, Conv: c})
	return c
}

func (bl *builder) linear(name string, inSigned bool, in, out int) *nn.Linear {
	l := nn.NewLinear(bl.b, bl.dt, in, out)
	bl.sites = append(bl.sites, Site{Name: name, Role: RoleClassifier, InputSigned: inSigned, Linear: l})
	return l
}

func (bl *builder) bn(c int) *nn.BatchNorm { return nn.NewBatchNorm(bl.b, bl.dt, c) }

// bnReLU is BatchNorm with a fused ReLU.
func (bl *builder) bnReLU(c int) *nn.BatchNorm {
	return nn.NewBatchNormReLU(bl.b, bl.dt, c, engine.ReLU)
}

// bnReLU6 is BatchNorm with a fused ReLU6.
func (bl *builder) bnReLU6(c int) *nn.BatchNorm {
	return nn.NewBatchNormReLU(bl.b, bl.dt, c, engine.ReLU6)
}

// smallCNN: three 3×3 conv-BN-ReLU stages (32, 64 stride 2, 128 stride 2)
// and a linear classifier on the flattened map.
func (bl *builder) smallCNN(cfg Config) nn.Layer {
	h, w := (cfg.H+3)/4, (cfg.W+3)/4
	conv1 := bl.conv("conv1", RoleStem, true, cfg.C, 32, 3, 1, 1, 1)
	conv1.SkipInputGrad = true
	fc := bl.linear("fc", false, 128*h*w, cfg.Classes)
	fc.FlattenedFrom(h, w, 128)
	s := &nn.Sequential{}
	s.Add("conv1", conv1).Add("bn1", bl.bnReLU(32))
	s.Add("conv2", bl.conv("conv2", RoleBody, false, 32, 64, 3, 2, 1, 1)).Add("bn2", bl.bnReLU(64))
	s.Add("conv3", bl.conv("conv3", RoleBody, false, 64, 128, 3, 2, 1, 1)).Add("bn3", bl.bnReLU(128))
	s.Add("flatten", &nn.Flatten{}).Add("fc", fc)
	return s
}

// SetInputGrad makes the network's Backward return the gradient with
// respect to its input (for attacks on the input), or skip it (the default,
// which saves the stem's input-gradient GEMM).
func (m *Model) SetInputGrad(on bool) {
	for _, s := range m.Sites {
		if s.Role == RoleStem && s.Conv != nil {
			s.Conv.SkipInputGrad = !on
		}
	}
}
