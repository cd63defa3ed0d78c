// Package qat provides fake quantizers for quantization-aware training —
// LSQ, PACT, DoReFa and min-max observers with a clipped straight-through
// estimator — attaches them to a model's convolutions and linear layers,
// and exports trained models as integer weights with their scales.
package qat

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/internal/clip"
	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
)

// Config selects a quantization scheme and where it applies.
type Config struct {
	// Scheme is "lsq", "pact", "dorefa", "minmax" or "none".
	Scheme string `json:"scheme"`
	// WBits and ABits are the weight and activation bit widths (2–8).
	WBits int `json:"wbits,omitempty"`
	ABits int `json:"abits,omitempty"`
	// PerChannel gives LSQ one weight step per output channel (min-max
	// weights are always per channel).
	PerChannel bool `json:"per_channel,omitempty"`
	// Float lists layer roles ("stem", "downsample", "classifier", "body")
	// or layer names kept in float.
	Float []string `json:"float,omitempty"`
}

// Schemes lists the scheme names.
func Schemes() []string { return []string{"dorefa", "lsq", "minmax", "none", "pact"} }

// DefaultFloat are the roles the reference code keeps in float.
func DefaultFloat() []string { return []string{"stem", "downsample", "classifier"} }

// MetaKey is the checkpoint metadata key holding the configuration.
const MetaKey = "quant"

// Enabled reports whether the configuration quantizes anything.
func (c Config) Enabled() bool { return c.Scheme != "" && c.Scheme != "none" }

// String is the usual short name: "lsq W4A4", "float".
func (c Config) String() string {
	if !c.Enabled() {
		return "float"
	}
	return fmt.Sprintf("%s W%dA%d", c.Scheme, c.WBits, c.ABits)
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	if !slices.Contains(Schemes(), c.Scheme) && c.Scheme != "" {
		return fmt.Errorf("unknown quantization scheme %s (known: %s)", clip.Quote(c.Scheme), strings.Join(Schemes(), ", "))
	}
	if !c.Enabled() {
		return nil
	}
	for name, b := range map[string]int{"weight": c.WBits, "activation": c.ABits} {
		if b < 2 || b > 8 {
			return fmt.Errorf("%s bits %d: must be an integer from 2 to 8", name, b)
		}
	}
	return nil
}

// Meta encodes the configuration for checkpoint metadata.
func (c Config) Meta() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// FromMeta decodes a checkpoint's configuration; a checkpoint without one
// is a float model.
func FromMeta(meta map[string]string) (Config, error) {
	s, ok := meta[MetaKey]
	if !ok {
		return Config{Scheme: "none"}, nil
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("bad %q metadata: %s", MetaKey, jsonerr.Describe(err))
	}
	return c, c.Validate()
}

// keepsFloat reports whether a site stays in float.
func (c Config) keepsFloat(s models.Site) bool {
	return slices.Contains(c.Float, string(s.Role)) || slices.Contains(c.Float, s.Name)
}

// Apply attaches quantizers to every site of m the configuration covers
// and names their parameters. It must run before weights are restored.
func Apply(b engine.Backend, m *models.Model, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if !c.Enabled() {
		return nil
	}
	for _, f := range c.Float {
		known := slices.Contains([]string{"stem", "downsample", "classifier", "body"}, f)
		for _, s := range m.Sites {
			known = known || s.Name == f
		}
		if !known {
			return fmt.Errorf("--keep-float %s: neither a layer role nor a layer of %s", clip.Quote(f), m.Config.Arch)
		}
	}
	for _, s := range m.Sites {
		if c.keepsFloat(s) {
			continue
		}
		wq, aq := c.quantizers(b, m.DType, s)
		if s.Conv != nil {
			s.Conv.WeightQuant, s.Conv.InputQuant = wq, aq
		} else {
			s.Linear.WeightQuant, s.Linear.InputQuant = wq, aq
		}
	}
	nn.Name(m.Net, "")
	return nil
}

// channelsOf is the number of output channels of a site's weight.
func channelsOf(s models.Site) int {
	if s.Conv != nil {
		return s.Conv.OutC
	}
	return s.Linear.Out
}

func (c Config) quantizers(b engine.Backend, dt engine.DType, s models.Site) (w, a nn.Quantizer) {
	k := channelsOf(s)
	switch c.Scheme {
	case "lsq":
		wch := 1
		if c.PerChannel {
			wch = k
		}
		return newLSQ(b, dt, c.WBits, true, wch), newLSQ(b, dt, c.ABits, s.InputSigned, 1)
	case "pact":
		return newDoReFaWeights(c.WBits), newPACT(b, dt, c.ABits, s.InputSigned)
	case "dorefa":
		return newDoReFaWeights(c.WBits), newClipQuant(b, dt, c.ABits, s.InputSigned)
	default: // "minmax"
		return newMinMax(b, dt, c.WBits, true, k), newMinMax(b, dt, c.ABits, false, 1)
	}
}

// grid returns the integer range of a b-bit grid: [−2^(b−1), 2^(b−1)−1]
// signed, [0, 2^b−1] unsigned.
func grid(bits int, signed bool) (lo, hi int) {
	if signed {
		return -(1 << (bits - 1)), 1<<(bits-1) - 1
	}
	return 0, 1<<bits - 1
}

// Contradicts reports how a requested configuration differs from a
// checkpoint's, or nil when the request is empty or agrees.
func (c Config) Contradicts(ckpt Config) error {
	if c.Scheme == "" {
		return nil
	}
	if c.String() != ckpt.String() || c.PerChannel != ckpt.PerChannel {
		return fmt.Errorf("the checkpoint was trained with %s%s; the requested %s%s contradicts it",
			ckpt, perChannelNote(ckpt), c, perChannelNote(c))
	}
	return nil
}

func perChannelNote(c Config) string {
	if c.PerChannel {
		return " (per channel)"
	}
	return ""
}
