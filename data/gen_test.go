package data

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// This file generates data sets in the exact on-disk formats, with pixel
// values that depend on every coordinate, so that a misplaced pixel shows.

// idxPixel is the pixel at row y, column x of generated IDX image i.
func idxPixel(i, y, x int) byte { return byte(i*31 + y*7 + x*3) }

// idxImages returns an IDX images file of n h x w images.
func idxImages(n, h, w int) []byte {
	b := binary.BigEndian.AppendUint32(nil, idxImagesMagic)
	for _, d := range []int{n, h, w} {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	for i := range n {
		for y := range h {
			for x := range w {
				b = append(b, idxPixel(i, y, x))
			}
		}
	}
	return b
}

// idxLabels returns an IDX labels file.
func idxLabels(labels ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, idxLabelsMagic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(labels)))
	return append(b, labels...)
}

// gzipped returns b gzip-compressed.
func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	z.Write(b)
	z.Close()
	return buf.Bytes()
}

// cifarPixel is the value of colour channel c at row y, column x of
// generated CIFAR image i.
func cifarPixel(i, c, y, x int) byte { return byte(i*13 + c*85 + y*5 + x*3) }

// cifarRecords returns a CIFAR batch with one record per label; for
// CIFAR-100 (fine) the coarse label is the fine one divided by 5.
func cifarRecords(fine bool, labels ...byte) []byte {
	var b []byte
	for i, l := range labels {
		if fine {
			b = append(b, l/5)
		}
		b = append(b, l)
		for c := range 3 {
			for y := range 32 {
				for x := range 32 {
					b = append(b, cifarPixel(i, c, y, x))
				}
			}
		}
	}
	return b
}

// matVar describes a variable of a generated MAT file.
type matVar struct {
	name  string
	class byte   // mx class
	flags byte   // array flag bits (complex, global, logical)
	dims  []int  // dimensions
	typ   uint32 // storage data type of the real part
	data  []byte // the real part, little-endian
}

// matElem returns a data element: an 8-byte tag (or the 4-byte small form
// when small is set and the data fits) followed by data, padded to 8 bytes.
func matElem(typ uint32, data []byte, small bool) []byte {
	if small && len(data) <= 4 {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(data))<<16|typ)
		b = append(b, data...)
		return append(b, make([]byte, 8-len(b))...)
	}
	b := binary.LittleEndian.AppendUint32(nil, typ)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	return append(b, make([]byte, (8-len(data)%8)%8)...)
}

// matMatrix returns v as a miMATRIX element.
func matMatrix(v matVar) []byte {
	flags := binary.LittleEndian.AppendUint32(nil, uint32(v.flags)<<8|uint32(v.class))
	flags = binary.LittleEndian.AppendUint32(flags, 0)
	var dims []byte
	for _, d := range v.dims {
		dims = binary.LittleEndian.AppendUint32(dims, uint32(int32(d)))
	}
	var body []byte
	body = append(body, matElem(miUINT32, flags, false)...)
	body = append(body, matElem(miINT32, dims, false)...)
	body = append(body, matElem(miINT8, []byte(v.name), true)...)
	body = append(body, matElem(v.typ, v.data, true)...)
	return matElem(miMATRIX, body, false)
}

// matCompressed returns the element e wrapped in a miCOMPRESSED element.
func matCompressed(e []byte) []byte {
	var buf bytes.Buffer
	z := zlib.NewWriter(&buf)
	z.Write(e)
	z.Close()
	b := binary.LittleEndian.AppendUint32(nil, miCOMPRESSED)
	b = binary.LittleEndian.AppendUint32(b, uint32(buf.Len()))
	return append(b, buf.Bytes()...)
}

// matHeader returns a little-endian level-5 MAT file header.
func matHeader() []byte {
	h := []byte("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created by: qmulgpu tests")
	h = append(h, bytes.Repeat([]byte(" "), 116-len(h))...)
	h = append(h, make([]byte, 8)...) // subsystem data offset
	h = binary.LittleEndian.AppendUint16(h, 0x0100)
	return append(h, 'I', 'M')
}

// matFile returns a MAT file holding vars, each compressed if compress is
// set.
func matFile(compress bool, vars ...matVar) []byte {
	b := matHeader()
	for _, v := range vars {
		e := matMatrix(v)
		if compress {
			e = matCompressed(e)
		}
		b = append(b, e...)
	}
	return b
}

// float64Bytes returns f as little-endian doubles.
func float64Bytes(f ...float64) []byte {
	var b []byte
	for _, v := range f {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// svhnPixel is the value of X(h, w, c, n) in generated SVHN files.
func svhnPixel(h, w, c, n int) byte { return byte(h + 3*w + 101*c + 7*n) }

// svhnX returns the column-major pixels of n generated SVHN images.
func svhnX(n int) []byte {
	x := make([]byte, 32*32*3*n)
	for i := range n {
		for c := range 3 {
			for w := range 32 {
				for h := range 32 {
					x[h+32*(w+32*(c+3*i))] = svhnPixel(h, w, c, i)
				}
			}
		}
	}
	return x
}

// svhnVars returns the X and y variables of an SVHN file with the given
// labels (1 to 10), y stored as doubles or, if asUint8, as a uint8 array.
func svhnVars(asUint8 bool, labels ...byte) []matVar {
	n := len(labels)
	y := matVar{name: "y", class: mxDOUBLE, dims: []int{n, 1}, typ: miUINT8, data: labels}
	if asUint8 {
		y.class = mxUINT8
	}
	x := matVar{name: "X", class: mxUINT8, dims: []int{32, 32, 3, n}, typ: miUINT8, data: svhnX(n)}
	return []matVar{x, y}
}

// writeFiles writes files (path relative to dir → contents) under dir.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// wantError checks that err is non-nil, a single line, and contains want.
func wantError(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("got no error, want one containing %q", want)
	case !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	case strings.Contains(err.Error(), "\n"):
		t.Fatalf("error %q spans several lines", err)
	}
}

// checkDataset checks the shape invariants every Dataset must satisfy.
func checkDataset(t *testing.T, ds *Dataset) {
	t.Helper()
	if ds.N <= 0 || ds.H <= 0 || ds.W <= 0 || ds.C <= 0 {
		t.Fatalf("bad shape N=%d H=%d W=%d C=%d", ds.N, ds.H, ds.W, ds.C)
	}
	if len(ds.Images) != ds.N*ds.H*ds.W*ds.C {
		t.Fatalf("len(Images) = %d, want N*H*W*C = %d", len(ds.Images), ds.N*ds.H*ds.W*ds.C)
	}
	if len(ds.Labels) != ds.N {
		t.Fatalf("len(Labels) = %d, want N = %d", len(ds.Labels), ds.N)
	}
	if len(ds.ClassNames) != ds.Classes {
		t.Fatalf("len(ClassNames) = %d, want Classes = %d", len(ds.ClassNames), ds.Classes)
	}
	for i, l := range ds.Labels {
		if l < 0 || int(l) >= ds.Classes {
			t.Fatalf("label %d of image %d out of range [0, %d)", l, i, ds.Classes)
		}
	}
}
