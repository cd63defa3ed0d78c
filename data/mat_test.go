package data

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseMAT(t *testing.T) {
	int16s := binary.LittleEndian.AppendUint16(nil, 0xfffe) // -2
	int16s = binary.LittleEndian.AppendUint16(int16s, 300)
	singles := binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5))
	vars := []matVar{
		{name: "bytes", class: mxUINT8, dims: []int{2, 3}, typ: miUINT8, data: []byte{1, 2, 3, 4, 5, 6}},
		{name: "compact", class: mxDOUBLE, dims: []int{1, 3}, typ: miUINT8, data: []byte{0, 10, 255}},
		{name: "doubles", class: mxDOUBLE, dims: []int{1, 2}, typ: miDOUBLE, data: float64Bytes(-0.5, 1e300)},
		{name: "shorts", class: 10, dims: []int{2, 1}, typ: miINT16, data: int16s},
		{name: "single", class: 7, dims: []int{1, 1}, typ: miSINGLE, data: singles},
		{name: "logical", class: mxUINT8, flags: 0x02, dims: []int{1, 2}, typ: miUINT8, data: []byte{1, 0}},
		{name: "empty", class: mxDOUBLE, dims: []int{0, 0}, typ: miDOUBLE},
	}
	want := map[string]struct {
		class string
		dims  []int
		data  []float64
	}{
		"bytes":   {"uint8", []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		"compact": {"double", []int{1, 3}, []float64{0, 10, 255}},
		"doubles": {"double", []int{1, 2}, []float64{-0.5, 1e300}},
		"shorts":  {"int16", []int{2, 1}, []float64{-2, 300}},
		"single":  {"single", []int{1, 1}, []float64{1.5}},
		"logical": {"uint8", []int{1, 2}, []float64{1, 0}},
		"empty":   {"double", []int{0, 0}, nil},
	}
	for _, compress := range []bool{false, true} {
		got, err := ParseMAT(matFile(compress, vars...))
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if len(got) != len(want) {
			t.Errorf("compress=%v: %d variables, want %d", compress, len(got), len(want))
		}
		for name, w := range want {
			a := got[name]
			if a == nil {
				t.Errorf("compress=%v: no variable %q", compress, name)
				continue
			}
			if a.Name != name || a.Class != w.class || !slices.Equal(a.Dims, w.dims) || a.Len() != len(w.data) {
				t.Errorf("compress=%v: %q: got %s %v with %d elements, want %s %v with %d", compress, name, a.Class, a.Dims, a.Len(), w.class, w.dims, len(w.data))
				continue
			}
			if (a.Class == "uint8") != (a.Uint8 != nil) || (a.Class == "uint8") == (a.Float64 != nil) {
				t.Errorf("compress=%v: %q: class %s but Uint8 %v, Float64 %v", compress, name, a.Class, a.Uint8, a.Float64)
			}
			for i, v := range w.data {
				if a.Value(i) != v {
					t.Errorf("compress=%v: %q[%d] = %v, want %v", compress, name, i, a.Value(i), v)
				}
			}
		}
	}
}

func TestParseMATErrors(t *testing.T) {
	good := matVar{name: "a", class: mxDOUBLE, dims: []int{2, 2}, typ: miUINT8, data: []byte{1, 2, 3, 4}}
	with := func(f func(v *matVar)) matVar {
		v := good
		f(&v)
		return v
	}
	file := matFile(false, good)
	bigEndian := slices.Clone(file)
	bigEndian[126], bigEndian[127] = 'M', 'I'
	hdf5 := slices.Clone(file)
	hdf5[124], hdf5[125] = 0x00, 0x02
	notMAT := slices.Clone(file)
	notMAT[126] = 'X'
	compressed := matFile(true, good)
	badAdler := slices.Clone(compressed)
	badAdler[len(badAdler)-1] ^= 0xff
	notMatrix := append(matHeader(), matCompressed(matElem(miDOUBLE, float64Bytes(1), false))...)
	// A compressed matrix whose tag claims 4 GiB.
	hugeTag := matElem(miMATRIX, nil, false)
	binary.LittleEndian.PutUint32(hugeTag[4:], 0xfffffff8)
	hugeCompressed := append(matHeader(), matCompressed(hugeTag)...)
	// A compressed element whose zlib stream stops early.
	cut := matCompressed(matMatrix(good))[:20]
	binary.LittleEndian.PutUint32(cut[4:], uint32(len(cut)-8))
	cutStream := append(matHeader(), cut...)

	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "truncated header: 0 bytes, want 128"},
		{"cut in header", file[:100], "truncated header: 100 bytes"},
		{"big-endian", bigEndian, "big-endian MAT files are not supported"},
		{"v7.3", hdf5, "MATLAB 7.3 (HDF5) MAT files are not supported"},
		{"not a MAT file", notMAT, "not a MATLAB 5 MAT file"},
		{"cut in tag", file[:132], "element at byte 128: truncated element tag: 4 bytes left"},
		{"cut in element", file[:len(file)-9], "truncated element of type 14"},
		{"unexpected element", append(matHeader(), matElem(miDOUBLE, float64Bytes(1), false)...), "unexpected data type 9"},
		{"complex", matFile(false, with(func(v *matVar) { v.flags = matComplex })), `variable "a": complex arrays are not supported`},
		{"sparse", matFile(false, with(func(v *matVar) { v.class = 5 })), `variable "a": sparse arrays are not supported`},
		{"cell", matFile(true, with(func(v *matVar) { v.class = 1 })), `variable "a": cell arrays are not supported`},
		{"struct", matFile(false, with(func(v *matVar) { v.class = 2 })), "struct arrays are not supported"},
		{"unknown class", matFile(false, with(func(v *matVar) { v.class = 99 })), "unknown array class 99"},
		{"length mismatch", matFile(false, with(func(v *matVar) { v.dims = []int{2, 3} })), "wrong shape: real part has 4 bytes, dimensions [2 3] need 6"},
		{"huge dims", matFile(false, with(func(v *matVar) { v.dims = []int{1 << 30, 1 << 30, 1 << 30} })), "wrong shape: dimensions [1073741824] need more than"},
		{"negative dim", matFile(false, with(func(v *matVar) { v.dims = []int{-1, 2} })), "negative dimension -1"},
		{"one dim", matFile(false, with(func(v *matVar) { v.dims = []int{4} })), "bad dimensions"},
		{"uint8 stored wide", matFile(false, with(func(v *matVar) { v.class, v.typ, v.data = mxUINT8, miINT16, make([]byte, 8) })), "uint8 array stored as data type 3"},
		{"bad storage type", matFile(false, with(func(v *matVar) { v.typ = miMATRIX })), "unsupported data type 14"},
		{"duplicate", matFile(false, good, good), `duplicate variable "a"`},
		{"zlib bad checksum", badAdler, "compressed element: corrupt data: zlib: invalid checksum"},
		{"zlib truncated", compressed[:len(compressed)-6], "truncated element of type 15"},
		{"zlib cut stream", cutStream, "truncated compressed element"},
		{"zlib not a matrix", notMatrix, "compressed element holds data type 9, want miMATRIX"},
		{"zlib huge matrix", hugeCompressed, "truncated compressed element (declares 4294967288 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMAT(tt.file)
			wantError(t, err, tt.want)
		})
	}
}

// checkSVHN checks a data set built from generated SVHN variables.
func checkSVHN(t *testing.T, ds *Dataset, labels []int32) {
	t.Helper()
	checkDataset(t, ds)
	if ds.N != len(labels) || ds.H != 32 || ds.W != 32 || ds.C != 3 || ds.Classes != 10 {
		t.Fatalf("N=%d H=%d W=%d C=%d classes=%d, want %dx32x32x3, 10 classes", ds.N, ds.H, ds.W, ds.C, ds.Classes, len(labels))
	}
	if !slices.Equal(ds.Labels, labels) {
		t.Errorf("labels %v, want %v", ds.Labels, labels)
	}
	for n := range ds.N {
		for h := range 32 {
			for w := range 32 {
				for c := range 3 {
					if got, want := ds.Images[((n*32+h)*32+w)*3+c], svhnPixel(h, w, c, n); got != want {
						t.Fatalf("image %d (h=%d w=%d c=%d) = %d, want %d", n, h, w, c, got, want)
					}
				}
			}
		}
	}
}

func TestSVHN(t *testing.T) {
	labels := []byte{10, 1, 5, 9, 10}
	want := []int32{0, 1, 5, 9, 0}
	for _, compress := range []bool{false, true} {
		for _, asUint8 := range []bool{false, true} {
			vars, err := ParseMAT(matFile(compress, svhnVars(asUint8, labels...)...))
			if err != nil {
				t.Fatalf("compress=%v uint8=%v: %v", compress, asUint8, err)
			}
			ds, err := svhnFromMAT(vars)
			if err != nil {
				t.Fatalf("compress=%v uint8=%v: %v", compress, asUint8, err)
			}
			checkSVHN(t, ds, want)
		}
	}

	// One image: MATLAB drops the trailing singleton dimension.
	one := svhnVars(false, 3)
	one[0].dims = []int{32, 32, 3}
	vars, err := ParseMAT(matFile(false, one...))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := svhnFromMAT(vars)
	if err != nil {
		t.Fatal(err)
	}
	checkSVHN(t, ds, []int32{3})
}

func TestLoadSVHN(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"svhn/train_32x32.mat": matFile(true, svhnVars(false, 1, 2, 10)...),
		"svhn/test_32x32.mat":  matFile(false, svhnVars(true, 7)...),
	})
	ds, err := Load("svhn", dir, Train, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkSVHN(t, ds, []int32{1, 2, 0})
	if ds.Name != "svhn" || ds.ClassNames[0] != "0" {
		t.Errorf("name %q class 0 %q", ds.Name, ds.ClassNames[0])
	}
	if ds, err = Load("svhn", filepath.Join(dir, "svhn"), Test, 0); err != nil {
		t.Fatal(err)
	}
	checkSVHN(t, ds, []int32{7})
}

func TestSVHNErrors(t *testing.T) {
	with := func(f func(x, y *matVar)) []byte {
		v := svhnVars(false, 1, 2)
		f(&v[0], &v[1])
		return matFile(false, v...)
	}
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"no X", with(func(x, y *matVar) { x.name = "Z" }), "wrong shape: want variables X and y"},
		{"X not 32x32x3", with(func(x, y *matVar) { x.dims = []int{32, 32, 6, 1} }), "X: wrong shape [32 32 6 1], want [32 32 3 N]"},
		{"X 2-D", with(func(x, y *matVar) { x.dims = []int{1024, 6} }), "X: wrong shape [1024 6]"},
		{"X double", with(func(x, y *matVar) { x.class = mxDOUBLE }), "X: class double, want uint8"},
		{"y too short", with(func(x, y *matVar) { y.dims, y.data = []int{1, 1}, []byte{1} }), "y: wrong shape [1 1], want [2 1] for 2 images"},
		{"y matrix", with(func(x, y *matVar) { y.dims = []int{1, 1, 2} }), "y: wrong shape [1 1 2]"},
		{"label 0", with(func(x, y *matVar) { y.data = []byte{0, 1} }), "y: label 0 at index 0 out of range [1, 10]"},
		{"label 11", with(func(x, y *matVar) { y.data = []byte{1, 11} }), "y: label 11 at index 1 out of range"},
		{"fractional label", with(func(x, y *matVar) { y.typ, y.data = miDOUBLE, float64Bytes(1, 2.5) }), "y: label 2.5 at index 1 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{"train_32x32.mat": tt.file})
			_, err := Load("svhn", dir, Train, 0)
			wantError(t, err, tt.want)
			wantError(t, err, filepath.Join(dir, "train_32x32.mat")+": ")
		})
	}
}

// scipyScript writes, with scipy.io.savemat, an SVHN-like file holding
// X(h,w,c,n) = svhnPixel(h,w,c,n) for 4 images, y = [10 3 7 1] as doubles,
// and two more variables: uncompressed to sys.argv[1] and compressed to
// sys.argv[2].
const scipyScript = `
import sys
import numpy as np
import scipy.io
n = 4
h, w, c, i = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), np.arange(n), indexing="ij")
X = ((h + 3*w + 101*c + 7*i) % 256).astype(np.uint8)
y = np.array([[10], [3], [7], [1]], dtype=np.float64)
a = np.arange(6, dtype=np.int16).reshape(2, 3)
s = np.array([0.25, -2], dtype=np.float32)
for path, compress in [(sys.argv[1], False), (sys.argv[2], True)]:
    scipy.io.savemat(path, {"X": X, "y": y, "a": a, "s": s}, do_compression=compress)
`

func TestParseMATScipy(t *testing.T) {
	const python = "/usr/bin/python3"
	dir := t.TempDir()
	plain, compressed := filepath.Join(dir, "plain.mat"), filepath.Join(dir, "compressed.mat")
	if out, err := exec.Command(python, "-c", scipyScript, plain, compressed).CombinedOutput(); err != nil {
		if exec.Command(python, "-c", "import numpy, scipy.io").Run() != nil {
			t.Skipf("%s with scipy is not available (apt-get install python3-scipy)", python)
		}
		t.Fatalf("savemat: %v\n%s", err, out)
	}
	for _, path := range []string{plain, compressed} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			vars, err := ParseMAT(b)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := svhnFromMAT(vars)
			if err != nil {
				t.Fatal(err)
			}
			checkSVHN(t, ds, []int32{0, 3, 7, 1})
			// a = [0 1 2; 3 4 5] in column-major order.
			if a := vars["a"]; a == nil || a.Class != "int16" || !slices.Equal(a.Dims, []int{2, 3}) || !slices.Equal(a.Float64, []float64{0, 3, 1, 4, 2, 5}) {
				t.Errorf("a = %+v", a)
			}
			// savemat writes 1-D arrays as rows.
			if s := vars["s"]; s == nil || s.Class != "single" || !slices.Equal(s.Dims, []int{1, 2}) || !slices.Equal(s.Float64, []float64{0.25, -2}) {
				t.Errorf("s = %+v", s)
			}
		})
	}
}
