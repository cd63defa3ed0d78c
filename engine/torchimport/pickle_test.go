package torchimport

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qmulgpu/qmulgpu/engine/safetensors"
	"github.com/qmulgpu/qmulgpu/engine/torchimport/torchtest"
)

var (
	newPickle   = torchtest.NewPickle
	torchLegacy = torchtest.Legacy
)

func torchZip(_ testing.TB, pkl []byte, storages map[string][]byte) []byte {
	return torchtest.Zip(pkl, storages)
}

// stateDict is a small state_dict: a 2×3 float weight, its transpose as a
// strided view of the same storage, a half-precision vector and an int64
// counter.
func stateDict(wrap string) []byte {
	p := newPickle()
	if wrap != "" {
		p.Op('}', '(').Str("epoch").Int(3).Str(wrap)
	}
	p.Global("collections", "OrderedDict").Op(')', 'R', '(')
	p.Str("w").Tensor("FloatStorage", "0", 6, 0, []int{2, 3}, []int{3, 1})
	p.Str("wt").Tensor("FloatStorage", "0", 6, 0, []int{3, 2}, []int{1, 3})
	p.Str("h").Tensor("HalfStorage", "1", 2, 0, []int{2}, []int{1})
	p.Str("n").Tensor("LongStorage", "2", 1, 0, []int{}, []int{})
	p.Op('u')
	// A state_dict's _metadata attribute, set by BUILD.
	p.Op('}').Str("_metadata").Op('}', 's', 'b')
	if wrap != "" {
		p.Op('u')
	}
	return p.Stop()
}

var testStorages = map[string][]byte{
	"0": safetensors.FromFloat32s([]float32{0, 1, 2, 3, 4, 5}),
	"1": {0x00, 0x3c, 0x00, 0xc0}, // 1.0, -2.0 in binary16
	"2": safetensors.FromInt64s([]int64{42}),
}

var testSizes = map[string]int{"0": 4, "1": 2, "2": 8}

func TestParseFormats(t *testing.T) {
	keys := []string{"0", "1", "2"}
	cases := []struct {
		name, format, key string
		file              []byte
	}{
		{"zip bare", FormatZip, "", torchZip(t, stateDict(""), testStorages)},
		{"zip in state_dict", FormatZip, "state_dict", torchZip(t, stateDict("state_dict"), testStorages)},
		{"zip in model", FormatZip, "model", torchZip(t, stateDict("model"), testStorages)},
		{"legacy bare", FormatLegacy, "", torchLegacy(stateDict(""), keys, testStorages, testSizes)},
		{"legacy in net", FormatLegacy, "net", torchLegacy(stateDict("net"), keys, testStorages, testSizes)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if c.Format != tc.format || c.Key != tc.key || !slices.Equal(c.Names, []string{"w", "wt", "h", "n"}) {
				t.Fatalf("format %q key %q names %v", c.Format, c.Key, c.Names)
			}
			want := map[string][]float32{"w": {0, 1, 2, 3, 4, 5}, "wt": {0, 3, 1, 4, 2, 5}, "h": {1, -2}, "n": {42}}
			for name, v := range want {
				if name == "n" {
					continue
				}
				if got, err := c.Tensors[name].Float32s(); err != nil || !slices.Equal(got, v) {
					t.Errorf("%s = %v (%v), want %v", name, got, err, v)
				}
			}
			if got, err := c.Tensors["n"].Count(); err != nil || got != 42 || len(c.Tensors["n"].Shape) != 0 {
				t.Errorf("n = %v (%v) shape %v", got, err, c.Tensors["n"].Shape)
			}
			if !slices.Equal(c.Tensors["wt"].Shape, []int{3, 2}) {
				t.Errorf("wt shape %v", c.Tensors["wt"].Shape)
			}
		})
	}
}

// TestRefusedGlobals: a pickle naming any global outside the allowed set is
// refused when the name is read, with an error naming it.
func TestRefusedGlobals(t *testing.T) {
	cases := []struct {
		global string
		pickle []byte
	}{
		{"os.system", newPickle().Global("os", "system").Str("touch /tmp/pwned").Op(0x85, 'R').Stop()},
		{"posix.system", newPickle().Global("posix", "system").Str("id").Op(0x85, 'R').Stop()},
		{"builtins.eval", newPickle().Str("builtins").Str("eval").Op(0x93).Str("1").Op(0x85, 'R').Stop()},
		{"builtins.getattr", newPickle().Global("builtins", "getattr").Stop()},
		{"__builtin__.object", newPickle().Global("__builtin__", "object").Stop()},
		{"copy_reg._reconstructor", newPickle().Global("copy_reg", "_reconstructor").Stop()},
		{"collections.Counter", newPickle().Global("collections", "Counter").Op(')', 'R').Stop()},
		{"torch.load", newPickle().Global("torch", "load").Stop()},
		{"torch.nn.modules.conv.Conv2d", newPickle().Op('}').Str("m").Global("torch.nn.modules.conv", "Conv2d").Op('s').Stop()},
		{"torch._utils._rebuild_tensor", newPickle().Global("torch._utils", "_rebuild_tensor").Stop()},
	}
	for _, tc := range cases {
		for _, file := range [][]byte{torchZip(t, tc.pickle, nil), torchLegacy(tc.pickle, nil, nil, nil)} {
			_, err := Parse(file)
			var refused *RefusedGlobalError
			if !errors.As(err, &refused) || refused.Global != tc.global || !strings.Contains(err.Error(), tc.global) {
				t.Errorf("%s: error %v, want it refused by name", tc.global, err)
			}
		}
	}
}

// TestHostileFiles: malformed files are refused quickly, without panics
// and without allocating what they claim.
func TestHostileFiles(t *testing.T) {
	huge := binary.LittleEndian.AppendUint64(nil, 1<<62)
	sd := func(numel, offset int, size, stride []int) []byte {
		return newPickle().Op('}').Str("w").Tensor("FloatStorage", "0", numel, offset, size, stride).Op('s').Stop()
	}
	six := map[string][]byte{"0": testStorages["0"]}
	legacy := torchLegacy(sd(6, 0, []int{6}, []int{1}), []string{"0"}, six, testSizes)
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "not a PyTorch checkpoint", nil},
		{"bare pickle", "bare pickle", newPickle().Op('}').Stop()},
		{"huge frame", "frame of", torchZip(t, append([]byte{0x80, 4, 0x95}, huge...), nil)},
		{"huge bytes", "needs", torchZip(t, append(append([]byte{0x80, 4, 0x8e}, huge...), '.'), nil)},
		{"huge long", "needs", torchZip(t, []byte{0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0x7f, '.'}, nil)},
		{"memo miss", "memo entry", torchZip(t, []byte{0x80, 2, 'j', 0xff, 0xff, 0xff, 0xff, '.'}, nil)},
		{"underflow", "underflow", torchZip(t, []byte{0x80, 2, 's', '.'}, nil)},
		{"no stop", "no STOP", torchZip(t, []byte{0x80, 2, '}'}, nil)},
		{"unknown opcode", "unsupported opcode", torchZip(t, []byte{0x80, 2, 'i', '.'}, nil)},
		{"protocol 0 text", "unsupported opcode", torchZip(t, []byte("(dp0\n."), nil)},
		{"not a dict", "not a dict", torchZip(t, newPickle().Op(']').Stop(), nil)},
		{"no state_dict", "no state_dict", torchZip(t, newPickle().Op('}').Str("epoch").Int(1).Op('s').Stop(), nil)},
		{"storage missing", "no zip entry", torchZip(t, sd(6, 0, []int{6}, []int{1}), nil)},
		{"storage too short", "bytes for", torchZip(t, sd(7, 0, []int{7}, []int{1}), six)},
		{"view past storage", "reaches past", torchZip(t, sd(6, 1, []int{2, 3}, []int{3, 1}), six)},
		{"huge shape", "too large", torchZip(t, sd(6, 0, []int{1 << 30, 1 << 30}, []int{0, 0}), six)},
		{"huge stride", "reaches past", torchZip(t, sd(6, 0, []int{2}, []int{1 << 30}), six)},
		{"huger stride", "too large", torchZip(t, sd(6, 0, []int{4}, []int{1 << 40}), six)},
		{"sizes and strides", "sizes", torchZip(t, sd(6, 0, []int{2, 3}, []int{1}), six)},
		{"legacy count lies", "but the pickle declares 6", torchLegacy(sd(6, 0, []int{6}, []int{1}), []string{"0"}, six, map[string]int{"0": 1})},
		{"legacy cut short", "the file is truncated: storage \"0\" needs 24 bytes, 20 are left", legacy[:len(legacy)-4]},
		{"legacy without its storages", "the file is truncated: it ends before storage", legacy[:len(legacy)-24-8]},
		{"legacy with trailing bytes", "4 bytes follow the last storage", append(slices.Clip(legacy), 1, 2, 3, 4)},
		{"legacy storage not stored", "storage \"0\" is used by a tensor but not stored", torchLegacy(sd(6, 0, []int{6}, []int{1}), nil, nil, nil)},
		{"legacy unknown key", "not referenced", torchLegacy(sd(6, 0, []int{6}, []int{1}), []string{"9"}, map[string][]byte{"9": six["0"]}, map[string]int{"9": 4})},
	}
	for _, tc := range cases {
		t0 := time.Now()
		_, err := Parse(tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("%s: took %v", tc.name, d)
		}
	}
}

func TestCompressedEntryRefused(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create("archive/data.pkl") // deflated
	f.Write(newPickle().Op('}').Stop())
	w.Close()
	if _, err := Parse(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("error %v, want compressed entries refused", err)
	}
}

// TestNesting: containers may nest up to maxDepth and hold None; a list or
// dict cannot change once it is inside another value, so nothing is
// recursive.
func TestNesting(t *testing.T) {
	nested := func(n int) []byte {
		return newPickle().Op(')').Op(bytes.Repeat([]byte{0x85}, n-1)...).Stop()
	}
	cases := []struct {
		name, want string
		pickle     []byte
	}{
		{"tuples 64 deep", "", nested(maxDepth)},
		{"tuples 65 deep", "nested more than 64 deep", nested(maxDepth + 1)},
		{"None in a tuple", "", newPickle().Op('N', 'N', 0x86).Stop()},
		{"dicts 65 deep", "nested more than 64 deep", func() []byte {
			p := newPickle().Op('}')
			for range maxDepth {
				p.Op('K', 0, '}')
			}
			return p.Op(bytes.Repeat([]byte{'s'}, maxDepth)...).Stop()
		}()},
		{"a list holding itself", "recursive", newPickle().Op(']', 0x94, 'h', 0, 'a').Stop()},
		{"a list changed inside a list", "recursive", newPickle().Op(']', ']', 0x94, 'a', 'h', 0, 'N', 'a', '0').Stop()},
		{"a dict changed inside a list", "recursive", newPickle().Op(']', '}', 0x94, 'a', 'h', 0, 'K', 1, 'K', 2, 's', '0').Stop()},
		{"a dict filled, then put in a list", "", newPickle().Op(']', '}', 'K', 1, 'K', 2, 's', 'a').Stop()},
	}
	for _, tc := range cases {
		_, _, err := unpickle(tc.pickle, 0, nil)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
