package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/internal/clip"
	"github.com/qmulgpu/qmulgpu/internal/jsonerr"
)

// A checkpoint is untrusted input. Read checks, in this order and before
// anything is built from it:
//
//  1. the format and the model configuration in the metadata, and that the
//     configuration's sizes lie within models' bounds;
//  2. that the tensors which pin those sizes (models.Config.Anchors) are in
//     the file with the shapes the configuration implies, and that the file
//     holds at least half a byte for each of the model's parameters (the
//     most compact layout, packed 4-bit codes), so that the model built
//     from it is no larger than the file;
//  3. that every float value is finite and lies in its role's domain
//     (domainRules).
//
// Restore then checks every tensor's name, dtype and shape against the
// built model.

// Read parses and checks a checkpoint file and returns it with its model
// configuration.
func Read(path string) (*safetensors.File, models.Config, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, models.Config{}, fmt.Errorf("checkpoint: %w", err)
	}
	cfg, err := Check(f)
	if err != nil {
		return nil, cfg, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return f, cfg, nil
}

// Check validates a parsed checkpoint (see Read) and returns its model
// configuration.
func Check(f *safetensors.File) (models.Config, error) {
	cfg, err := ModelConfig(f)
	if err != nil {
		return cfg, err
	}
	if err := checkAnchors(f, cfg); err != nil {
		return cfg, err
	}
	if err := checkSize(f, cfg); err != nil {
		return cfg, err
	}
	return cfg, CheckValues(f)
}

// ModelConfig decodes the model configuration from a file's metadata and
// checks it against models' bounds.
func ModelConfig(f *safetensors.File) (models.Config, error) {
	var cfg models.Config
	switch f.Metadata[KeyFormat] {
	case FormatModel, FormatResume, FormatInt:
	case "":
		return cfg, fmt.Errorf("not a qmulgpu checkpoint (no %q metadata)", KeyFormat)
	default:
		return cfg, fmt.Errorf("unsupported checkpoint format %s", clip.Quote(f.Metadata[KeyFormat]))
	}
	dec := json.NewDecoder(strings.NewReader(f.Metadata[KeyModel]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("bad %q metadata: %s", KeyModel, jsonerr.Describe(err))
	}
	if err := cfg.Check(); err != nil {
		return cfg, fmt.Errorf("bad %q metadata: %w", KeyModel, err)
	}
	return cfg, nil
}

// checkAnchors compares the tensors that pin the configuration's sizes with
// the file. An integer export stores a quantized layer's weight as codes,
// NAME.weight_codes (I8, or U8 with two codes a byte), in place of
// NAME.weight.
func checkAnchors(f *safetensors.File, cfg models.Config) error {
	for _, a := range cfg.Anchors() {
		t, ok := f.Get(a.Name)
		if ok {
			if t.DType != "F32" || !engine.SameShape(t.Shape, a.Shape) {
				return fmt.Errorf("tensor %q is %s%s but the %q metadata implies F32%v", a.Name, t.DType, clip.Shape(t.Shape), KeyModel, a.Shape)
			}
			continue
		}
		codes, ok := f.Get(a.Name + "_codes")
		if !ok || f.Metadata[KeyFormat] != FormatInt {
			return fmt.Errorf("tensor %q, which the %q metadata implies, is missing", a.Name, KeyModel)
		}
		n := 1
		for _, d := range a.Shape {
			n *= d
		}
		if (codes.DType != "I8" || len(codes.Data) != n) && (codes.DType != "U8" || len(codes.Data) != (n+1)/2) {
			return fmt.Errorf("tensor %q (%s, %d bytes) does not hold the %d codes of %v the %q metadata implies", codes.Name, codes.DType, len(codes.Data), n, a.Shape, KeyModel)
		}
	}
	return nil
}

// checkSize checks that the file's tensors take at least half a byte for
// each parameter of the model its configuration describes.
func checkSize(f *safetensors.File, cfg models.Config) error {
	params, err := models.ParamCount(cfg)
	if err != nil {
		return err
	}
	have := 0
	for _, t := range f.Tensors {
		have += len(t.Data)
	}
	if have < (params+1)/2 {
		return fmt.Errorf("its tensors take %d bytes, but the %s it describes has %d parameters: tensors are missing", have, cfg.Arch, params)
	}
	return nil
}

// domainRule is a constraint on the values of the tensors whose names end
// with suffix, beyond being finite.
type domainRule struct {
	suffix string
	what   string
	ok     func(float64) bool
	// unlessZero names a sibling I64 scalar (same prefix) which, when
	// present and 0, lifts the rule (an LSQ step not yet initialised).
	unlessZero string
}

// An LSQ step (and the weight scale exported from it) may be negative:
// training can drive a per-channel step through zero, which mirrors the
// channel's grid and quantizes as well; only a zero step is degenerate
// (every value divides by it).
var domainRules = []domainRule{
	{suffix: ".running_var", what: "a BatchNorm variance must not be negative", ok: func(v float64) bool { return v >= 0 }},
	{suffix: "_fn.s", what: "an LSQ step must not be zero", ok: func(v float64) bool { return v != 0 }, unlessZero: "_fn.initialized"},
	{suffix: "_fn.alpha", what: "a PACT clip level must be positive", ok: func(v float64) bool { return v > 0 }},
	{suffix: ".weight_scale", what: "an integer weight scale must not be zero", ok: func(v float64) bool { return v != 0 }},
	{suffix: ".num_batches_tracked", what: "a count must not be negative", ok: nonNegative},
	{suffix: "_fn.initialized", what: "a count must not be negative", ok: nonNegative},
	{suffix: "_fn.observed", what: "a count must not be negative", ok: nonNegative},
}

func nonNegative(v float64) bool { return v >= 0 }

// CheckValues checks that every float tensor holds finite values, and the
// values of the tensors domainRules name (float tensors, and the I64
// counters) lie in their domains. It reads the data in place.
func CheckValues(f *safetensors.File) error {
	for i := range f.Tensors {
		t := &f.Tensors[i]
		var rule *domainRule
		for r := range domainRules {
			if strings.HasSuffix(t.Name, domainRules[r].suffix) && !strings.HasPrefix(t.Name, momentumPrefix) {
				rule = &domainRules[r]
			}
		}
		if rule != nil && rule.unlessZero != "" {
			sib := strings.TrimSuffix(t.Name, rule.suffix) + rule.unlessZero
			if s, ok := f.Get(sib); ok && s.DType == "I64" && len(s.Data) == 8 && binary.LittleEndian.Uint64(s.Data) == 0 {
				rule = nil
			}
		}
		if err := checkTensor(t, rule); err != nil {
			return err
		}
	}
	return nil
}

func checkTensor(t *safetensors.Tensor, rule *domainRule) error {
	var size int
	var at func(i int) float64
	switch t.DType {
	case "F32":
		size = 4
		at = func(i int) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))) }
	case "F64":
		size = 8
		at = func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])) }
	case "I64":
		if rule == nil {
			return nil
		}
		size = 8
		at = func(i int) float64 { return float64(int64(binary.LittleEndian.Uint64(t.Data[8*i:]))) }
	default:
		return nil
	}
	for i := 0; i < len(t.Data)/size; i++ {
		v := at(i)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("tensor %s holds %v at element %d: the file is damaged or comes from a diverged run", clip.Quote(t.Name), v, i)
		}
		if rule != nil && !rule.ok(v) {
			return fmt.Errorf("tensor %s holds %v at element %d: %s", clip.Quote(t.Name), v, i, rule.what)
		}
	}
	return nil
}
