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
)

// pk builds pickles opcode by opcode, as torch.save writes them.
type pk struct{ b []byte }

func newPickle() *pk { return &pk{b: []byte{0x80, 2}} }

func (p *pk) op(b ...byte) *pk { p.b = append(p.b, b...); return p }

func (p *pk) str(s string) *pk {
	p.op('X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	return p
}

func (p *pk) int(v int) *pk {
	if v != int(int32(v)) { // LONG1 of 8 bytes
		p.op(0x8a, 8)
		p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
		return p
	}
	p.op('J')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
	return p
}

func (p *pk) global(module, name string) *pk {
	return p.op('c').op([]byte(module + "\n" + name + "\n")...)
}

func (p *pk) ints(v ...int) *pk {
	p.op('(')
	for _, x := range v {
		p.int(x)
	}
	return p.op('t')
}

// tensor pushes _rebuild_tensor_v2 of storage key (of class storage, numel
// elements) with the given view.
func (p *pk) tensor(storage, key string, numel, offset int, size, stride []int) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(')
	p.op('(').str("storage").global("torch", storage).str(key).str("cpu").int(numel).op('t', 'Q')
	p.int(offset).ints(size...).ints(stride...)
	p.op(0x89)
	p.global("collections", "OrderedDict").op(')', 'R')
	return p.op('t', 'R')
}

func (p *pk) stop() []byte { return append(p.b, '.') }

// torchZip packs a data.pkl and storages as torch.save's zip format.
func torchZip(t testing.TB, pkl []byte, storages map[string][]byte) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	add := func(name string, data []byte) {
		f, err := w.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
	}
	add("data.pkl", pkl)
	keys := make([]string, 0, len(storages))
	for k := range storages {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("data/"+k, storages[k])
	}
	add("version", []byte("3\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// torchLegacy packs a pickle and storages as torch's legacy format.
func torchLegacy(obj []byte, keys []string, storages map[string][]byte, sizes map[string]int) []byte {
	b := append([]byte{0x80, 2, 0x8a, byte(len(legacyMagic))}, legacyMagic...)
	b = append(b, '.')
	b = append(b, newPickle().int(1001).stop()...)
	b = append(b, newPickle().op('}').str("little_endian").op(0x88, 's').stop()...)
	b = append(b, obj...)
	keyList := newPickle().op(']', '(')
	for _, k := range keys {
		keyList.str(k)
	}
	b = append(b, keyList.op('e').stop()...)
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(storages[k])/sizes[k]))
		b = append(b, storages[k]...)
	}
	return b
}

// stateDict is a small state_dict: a 2×3 float weight, its transpose as a
// strided view of the same storage, a half-precision vector and an int64
// counter.
func stateDict(wrap string) []byte {
	p := newPickle()
	if wrap != "" {
		p.op('}', '(').str("epoch").int(3).str(wrap)
	}
	p.global("collections", "OrderedDict").op(')', 'R', '(')
	p.str("w").tensor("FloatStorage", "0", 6, 0, []int{2, 3}, []int{3, 1})
	p.str("wt").tensor("FloatStorage", "0", 6, 0, []int{3, 2}, []int{1, 3})
	p.str("h").tensor("HalfStorage", "1", 2, 0, []int{2}, []int{1})
	p.str("n").tensor("LongStorage", "2", 1, 0, []int{}, []int{})
	p.op('u')
	// A state_dict's _metadata attribute, set by BUILD.
	p.op('}').str("_metadata").op('}', 's', 'b')
	if wrap != "" {
		p.op('u')
	}
	return p.stop()
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
				if got := c.Tensors[name].Float32s(); !slices.Equal(got, v) {
					t.Errorf("%s = %v, want %v", name, got, v)
				}
			}
			if got := c.Tensors["n"].Int64s(); got[0] != 42 || len(c.Tensors["n"].Shape) != 0 {
				t.Errorf("n = %v shape %v", got, c.Tensors["n"].Shape)
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
		{"os.system", newPickle().global("os", "system").str("touch /tmp/pwned").op(0x85, 'R').stop()},
		{"posix.system", newPickle().global("posix", "system").str("id").op(0x85, 'R').stop()},
		{"builtins.eval", newPickle().str("builtins").str("eval").op(0x93).str("1").op(0x85, 'R').stop()},
		{"builtins.getattr", newPickle().global("builtins", "getattr").stop()},
		{"__builtin__.object", newPickle().global("__builtin__", "object").stop()},
		{"copy_reg._reconstructor", newPickle().global("copy_reg", "_reconstructor").stop()},
		{"collections.Counter", newPickle().global("collections", "Counter").op(')', 'R').stop()},
		{"torch.load", newPickle().global("torch", "load").stop()},
		{"torch.nn.modules.conv.Conv2d", newPickle().op('}').str("m").global("torch.nn.modules.conv", "Conv2d").op('s').stop()},
		{"torch._utils._rebuild_tensor", newPickle().global("torch._utils", "_rebuild_tensor").stop()},
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
		return newPickle().op('}').str("w").tensor("FloatStorage", "0", numel, offset, size, stride).op('s').stop()
	}
	six := map[string][]byte{"0": testStorages["0"]}
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "not a PyTorch checkpoint", nil},
		{"bare pickle", "bare pickle", newPickle().op('}').stop()},
		{"huge frame", "frame of", torchZip(t, append([]byte{0x80, 4, 0x95}, huge...), nil)},
		{"huge bytes", "needs", torchZip(t, append(append([]byte{0x80, 4, 0x8e}, huge...), '.'), nil)},
		{"huge long", "needs", torchZip(t, []byte{0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0x7f, '.'}, nil)},
		{"memo miss", "memo entry", torchZip(t, []byte{0x80, 2, 'j', 0xff, 0xff, 0xff, 0xff, '.'}, nil)},
		{"underflow", "underflow", torchZip(t, []byte{0x80, 2, 's', '.'}, nil)},
		{"no stop", "no STOP", torchZip(t, []byte{0x80, 2, '}'}, nil)},
		{"unknown opcode", "unsupported opcode", torchZip(t, []byte{0x80, 2, 'i', '.'}, nil)},
		{"protocol 0 text", "unsupported opcode", torchZip(t, []byte("(dp0\n."), nil)},
		{"not a dict", "not a dict", torchZip(t, newPickle().op(']').stop(), nil)},
		{"no state_dict", "no state_dict", torchZip(t, newPickle().op('}').str("epoch").int(1).op('s').stop(), nil)},
		{"storage missing", "no zip entry", torchZip(t, sd(6, 0, []int{6}, []int{1}), nil)},
		{"storage too short", "bytes for", torchZip(t, sd(7, 0, []int{7}, []int{1}), six)},
		{"view past storage", "reaches past", torchZip(t, sd(6, 1, []int{2, 3}, []int{3, 1}), six)},
		{"huge shape", "too large", torchZip(t, sd(6, 0, []int{1 << 30, 1 << 30}, []int{0, 0}), six)},
		{"huge stride", "reaches past", torchZip(t, sd(6, 0, []int{2}, []int{1 << 30}), six)},
		{"huger stride", "too large", torchZip(t, sd(6, 0, []int{4}, []int{1 << 40}), six)},
		{"sizes and strides", "sizes", torchZip(t, sd(6, 0, []int{2, 3}, []int{1}), six)},
		{"legacy count lies", "elements of", torchLegacy(sd(6, 0, []int{6}, []int{1}), []string{"0"}, six, map[string]int{"0": 1})},
		{"legacy cut short", "elements of", torchLegacy(sd(6, 0, []int{6}, []int{1}), []string{"0"}, map[string][]byte{"0": six["0"][:20]}, testSizes)},
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
	f.Write(newPickle().op('}').stop())
	w.Close()
	if _, err := Parse(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("error %v, want compressed entries refused", err)
	}
}

func FuzzParse(f *testing.F) {
	keys := []string{"0", "1", "2"}
	f.Add(torchZip(f, stateDict(""), testStorages))
	f.Add(torchZip(f, stateDict("state_dict"), testStorages))
	f.Add(torchLegacy(stateDict(""), keys, testStorages, testSizes))
	f.Add(torchLegacy(stateDict("model"), keys, testStorages, testSizes))
	f.Add(stateDict(""))
	f.Add(newPickle().global("os", "system").stop())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		for _, name := range c.Names {
			tt := c.Tensors[name]
			// Views lie inside their storage: every element can be read
			// (bounded so that stride-0 views cannot blow up the test).
			if tt.Numel() <= 1<<16 {
				tt.Float32s()
			}
		}
	})
}
